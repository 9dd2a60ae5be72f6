#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## metafor reference values: fit statistics (fitstats(): log-likelihood, deviance, AIC, BIC,
## AICc under ML and REML) of models with and without moderators, and confidence intervals
## for the residual tau² of a meta-regression (confint() types QP, PL, Wald, Wald.log,
## Wald.sqrt), Wald tests of subsets of coefficients (anova(fit, btt = ...)) and
## likelihood-ratio tests between nested models (anova(full, reduced)) and variance inflation
## factors (vif()).
##
## Run from the repository root:
##     Rscript tests/reference/make_reference_fitstats.R
## Writes tests/reference/metafor_fitstats.json (schema: tests/reference/README.md,
## "metafor_fitstats.json").
##
## Conventions as make_reference.R: log RR, escalc defaults (add = 1/2, to = "only0"),
## level 95. Fits use a tight CTRL (ML/REML at their limits); confint() a tight uniroot tol.
## ---------------------------------------------------------------------------

suppressPackageStartupMessages(library(metafor))

OUT    <- file.path("tests", "reference", "metafor_fitstats.json")
CTRL   <- list(threshold = 1e-13, maxiter = 100000, tol = 1e-13, stepadj = 0.5)
CICTRL <- list(tol = 1e-12, maxiter = 1000)

source(file.path("tests", "reference", "json_writer.R"))

s <- read.csv("studies.csv", stringsAsFactors = FALSE)
ivig <- data.frame(ai = s$treat_events, n1i = s$treat_total, ci = s$control_events,
                   n2i = s$control_total, nk_criterion = s$nk_criterion,
                   stringsAsFactors = FALSE)
bcg <- with(dat.bcg, data.frame(ai = tpos, n1i = tpos + tneg, ci = cpos, n2i = cpos + cneg,
                                ablat = ablat, alloc = alloc, year = year,
                                stringsAsFactors = FALSE))
DATA <- list(ivig = ivig, bcg = bcg)
MODS <- list(ivig = c("~1", "~nk_criterion"), bcg = c("~1", "~ablat", "~ablat + factor(alloc)"))
METHODS <- c("FE", "DL", "REML", "ML", "PM", "HE", "SJ")
TYPES <- c(qp = "QP", pl = "PL", wald = "Wald", "wald-log" = "Wald.log", "wald-sqrt" = "Wald.sqrt")

stats_of <- function(fs) setNames(lapply(c("ll", "dev", "AIC", "BIC", "AICc"),
                                         function(r) fs[r, 1]),
                                  c("loglik", "deviance", "aic", "bic", "aicc"))

records <- list()
for (dataset in names(DATA)) for (mods in MODS[[dataset]]) for (method in METHODS) {
  es <- escalc("RR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = DATA[[dataset]])
  fit <- rma(yi, vi, mods = as.formula(mods), data = es, method = method, control = CTRL)
  rec <- list(dataset = dataset, measure = "RR", mods = mods, method = method, k = fit$k,
              tau2 = fit$tau2, se_tau2 = if (is.null(fit$se.tau2)) NA else fit$se.tau2,
              ml = stats_of(fit$fit.stats["ML"]), reml = stats_of(fit$fit.stats["REML"]),
              logLik = as.numeric(logLik(fit)))
  if (method != "FE" && mods != "~1") {
    cis <- list()
    for (code in names(TYPES)) {
      if (code == "pl" && !(method %in% c("ML", "REML"))) next
      ci <- confint(fit, type = TYPES[[code]], control = CICTRL)$random
      cis[[code]] <- list(tau2 = arr(ci["tau^2", c("ci.lb", "ci.ub")]),
                          i2 = arr(ci["I^2(%)", c("ci.lb", "ci.ub")]),
                          h2 = arr(ci["H^2", c("ci.lb", "ci.ub")]))
    }
    rec$tau2_ci <- cis
  }
  records[[length(records) + 1]] <- rec
}

## anova(fit, btt = ...): Wald tests of subsets of coefficients. `btt_names` are the
## coefficients as ivigmeta names them (alloc's reference level "alternate", metafor's first).
btt_records <- list()
BTT <- list(list(btt = 3:4, names = c("alloc=random", "alloc=systematic"), spec = "alloc"),
            list(btt = c(2, 4), names = c("ablat", "alloc=systematic"),
                 spec = "ablat,alloc=systematic"),
            list(btt = 1, names = "intercept", spec = "intercept"))
for (method in c("DL", "REML", "FE")) for (test in c("z", "knha")) for (b in BTT) {
  es <- escalc("RR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = bcg)
  fit <- rma(yi, vi, mods = ~ ablat + factor(alloc), data = es, method = method, test = test,
             control = CTRL)
  a <- anova(fit, btt = b$btt)
  btt_records[[length(btt_records) + 1]] <- list(
    dataset = "bcg", measure = "RR", mods = "~ablat + factor(alloc)", method = method,
    test = test, spec = b$spec, btt_names = arr(b$names), coef_names = arr(rownames(fit$beta)[b$btt]),
    QM = a$QM, QMdf = arr(a$QMdf), QMp = a$QMp)
}

## anova(full, reduced): likelihood-ratio tests between nested meta-regressions.
lrt_records <- list()
LRT <- list(list(full = "~ablat + factor(alloc)", reduced = "~ablat", dropped = "alloc"),
            list(full = "~ablat + factor(alloc)", reduced = "~factor(alloc)", dropped = "ablat"),
            list(full = "~ablat", reduced = "~1", dropped = "ablat"))
for (method in c("ML", "REML", "FE", "DL")) for (case in LRT) {
  es <- escalc("RR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = bcg)
  f1 <- rma(yi, vi, mods = as.formula(case$full), data = es, method = method, control = CTRL)
  f0 <- rma(yi, vi, mods = as.formula(case$reduced), data = es, method = method, control = CTRL)
  warns <- character(0)
  a <- withCallingHandlers(anova(f1, f0), warning = function(w) {
    warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning")})
  lrt_records[[length(lrt_records) + 1]] <- list(
    dataset = "bcg", measure = "RR", method = method, full = case$full,
    reduced = case$reduced, dropped = case$dropped, LRT = a$LRT, pval = a$pval,
    parms_f = a$parms.f, parms_r = a$parms.r, fit_stats_f = arr(a$fit.stats.f),
    fit_stats_r = arr(a$fit.stats.r), QE_f = a$QE.f, QE_r = a$QE.r, tau2_f = a$tau2.f,
    tau2_r = a$tau2.r, R2 = if (is.null(a$R2)) NA else a$R2, warnings = arr(warns))
}

## vif(): variance inflation per coefficient (default) and for sets (btt = list(...)).
vif_records <- list()
for (method in c("DL", "REML")) {
  es <- escalc("RR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = bcg)
  fit <- rma(yi, vi, mods = ~ ablat + year + factor(alloc), data = es, method = method,
             control = CTRL)
  one <- vif(fit)$vif
  sets <- vif(fit, btt = list(2, 3, 4:5))$vif
  vif_records[[length(vif_records) + 1]] <- list(
    dataset = "bcg", measure = "RR", mods = "~ablat + year + factor(alloc)", method = method,
    coef_names = arr(c("ablat", "year", "alloc=random", "alloc=systematic")),
    vif = arr(sapply(one, function(d) d$vif)), sif = arr(sapply(one, function(d) d$sif)),
    set_names = arr(c("ablat", "year", "alloc")),
    set_vif = arr(sapply(sets, function(d) d$vif)), set_sif = arr(sapply(sets, function(d) d$sif)))
}

## rma.mh() and rma.peto() fit statistics (the per-study escalc effects about the pooled one).
counts_records <- list()
for (dataset in names(DATA)) {
  d <- DATA[[dataset]]
  for (measure in c("OR", "RR", "RD")) {
    f <- rma.mh(measure = measure, ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = d)
    counts_records[[length(counts_records) + 1]] <- list(
      dataset = dataset, measure = measure, method = "MH",
      ml = stats_of(f$fit.stats["ML"]), reml = stats_of(f$fit.stats["REML"]))
  }
  f <- rma.peto(ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = d)
  counts_records[[length(counts_records) + 1]] <- list(
    dataset = dataset, measure = "OR", method = "PETO",
    ml = stats_of(f$fit.stats["ML"]), reml = stats_of(f$fit.stats["REML"]))
}

## rma.mh() for incidence rates (IRR, IRD): estimate, se, CI, QE, I², the MH test (IRR) and the
## fit statistics, with the data (events and person-time per arm).
rate_records <- list()
RATES <- list(hart1999 = dat.hart1999, nielweise2008 = dat.nielweise2008)
for (name in names(RATES)) for (measure in c("IRR", "IRD")) {
  d <- RATES[[name]]
  f <- rma.mh(measure = measure, x1i = x1i, t1i = t1i, x2i = x2i, t2i = t2i, data = d)
  rate_records[[length(rate_records) + 1]] <- list(
    dataset = name, measure = measure, method = "MH",
    data = list(x1i = arr(d$x1i), t1i = arr(d$t1i), x2i = arr(d$x2i), t2i = arr(d$t2i)),
    beta = f$beta[1], se = f$se, ci_lb = f$ci.lb, ci_ub = f$ci.ub, pval = f$pval, QE = f$QE,
    QEp = f$QEp, I2 = f$I2, MH = if (is.null(f$MH)) NA else f$MH,
    MHp = if (is.null(f$MHp)) NA else f$MHp,
    ml = stats_of(f$fit.stats["ML"]), reml = stats_of(f$fit.stats["REML"]))
}

write_json_file(list(
  generated_by = "tests/reference/make_reference_fitstats.R",
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  generated_on = format(Sys.Date()),
  settings = list(level = 95, add = 0.5, to = "only0", control = CTRL, ci_control = CICTRL),
  models = records, btt = btt_records, lrt = lrt_records, vif = vif_records,
  counts = counts_records, rates = rate_records), OUT)
cat("wrote", OUT, "\n")
