#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## metafor reference values for the GLMMs of issue 19: rma.glmm() for OR
## (UM.FS, UM.RS, CM.EL, CM.AL), IRR (UM.FS, UM.RS, CM.EL) and PLO.
##
## Run from the repository root (about 3 minutes; CM.EL is slow in R):
##     Rscript tests/reference/make_reference_glmm.R
## Writes tests/reference/metafor_glmm.json.
##
## Needs metafor, lme4 (r-cran-lme4), BiasedUrn (r-cran-biasedurn), numDeriv.
##
## Conventions
##  * rma.glmm() with its defaults (method = "ML", nAGQ = 7, coding = 1/2,
##    test = "z", level = 95), drop00 = TRUE and, for data sets with a
##    double-zero study, drop00 = FALSE too.
##  * "default": metafor's default control. "tight": lme4 with
##    glmerControl(optimizer = "bobyqa", tolPwrss = 1e-10, maxfun = 1e5):
##    lme4's default Nelder-Mead stage stops short on the k + 2 parameters
##    of UM.FS ("Model failed to converge with max|grad| ..."), and its
##    default PIRLS tolerance (1e-7) leaves the conditional modes of the
##    Laplace fits (UM.RS) imprecise enough to move the log-likelihood by
##    ~1e-4 with large counts (nielweise2008, bcg); CM.EL with integrate()
##    rel.tol 1e-10 (default .Machine$double.eps^0.25).
##  * "params": the parameters at metafor's optimum (lme4 fixef and theta, or
##    CM.EL's nlminb par = c(beta, log(tau2))), so that the tests can evaluate
##    their own log-likelihood there.
##  * "ee": the same call with method = "EE" (the fixed-effects counterpart).
##  * "ll": metafor's fit.stats ll. For the lme4 fits with nAGQ > 1 (UM.FS,
##    CM.AL, IRR CM.EL, PLO) metafor computes it as ll.QE - deviance(glmer)/2,
##    and lme4's deviance() of a GLMM is the sum of squared deviance
##    residuals at the conditional modes, not the marginal deviance; so that
##    "ll" is not the marginal log-likelihood. "ll_lme4" is logLik(res.ML):
##    the marginal log-likelihood, relative to the saturated model for
##    nAGQ > 1, absolute for the Laplace fits (UM.RS).
##  * "QE_Wld_exact" (CM.EL, OR): Cochran's Q of each study's conditional MLE
##    of the log OR with its conditional information (BiasedUrn, uniroot tol
##    1e-13), studies at an end of their support left out: the Wald test of
##    the saturated model computed exactly. metafor's QE.Wld comes from a
##    numerical saturated fit (nlminb, numDeriv Hessian) and differs by ~1e-3.
##  * Numbers: the shortest of 15/16/17 significant digits that round-trips.
## ---------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(metafor)
  library(lme4)
  library(BiasedUrn)
})

OUT <- file.path("tests", "reference", "metafor_glmm.json")
TIGHT_LME4 <- list(glmerCtrl = list(optimizer = "bobyqa", tolPwrss = 1e-10,
                                    optCtrl = list(maxfun = 1e5)))
TIGHT_CMEL <- list(intCtrl = list(rel.tol = 1e-10))

## Minimal JSON writer (jsonlite only offers 15 significant digits): shared
source(file.path("tests", "reference", "json_writer.R"))


## ===========================================================================
## Data sets
## ===========================================================================

d <- dat.collins1985a
d <- d[!is.na(d$d.xti) & !is.na(d$d.xci), ]
collins <- data.frame(slab = paste(d$trial, d$year), ai = d$d.xti, n1i = d$nti,
                      ci = d$d.xci, n2i = d$nci)
d <- dat.nielweise2007
niel07 <- data.frame(slab = paste(d$author, d$year), ai = d$ai, n1i = d$n1i,
                     ci = d$ci, n2i = d$n2i)
d <- dat.bcg
bcg <- data.frame(slab = paste(d$author, d$year), ai = d$tpos,
                  n1i = d$tpos + d$tneg, ci = d$cpos, n2i = d$cpos + d$cneg)
## constructed: homogeneous sparse tables, where tau2 goes to the boundary
boundary <- data.frame(slab = paste("Study", 1:6), ai = c(2, 3, 1, 4, 2, 3),
                       n1i = c(50, 60, 40, 70, 55, 65), ci = c(4, 6, 2, 8, 4, 6),
                       n2i = c(50, 62, 41, 68, 54, 66))
d <- dat.nielweise2008
niel08 <- data.frame(slab = d$authors, x1i = d$x1i, t1i = d$t1i,
                     x2i = d$x2i, t2i = d$t2i)
irr_zeros <- data.frame(slab = paste("Study", 1:5), x1i = c(0, 3, 7, 0, 12),
                        t1i = c(120, 340.5, 800, 95, 1500),
                        x2i = c(2, 0, 9, 4, 10), t2i = c(110, 300, 760, 100, 1450.25))
plo_ctrl <- data.frame(slab = niel07$slab, xi = niel07$ci, ni = niel07$n2i)
plo_trt <- data.frame(slab = niel07$slab, xi = niel07$ai, ni = niel07$n1i)
d <- dat.pritz1997
pritz <- data.frame(slab = paste(d$study, d$authors), xi = d$xi, ni = d$ni)

DATASETS <- list(
  nielweise2007 = list(data = niel07, measure = "OR",
    source = "metadat dat.nielweise2007 (anti-infective catheters; catheter-related bloodstream infections)"),
  collins1985a = list(data = collins, measure = "OR",
    source = "metadat dat.collins1985a, deaths (d.xti of nti, d.xci of nci); rows with NA deaths omitted"),
  bcg = list(data = bcg, measure = "OR",
    source = "metadat dat.bcg (ai = tpos, n1i = tpos + tneg, ci = cpos, n2i = cpos + cneg)"),
  boundary = list(data = boundary, measure = "OR",
    source = "constructed: six homogeneous sparse 2x2 tables (tau2 at the boundary)"),
  nielweise2008 = list(data = niel08, measure = "IRR",
    source = "metadat dat.nielweise2008 (events x1i, x2i over catheter-days t1i, t2i)"),
  irr_zeros = list(data = irr_zeros, measure = "IRR",
    source = "constructed: incidence rates with a zero count in either group"),
  nielweise2007_control = list(data = plo_ctrl, measure = "PLO",
    source = "dat.nielweise2007 control arms (xi = ci, ni = n2i), Stijnen et al. 2010 Table II"),
  nielweise2007_treated = list(data = plo_trt, measure = "PLO",
    source = "dat.nielweise2007 treated arms (xi = ai, ni = n1i), Stijnen et al. 2010 Table II"),
  pritz1997 = list(data = pritz, measure = "PLO",
    source = "metadat dat.pritz1997 (xi of ni)")
)

MODELS <- list(OR = c("UM.FS", "UM.RS", "CM.EL", "CM.AL"),
               IRR = c("UM.FS", "UM.RS", "CM.EL"), PLO = c("UM.FS"))

has_double_zero <- function(d, measure) {
  if (measure == "OR")
    return(any((d$ai == 0 & d$ci == 0) | (d$ai == d$n1i & d$ci == d$n2i)))
  if (measure == "IRR") return(any(d$x1i == 0 & d$x2i == 0))
  FALSE
}

## ===========================================================================
## Fits
## ===========================================================================

call_glmm <- function(d, measure, model, drop00, method = "ML", control = NULL) {
  args <- list(measure = measure, model = model, method = method, retfit = TRUE)
  if (measure == "OR")
    args <- c(args, list(ai = d$ai, n1i = d$n1i, ci = d$ci, n2i = d$n2i, drop00 = drop00))
  if (measure == "IRR")
    args <- c(args, list(x1i = d$x1i, t1i = d$t1i, x2i = d$x2i, t2i = d$t2i, drop00 = drop00))
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

uses_lme4 <- function(measure, model) !(measure == "OR" && model == "CM.EL")

fit_json <- function(r, measure, model) {
  f <- r$fit
  if (inherits(f, "error"))
    return(list(error = conditionMessage(f), warnings = arr(r$warnings)))
  out <- list(
    estimate = as.numeric(f$beta), se = f$se, zval = f$zval, pval = f$pval,
    ci_lb = f$ci.lb, ci_ub = f$ci.ub, tau2 = f$tau2, se_tau2 = f$se.tau2,
    sigma2 = f$sigma2, I2 = f$I2, H2 = f$H2,
    QE_Wld = f$QE.Wld, QEp_Wld = f$QEp.Wld, QE_LRT = f$QE.LRT, QEp_LRT = f$QEp.LRT,
    QE_df = f$QE.df, k = f$k, k_yi = f$k.yi, used = arr(f$not.na),
    ll = f$fit.stats["ll", "ML"], warnings = arr(r$warnings), seconds = r$seconds)
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
  list(estimate = as.numeric(f$beta), se = f$se, sigma2 = f$sigma2,
       ll = f$fit.stats["ll", "ML"], warnings = arr(r$warnings))
}

cm_el_exact_wald <- function(d) {
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
  sum(w * (y[ok] - sum(w * y[ok]) / sum(w))^2)
}

records <- list()
for (name in names(DATASETS)) {
  ds <- DATASETS[[name]]
  d <- ds$data
  drops <- if (has_double_zero(d, ds$measure)) c(TRUE, FALSE) else TRUE
  for (model in MODELS[[ds$measure]]) for (drop00 in drops) {
    cat(sprintf("%-22s %-4s %-6s drop00=%-5s\n", name, ds$measure, model, drop00))
    tight_ctrl <- if (uses_lme4(ds$measure, model)) TIGHT_LME4 else TIGHT_CMEL
    rec <- list(dataset = name, measure = ds$measure, model = model, drop00 = drop00,
      default = fit_json(call_glmm(d, ds$measure, model, drop00), ds$measure, model),
      tight = fit_json(call_glmm(d, ds$measure, model, drop00, control = tight_ctrl),
                       ds$measure, model),
      ee = ee_json(call_glmm(d, ds$measure, model, drop00, method = "EE")))
    if (ds$measure == "OR" && model == "CM.EL") {
      dd <- if (drop00) d[!((d$ai == 0 & d$ci == 0) | (d$ai == d$n1i & d$ci == d$n2i)), ] else d
      rec$QE_Wld_exact <- cm_el_exact_wald(dd)
    }
    records[[length(records) + 1L]] <- rec
  }
}

datasets_json <- lapply(DATASETS, function(ds) list(
  measure = ds$measure, source = ds$source,
  columns = lapply(as.list(ds$data), function(col) arr(col))))

obj <- list(
  meta = list(R = R.version.string,
              metafor = as.character(packageVersion("metafor")),
              lme4 = as.character(packageVersion("lme4")),
              BiasedUrn = as.character(packageVersion("BiasedUrn")),
              numDeriv = as.character(packageVersion("numDeriv")),
              generated_by = "tests/reference/make_reference_glmm.R",
              generated_on = format(Sys.Date())),
  settings = list(nAGQ = 7, level = 95, test = "z", method = "ML",
                  tight_lme4 = "glmerControl(optimizer = 'bobyqa', tolPwrss = 1e-10, optCtrl = list(maxfun = 1e5))",
                  tight_cmel = "intCtrl = list(rel.tol = 1e-10)"),
  datasets = datasets_json,
  records = records)
write_json_file(obj, OUT)
cat("wrote", OUT, "\n")
