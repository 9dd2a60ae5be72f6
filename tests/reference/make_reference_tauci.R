#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## metafor reference values for the confidence intervals of tau², I² and H²
## other than the Q-profile (issue 17, item 3): metafor 3.8-1's confint() on
## rma.uni fits, types "QP", "PL", "Wald", "Wald.log" and "Wald.sqrt".
##
## Run from the repository root:
##     Rscript tests/reference/make_reference_tauci.R
## Writes tests/reference/metafor_tauci.json.
##
## Conventions
##  * metafor 3.8-1's confint.rma.uni offers type = "QP", "GENQ", "PL", "Wald",
##    "Wald.log" and "Wald.sqrt" (checked below). There is no Biggerstaff-Tweedie
##    ("BT") and no Sidik-Jonkman ("SJ") type. "GENQ" needs the CompQuadForm
##    package (not installable from Debian here) and a fit with method = "GENQ":
##    it is not recorded.
##  * Data: dat.bcg (RR), dat.normand1999 (MD), dat.hackshaw1998 (log OR as
##    given) and the repository's studies.csv (the IVIG
##    data, RR), escalc() defaults; yi, vi recorded in row order and used as given.
##  * Fits: rma(yi, vi, method = M, control = CTRL) for M in DL, REML, ML, with a
##    tight CTRL (threshold 1e-13) so that ML/REML are at their limits; where an
##    absolute 1e-13 is beyond double precision (normand1999, tau² ~ 400) the
##    threshold is 1e-12 times the DL tau² (recorded).
##  * confint(fit, type = T, level = L, control = CICTRL) for L in 95, 90;
##    CICTRL sets uniroot's tol to 1e-12 (metafor's default is eps^0.25).
##    "PL" only for ML and REML fits (metafor 3.8-1 does not refuse it for
##    other estimators: it then profiles the REML likelihood against a tau²
##    that is not its maximum; ivigmeta refuses).
##  * The Wald types are checked here against the explicit formulas, z = qnorm(1 - alpha/2):
##    Wald: max(0, tau2 - z se.tau2), tau2 + z se.tau2;
##    Wald.log: tau2 exp(-z se.tau2 / tau2), max(tau2, tau2 exp(z se.tau2 / tau2));
##    Wald.sqrt: max(0, sqrt(tau2) - z se.tau2 / (2 sqrt(tau2)))², (sqrt(tau2) + z se.tau2 / (2 sqrt(tau2)))².
##    (Every fit here has tau2 > 0; at tau2 = 0 metafor's Wald.log/Wald.sqrt give NaN/Inf.)
##  * Numbers: the shortest of 15/16/17 significant digits that round-trips.
## ---------------------------------------------------------------------------

suppressPackageStartupMessages(library(metafor))

OUT    <- file.path("tests", "reference", "metafor_tauci.json")
CTRL   <- list(threshold = 1e-13, maxiter = 100000, tol = 1e-13)
CICTRL <- list(tol = 1e-12, maxiter = 1000)
LEVELS <- c(95, 90)

source(file.path("tests", "reference", "json_writer.R"))

## The types metafor 3.8-1 offers (the body of confint.rma.uni names them).
src <- paste(deparse(metafor:::confint.rma.uni), collapse = "\n")
TYPES <- c("QP", "GENQ", "PL", "Wald", "Wald.log", "Wald.sqrt")
stopifnot(grepl(paste0('c("', paste(TYPES, collapse = '", "'), '")'),
                gsub("\\s+", " ", src), fixed = TRUE))
stopifnot(!grepl('"BT"', src, fixed = TRUE), !grepl('"SJ"', src, fixed = TRUE))

interval <- function(f, type, level) {
  ci <- confint(f, type = type, level = level, control = CICTRL)
  r <- ci$random
  list(type = type, level = level,
       tau2 = arr(r["tau^2", ]), tau = arr(r["tau", ]),
       I2 = arr(r["I^2(%)", ]), H2 = arr(r["H^2", ]),
       lb_sign = ci$lb.sign, ub_sign = ci$ub.sign, ci_null = ci$ci.null)
}

wald_explicit <- function(f, level, type) {
  z <- qnorm(1 - (1 - level / 100) / 2)
  t <- f$tau2; se <- f$se.tau2
  switch(type,
         Wald = c(max(0, t - z * se), t + z * se),
         Wald.log = c(t * exp(-z * se / t), max(t, t * exp(z * se / t))),
         Wald.sqrt = c(max(0, sqrt(t) - z * se / (2 * sqrt(t)))^2,
                       (sqrt(t) + z * se / (2 * sqrt(t)))^2))
}

dataset <- function(name, measure, es) {
  keep <- is.finite(es$yi) & is.finite(es$vi)
  yi <- as.numeric(es$yi[keep]); vi <- as.numeric(es$vi[keep])
  fits <- list()
  for (m in c("DL", "REML", "ML")) {
    f <- try(rma(yi, vi, method = m, control = CTRL), silent = TRUE)
    threshold <- CTRL$threshold
    if (inherits(f, "try-error")) {
      ## An absolute threshold of 1e-13 is below double precision for a tau² of hundreds
      ## (normand1999): retry with 1e-12 relative to the DL value.
      threshold <- 1e-12 * max(1, rma(yi, vi, method = "DL")$tau2)
      f <- rma(yi, vi, method = m, control = modifyList(CTRL, list(threshold = threshold)))
    }
    cis <- list()
    for (level in LEVELS) {
      wald <- c("Wald", "Wald.log", "Wald.sqrt")
      types <- if (m %in% c("ML", "REML")) c("QP", "PL", wald) else c("QP", wald)
      for (type in types) {
        rec <- interval(f, type, level)
        if (type %in% wald)
          stopifnot(isTRUE(all.equal(rec$tau2[2:3], wald_explicit(f, level, type),
                                     tolerance = 1e-14)))
        cis[[length(cis) + 1L]] <- rec
      }
    }
    fits[[length(fits) + 1L]] <- list(method = m, threshold = threshold, tau2 = f$tau2, se_tau2 = f$se.tau2,
                                      vt = f$vt, I2 = f$I2, H2 = f$H2, intervals = cis)
  }
  list(name = name, measure = measure, k = length(yi), yi = arr(yi), vi = arr(vi), fits = fits)
}

sets <- list()
d <- dat.bcg
sets[[1]] <- dataset("bcg", "RR", escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = d))
d <- dat.normand1999
sets[[2]] <- dataset("normand1999", "MD", escalc("MD", m1i = m1i, sd1i = sd1i, n1i = n1i,
                                                 m2i = m2i, sd2i = sd2i, n2i = n2i, data = d))
sets[[3]] <- dataset("hackshaw1998", "OR", dat.hackshaw1998)  # yi, vi given
d <- read.csv("studies.csv")
sets[[4]] <- dataset("ivig", "RR", escalc("RR", ai = treat_events, n1i = treat_total,
                                          ci = control_events, n2i = control_total, data = d))

write_json_file(list(
  generated_by = "tests/reference/make_reference_tauci.R",
  R_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  date = format(Sys.Date()),
  confint_types = arr(TYPES),
  control = CTRL,
  confint_control = CICTRL,
  datasets = sets), OUT)
cat("wrote", OUT, "\n")
