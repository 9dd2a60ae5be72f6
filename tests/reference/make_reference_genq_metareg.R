#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## metafor reference values for the generalized Q estimator in meta-regression (issue 17):
## rma(yi, vi, mods = ~ ablat, method = "GENQ", weights = a) on dat.bcg log RR, with a = 1..13
## and a = 1 / sqrt(vi), test z and t (ivigmeta takes user weights with --ci z or t). metafor's weights= weight the coefficients too; the
## ivigmeta equivalent is metareg --tau2 GENQ --tau2-weights COL --weights COL.
##
## Run from the repository root:
##     Rscript tests/reference/make_reference_genq_metareg.R
## Writes tests/reference/metafor_genq_metareg.json (schema: tests/reference/README.md,
## "metafor_genq_metareg.json").
## ---------------------------------------------------------------------------

suppressPackageStartupMessages(library(metafor))
OUT <- file.path("tests", "reference", "metafor_genq_metareg.json")
source(file.path("tests", "reference", "json_writer.R"))

bcg <- with(dat.bcg, data.frame(slab = author, year = year, ai = tpos, n1i = tpos + tneg,
                                ci = cpos, n2i = cpos + cneg, ablat = ablat))
es <- escalc("RR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = bcg, slab = slab)
bcg$w_index <- seq_len(nrow(bcg))
bcg$w_invse <- 1 / sqrt(as.numeric(es$vi))
records <- list()
for (wcol in c("w_index", "w_invse")) for (test in c("z", "t")) for (mods in c("~ablat", "~1")) {
  fit <- rma(yi, vi, mods = as.formula(mods), data = es, method = "GENQ", weights = bcg[[wcol]],
             test = test)
  records[[length(records) + 1]] <- list(
    weights = wcol, test = test, mods = mods, tau2 = fit$tau2, se_tau2 = fit$se.tau2,
    beta = arr(as.numeric(fit$beta)), se = arr(fit$se), zval = arr(fit$zval),
    pval = arr(fit$pval), ci_lb = arr(fit$ci.lb), ci_ub = arr(fit$ci.ub),
    QM = fit$QM, QMp = fit$QMp, QE = fit$QE, I2 = fit$I2, H2 = fit$H2,
    R2 = if (is.null(fit$R2)) NULL else fit$R2)
}
out <- list(
  metafor_version = as.character(packageVersion("metafor")),
  r_version = R.version.string,
  data = lapply(seq_len(nrow(bcg)), function(i) as.list(bcg[i, ])),
  fits = records)
write_json_file(out, OUT)
cat("wrote", OUT, "\n")
