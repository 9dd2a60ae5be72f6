#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## metafor reference values for `metareg --scale` (location-scale models,
## rma(yi, vi, mods = ..., scale = ~ ..., link = ...)) on dat.bangertdrowns2004: the cases of
## metafor's own tests/testthat/test_misc_rma_ls.r that ivigmeta can express.
##
## Run from the repository root:
##     Rscript tests/reference/make_reference_location_scale.R
## Writes tests/reference/metafor_location_scale.json (schema: tests/reference/README.md,
## "metafor_location_scale.json").
##
## Tight optimizer controls put metafor at the optimum: for the log link nlm with gradtol =
## 1e-12, steptol = 1e-14 (nlminb, metafor's default, stops with "false convergence" when its
## rel.tol is tightened); for the identity link nloptr's COBYLA (one of the constrained
## optimizers metafor allows there) with xtol_rel = ftol_rel = 1e-15. The (RE)ML surface is
## flat at the optimum: metafor's optimizers (nlm, BFGS, bobyqa, Nelder-Mead, nloptr) all
## reach the same log-likelihood to 1e-13 but scatter in alpha by up to ~5e-7 (their gradients
## are numerical), which bounds how closely alpha can be compared. The standard
## errors come from metafor's numerical Hessian (numDeriv, Richardson r = 8). confint(alpha = j)
## is run with tol = 1e-10 (metafor's default eps^0.25 stops uniroot near 1e-4), for alpha 2
## within [-1, 1] as metafor's test (xlim = c(-1, 1)).
## ---------------------------------------------------------------------------

suppressPackageStartupMessages(library(metafor))

OUT <- file.path("tests", "reference", "metafor_location_scale.json")
source(file.path("tests", "reference", "json_writer.R"))

dat <- dat.bangertdrowns2004
dat$sqrt_ni <- sqrt(dat$ni)

LOG_CTRL <- list(optimizer = "nlm", gradtol = 1e-12, steptol = 1e-14, iterlim = 10000)
ID_CTRL <- list(optimizer = "nloptr", xtol_rel = 1e-15, ftol_rel = 1e-15, maxeval = 1000000)

fit_ls <- function(mods, scale, link = "log", method = "REML") {
  ctrl <- if (link == "log") LOG_CTRL else ID_CTRL
  suppressWarnings(rma(yi, vi, mods = mods, scale = scale, link = link, method = method,
                       data = dat, control = ctrl))
}

mat <- function(m) lapply(seq_len(nrow(m)), function(i) arr(m[i, ]))

record <- function(name, mods_cols, scale_cols, r, mods, scale) {
  fs <- r$fit.stats
  list(
    name = name, mods = arr(mods_cols), scale = arr(scale_cols), link = r$link,
    method = r$method, formula_mods = paste(deparse(mods), collapse = ""),
    formula_scale = paste(deparse(scale), collapse = ""), k = r$k,
    rows_used = arr(which(r$not.na)),
    beta = arr(r$beta), se = arr(r$se), zval = arr(r$zval), pval = arr(r$pval),
    ci_lb = arr(r$ci.lb), ci_ub = arr(r$ci.ub), vb = mat(r$vb),
    QM = if (r$p > 1) r$QM else NA, QMp = if (r$p > 1) r$QMp else NA,
    alpha = arr(r$alpha), se_alpha = arr(r$se.alpha), zval_alpha = arr(r$zval.alpha),
    pval_alpha = arr(r$pval.alpha), ci_lb_alpha = arr(r$ci.lb.alpha),
    ci_ub_alpha = arr(r$ci.ub.alpha), va = mat(r$va),
    QS = if (r$q > 1) r$QS else NA, QSp = if (r$q > 1) r$QSp else NA, QSdf = r$QSdf[1],
    tau2 = arr(r$tau2), QE = r$QE, QEp = r$QEp,
    fit_stats = list(ML = arr(fs[, "ML"]), REML = arr(fs[, "REML"])),
    parms = r$parms, converged = TRUE)
}

cases <- list(
  list(name = "scale_1", mods = NULL, scale = ~ 1, mc = character(0), sc = character(0)),
  list(name = "scale_meta", mods = NULL, scale = ~ meta, mc = character(0), sc = "meta"),
  list(name = "scale_grade_log", mods = NULL, scale = ~ grade, mc = character(0), sc = "grade"),
  list(name = "scale_grade_identity", mods = NULL, scale = ~ grade, link = "identity",
       mc = character(0), sc = "grade"),
  list(name = "scale_grade_ml", mods = NULL, scale = ~ grade, method = "ML",
       mc = character(0), sc = "grade"),
  list(name = "scale_multi", mods = NULL, scale = ~ grade + meta + sqrt_ni,
       mc = character(0), sc = c("grade", "meta", "sqrt_ni")),
  list(name = "mods_meta_scale_meta", mods = ~ meta, scale = ~ meta, mc = "meta", sc = "meta"),
  list(name = "mods_meta_scale_meta_identity", mods = ~ meta, scale = ~ meta,
       link = "identity", mc = "meta", sc = "meta"),
  list(name = "anova_full", mods = ~ factor(grade) + meta + sqrt_ni,
       scale = ~ factor(grade) + meta + sqrt_ni, mc = c("grade", "meta", "sqrt_ni"),
       sc = c("grade", "meta", "sqrt_ni")),
  list(name = "anova_scale_1", mods = ~ factor(grade) + meta + sqrt_ni, scale = ~ 1,
       mc = c("grade", "meta", "sqrt_ni"), sc = character(0)))

fits <- list()
records <- list()
for (cs in cases) {
  link <- if (is.null(cs$link)) "log" else cs$link
  method <- if (is.null(cs$method)) "REML" else cs$method
  mods <- if (is.null(cs$mods)) ~ 1 else cs$mods
  r <- fit_ls(mods, cs$scale, link, method)
  fits[[cs$name]] <- r
  rec <- record(cs$name, cs$mc, cs$sc, r, mods, cs$scale)
  rec$grade_categorical <- cs$name %in% c("anova_full", "anova_scale_1")
  records[[length(records) + 1]] <- rec
}

## scale ~ 1 is the plain REML fit (metafor's test: res1$tau2 == exp(res3$alpha))
plain <- rma(yi, vi, data = dat, method = "REML", control = list(threshold = 1e-13,
             maxiter = 100000))

## predictions of mods ~ meta, scale ~ meta (test_misc_rma_ls.r, "predict() works ...")
r <- fits$mods_meta_scale_meta
p_scale <- predict(r, newscale = 0:1)
p_tau2 <- predict(r, newscale = 0:1, transf = exp)
p_loc <- predict(r, newmods = 0:1)
p_both <- predict(r, newmods = 0:1, newscale = 0:1)
ri <- fits$mods_meta_scale_meta_identity
p_id <- predict(ri, newscale = 0:1)
sub0 <- rma(yi, vi, data = dat, subset = meta == 0, control = list(threshold = 1e-13,
            maxiter = 100000))
sub1 <- rma(yi, vi, data = dat, subset = meta == 1, control = list(threshold = 1e-13,
            maxiter = 100000))
predictions <- list(
  newscale = arr(0:1),
  scale = list(pred = arr(p_scale$pred), se = arr(p_scale$se), ci_lb = arr(p_scale$ci.lb),
               ci_ub = arr(p_scale$ci.ub)),
  tau2 = list(pred = arr(p_tau2$pred), ci_lb = arr(p_tau2$ci.lb), ci_ub = arr(p_tau2$ci.ub)),
  location = list(pred = arr(p_loc$pred), se = arr(p_loc$se), ci_lb = arr(p_loc$ci.lb),
                  ci_ub = arr(p_loc$ci.ub)),
  location_with_scale = list(pred = arr(p_both$pred), se = arr(p_both$se),
                             ci_lb = arr(p_both$ci.lb), ci_ub = arr(p_both$ci.ub),
                             pi_lb = arr(p_both$pi.lb), pi_ub = arr(p_both$pi.ub)),
  identity_scale = list(pred = arr(p_id$pred), se = arr(p_id$se), ci_lb = arr(p_id$ci.lb),
                        ci_ub = arr(p_id$ci.ub)),
  subgroup_tau2 = arr(c(sub0$tau2, sub1$tau2)))

## anova() on mods = scale = ~ factor(grade) + meta + sqrt(ni)
full <- fits$anova_full
red <- fits$anova_scale_1
a_lrt <- anova(full, red)
a_btt <- anova(full, btt = 2:4)
a_att <- anova(full, att = 2:4)
a_att_meta <- anova(full, att = 5)
anova_out <- list(
  lrt = list(LRT = a_lrt$LRT, pval = a_lrt$pval, parms_f = a_lrt$parms.f,
             parms_r = a_lrt$parms.r, fit_stats_f = arr(a_lrt$fit.stats.f),
             fit_stats_r = arr(a_lrt$fit.stats.r)),
  btt = list(btt = arr(2:4), QM = a_btt$QM, QMp = a_btt$QMp, df = a_btt$QMdf[1]),
  att = list(att = arr(2:4), QS = a_att$QS, QSp = a_att$QSp, df = a_att$QSdf[1]),
  att_meta = list(att = arr(5), QS = a_att_meta$QS, QSp = a_att_meta$QSp,
                  df = a_att_meta$QSdf[1]))

## vif() of the scale coefficients (location intercept-only)
v <- vif(fits$scale_multi)
vif_out <- list(names = arr(names(v$vifs)), vifs = arr(v$vifs))

## profile-likelihood CIs of alpha (confint(res, alpha = j)), scale ~ grade, log link. The
## profile refits use the fit's optimizer; with the tight nlm controls above they fail
## ("convergence problems"), so the intervals come from the fit with metafor's default controls
## (nlminb), as in metafor's test, with uniroot's tol = 1e-10.
rg <- suppressWarnings(rma(yi, vi, data = dat, scale = ~ grade))
c1 <- confint(rg, alpha = 1, control = list(tol = 1e-10))
c2 <- confint(rg, alpha = 2, control = list(tol = 1e-10, vc.min = -1, vc.max = 1))
confint_out <- list(case = "scale_grade_log",
                    alpha = list(arr(c1$random), arr(c2$random)))

## A boundary optimum: the g = 0 studies are homogeneous (their REML tau² is 0). Under the
## identity link the constraint tau² >= 0 holds at the optimum (metafor cannot invert its
## Hessian: se.alpha NA); under the log link log tau² heads to -infinity (metafor stops at some
## very negative alpha with an arbitrary SE; the log-likelihood approaches its supremum).
set.seed(20261206)
kb <- 30
gb <- rep(0:1, each = 15)
vb <- round(runif(kb, 0.01, 0.05), 4)
yb <- round(ifelse(gb == 0, 0.2 + rnorm(kb, 0, 0.01), 0.2 + rnorm(kb, 0, sqrt(vb + 0.2))), 4)
db <- data.frame(yi = yb, vi = vb, g = gb)
b_id <- suppressWarnings(rma(yi, vi, scale = ~ g, link = "identity", data = db,
                             control = ID_CTRL))
b_log <- suppressWarnings(rma(yi, vi, scale = ~ g, data = db, control = LOG_CTRL))
b_g1 <- rma(yi, vi, data = db, subset = g == 1, control = list(threshold = 1e-13,
            maxiter = 100000))
b_g0 <- rma(yi, vi, data = db, subset = g == 0, control = list(threshold = 1e-13,
            maxiter = 100000))
boundary <- list(
  data = list(yi = arr(yb), vi = arr(vb), g = arr(gb)),
  identity = list(alpha = arr(b_id$alpha), se_alpha = arr(b_id$se.alpha),
                  ll = c(logLik(b_id)), tau2 = arr(b_id$tau2)),
  log = list(alpha = arr(b_log$alpha), se_alpha = arr(b_log$se.alpha), ll = c(logLik(b_log)),
             tau2 = arr(b_log$tau2)),
  subgroup_tau2 = arr(c(b_g0$tau2, b_g1$tau2)))

write_json_file(list(
  generated_by = "tests/reference/make_reference_location_scale.R",
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  generated_on = format(Sys.Date()),
  settings = list(log_control = LOG_CTRL, identity_control = ID_CTRL, level = 0.95,
                  test = "z"),
  data = list(yi = arr(dat$yi), vi = arr(dat$vi), grade = arr(dat$grade),
              meta = arr(dat$meta), ni = arr(dat$ni), sqrt_ni = arr(dat$sqrt_ni)),
  plain_reml_tau2 = plain$tau2,
  fits = records, predictions = predictions, anova = anova_out, vif = vif_out,
  confint = confint_out, boundary = boundary), OUT)
cat("wrote", OUT, "\n")
