#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## metafor reference values for a fixed tau² (issue 17): rma(yi, vi, tau2 = T) with metafor's
## default method (REML, which then only names the log-likelihood and se.tau2), with and
## without moderators, test = "z" and "knha", and leave1out() of such a fit.
##
## Run from the repository root:
##     Rscript tests/reference/make_reference_fixed_tau2.R
## Writes tests/reference/metafor_fixed_tau2.json (schema: tests/reference/README.md,
## "metafor_fixed_tau2.json").
##
## Conventions as make_reference.R: analysis scale (log RR), escalc defaults (add = 1/2,
## to = "only0"), level 95, metafor's dotted names with "_".
## ---------------------------------------------------------------------------

suppressPackageStartupMessages(library(metafor))

OUT  <- file.path("tests", "reference", "metafor_fixed_tau2.json")
CTRL <- list(threshold = 1e-13, maxiter = 10000, stepadj = 0.5)

source(file.path("tests", "reference", "json_writer.R"))
source(file.path("tests", "reference", "shared_fits.R"))

DATA <- reference_counts()
ivig <- DATA$ivig
bcg <- DATA$bcg

CASES <- list(
  list(dataset = "bcg", mods = "~1", tau2 = 0, test = "z"),
  list(dataset = "bcg", mods = "~1", tau2 = 0.05, test = "z"),
  list(dataset = "bcg", mods = "~1", tau2 = 0.1, test = "z"),
  list(dataset = "bcg", mods = "~1", tau2 = 1, test = "z"),
  list(dataset = "bcg", mods = "~1", tau2 = 0.1, test = "knha"),
  list(dataset = "ivig", mods = "~1", tau2 = 0.1, test = "z"),
  list(dataset = "ivig", mods = "~1", tau2 = 0.02, test = "knha"),
  list(dataset = "bcg", mods = "~ablat", tau2 = 0.05, test = "z"),
  list(dataset = "bcg", mods = "~ablat", tau2 = 0.05, test = "knha"),
  list(dataset = "ivig", mods = "~nk_criterion", tau2 = 0.05, test = "z")
)

records <- lapply(CASES, function(cs) {
  es <- escalc("RR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = DATA[[cs$dataset]],
               slab = slab)
  if (cs$dataset == "ivig") es$nk_criterion <- relevel(factor(es$nk_criterion), ref = "yes")
  fit <- rma(yi, vi, mods = as.formula(cs$mods), data = es, tau2 = cs$tau2, test = cs$test,
             control = CTRL)
  out <- c(cs, list(method = fit$method, tau2_fix = fit$tau2.fix, k = fit$k,
                    coef_names = arr(rownames(fit$beta)), beta = arr(fit$beta),
                    se = arr(fit$se), zval = arr(fit$zval), pval = arr(fit$pval),
                    ci_lb = arr(fit$ci.lb), ci_ub = arr(fit$ci.ub), tau2_value = fit$tau2,
                    se_tau2 = fit$se.tau2, I2 = fit$I2, H2 = fit$H2, QE = fit$QE,
                    QEp = fit$QEp, fit_stats = fitstats_of(fit)))
  if (cs$mods == "~1") {
    pr <- predict(fit)
    out$pi_lb <- pr$pi.lb
    out$pi_ub <- pr$pi.ub
    l1 <- leave1out(fit)
    out$leave1out <- list(estimate = arr(l1$estimate), se = arr(l1$se), ci_lb = arr(l1$ci.lb),
                          ci_ub = arr(l1$ci.ub), tau2 = arr(l1$tau2), I2 = arr(l1$I2),
                          Q = arr(l1$Q))
  } else {
    out$QM <- fit$QM
    out$QMp <- fit$QMp
    out$R2 <- fit$R2
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
