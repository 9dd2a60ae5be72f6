#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## metafor reference values for `ivigmeta selmodel`: selection models for publication bias
## (metafor's selmodel()): the step-function model (steps, a priori fixed delta), the beta,
## half-normal, negative-exponential, logistic, power and negexppow weight functions, with
## prec= / scaleprec= / steps= and each alternative, random (ML) and common (EE) effect.
##
## Run from the repository root:
##     Rscript tests/reference/make_reference_selmodel.R
## Writes tests/reference/metafor_selmodel.json (schema: tests/reference/README.md,
## "metafor_selmodel.json"), the data of every case included.
##
## Tight controls: optim's BFGS with reltol = 1e-10 and finite-difference steps ndeps = 1e-6
## (optim's default 1e-3 moves the optimum by ~1e-6), maxit = 10000; R's integrate() with
## rel.tol = 1e-8 (metafor's default eps^0.25 ~ 1.2e-4) and 1000 subdivisions. Tighter
## settings make the continuous models run for minutes without changing the 6th digit. The Hessian is
## metafor's default (numDeriv::hessian, Richardson, r = 6).
## ---------------------------------------------------------------------------

suppressPackageStartupMessages(library(metafor))

OUT <- file.path("tests", "reference", "metafor_selmodel.json")
source(file.path("tests", "reference", "json_writer.R"))

tight <- function(res, deltas, int_tol = 1e-8) {
  npar <- res$p + 1 + deltas
  list(reltol = 1e-10, ndeps = rep(1e-6, npar), maxit = 10000L,
       intCtrl = list(rel.tol = int_tol, subdivisions = 1000L))
}
ndeltas <- function(type, steps) {
  if (type == "stepfun") return(length(unique(c(steps, 1))))
  if (type %in% c("beta", "negexppow")) return(2L)
  1L
}
num <- function(x) if (is.null(x)) NA else x

## ---------------------------------------------------------------------------
## Data sets
## ---------------------------------------------------------------------------
hack <- dat.hackshaw1998
bask <- data.frame(
  yi  = c(1.01, 0.82, 0.59, 0.44, 0.84, 0.73, 1.12, 0.04, 0.24, 0.32, 1.04, 1.31, 0.59, 0.66,
          0.62, 0.47, 1.08, 0.98, 0.26, 0.39, 0.60, 0.94, 0.11),
  sei = c(0.52, 0.46, 0.23, 0.18, 0.29, 0.29, 0.36, 0.37, 0.15, 0.40, 0.32, 0.57, 0.29, 0.19,
          0.31, 0.27, 0.32, 0.32, 0.18, 0.18, 0.31, 0.53, 0.27),
  xi  = c(1, 0, 0, 0, 1, 0, 1, 1, 0, 0, 0, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1))
prest <- data.frame(ai  = c(4, 0, 34, 7, 6, 1, 0, 11, 2, 0, 0, 33),
                    n1i = c(19, 18, 341, 71, 45, 94, 22, 88, 82, 33, 15, 221),
                    ci  = c(5, 0, 50, 16, 5, 8, 0, 12, 7, 0, 1, 43),
                    n2i = c(19, 18, 334, 69, 44, 96, 22, 82, 84, 30, 20, 218))
prest_es <- escalc(measure = "OR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = prest,
                   drop00 = TRUE)
coh <- escalc(measure = "ZCOR", ri = ri, ni = ni, data = dat.cohen1981[c(1, 4, 5)])
bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)

DATA <- list(
  hackshaw1998 = list(yi = arr(hack$yi), vi = arr(hack$vi)),
  baskerville = list(yi = arr(bask$yi), vi = arr(bask$sei^2), xi = arr(bask$xi)),
  preston = list(ai = arr(prest$ai), n1i = arr(prest$n1i), ci = arr(prest$ci),
                 n2i = arr(prest$n2i), yi = arr(prest_es$yi), vi = arr(prest_es$vi)),
  cohen1981 = list(ri = arr(dat.cohen1981$ri), ni = arr(dat.cohen1981$ni), yi = arr(coh$yi),
                   vi = arr(coh$vi)),
  bcg = list(yi = arr(bcg$yi), vi = arr(bcg$vi)))

fit_base <- function(data, method, mods = FALSE) {
  d <- DATA[[data]]
  if (data == "preston") {
    return(suppressWarnings(rma(yi, vi, data = prest_es, method = method)))
  }
  if (mods) return(rma(d$yi, d$vi, mods = ~ d$xi, method = method))
  rma(d$yi, d$vi, method = method)
}

records <- list()
add <- function(name, data, method, type, alternative = "greater", steps = NULL,
                prec = NULL, scaleprec = TRUE, delta = NULL, mods = FALSE, confint = FALSE,
                int_tol = 1e-8) {
  res <- fit_base(data, method, mods)
  args <- list(x = res, type = type, alternative = alternative)
  if (!is.null(steps)) args$steps <- steps
  if (!is.null(prec)) args$prec <- prec
  if (!scaleprec) args$scaleprec <- FALSE
  if (!is.null(delta)) { args$delta <- delta; args$defmap <- TRUE }
  args$control <- tight(res, ndeltas(type, if (is.null(steps)) 0 else steps), int_tol)
  sav <- suppressWarnings(do.call(selmodel, args))
  rec <- list(
    name = name, data = data, method = method, type = type, alternative = alternative,
    steps = if (is.null(steps)) NA else arr(sav$steps),
    prec = if (is.null(prec)) NA else prec, scaleprec = scaleprec,
    delta_fixed = if (is.null(delta)) NA else arr(delta),
    mods = mods, integrate_rel_tol = int_tol,
    k = sav$k,
    beta = arr(sav$beta), se = arr(sav$se), zval = arr(sav$zval), pval = arr(sav$pval),
    ci_lb = arr(sav$ci.lb), ci_ub = arr(sav$ci.ub),
    tau2 = sav$tau2, se_tau2 = num(sav$se.tau2), ci_lb_tau2 = num(sav$ci.lb.tau2),
    ci_ub_tau2 = num(sav$ci.ub.tau2),
    delta = arr(sav$delta), se_delta = arr(sav$se.delta), zval_delta = arr(sav$zval.delta),
    pval_delta = arr(sav$pval.delta), ci_lb_delta = arr(sav$ci.lb.delta),
    ci_ub_delta = arr(sav$ci.ub.delta),
    ll = sav$ll, ll0 = sav$ll0, LRT = sav$LRT, LRTdf = sav$LRTdf, LRTp = sav$LRTp,
    LRT_tau2 = num(sav$LRT.tau2), LRTp_tau2 = num(sav$LRTp.tau2),
    QM = num(sav$QM), QMp = num(sav$QMp),
    AIC = sav$fit.stats["AIC", "ML"], BIC = sav$fit.stats["BIC", "ML"],
    AICc = sav$fit.stats["AICc", "ML"], parms = sav$parms,
    pvals = arr(sav$pvals),
    ptable = if (is.data.frame(sav$ptable)) arr(sav$ptable$k) else NA,
    precis = if (is.null(prec)) NA else arr(sav$precis))
  if (confint) {
    ci <- suppressWarnings(confint(sav, control = list(tol = 1e-10)))
    ci <- ci[names(ci) != "digits"]
    rec$confint_tau2 <- arr(ci[[1]]$random[1, ])
    rec$confint_delta <- unname(lapply(ci[-1], function(x) arr(x$random[1, ])))
  }
  records[[length(records) + 1]] <<- rec
  cat(name, ": ll", sav$ll, " delta", sav$delta, "\n")
}

## Step functions (metafor's test file: dat.hackshaw1998, steps c(0.05, 0.10, 0.50, 1)).
st <- c(0.05, 0.10, 0.50, 1)
add("hackshaw_stepfun_re", "hackshaw1998", "REML", "stepfun", steps = st, confint = TRUE)
add("hackshaw_stepfun_ee", "hackshaw1998", "EE", "stepfun", steps = st)
add("hackshaw_stepfun_less", "hackshaw1998", "ML", "stepfun", alternative = "less",
    steps = c(0.5, 1))
add("hackshaw_stepfun_no1", "hackshaw1998", "ML", "stepfun", steps = c(0.10, 0.05, 0.5))
add("bcg_stepfun_two_sided", "bcg", "REML", "stepfun", alternative = "two.sided",
    steps = c(0.05, 1))
add("bcg_stepfun_two_sided_3", "bcg", "ML", "stepfun", alternative = "two.sided",
    steps = c(0.001, 0.05, 1))
add("baskerville_stepfun_mods", "baskerville", "ML", "stepfun", steps = c(0.025, 1),
    mods = TRUE)

## Beta selection model (Baskerville et al. 2012 data of metafor's test file).
add("baskerville_beta", "baskerville", "ML", "beta")
add("baskerville_beta_fixed11", "baskerville", "ML", "beta", delta = c(1, 1))

## Exponential-type models on the Preston et al. (2004) OR data, EE, alternative "less".
for (type in c("halfnorm", "negexp", "logistic", "power")) {
  add(paste0("preston_", type), "preston", "EE", type, alternative = "less")
  add(paste0("preston_", type, "_sei_noscale"), "preston", "EE", type, alternative = "less",
      prec = "sei", scaleprec = FALSE)
  add(paste0("preston_", type, "_sei_step05"), "preston", "EE", type, alternative = "less",
      prec = "sei", steps = 0.05)
}
add("preston_negexppow", "preston", "EE", "negexppow", alternative = "less")
add("preston_halfnorm_ninv", "preston", "EE", "halfnorm", alternative = "less", prec = "ninv")
add("preston_negexp_sqrtninv", "preston", "EE", "negexp", alternative = "less",
    prec = "sqrtninv")
add("preston_logistic_vi", "preston", "EE", "logistic", alternative = "less", prec = "vi")
add("preston_halfnorm_two_sided", "preston", "EE", "halfnorm", alternative = "two.sided")
add("hackshaw_negexp_re_step", "hackshaw1998", "ML", "negexp", steps = 0.025)
## The same with integrate(rel.tol = 1e-12): metafor's numerical Hessian of a likelihood whose
## integrals carry 1e-8 errors is off by 2.5% here; with 1e-12 it is not (about 2 minutes).
add("hackshaw_negexp_re_step_int12", "hackshaw1998", "ML", "negexp", steps = 0.025,
    int_tol = 1e-12)

## A priori step functions (Vevea & Woods 2005) on dat.cohen1981, ZCOR, ML.
tab <- data.frame(
  steps = c(0.005, 0.01, 0.05, 0.10, 0.25, 0.35, 0.50, 0.65, 0.75, 0.90, 0.95, 0.99, 0.995, 1),
  mod1 = c(1, 0.99, 0.95, 0.80, 0.75, 0.65, 0.60, 0.55, 0.50, 0.50, 0.50, 0.50, 0.50, 0.50),
  sev1 = c(1, 0.99, 0.90, 0.75, 0.60, 0.50, 0.40, 0.35, 0.30, 0.25, 0.10, 0.10, 0.10, 0.10),
  mod2 = c(1, 0.99, 0.95, 0.90, 0.80, 0.75, 0.60, 0.60, 0.75, 0.80, 0.90, 0.95, 0.99, 1.00),
  sev2 = c(1, 0.99, 0.90, 0.75, 0.60, 0.50, 0.25, 0.25, 0.50, 0.60, 0.75, 0.90, 0.99, 1.00))
for (nm in names(tab)[-1]) {
  add(paste0("cohen_apriori_", nm), "cohen1981", "ML", "stepfun", steps = tab$steps,
      delta = tab[[nm]])
}
add("hackshaw_apriori_partial", "hackshaw1998", "ML", "stepfun", steps = st,
    delta = c(1, NA, 0.8, NA))

write_json_file(list(
  generated_by = "tests/reference/make_reference_selmodel.R",
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  generated_on = format(Sys.Date()),
  settings = list(optim_method = "BFGS", reltol = 1e-10, ndeps = 1e-6,
                  integrate_rel_tol = 1e-8, hessian = "numDeriv Richardson r = 6"),
  data = DATA,
  selmodel = records), OUT)
cat("wrote", OUT, "\n")
