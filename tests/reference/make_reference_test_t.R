#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## metafor reference values for `--ci t` (metafor's test = "t": the Wald standard errors,
## tests and intervals on t with k - p df, the omnibus test as F): rma() with and without
## moderators, and rma.glmm().
##
## Run from the repository root:
##     Rscript tests/reference/make_reference_test_t.R
## Writes tests/reference/metafor_test_t.json (schema: tests/reference/README.md,
## "metafor_test_t.json"). Conventions as make_reference.R (log RR / log OR, escalc
## defaults, level 95, tight control).
## ---------------------------------------------------------------------------

suppressPackageStartupMessages(library(metafor))

OUT  <- file.path("tests", "reference", "metafor_test_t.json")
CTRL <- list(threshold = 1e-13, maxiter = 100000, tol = 1e-13, stepadj = 0.5)

source(file.path("tests", "reference", "json_writer.R"))

bcg <- with(dat.bcg, data.frame(ai = tpos, n1i = tpos + tneg, ci = cpos, n2i = cpos + cneg,
                                ablat = ablat, alloc = alloc, stringsAsFactors = FALSE))
pred_of <- function(fit) {
  p <- predict(fit)
  list(pred = p$pred, se = p$se, ci_lb = p$ci.lb, ci_ub = p$ci.ub, pi_lb = p$pi.lb,
       pi_ub = p$pi.ub)
}

uni <- list()
for (mods in c("~1", "~ablat + factor(alloc)")) for (method in c("DL", "REML")) {
  es <- escalc("RR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = bcg)
  fit <- rma(yi, vi, mods = as.formula(mods), data = es, method = method, test = "t",
             control = CTRL)
  rec <- list(dataset = "bcg", measure = "RR", mods = mods, method = method, k = fit$k,
              tau2 = fit$tau2, beta = arr(fit$beta), se = arr(fit$se), zval = arr(fit$zval),
              pval = arr(fit$pval), ci_lb = arr(fit$ci.lb), ci_ub = arr(fit$ci.ub),
              QM = fit$QM, QMdf = arr(fit$QMdf), QMp = fit$QMp)
  if (mods == "~1") rec$predict <- pred_of(fit)
  uni[[length(uni) + 1]] <- rec
}

glmm <- list()
for (model in c("UM.FS", "UM.RS", "CM.AL")) {
  fit <- rma.glmm(measure = "OR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg,
                  model = model, test = "t")
  fe <- rma.glmm(measure = "OR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg,
                 model = model, method = "EE", test = "t")
  glmm[[length(glmm) + 1]] <- list(
    dataset = "bcg", measure = "OR", model = model, k = fit$k, tau2 = fit$tau2,
    beta = fit$beta[1], se = fit$se, zval = fit$zval, pval = fit$pval, ci_lb = fit$ci.lb,
    ci_ub = fit$ci.ub, predict = pred_of(fit),
    fe = list(beta = fe$beta[1], se = fe$se, zval = fe$zval, pval = fe$pval,
              ci_lb = fe$ci.lb, ci_ub = fe$ci.ub))
}

write_json_file(list(
  generated_by = "tests/reference/make_reference_test_t.R",
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  generated_on = format(Sys.Date()),
  settings = list(level = 95, add = 0.5, to = "only0", control = CTRL, test = "t"),
  rma = uni, glmm = glmm), OUT)
cat("wrote", OUT, "\n")
