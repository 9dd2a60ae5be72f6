#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## metafor reference values for GLMM meta-regression: rma.glmm(..., mods = ~ x)
## for OR (UM.FS, UM.RS, CM.EL, CM.AL) on dat.bcg with mods = ~ ablat
## (continuous) and mods = ~ alloc (categorical, reference level "alternate",
## R's factor order), for IRR (UM.FS, UM.RS, CM.EL) on dat.nielweise2008
## with mods = ~ year, and for PLO (the binomial-normal model) on the control
## arms of dat.nielweise2007 with mods = ~ year.
##
## Run from the repository root (a few minutes; CM.EL is slow in R):
##     Rscript tests/reference/make_reference_glmm_mods.R
## Writes tests/reference/metafor_glmm_mods.json.
##
## Needs metafor, lme4 (r-cran-lme4), BiasedUrn (r-cran-biasedurn), numDeriv.
##
## Conventions (as make_reference_glmm.R):
##  * method = "ML", nAGQ = 7 (UM.RS: 1), level = 95, drop00 = TRUE (neither
##    data set has a double-zero study).
##  * "tight": glmerControl(optimizer = "bobyqa", tolPwrss = 1e-10,
##    maxfun = 1e5) for the lme4 fits; CM.EL with integrate() rel.tol 1e-10.
##    "default": metafor's default control. "tight_t": the tight fit with
##    test = "t" (t on k - p df, QM as F on m and k - p df).
##  * "ee": method = "EE" (tau2 = 0), default control.
##  * "predict": predict(fit, newmods = ...) at NEWMODS (below) of each fit:
##    x'b, se, CI and the prediction interval x'b +- crit sqrt(se^2 + tau2).
##  * "params": the parameters at metafor's optimum (lme4 fixef and theta, or
##    CM.EL's nlminb par = c(beta, log(tau2))).
##  * "QE_Wld_exact" (CM.EL, OR): the Wald test of the saturated model
##    computed exactly: each study's conditional MLE of the log OR with its
##    conditional information (BiasedUrn, uniroot tol 1e-13; studies at an end
##    of their support left out), and the weighted residual sum of squares of
##    their weighted least-squares regression on the moderators.
##  * metafor's own tests (tests/testthat, metafor 3.8-1) pin no rma.glmm
##    values with moderators (test_misc_update checks update(res, mods = ~
##    ablat) against the direct call only), so there is nothing to copy here.
##  * Numbers: the shortest of 15/16/17 significant digits that round-trips.
## ---------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(metafor)
  library(lme4)
  library(BiasedUrn)
})

OUT <- file.path("tests", "reference", "metafor_glmm_mods.json")
TIGHT_LME4 <- list(glmerCtrl = list(optimizer = "bobyqa", tolPwrss = 1e-10,
                                    optCtrl = list(maxfun = 1e5)))
TIGHT_CMEL <- list(intCtrl = list(rel.tol = 1e-10))

source(file.path("tests", "reference", "json_writer.R"))

d <- dat.bcg
bcg <- data.frame(slab = paste(d$author, d$year), ai = d$tpos,
                  n1i = d$tpos + d$tneg, ci = d$cpos, n2i = d$cpos + d$cneg,
                  ablat = d$ablat, alloc = as.character(d$alloc))
d <- dat.nielweise2008
niel08 <- data.frame(slab = d$authors, x1i = d$x1i, t1i = d$t1i,
                     x2i = d$x2i, t2i = d$t2i, year = d$year)
d <- dat.nielweise2007
plo_ctrl <- data.frame(slab = paste(d$author, d$year), xi = d$ci, ni = d$n2i,
                       year = d$year)

DATASETS <- list(
  bcg = list(data = bcg, measure = "OR", mods = c("ablat", "alloc"),
    source = "metadat dat.bcg (ai = tpos, n1i = tpos + tneg, ci = cpos, n2i = cpos + cneg; ablat, alloc)"),
  nielweise2008 = list(data = niel08, measure = "IRR", mods = c("year"),
    source = "metadat dat.nielweise2008 (events x1i, x2i over catheter-days t1i, t2i; year)"),
  nielweise2007_control = list(data = plo_ctrl, measure = "PLO", mods = c("year"),
    source = "metadat dat.nielweise2007 control arms (xi = ci, ni = n2i; year)")
)
MODELS <- list(OR = c("UM.FS", "UM.RS", "CM.EL", "CM.AL"),
               IRR = c("UM.FS", "UM.RS", "CM.EL"), PLO = c("UM.FS"))

uses_lme4 <- function(measure, model) !(measure == "OR" && model == "CM.EL")

call_glmm <- function(d, measure, model, mod, method = "ML", control = NULL,
                      test = "z") {
  args <- list(measure = measure, model = model, method = method, retfit = TRUE,
               mods = as.formula(paste("~", mod)), data = d, test = test)
  if (measure == "OR")
    args <- c(args, list(ai = d$ai, n1i = d$n1i, ci = d$ci, n2i = d$n2i))
  if (measure == "IRR")
    args <- c(args, list(x1i = d$x1i, t1i = d$t1i, x2i = d$x2i, t2i = d$t2i))
  if (measure == "PLO")
    args <- c(args, list(xi = d$xi, ni = d$ni))
  if (!is.null(control)) args$control <- control
  warns <- character(0)
  t0 <- proc.time()[3]
  f <- withCallingHandlers(
    tryCatch(do.call(rma.glmm, args), error = function(e) e),
    warning = function(w) {
      warns <<- c(warns, conditionMessage(w))
      invokeRestart("muffleWarning")
    })
  list(fit = f, warnings = unique(warns), seconds = unname(proc.time()[3] - t0))
}

## predict(fit, newmods = ...) at these moderator values (rows of newmods): for
## alloc the three levels alternate, random, systematic
NEWMODS <- list(ablat = cbind(c(10, 40)), alloc = rbind(c(0, 0), c(1, 0), c(0, 1)),
                year = cbind(c(1995, 2005)))

pred_json <- function(f, mod) {
  pr <- predict(f, newmods = NEWMODS[[mod]])
  list(newmods = lapply(seq_len(nrow(NEWMODS[[mod]])), function(i) arr(NEWMODS[[mod]][i, ])),
       pred = arr(pr$pred), se = arr(pr$se), ci_lb = arr(pr$ci.lb), ci_ub = arr(pr$ci.ub),
       pi_lb = arr(pr$pi.lb), pi_ub = arr(pr$pi.ub))
}

fit_json <- function(r, measure, model, mod) {
  f <- r$fit
  if (inherits(f, "error"))
    return(list(error = conditionMessage(f), warnings = arr(r$warnings)))
  fs <- f$fit.stats
  out <- list(
    names = arr(rownames(f$beta)),
    estimate = arr(as.numeric(f$beta)), se = arr(f$se), zval = arr(f$zval),
    pval = arr(f$pval), ci_lb = arr(f$ci.lb), ci_ub = arr(f$ci.ub),
    vb = lapply(seq_len(nrow(f$vb)), function(i) arr(unname(f$vb[i, ]))),
    QM = f$QM, QMdf = arr(f$QMdf), QMp = f$QMp, test = f$test, ddf = f$ddf,
    tau2 = f$tau2, se_tau2 = f$se.tau2, sigma2 = f$sigma2, I2 = f$I2, H2 = f$H2,
    QE_Wld = f$QE.Wld, QEp_Wld = f$QEp.Wld, QE_LRT = f$QE.LRT, QEp_LRT = f$QEp.LRT,
    QE_df = f$QE.df, k = f$k, p = f$p, parms = f$parms,
    ll = fs["ll", "ML"], dev = fs["dev", "ML"], AIC = fs["AIC", "ML"],
    BIC = fs["BIC", "ML"], AICc = fs["AICc", "ML"],
    predict = pred_json(f, mod),
    warnings = arr(r$warnings), seconds = r$seconds)
  if (!is.null(f$res.ML)) {
    if (uses_lme4(measure, model)) {
      m <- f$res.ML
      out$ll_lme4 <- c(logLik(m))
      out$params <- list(fixef = arr(unname(lme4::fixef(m))),
                         theta = arr(unname(lme4::getME(m, "theta"))),
                         nAGQ = unname(m@devcomp$dims["nAGQ"]))
    } else {
      out$params <- list(par = arr(f$res.ML$par), objective = f$res.ML$objective)
    }
  }
  out
}

ee_json <- function(r) {
  f <- r$fit
  if (inherits(f, "error")) return(list(error = conditionMessage(f)))
  list(estimate = arr(as.numeric(f$beta)), se = arr(f$se), sigma2 = f$sigma2,
       QM = f$QM, warnings = arr(r$warnings))
}

cm_el_exact_wald <- function(d, X) {
  y <- v <- rep(NA_real_, nrow(d))
  for (i in seq_len(nrow(d))) {
    a <- d$ai[i]; n1 <- d$n1i[i]; cc <- d$ci[i]; n2 <- d$n2i[i]; m <- a + cc
    if (a == max(0, m - n2) || a == min(n1, m)) next
    g <- function(x) meanFNCHypergeo(n1, n2, m, exp(x), precision = 1e-12) - a
    root <- uniroot(g, c(-30, 30), tol = 1e-13)$root
    y[i] <- root
    v[i] <- 1 / varFNCHypergeo(n1, n2, m, exp(root), precision = 1e-12)
  }
  ok <- !is.na(y)
  w <- 1 / v[ok]
  Xo <- X[ok, , drop = FALSE]
  b <- solve(crossprod(Xo, w * Xo), crossprod(Xo, w * y[ok]))
  sum(w * (y[ok] - Xo %*% b)^2)
}

records <- list()
for (name in names(DATASETS)) {
  ds <- DATASETS[[name]]
  d <- ds$data
  for (mod in ds$mods) for (model in MODELS[[ds$measure]]) {
    cat(sprintf("%-14s %-4s %-6s ~ %s\n", name, ds$measure, model, mod))
    tight_ctrl <- if (uses_lme4(ds$measure, model)) TIGHT_LME4 else TIGHT_CMEL
    rec <- list(dataset = name, measure = ds$measure, model = model, mods = mod,
      default = fit_json(call_glmm(d, ds$measure, model, mod), ds$measure, model, mod),
      tight = fit_json(call_glmm(d, ds$measure, model, mod, control = tight_ctrl),
                       ds$measure, model, mod),
      tight_t = fit_json(call_glmm(d, ds$measure, model, mod, control = tight_ctrl,
                                   test = "t"), ds$measure, model, mod),
      ee = ee_json(call_glmm(d, ds$measure, model, mod, method = "EE")))
    if (ds$measure == "OR" && model == "CM.EL")
      rec$QE_Wld_exact <- cm_el_exact_wald(d, model.matrix(as.formula(paste("~", mod)), data = d))
    records[[length(records) + 1L]] <- rec
  }
}

datasets_json <- lapply(DATASETS, function(ds) list(
  measure = ds$measure, source = ds$source, mods = arr(ds$mods),
  columns = lapply(as.list(ds$data), function(col) arr(col))))

obj <- list(
  meta = list(R = R.version.string,
              metafor = as.character(packageVersion("metafor")),
              lme4 = as.character(packageVersion("lme4")),
              BiasedUrn = as.character(packageVersion("BiasedUrn")),
              numDeriv = as.character(packageVersion("numDeriv")),
              generated_by = "tests/reference/make_reference_glmm_mods.R",
              generated_on = format(Sys.Date())),
  settings = list(nAGQ = 7, level = 95, method = "ML",
                  tight_lme4 = "glmerControl(optimizer = 'bobyqa', tolPwrss = 1e-10, optCtrl = list(maxfun = 1e5))",
                  tight_cmel = "intCtrl = list(rel.tol = 1e-10)"),
  datasets = datasets_json,
  records = records)
write_json_file(obj, OUT)
cat("wrote", OUT, "\n")
