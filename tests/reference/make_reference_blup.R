#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## metafor reference values for issue 17 items 4 and 5: study-level quantities (blup, ranef,
## fitted, residuals, rstandard, rstudent) of random-effects models with and without
## moderators, the fixed-effects meta-regression (method = "FE") and predict(newmods = ...).
##
## Run from the repository root:
##     Rscript tests/reference/make_reference_blup.R
## Writes tests/reference/metafor_blup.json (schema: tests/reference/README.md,
## "metafor_blup.json").
##
## Conventions as make_reference.R: analysis scale (log RR), escalc defaults (add = 1/2,
## to = "only0"), level 95, test = "z", metafor's dotted names with "_" (pi.lb -> pi_lb).
## Iterative fits use the tight control below.
## ---------------------------------------------------------------------------

suppressPackageStartupMessages(library(metafor))

OUT   <- file.path("tests", "reference", "metafor_blup.json")
CTRL  <- list(threshold = 1e-13, maxiter = 10000, stepadj = 0.5)

source(file.path("tests", "reference", "json_writer.R"))

capture <- function(header, compute) {
  warns <- character(0)
  val <- withCallingHandlers(
    tryCatch(compute(), error = function(e) structure(
      list(error = conditionMessage(e)), class = "ref_error")),
    warning = function(w) {
      warns <<- c(warns, conditionMessage(w))
      invokeRestart("muffleWarning")
    })
  if (inherits(val, "ref_error")) val <- unclass(val)
  c(header, val, list(warnings = arr(as.character(unique(warns)))))
}

s <- read.csv("studies.csv", stringsAsFactors = FALSE)
ivig <- data.frame(slab = paste(s$study, s$year), ai = s$treat_events, n1i = s$treat_total,
                   ci = s$control_events, n2i = s$control_total,
                   nk_criterion = s$nk_criterion, stringsAsFactors = FALSE)
bcg <- with(dat.bcg, data.frame(slab = paste(author, year), ai = tpos, n1i = tpos + tneg,
                                ci = cpos, n2i = cpos + cneg, ablat = ablat,
                                alloc = alloc, stringsAsFactors = FALSE))
DATA <- list(ivig = ivig, bcg = bcg)
MODS <- list(ivig = c("~1", "~nk_criterion"), bcg = c("~1", "~ablat", "~factor(alloc)"))

fit_for <- function(dataset, mods, method) {
  es <- escalc("RR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = DATA[[dataset]],
               slab = slab)
  rma(yi, vi, mods = as.formula(mods), data = es, method = method, control = CTRL)
}
lst <- function(x, keys) setNames(lapply(keys, function(k) arr(x[[k]])),
                                  gsub(".", "_", keys, fixed = TRUE))

study_records <- list()
fe_records <- list()
for (dataset in names(DATA)) for (mods in MODS[[dataset]]) {
  for (method in c("DL", "REML")) {
    study_records[[length(study_records) + 1]] <- capture(
      list(dataset = dataset, measure = "RR", mods = mods, method = method, test = "z"),
      function() {
        fit <- fit_for(dataset, mods, method)
        list(k = fit$k, tau2 = fit$tau2, beta = arr(fit$beta), coef_names = arr(rownames(fit$beta)),
             slab = arr(as.character(fit$slab)),
             blup = lst(blup(fit), c("pred", "se", "pi.lb", "pi.ub")),
             ranef = lst(ranef(fit), c("pred", "se", "pi.lb", "pi.ub")),
             fitted = arr(fitted(fit)), residuals = arr(residuals(fit)),
             rstandard = lst(rstandard(fit), c("resid", "se", "z")),
             rstudent = lst(rstudent(fit), c("resid", "se", "z")))
      })
  }
  if (mods != "~1") {
    fe_records[[length(fe_records) + 1]] <- capture(
      list(dataset = dataset, measure = "RR", mods = mods, method = "FE", test = "z"),
      function() {
        fit <- fit_for(dataset, mods, "FE")
        list(k = fit$k, coef_names = arr(rownames(fit$beta)), beta = arr(fit$beta),
             se = arr(fit$se), zval = arr(fit$zval), pval = arr(fit$pval),
             ci_lb = arr(fit$ci.lb), ci_ub = arr(fit$ci.ub), QM = fit$QM, QMdf = fit$QMdf[1],
             QMp = fit$QMp, QE = fit$QE, QEdf = fit$k - fit$p, QEp = fit$QEp, I2 = fit$I2,
             H2 = fit$H2, fitted = arr(fitted(fit)),
             rstandard = lst(rstandard(fit), c("resid", "se", "z")))
      })
  }
}

## predict(fit, newmods = ...): each row of newmods is one prediction (the moderators only;
## metafor adds the intercept). `newmods_text` is how ivigmeta's --predict writes it.
PRED <- list(
  list(dataset = "bcg", mods = "~ablat", newmods = list(c(10), c(33.46), c(55)),
       newmods_text = c("ablat=10", "ablat=33.46", "ablat=55")),
  list(dataset = "bcg", mods = "~factor(alloc)", newmods = list(c(0, 0), c(1, 0), c(0, 1)),
       newmods_text = c("alloc=alternate", "alloc=random", "alloc=systematic")),
  list(dataset = "ivig", mods = "~nk_criterion", newmods = list(c(0), c(1)),
       newmods_text = c("nk_criterion=no", "nk_criterion=yes")))
pred_records <- list()
for (p in PRED) for (method in c("DL", "REML", "FE")) {
  pred_records[[length(pred_records) + 1]] <- capture(
    list(dataset = p$dataset, measure = "RR", mods = p$mods, method = method, test = "z",
         newmods_text = arr(p$newmods_text)),
    function() {
      fit <- fit_for(p$dataset, p$mods, method)
      nm <- do.call(rbind, p$newmods)
      pr <- predict(fit, newmods = nm)
      out <- lst(pr, c("pred", "se", "ci.lb", "ci.ub"))
      ## FE fits have no prediction interval beyond the CI (metafor gives pi = ci).
      out$pi_lb <- arr(if (is.null(pr$pi.lb)) pr$ci.lb else pr$pi.lb)
      out$pi_ub <- arr(if (is.null(pr$pi.ub)) pr$ci.ub else pr$pi.ub)
      out
    })
}

## Common-effect models: rma(method = "FE") with and without moderators (blup, fitted,
## residuals, rstandard, rstudent), and rma.mh / rma.peto (fitted, residuals, rstandard,
## rstudent).
common_records <- list()
for (dataset in names(DATA)) {
  d <- DATA[[dataset]]
  for (mods in MODS[[dataset]][1:2]) {
    common_records[[length(common_records) + 1]] <- capture(
      list(dataset = dataset, measure = "RR", mods = mods, method = "FE", common = "IV"),
      function() {
        fit <- fit_for(dataset, mods, "FE")
        list(blup = lst(blup(fit), c("pred", "se", "pi.lb", "pi.ub")),
             fitted = arr(fitted(fit)), residuals = arr(residuals(fit)),
             rstandard = lst(rstandard(fit), c("resid", "se", "z")),
             rstudent = lst(rstudent(fit), c("resid", "se", "z")))
      })
  }
  for (spec in list(c("MH", "OR"), c("MH", "RR"), c("MH", "RD"), c("PETO", "OR"))) {
    common_records[[length(common_records) + 1]] <- capture(
      list(dataset = dataset, measure = spec[2], mods = "~1", method = "FE", common = spec[1]),
      function() {
        fit <- if (spec[1] == "MH") {
          rma.mh(measure = spec[2], ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = d)
        } else {
          rma.peto(ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = d)
        }
        list(fitted = arr(fitted(fit)), residuals = arr(residuals(fit)),
             rstandard = lst(rstandard(fit), c("resid", "se", "z")),
             rstudent = lst(rstudent(fit, progbar = FALSE), c("resid", "se", "z")))
      })
  }
}

write_json_file(list(
  generated_by = "tests/reference/make_reference_blup.R",
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  generated_on = format(Sys.Date()),
  settings = list(level = 95, add = 0.5, to = "only0", control = CTRL),
  study_level = study_records,
  fe_metareg = fe_records,
  predict = pred_records,
  common_level = common_records), OUT)
cat("wrote", OUT, "\n")
