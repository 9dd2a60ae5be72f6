#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## metafor reference values for unweighted estimation (issue 17): rma(yi, vi, weighted = FALSE)
## with and without moderators (DL, REML, FE; test = "z" and "t"), its weights(), and the
## matrices of such a fit (hatvalues / weights / vcov with type = "matrix" | "resid" ...).
##
## Run from the repository root:
##     Rscript tests/reference/make_reference_unweighted.R
## Writes tests/reference/metafor_unweighted.json (schema: tests/reference/README.md,
## "metafor_unweighted.json").
## ---------------------------------------------------------------------------

suppressPackageStartupMessages(library(metafor))

OUT  <- file.path("tests", "reference", "metafor_unweighted.json")
CTRL <- list(threshold = 1e-13, maxiter = 10000, stepadj = 0.5)

source(file.path("tests", "reference", "json_writer.R"))
source(file.path("tests", "reference", "shared_fits.R"))

DATA <- reference_counts()
ivig <- DATA$ivig
bcg <- DATA$bcg

CASES <- list(
  list(dataset = "bcg", mods = "~1", method = "DL", test = "z"),
  list(dataset = "bcg", mods = "~1", method = "REML", test = "z"),
  list(dataset = "bcg", mods = "~1", method = "DL", test = "t"),
  list(dataset = "bcg", mods = "~1", method = "FE", test = "z"),
  list(dataset = "ivig", mods = "~1", method = "DL", test = "z"),
  list(dataset = "bcg", mods = "~ablat", method = "REML", test = "z"),
  list(dataset = "bcg", mods = "~ablat", method = "DL", test = "t"),
  list(dataset = "bcg", mods = "~ablat", method = "FE", test = "z"),
  list(dataset = "ivig", mods = "~nk_criterion", method = "DL", test = "z")
)

records <- lapply(CASES, function(cs) {
  es <- escalc("RR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = DATA[[cs$dataset]],
               slab = slab)
  if (cs$dataset == "ivig") es$nk_criterion <- relevel(factor(es$nk_criterion), ref = "yes")
  fit <- rma(yi, vi, mods = as.formula(cs$mods), data = es, method = cs$method,
             test = cs$test, weighted = FALSE, control = CTRL)
  out <- c(cs, list(k = fit$k, coef_names = arr(rownames(fit$beta)), beta = arr(fit$beta),
                    se = arr(fit$se), zval = arr(fit$zval), pval = arr(fit$pval),
                    ci_lb = arr(fit$ci.lb), ci_ub = arr(fit$ci.ub), tau2 = fit$tau2,
                    I2 = fit$I2, H2 = fit$H2, QE = fit$QE,
                    fit_stats = fitstats_of(fit),
                    weights_percent = arr(unname(weights(fit))),
                    weights = rows_of(weights(fit, type = "matrix")),
                    hat = rows_of(hatvalues(fit, type = "matrix")),
                    vcov = rows_of(vcov(fit)),
                    fitted = rows_of(vcov(fit, type = "fitted")),
                    resid = rows_of(vcov(fit, type = "resid"))))
  if (cs$mods == "~1") {
    pr <- predict(fit)
    out$pi_lb <- pr$pi.lb
    out$pi_ub <- pr$pi.ub
  } else {
    out$QM <- fit$QM
    out$QMp <- fit$QMp
  }
  out
})

out <- list(
  metafor_version = as.character(packageVersion("metafor")),
  r_version = R.version.string,
  settings = list(control = CTRL),
  datasets = list(
    bcg = lapply(seq_len(nrow(bcg)), function(i) as.list(bcg[i, ])),
    ivig = lapply(seq_len(nrow(ivig)), function(i) as.list(ivig[i, ]))),
  fits = records)
write_json_file(out, OUT)
cat("wrote", OUT, "\n")
