#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## metafor reference values for `--weights COLUMN` (metafor's rma(..., weights = w)): user
## weights for the fixed effects, with and without moderators.
##
## Run from the repository root:
##     Rscript tests/reference/make_reference_weights.R
## Writes tests/reference/metafor_weights.json (schema: tests/reference/README.md,
## "metafor_weights.json"). dat.bcg, log RR (escalc defaults), weights = tpos + cpos (the
## events of both arms: any positive weights would do), level 95, tight control.
## ---------------------------------------------------------------------------

suppressPackageStartupMessages(library(metafor))

OUT  <- file.path("tests", "reference", "metafor_weights.json")
CTRL <- list(threshold = 1e-13, maxiter = 100000, tol = 1e-13, stepadj = 0.5)

source(file.path("tests", "reference", "json_writer.R"))

es <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
es$w <- es$tpos + es$cpos
es$alloc <- factor(es$alloc, levels = c("alternate", "random", "systematic"))

records <- list()
for (mods in c("~1", "~ablat", "~ablat + alloc")) for (method in c("FE", "DL", "REML"))
  for (test in c("z", "t")) {
    fit <- rma(yi, vi, mods = as.formula(mods), weights = w, data = es, method = method,
               test = test, control = CTRL)
    rec <- list(dataset = "bcg", measure = "RR", mods = mods, method = method, test = test,
                k = fit$k, tau2 = fit$tau2, beta = arr(fit$beta), se = arr(fit$se),
                zval = arr(fit$zval), pval = arr(fit$pval), ci_lb = arr(fit$ci.lb),
                ci_ub = arr(fit$ci.ub), QE = fit$QE, weights = arr(weights(fit)),
                ml = as.list(setNames(fit$fit.stats[, "ML"], c("loglik", "deviance", "aic",
                                                               "bic", "aicc"))),
                reml = as.list(setNames(fit$fit.stats[, "REML"], c("loglik", "deviance",
                                                                   "aic", "bic", "aicc"))))
    if (mods == "~1") {
      p <- predict(fit)
      rec$pi_lb <- p$pi.lb
      rec$pi_ub <- p$pi.ub
    } else {
      rec$QM <- fit$QM
      rec$QMdf <- arr(fit$QMdf)
      rec$QMp <- fit$QMp
    }
    records[[length(records) + 1]] <- rec
  }

write_json_file(list(
  generated_by = "tests/reference/make_reference_weights.R",
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  generated_on = format(Sys.Date()),
  settings = list(level = 95, add = 0.5, to = "only0", control = CTRL, weights = "tpos + cpos"),
  models = records), OUT)
cat("wrote", OUT, "\n")
