#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## metafor reference values for the rest of the univariate model (issue 17,
## items 1 and 2): the tau² estimators of metafor 3.8-1 with their standard
## errors (se.tau2), test = "adhoc", the common-effect model with
## test = "knha", Henmi-Copas (hc()) and prediction intervals on t(k - 2).
##
## Run from the repository root:
##     Rscript tests/reference/make_reference_univariate.R
## Writes tests/reference/metafor_univariate.json.
##
## Conventions
##  * Data: dat.bcg (RR), dat.normand1999 (MD), dat.li2007 (OR),
##    dat.hackshaw1998 (log OR as given; knha's factor below 1) and the
##    repository's studies.csv (the IVIG data, RR), escalc() defaults
##    (add = 1/2, to = "only0"); yi, vi recorded in row order and used as given.
##  * Every fit uses the tight control CTRL (threshold 1e-13, maxiter 1e5): the
##    iterative estimators' values are their limits. An estimator that does not
##    converge (DLIT on dat.li2007) is recorded with its error message. DLIT
##    is retried with a threshold of 1e-12 relative to the DL tau² when the
##    absolute 1e-13 is beyond double precision (normand1999, tau² ~ 346).
##  * GENQ uses the weights a = 1 / sqrt(vi) (recorded). ivigmeta uses GENQ's
##    weights for tau² only, so estimate/se/CI/PI of a GENQ record come from
##    rma(yi, vi, tau2 = <GENQ tau²>), se.tau2 from the GENQ fit itself.
##  * pi_lb/pi_ub: predict() of the fit (normal, or t(k - 1) under knha/adhoc).
##    The t(k - 2) interval (Higgins et al. 2009), which metafor's predict()
##    does not offer, is computed here from the fit explicitly:
##    b ± qt(1 - alpha/2, k - 2) sqrt(se² + tau²), se the fit's own.
##  * hc(): metafor's hc.rma.uni run with control = list(tol = 1e-12) for its
##    uniroot(), and its integrate() call given rel.tol = 1e-12 (the default
##    is 1.2e-4) by editing that one argument of metafor's own function body.
##  * Numbers: the shortest of 15/16/17 significant digits that round-trips.
## ---------------------------------------------------------------------------

suppressPackageStartupMessages(library(metafor))

OUT  <- file.path("tests", "reference", "metafor_univariate.json")
CTRL <- list(threshold = 1e-13, maxiter = 100000, stepadj = 0.5, tol = 1e-13)
METHODS <- c("DL", "HE", "HS", "HSk", "SJ", "ML", "REML", "EB", "PM", "PMM",
             "GENQ", "SJIT", "DLIT")

source(file.path("tests", "reference", "json_writer.R"))

hc_tight <- metafor:::hc.rma.uni
body(hc_tight) <- parse(text = sub("upper = Inf)", "upper = Inf, rel.tol = 1e-12)",
                                   paste(deparse(body(hc_tight)), collapse = "\n"),
                                   fixed = TRUE))[[1]]
stopifnot(grepl("rel.tol = 1e-12", paste(deparse(body(hc_tight)), collapse = "")))

num <- function(x) if (is.null(x) || is.na(x)) NULL else as.numeric(x)

pi_t <- function(f) {
  k <- f$k
  crit <- qt(1 - f$level / 2, df = k - 2)  # f$level holds alpha (0.05)
  half <- crit * sqrt(f$se^2 + f$tau2)
  c(as.numeric(f$b) - half, as.numeric(f$b) + half)
}

fit_record <- function(f, extra = list()) {
  p <- predict(f)
  pt <- pi_t(f)
  c(extra, list(estimate = as.numeric(f$b), se = f$se, zval = f$zval, pval = f$pval,
                ci_lb = f$ci.lb, ci_ub = f$ci.ub, pi_lb = num(p$pi.lb), pi_ub = num(p$pi.ub),
                pi_t_lb = pt[1], pi_t_ub = pt[2], tau2 = f$tau2))
}

estimator <- function(yi, vi, m) {
  a <- 1 / sqrt(vi)
  f <- try(if (m == "GENQ") rma(yi, vi, method = m, weights = a, control = CTRL)
           else rma(yi, vi, method = m, control = CTRL), silent = TRUE)
  threshold <- CTRL$threshold
  if (inherits(f, "try-error") && m == "DLIT") {
    ## An absolute threshold of 1e-13 is below double precision for a tau² of hundreds
    ## (normand1999): retry with 1e-12 relative to the DL value.
    threshold <- 1e-12 * max(1, rma(yi, vi, method = "DL")$tau2)
    f <- try(rma(yi, vi, method = m, control = modifyList(CTRL, list(threshold = threshold))),
             silent = TRUE)
  }
  if (inherits(f, "try-error"))
    return(list(method = m, error = trimws(sub(".*: *\n?", "", as.character(f)))))
  se.tau2 <- f$se.tau2
  if (m == "GENQ") f <- rma(yi, vi, tau2 = f$tau2)
  fit_record(f, list(method = m, se_tau2 = num(se.tau2), threshold = threshold))
}

dataset <- function(name, measure, es) {
  keep <- is.finite(es$yi) & is.finite(es$vi)
  yi <- as.numeric(es$yi[keep]); vi <- as.numeric(es$vi[keep])
  tests <- list()
  for (m in c("DL", "REML")) for (t in c("z", "knha", "adhoc"))
    tests[[length(tests) + 1L]] <- fit_record(rma(yi, vi, method = m, test = t, control = CTRL),
                                              list(method = m, test = t))
  ee <- suppressWarnings(rma(yi, vi, method = "EE", test = "knha"))
  h <- hc_tight(rma(yi, vi, method = "DL"), control = list(tol = 1e-12))
  list(name = name, measure = measure, k = length(yi),
       yi = arr(yi), vi = arr(vi), genq_weights = arr(1 / sqrt(vi)),
       estimators = lapply(METHODS, function(m) estimator(yi, vi, m)),
       tests = tests,
       ee_knha = list(estimate = as.numeric(ee$b), se = ee$se, tval = ee$zval, pval = ee$pval,
                      ci_lb = ee$ci.lb, ci_ub = ee$ci.ub, df = ee$dfs),
       hc = list(estimate = h$beta, se = h$se, ci_lb = h$ci.lb, ci_ub = h$ci.ub, tau2 = h$tau2))
}

sets <- list()
d <- dat.bcg
sets[[1]] <- dataset("bcg", "RR", escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = d))
d <- dat.normand1999
sets[[2]] <- dataset("normand1999", "MD", escalc("MD", m1i = m1i, sd1i = sd1i, n1i = n1i,
                                                 m2i = m2i, sd2i = sd2i, n2i = n2i, data = d))
d <- dat.li2007
sets[[3]] <- dataset("li2007", "OR", escalc("OR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = d))
sets[[4]] <- dataset("hackshaw1998", "OR", dat.hackshaw1998)  # yi, vi given; Q < k - 1
d <- read.csv("studies.csv")
sets[[5]] <- dataset("ivig", "RR", escalc("RR", ai = treat_events, n1i = treat_total,
                                          ci = control_events, n2i = control_total, data = d))

## Meta-regression: dat.bcg's log RR on absolute latitude (mods = ~ ablat), every estimator.
d <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
metareg <- lapply(METHODS, function(m) {
  a <- 1 / sqrt(d$vi)
  f <- try(if (m == "GENQ") rma(yi, vi, mods = ~ ablat, data = d, method = m, weights = a,
                                control = CTRL)
           else rma(yi, vi, mods = ~ ablat, data = d, method = m, control = CTRL), silent = TRUE)
  if (inherits(f, "try-error"))
    return(list(method = m, error = trimws(sub(".*: *\n?", "", as.character(f)))))
  list(method = m, tau2 = f$tau2, se_tau2 = num(f$se.tau2))
})

write_json_file(list(
  generated_by = "tests/reference/make_reference_univariate.R",
  R_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  date = format(Sys.Date()),
  control = CTRL,
  metareg_bcg_ablat = list(yi = arr(as.numeric(d$yi)), vi = arr(as.numeric(d$vi)),
                           ablat = arr(as.numeric(d$ablat)), genq_weights = arr(1 / sqrt(d$vi)),
                           estimators = metareg),
  datasets = sets), OUT)
cat("wrote", OUT, "\n")
