#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## metafor reference values for the tetrachoric correlation of 2x2 tables
## (escalc's measure = "RTET", metafor:::.rtet) and the exact values it
## approximates.
##
## Run from the repository root:
##     Rscript tests/reference/make_reference_rtet.R
## Writes tests/reference/metafor_rtet.json.
##
## Conventions
##  * Tables as escalc's ai, bi, ci, di (ivigmeta's counts table: treat_events
##    = ai, treat_total = ai + bi, control_events = ci, control_total = ci + di).
##  * metafor_yi, metafor_vi: escalc(measure = "RTET", ai, bi, ci, di) with its
##    defaults (add = 0: no continuity correction); vi_inf / vi_na flag the
##    values JSON cannot carry (null in metafor_vi).
##  * exact_yi: the root of Phi2(h, k; rho) = ai/n with h = qnorm((ai+ci)/n),
##    k = qnorm((ai+bi)/n) (the saturated likelihood's optimum), by
##    uniroot(tol = 1e-14) on mvtnorm::pmvnorm(algorithm = TVPACK) (Genz's
##    bivariate algorithm, deterministic); exact_yi_miwa the same with
##    algorithm = Miwa(steps = 512) as a cross-check.
##  * exact_vi: the asymptotic (delta-method) variance of exact_yi as a
##    function of the four cell shares (exact_vi below), which equals the
##    [1, 1] element of the inverse Hessian of the negative log-likelihood in
##    (rho, cut.row, cut.col) at the saturated optimum.
##  * phi2: a grid of Phi2(h, k; rho) = pmvnorm(upper = c(h, k), corr) values
##    by TVPACK and Miwa.
##  * pooled: dat.bcg's tables (tpos, tneg, cpos, cneg) as 2x2 tables of two
##    dichotomous variables; rma() (DL and REML, test = "z" and "knha") on
##    metafor's yi, vi ("fits") and on exact_yi, exact_vi ("fits_exact").
##  * corrected: escalc(measure = "RTET", add = 1/2, to = "all") on tables
##    with zero cells (ivigmeta's --cc-policy all).
##  * Numbers: the shortest of 15/16/17 significant digits that round-trips.
## ---------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(metafor)
  library(mvtnorm)
})

OUT  <- file.path("tests", "reference", "metafor_rtet.json")
CTRL <- list(threshold = 1e-13, maxiter = 100000, stepadj = 0.5)
source(file.path("tests", "reference", "json_writer.R"))

phi2 <- function(h, k, rho, alg = TVPACK(abseps = 1e-15)) {
  if (rho >= 1) return(pnorm(min(h, k)))
  if (rho <= -1) return(max(0, pnorm(h) + pnorm(k) - 1))
  as.numeric(pmvnorm(lower = c(-Inf, -Inf), upper = c(h, k),
                     corr = matrix(c(1, rho, rho, 1), 2), algorithm = alg))
}

exact_root <- function(a, b, c, d, alg = TVPACK(abseps = 1e-15)) {
  n <- a + b + c + d
  h <- qnorm((a + c) / n); k <- qnorm((a + b) / n)
  uniroot(function(r) phi2(h, k, r, alg) - a / n, c(-1, 1),
          tol = 1e-14, maxiter = 1000)$root
}

## The asymptotic variance of the root by the delta method (independent of the
## Hessian algebra of ivigmeta's engine): rho = G(pi_a, pi_b, pi_c) through
## h = qnorm(pi_a + pi_c), k = qnorm(pi_a + pi_b), Phi2(h, k; rho) = pi_a, so
## dG/dpi_a = (1 - Phi((k - rho h)/r) - Phi((h - rho k)/r)) / phi2,
## dG/dpi_b = -Phi((h - rho k)/r) / phi2, dG/dpi_c = -Phi((k - rho h)/r) / phi2,
## dG/dpi_d = 0, and var = (sum pi g^2 - (sum pi g)^2) / n (multinomial).
exact_vi <- function(a, b, c, d, rho) {
  n <- a + b + c + d
  h <- qnorm((a + c) / n); k <- qnorm((a + b) / n)
  r <- sqrt(1 - rho^2)
  dens <- dmvnorm(c(h, k), sigma = matrix(c(1, rho, rho, 1), 2))
  u <- pnorm((k - rho * h) / r); v <- pnorm((h - rho * k) / r)
  g <- c(1 - u - v, -v, -u, 0) / dens
  p <- c(a, b, c, d) / n
  (sum(p * g^2) - sum(p * g)^2) / n
}

interior <- function(t) all(t > 0)

table_record <- function(name, t) {
  es <- suppressWarnings(escalc(measure = "RTET", ai = t[1], bi = t[2], ci = t[3], di = t[4]))
  ## escalc recodes +-Inf to NA: .rtet itself says which
  raw <- suppressWarnings(metafor:::.rtet(t[1], t[2], t[3], t[4], maxcor = 0.9999))
  rec <- list(name = name, ai = t[1], bi = t[2], ci = t[3], di = t[4],
              metafor_yi = as.numeric(es$yi), metafor_vi = as.numeric(es$vi),
              rtet_yi = as.numeric(raw$yi), rtet_vi = as.numeric(raw$vi),
              vi_inf = isTRUE(is.infinite(raw$vi)), vi_na = isTRUE(is.na(raw$vi)))
  if (interior(t)) {
    r <- exact_root(t[1], t[2], t[3], t[4])
    rec$exact_yi <- r
    rec$exact_yi_miwa <- exact_root(t[1], t[2], t[3], t[4], Miwa(steps = 512))
    rec$exact_vi <- exact_vi(t[1], t[2], t[3], t[4], r)
  }
  rec
}

tables <- list(
  handbook     = c(135, 15, 40, 10),   # metafor's test_misc_escalc.r: yi 0.2603, sei 0.1423
  balanced     = c(20, 10, 5, 15),
  ones         = c(1, 1, 1, 1),
  independent  = c(10, 10, 10, 10),
  negative     = c(3, 40, 50, 7),
  skewed_rows  = c(2, 3, 40, 155),
  skewed_cols  = c(45, 2, 150, 3),
  rare         = c(1, 30, 2, 400),
  strong       = c(50, 3, 2, 45),
  large        = c(500, 100, 200, 300),
  very_large   = c(12000, 3000, 4500, 9000),
  near_perfect = c(200, 1, 1, 200),
  beyond_max   = c(1000, 1, 1, 1000),
  beyond_max2  = c(5000, 2, 3, 5000),
  zero_b       = c(10, 0, 5, 15),
  zero_c       = c(10, 5, 0, 15),
  zero_a       = c(0, 10, 5, 15),
  zero_d       = c(10, 5, 15, 0),
  zero_bc      = c(10, 0, 0, 15),
  zero_ad      = c(0, 10, 5, 0),
  empty_row1   = c(0, 0, 5, 15),
  empty_row2   = c(10, 10, 0, 0),
  empty_col1   = c(0, 5, 0, 20),
  empty_col2   = c(5, 0, 20, 0)
)
recs <- lapply(names(tables), function(nm) table_record(nm, tables[[nm]]))

## Phi2 grid
grid <- list()
for (h in c(-2.5, -1, -0.3, 0, 0.4, 1.7))
  for (k in c(-1.9, 0, 0.25, 2.2))
    for (rho in c(-0.9999, -0.95, -0.5, 0, 0.3, 0.8, 0.93, 0.999, 0.99999))
      grid[[length(grid) + 1L]] <- list(h = h, k = k, rho = rho,
                                       tvpack = phi2(h, k, rho),
                                       miwa = phi2(h, k, rho, Miwa(steps = 512)))

## pooling: dat.bcg
fit_block <- function(yi, vi, method, test) {
  ctrl <- if (method == "REML") CTRL else list()
  f <- rma(yi, vi, method = method, test = test, control = ctrl)
  list(method = method, test = test,
       estimate = as.numeric(f$b), se = f$se, ci_lb = f$ci.lb, ci_ub = f$ci.ub,
       pval = f$pval, tau2 = f$tau2, QE = f$QE, I2 = f$I2, k = f$k)
}
fits_of <- function(yi, vi) {
  out <- list()
  for (m in c("DL", "REML")) for (t in c("z", "knha"))
    out[[length(out) + 1L]] <- fit_block(yi, vi, m, t)
  out
}
d <- dat.bcg
es <- escalc(measure = "RTET", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = d)
ex_yi <- mapply(exact_root, d$tpos, d$tneg, d$cpos, d$cneg)
ex_vi <- mapply(exact_vi, d$tpos, d$tneg, d$cpos, d$cneg, ex_yi)
pooled <- list(name = "bcg", ai = arr(d$tpos), bi = arr(d$tneg), ci = arr(d$cpos),
               di = arr(d$cneg), yi = arr(as.numeric(es$yi)), vi = arr(as.numeric(es$vi)),
               exact_yi = arr(ex_yi), exact_vi = arr(ex_vi),
               fits = fits_of(as.numeric(es$yi), as.numeric(es$vi)),
               fits_exact = fits_of(ex_yi, ex_vi))

## corrected tables (add = 1/2 to every cell of every table)
zt <- list(c(20, 10, 5, 15), c(10, 0, 5, 15), c(10, 0, 0, 15), c(0, 5, 0, 20))
corrected <- lapply(zt, function(t) {
  es <- escalc(measure = "RTET", ai = t[1], bi = t[2], ci = t[3], di = t[4], add = 1/2, to = "all")
  tt <- t + 1/2
  r <- exact_root(tt[1], tt[2], tt[3], tt[4])
  list(ai = t[1], bi = t[2], ci = t[3], di = t[4],
       metafor_yi = as.numeric(es$yi), metafor_vi = as.numeric(es$vi),
       exact_yi = r, exact_vi = exact_vi(tt[1], tt[2], tt[3], tt[4], r))
})

obj <- list(
  meta = list(r_version = R.version.string,
              metafor_version = as.character(packageVersion("metafor")),
              mvtnorm_version = as.character(packageVersion("mvtnorm")),
              generated_by = "tests/reference/make_reference_rtet.R"),
  tables = recs,
  phi2 = grid,
  pooled = list(pooled),
  corrected = corrected
)
write_json_file(obj, OUT)
cat("wrote", OUT, "\n")
