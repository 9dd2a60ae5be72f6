#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## metafor reference values for studies with missing data (--missing exclude):
## metafor 3.8-1 leaves a study whose yi or vi is NA out of the model
## ("Studies with NAs omitted from model fitting", na.action = na.omit).
##
## Run from the repository root:
##     Rscript tests/reference/make_reference_missing.R
## Writes tests/reference/metafor_missing.json.
##
## Cases (each with its data, NA as null, so the tests need no R):
##  * nas_yi_vi: the data of metafor's own test of NA handling
##    (tests/testthat/test_misc_handling_nas.r): yi = NA, 1, 3, 2, 5, 4, 6;
##    vi = 1, NA, 1, 1, 1, 1, 1; xi = 0, 1, NA, 3, 4, 5, 6. rma(yi, vi) for
##    DL and REML, leave1out() and blup() of the DL fit, and the
##    meta-regression rma(yi, vi, mods = ~ xi) (DL), which also omits the
##    study whose moderator is NA. The script checks the values that test
##    asserts (k = 5, estimate 4, leave-one-out 4.25 ...).
##  * bcg_counts: dat.bcg as metafor's ai, bi, ci, di (tpos, tneg, cpos, cneg)
##    with ai of study 3, ci of study 7 and di of study 11 set to NA;
##    escalc("RR") and escalc("OR") (defaults), rma() for DL and REML.
##  * normand_means: dat.normand1999 (m1i, sd1i, n1i, m2i, sd2i, n2i) with
##    m1i of study 2, sd2i of study 5 and n1i of study 8 set to NA;
##    escalc("MD") and escalc("SMD"), rma() for DL and REML.
##  Fits: control = list(threshold = 1e-12, maxiter = 100000, stepadj = 0.5), so
##  that REML is at its limit. For each fit: k, the omitted studies (1-based positions in the data:
##  the CSV row is position + 1), beta, se, ci_lb, ci_ub, tau2, QE.
##  Numbers: the shortest of 15/16/17 significant digits that round-trips.
## ---------------------------------------------------------------------------

suppressPackageStartupMessages(library(metafor))

OUT  <- file.path("tests", "reference", "metafor_missing.json")
CTRL <- list(threshold = 1e-12, maxiter = 100000, stepadj = 0.5)
source(file.path("tests", "reference", "json_writer.R"))

options(na.action = "na.omit")

omit_fit <- function(yi, vi, method, mods = NULL) {
  f <- suppressWarnings(
    if (is.null(mods)) rma(yi, vi, method = method, control = CTRL)
    else rma(yi, vi, mods = mods, method = method, control = CTRL)
  )
  f
}

fit_record <- function(f, method) {
  list(method = method, k = f$k, omitted = arr(which(!f$not.na)),
       beta = arr(as.vector(f$beta)), se = arr(f$se),
       ci_lb = arr(f$ci.lb), ci_ub = arr(f$ci.ub),
       tau2 = f$tau2, QE = f$QE)
}

columns <- function(df) {
  out <- lapply(names(df), function(n) arr(df[[n]]))
  names(out) <- names(df)
  out
}

cases <- list()

## --- metafor's own NA test data --------------------------------------------
dat <- data.frame(yi = c(NA, 1, 3, 2, 5, 4, 6), vi = c(1, NA, 1, 1, 1, 1, 1),
                  xi = c(0, 1, NA, 3, 4, 5, 6))
dl <- omit_fit(dat$yi, dat$vi, "DL")
reml <- omit_fit(dat$yi, dat$vi, "REML")
stopifnot(dl$k == 5, abs(as.vector(dl$beta) - 4) < 1e-12)
l1o <- leave1out(dl)
stopifnot(isTRUE(all.equal(as.vector(l1o$estimate), c(4.25, 4.5, 3.75, 4, 3.5))))
bl <- blup(dl)
stopifnot(isTRUE(all.equal(as.vector(bl$pred), c(3.4, 2.8, 4.6, 4.0, 5.2))))
mr <- omit_fit(dat$yi, dat$vi, "DL", mods = ~ dat$xi)
stopifnot(mr$k == 4)
cases[[length(cases) + 1]] <- list(
  name = "nas_yi_vi", measure = "given", columns = columns(dat),
  fits = list(fit_record(dl, "DL"), fit_record(reml, "REML")),
  leave1out_DL = list(estimate = arr(l1o$estimate), se = arr(l1o$se)),
  blup_DL = list(pred = arr(bl$pred), se = arr(bl$se)),
  metareg_xi_DL = fit_record(mr, "DL")
)

## --- dat.bcg, 2x2 counts with NA cells ----------------------------------------
bcg <- data.frame(study = paste(dat.bcg$author, dat.bcg$year),
                  ai = dat.bcg$tpos, bi = dat.bcg$tneg,
                  ci = dat.bcg$cpos, di = dat.bcg$cneg)
bcg$ai[3] <- NA; bcg$ci[7] <- NA; bcg$di[11] <- NA
for (m in c("RR", "OR")) {
  es <- escalc(m, ai = ai, bi = bi, ci = ci, di = di, data = bcg)
  stopifnot(sum(is.na(es$yi) | is.na(es$vi)) == 3)
  cases[[length(cases) + 1]] <- list(
    name = "bcg_counts", measure = m, columns = columns(bcg),
    fits = list(fit_record(omit_fit(es$yi, es$vi, "DL"), "DL"),
                fit_record(omit_fit(es$yi, es$vi, "REML"), "REML"))
  )
}

## --- dat.normand1999, means with NA cells --------------------------------------
nd <- dat.normand1999[, c("source", "n1i", "m1i", "sd1i", "n2i", "m2i", "sd2i")]
names(nd)[1] <- "study"
nd$study <- paste(nd$study, seq_len(nrow(nd)))
nd$m1i[2] <- NA; nd$sd2i[5] <- NA; nd$n1i[8] <- NA
for (m in c("MD", "SMD")) {
  es <- escalc(m, m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i,
               n2i = n2i, data = nd)
  stopifnot(sum(is.na(es$yi) | is.na(es$vi)) == 3)
  cases[[length(cases) + 1]] <- list(
    name = "normand_means", measure = m, columns = columns(nd),
    fits = list(fit_record(omit_fit(es$yi, es$vi, "DL"), "DL"),
                fit_record(omit_fit(es$yi, es$vi, "REML"), "REML"))
  )
}

write_json_file(list(
  metafor_version = as.character(packageVersion("metafor")),
  R_version = R.version.string,
  na_action = getOption("na.action"),
  cases = cases
), OUT)
cat("wrote", OUT, "\n")
