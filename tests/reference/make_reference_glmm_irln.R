#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## metafor reference values for the Poisson-normal model of one group's
## events over person-time: rma.glmm(measure = "IRLN", xi, ti), intercept
## only and with mods = ~ year.
##
## Run from the repository root (a few seconds):
##     Rscript tests/reference/make_reference_glmm_irln.R
## Writes tests/reference/metafor_glmm_irln.json.
##
## Needs metafor and lme4.
##
## Conventions (as make_reference_glmm.R and make_reference_glmm_mods.R)
##  * rma.glmm() with its defaults (method = "ML", nAGQ = 7, test = "z",
##    level = 95). "default": metafor's default control; "tight": lme4 with
##    glmerControl(optimizer = "bobyqa", tolPwrss = 1e-10, maxfun = 1e5).
##  * Data: dat.nielweise2008 with person-time in 1000 catheter-days, as
##    metafor's test_analysis_example_stijnen2010.r (Stijnen et al. 2010,
##    Table VII): the control (x2i, t2i) and the treated (x1i, t1i) groups;
##    and a constructed homogeneous data set with a zero count (tau2 at the
##    boundary).
##  * "params": lme4's fixef and theta at the optimum; "ll_lme4" logLik(glmer)
##    (relative to the saturated model for nAGQ > 1); "ll" etc. metafor's
##    fit.stats (ML column); "ee": the same call with method = "EE".
##  * Numbers: the shortest of 15/16/17 significant digits that round-trips.
## ---------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(metafor)
  library(lme4)
})

OUT <- file.path("tests", "reference", "metafor_glmm_irln.json")
TIGHT_LME4 <- list(glmerCtrl = list(optimizer = "bobyqa", tolPwrss = 1e-10,
                                    optCtrl = list(maxfun = 1e5)))

source(file.path("tests", "reference", "json_writer.R"))

d <- dat.nielweise2008
ctrl <- data.frame(slab = d$authors, xi = d$x2i, ti = d$t2i / 1000, year = d$year)
trt <- data.frame(slab = d$authors, xi = d$x1i, ti = d$t1i / 1000, year = d$year)
homog <- data.frame(slab = paste("Study", 1:6), xi = c(4, 0, 6, 3, 5, 2),
                    ti = c(2.5, 0.8, 3.9, 2.1, 3.0, 1.4),
                    year = c(2001, 2003, 2004, 2006, 2008, 2010))

DATASETS <- list(
  nielweise2008_control = list(data = ctrl, mods = c("year"),
    source = "metadat dat.nielweise2008 control groups (xi = x2i, ti = t2i / 1000), Stijnen et al. 2010 Table VII"),
  nielweise2008_treated = list(data = trt, mods = c("year"),
    source = "metadat dat.nielweise2008 treated groups (xi = x1i, ti = t1i / 1000), Stijnen et al. 2010 Table VII"),
  homogeneous = list(data = homog, mods = character(0),
    source = "constructed: six homogeneous rates, one without events (tau2 at the boundary)")
)

call_glmm <- function(d, mod = NULL, method = "ML", control = NULL) {
  args <- list(measure = "IRLN", xi = d$xi, ti = d$ti, method = method, retfit = TRUE)
  if (!is.null(mod)) args$mods <- as.formula(paste("~", mod))
  if (!is.null(mod)) args$data <- d
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

fit_json <- function(r) {
  f <- r$fit
  if (inherits(f, "error"))
    return(list(error = conditionMessage(f), warnings = arr(r$warnings)))
  fs <- f$fit.stats
  out <- list(
    names = arr(rownames(f$beta)),
    estimate = arr(as.numeric(f$beta)), se = arr(f$se), zval = arr(f$zval),
    pval = arr(f$pval), ci_lb = arr(f$ci.lb), ci_ub = arr(f$ci.ub),
    QM = f$QM, QMp = f$QMp, tau2 = f$tau2, I2 = f$I2, H2 = f$H2,
    QE_Wld = f$QE.Wld, QEp_Wld = f$QEp.Wld, QE_LRT = f$QE.LRT, QEp_LRT = f$QEp.LRT,
    QE_df = f$QE.df, k = f$k, p = f$p, parms = f$parms,
    ll = fs["ll", "ML"], dev = fs["dev", "ML"], AIC = fs["AIC", "ML"],
    BIC = fs["BIC", "ML"], AICc = fs["AICc", "ML"],
    warnings = arr(r$warnings), seconds = r$seconds)
  if (!is.null(f$res.ML)) {
    m <- f$res.ML
    out$ll_lme4 <- c(logLik(m))
    out$params <- list(fixef = arr(unname(lme4::fixef(m))),
                       theta = arr(unname(lme4::getME(m, "theta"))),
                       nAGQ = unname(m@devcomp$dims["nAGQ"]))
  }
  out
}

ee_json <- function(r) {
  f <- r$fit
  if (inherits(f, "error")) return(list(error = conditionMessage(f)))
  list(estimate = arr(as.numeric(f$beta)), se = arr(f$se),
       ll = f$fit.stats["ll", "ML"], warnings = arr(r$warnings))
}

records <- list()
for (name in names(DATASETS)) {
  ds <- DATASETS[[name]]
  d <- ds$data
  for (mod in c(list(NULL), as.list(ds$mods))) {
    cat(sprintf("%-22s IRLN ~ %s\n", name, if (is.null(mod)) "1" else mod))
    rec <- list(dataset = name, measure = "IRLN", model = "UM.FS",
      mods = if (is.null(mod)) NULL else mod,
      default = fit_json(call_glmm(d, mod)),
      tight = fit_json(call_glmm(d, mod, control = TIGHT_LME4)),
      ee = ee_json(call_glmm(d, mod, method = "EE")))
    records[[length(records) + 1L]] <- rec
  }
}

datasets_json <- lapply(DATASETS, function(ds) list(
  measure = "IRLN", source = ds$source, mods = arr(ds$mods),
  columns = lapply(as.list(ds$data), function(col) arr(col))))

obj <- list(
  meta = list(R = R.version.string,
              metafor = as.character(packageVersion("metafor")),
              lme4 = as.character(packageVersion("lme4")),
              generated_by = "tests/reference/make_reference_glmm_irln.R",
              generated_on = format(Sys.Date())),
  settings = list(nAGQ = 7, level = 95, test = "z", method = "ML",
                  tight_lme4 = "glmerControl(optimizer = 'bobyqa', tolPwrss = 1e-10, optCtrl = list(maxfun = 1e5))"),
  datasets = datasets_json,
  records = records)
write_json_file(obj, OUT)
cat("wrote", OUT, "\n")
