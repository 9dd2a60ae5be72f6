#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## metafor + clubSandwich reference values for the CR2 cluster-robust inference:
## robust(fit, cluster, clubSandwich = TRUE) of rma.uni fits with and without moderators
## (clubSandwich::vcovCR(fit, cluster, type = "CR2"), coef_test(test = "Satterthwaite"),
## conf_int(test = "Satterthwaite"), Wald_test(test = "HTZ", constrain_zero(btt))), and
## predict() of the robust object (clubSandwich::linear_contrast).
##
## Run from the repository root:
##     Rscript tests/reference/make_reference_robust_cr2.R
## Writes tests/reference/metafor_robust_cr2.json (schema: tests/reference/README.md,
## "metafor_robust_cr2.json").
##
## Data: dat.bcg (log RR, escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg)) with the
## clusters `alloc` (3), `pair` (trials 1-2, 3-4, ..., 13: 7) and `trial` (13: each study its
## own cluster, as metafor's tests/testthat/test_misc_robust.r); dat.konstantopoulos2011 (yi,
## vi as given) with the clusters `district` (11); and PyMARE's
## pymare/tests/data/robumeta_correlated_effects.csv (27 effects in 10 studies; the data are
## written out below), the data of PyMARE's clubSandwich alignment tests
## (pymare/tests/test_clubsandwich_alignment.py): variances constant within a study
## (`var_constant_within_study`) and varying (`var_within_study`), models ~1, ~within and
## ~within + between, DL and FE, cluster `study`; and 12 made-up effects (`htz0`) whose HTZ
## denominator df are negative.
## Fits: rma(yi, vi, mods, method, test = "z") with the tight control below (one record with
## test = "knha": clubSandwich's sandwich does not use the fit's Var(b)).
## ---------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(metafor)
  library(clubSandwich)
})

OUT   <- file.path("tests", "reference", "metafor_robust_cr2.json")
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

bcg <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg,
              slab = paste(author, year))
bcg$slab <- paste(bcg$author, bcg$year)
bcg$pair <- paste0("p", (seq_len(nrow(bcg)) + 1) %/% 2)
bcg$trial <- paste0("t", bcg$trial)
bcg$first <- as.numeric(bcg$trial == "t1")
kon <- dat.konstantopoulos2011
kon$slab <- paste0("district ", kon$district, ", school ", kon$school)
## pymare/tests/data/robumeta_correlated_effects.csv (neurostuff/PyMARE)
pym <- read.csv(text = "study,effect,var_constant_within_study,within,between,var_within_study
1,-0.0073,0.19,-1.624,-0.882,0.1273
2,1.3934,0.209,-0.305,-0.934,0.3027
2,2.0386,0.209,1.437,-0.934,0.3476
2,0.9493,0.209,0.593,-0.934,0.0962
2,0.7504,0.209,-0.724,-0.934,0.1485
3,0.277,0.163,0.332,-1.085,0.3829
3,0.0764,0.163,-0.057,-1.085,0.0893
4,0.8485,0.193,0.351,-0.32,0.1298
4,-0.1053,0.193,-0.283,-0.32,0.4616
4,0.0949,0.193,0.162,-0.32,0.3292
5,2.1082,0.076,0.036,-1.797,0.0893
6,0.5885,0.133,-0.511,-0.333,0.196
6,1.2319,0.133,-0.372,-0.333,0.2383
6,-0.502,0.133,-2.254,-0.333,0.1301
6,0.5587,0.133,-1.259,-0.333,0.0917
6,0.8294,0.133,-1.044,-0.333,0.2733
7,3.0638,0.282,3.284,-0.201,0.5098
7,-0.9789,0.282,-0.622,-0.201,0.4162
8,-0.2288,0.396,-0.445,-0.997,0.8376
8,-1.0822,0.396,-0.992,-0.997,0.615
8,-0.5791,0.396,-2.323,-0.997,0.9741
9,-1.9666,0.214,-0.882,1.334,0.1775
9,-1.2482,0.214,0.083,1.334,0.3344
10,0.7104,0.352,0.867,-0.882,0.4983
10,-1.2881,0.352,-0.993,-0.882,0.4019
10,2.1542,0.352,3.247,-0.882,0.5781
10,1.1171,0.352,0.318,-0.882,0.3147")
pym$study <- paste0("s", pym$study)
pym$slab <- paste0("study ", pym$study, ", effect ", ave(seq_len(nrow(pym)), pym$study,
                                                          FUN = seq_along))
## the two PyMARE variance columns as two data sets with yi, vi
pym_const <- transform(pym, yi = effect, vi = var_constant_within_study)
pym_vary <- transform(pym, yi = effect, vi = var_within_study)
## 12 made-up effects in 6 clusters where HTZ's denominator df (nu - q + 1) are negative:
## delta = 0, F = 0 and no p-value (QMp NA)
htz0 <- data.frame(
  yi = c(0.057, -0.465, 1.412, -0.144, 0.018, -1.031, 1.186, -0.012, 0.568, -0.261, 0.295, -1.252),
  vi = c(0.459, 0.122, 0.247, 0.474, 0.183, 0.118, 0.442, 0.052, 0.453, 0.13, 0.235, 0.439),
  x1 = c(0.13, -0.97, -1.4, -0.97, 0.77, -1.52, -2.79, 2.11, -0.45, -0.45, -1.14, 1.14),
  x2 = c(0.68, 0.75, 0.47, 0.89, 0.42, -0.17, 1.01, 0.24, -0.54, 0.35, -1.9, 0.15),
  x3 = c(0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0),
  group = c("c1", "c1", "c1", "c2", "c2", "c3", "c3", "c3", "c4", "c5", "c5", "c6"))
htz0$slab <- paste0("e", seq_len(nrow(htz0)))
DATA <- list(bcg = bcg, konstantopoulos2011 = kon, pymare_constant = pym_const,
             pymare_varying = pym_vary, htz0 = htz0)

rows_of <- function(d, cols) {
  lapply(seq_len(nrow(d)), function(i) {
    out <- list(slab = as.character(d$slab[i]), yi = as.numeric(d$yi[i]),
                vi = as.numeric(d$vi[i]))
    for (col in cols) out[[col]] <- d[[col]][i]
    out
  })
}

## (dataset, mods, methods, clusters, newmods for predict: one row per prediction)
CASES <- list(
  list(dataset = "bcg", mods = "~1", methods = c("DL", "REML", "FE"),
       clusters = c("alloc", "pair", "trial")),
  list(dataset = "bcg", mods = "~ablat", methods = c("DL", "REML", "FE"),
       clusters = c("alloc", "pair"), newmods = rbind(10, 55),
       newmods_text = c("ablat=10", "ablat=55")),
  ## three moderator coefficients (HTZ on q = 3); alloc "alternate" lies in pair p3 alone, so
  ## that cluster's B_j is singular (clubSandwich's inverse square root on its range).
  ## Factor coding: R's reference level "alternate" (ivigmeta: --ref alloc=alternate).
  list(dataset = "bcg", mods = "~ablat + factor(alloc)", methods = c("DL", "REML"),
       clusters = c("pair"), newmods = rbind(c(10, 1, 0), c(55, 0, 1)),
       newmods_text = c("ablat=10,alloc=random", "ablat=55,alloc=systematic")),
  ## a cluster of one study fitted exactly (`first`: 1 for trial 1 alone, clusters `trial`):
  ## B_j = 0 for that cluster, whose adjustment A_j is then 0 (the range is empty).
  list(dataset = "bcg", mods = "~first", methods = c("DL", "REML"), clusters = c("trial"),
       newmods = rbind(0.5), newmods_text = c("first=0.5")),
  list(dataset = "konstantopoulos2011", mods = "~1", methods = c("REML"),
       clusters = c("district")),
  list(dataset = "konstantopoulos2011", mods = "~year", methods = c("REML"),
       clusters = c("district"), newmods = rbind(1980), newmods_text = c("year=1980")))
CASES[[length(CASES) + 1]] <- list(dataset = "htz0", mods = "~x1 + x2 + x3", methods = "FE",
                                   clusters = "group", newmods = rbind(c(0, 0, 0)),
                                   newmods_text = "x1=0,x2=0,x3=0")
for (ds in c("pymare_constant", "pymare_varying"))
  for (mods in c("~1", "~within", "~within + between"))
    CASES[[length(CASES) + 1]] <- list(
      dataset = ds, mods = mods, methods = c("DL", "FE"), clusters = c("study"),
      newmods = switch(mods, "~1" = NULL, "~within" = rbind(0.5),
                       "~within + between" = rbind(c(0.5, -0.5))),
      newmods_text = switch(mods, "~1" = NULL, "~within" = "within=0.5",
                            "~within + between" = "within=0.5,between=-0.5"))

robust_record <- function(fit, r, pr) {
  out <- list(k = r$k, p = r$p, n = r$n, tau2 = r$tau2, coef_names = arr(rownames(r$beta)),
              beta = arr(r$beta), se = arr(r$se), tval = arr(r$zval), df = arr(r$dfs),
              pval = arr(r$pval), ci_lb = arr(r$ci.lb), ci_ub = arr(r$ci.ub),
              vb = lapply(seq_len(nrow(r$vb)), function(i) arr(r$vb[i, ])),
              QM = r$QM, QMdf = arr(r$QMdf), QMp = r$QMp, vbest = r$vbest,
              model_se = arr(fit$se),
              pred = arr(pr$pred), pred_se = arr(pr$se), pred_ci_lb = arr(pr$ci.lb),
              pred_ci_ub = arr(pr$ci.ub), pred_df = arr(pr$ddf))
  ## FE fits have no prediction interval beyond the CI.
  out$pred_pi_lb <- arr(if (is.null(pr$pi.lb)) pr$ci.lb else pr$pi.lb)
  out$pred_pi_ub <- arr(if (is.null(pr$pi.ub)) pr$ci.ub else pr$pi.ub)
  out
}

run_case <- function(dataset, mods, method, cl, test = "z", newmods = NULL,
                     newmods_text = NULL) {
  capture(
    list(dataset = dataset, mods = mods, method = method, test = test, cluster = cl,
         newmods_text = if (is.null(newmods)) arr(character(0)) else arr(newmods_text)),
    function() {
      d <- DATA[[dataset]]
      fit <- rma(yi, vi, mods = as.formula(mods), data = d, method = method, test = test,
                 control = CTRL)
      r <- robust(fit, cluster = d[[cl]], clubSandwich = TRUE)
      pr <- if (is.null(newmods)) predict(r) else predict(r, newmods = newmods)
      robust_record(fit, r, pr)
    })
}

records <- list()
for (case in CASES) for (method in case$methods) for (cl in case$clusters)
  records[[length(records) + 1]] <- run_case(case$dataset, case$mods, method, cl,
                                             newmods = case$newmods,
                                             newmods_text = case$newmods_text)
## the fit's test does not enter clubSandwich's sandwich (bread from the weights alone)
records[[length(records) + 1]] <- run_case("bcg", "~1", "DL", "alloc", test = "knha")

## metafor's own pins (tests/testthat/test_misc_robust.r, metafor 4.x):
##   res <- rma(yi, vi, data=dat); sav <- robust(res, cluster=trial, clubSandwich=TRUE)
##   expect_equivalent(c(vcov(sav)), 0.03229357, tolerance=.tol[["var"]])
##   expect_equivalent(sav$dfs, 11.04125, tolerance=.tol[["misc"]])
##   expect_equivalent(sav$zval, -3.97616, tolerance=.tol[["test"]])
## (metafor's default control; the record "bcg ~1 REML trial" is the same fit, tightly
## converged.)
metafor_pins <- list(list(
  source = "wviechtb/metafor tests/testthat/test_misc_robust.r",
  call = "robust(rma(yi, vi, data=dat), cluster=trial, clubSandwich=TRUE)",
  dataset = "bcg", mods = "~1", method = "REML", cluster = "trial",
  vb = 0.03229357, df = 11.04125, tval = -3.97616,
  tolerance = list(var = 1e-6, misc = 1e-6, test = 1e-6)))

## What robust(clubSandwich = TRUE) refuses: no more clusters than coefficients.
errors <- list(
  capture(list(dataset = "bcg", mods = "~ablat + factor(alloc)", method = "DL", test = "z",
               cluster = "alloc"),
          function() {
            fit <- rma(yi, vi, mods = ~ablat + factor(alloc), data = bcg, method = "DL")
            robust(fit, cluster = bcg$alloc, clubSandwich = TRUE)
            list()
          }),
  ## predict() at trial 1's own moderator value (first = 1): that prediction rests on the one
  ## cluster fitted exactly, its CR2 SE is 0 and its Satterthwaite df NaN (metafor stops).
  local({
    fit <- rma(yi, vi, mods = ~first, data = bcg, method = "DL")
    r <- robust(fit, cluster = bcg$trial, clubSandwich = TRUE)
    cs <- clubSandwich::linear_contrast(fit, cluster = bcg$trial, vcov = r$vb,
                                        contrasts = rbind(c(1, 1)))
    ## contrast_df NaN: written as null
    capture(list(dataset = "bcg", mods = "~first", method = "DL", test = "z",
                 cluster = "trial", newmods_text = arr("first=1"), contrast_se = cs$SE,
                 contrast_df = cs$df),
            function() {
              predict(r, newmods = rbind(1))
              list()
            })
  }),
  ## Four studies, each its own cluster. (a) ~x with x = 0 for study a alone: the intercept is
  ## study a's effect, fitted exactly: its CR2 SE is 0 and its Satterthwaite df NaN (metafor
  ## reports them; written as null). (b) ~x1 + x2, dummies of studies b and c: both rest on
  ## the intercept's two studies, their robust Var(b) is singular and metafor stops (no Wald
  ## test).
  local({
    d <- data.frame(yi = c(0.1, 0.4, -0.2, 0.3), vi = c(0.1, 0.2, 0.1, 0.3),
                    x = c(0, 1, 1, 1), cl = c("a", "b", "c", "d"))
    r <- robust(rma(yi, vi, mods = ~x, data = d, method = "FE"), cluster = d$cl,
                clubSandwich = TRUE)
    capture(list(dataset = "four", mods = "~x", method = "FE", test = "z", cluster = "cl",
                 yi = arr(d$yi), vi = arr(d$vi), x = arr(d$x), se = arr(r$se),
                 df = arr(r$dfs)),
            function() list())
  }),
  local({
    d <- data.frame(yi = c(0.1, 0.4, -0.2, 0.3), vi = c(0.1, 0.2, 0.1, 0.3),
                    x1 = c(0, 1, 0, 0), x2 = c(0, 0, 1, 0), cl = c("a", "b", "c", "d"))
    capture(list(dataset = "four", mods = "~x1 + x2", method = "FE", test = "z",
                 cluster = "cl", yi = arr(d$yi), vi = arr(d$vi), x1 = arr(d$x1),
                 x2 = arr(d$x2)),
            function() {
              robust(rma(yi, vi, mods = ~x1 + x2, data = d, method = "FE"), cluster = d$cl,
                     clubSandwich = TRUE)
              list()
            })
  }))

write_json_file(list(
  generated_by = "tests/reference/make_reference_robust_cr2.R",
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  clubSandwich_version = as.character(packageVersion("clubSandwich")),
  generated_on = format(Sys.Date()),
  settings = list(level = 95, control = CTRL),
  datasets = list(bcg = rows_of(bcg, c("ablat", "alloc", "pair", "trial", "first")),
                  konstantopoulos2011 = rows_of(kon, c("district", "year")),
                  pymare_constant = rows_of(pym_const, c("study", "within", "between")),
                  pymare_varying = rows_of(pym_vary, c("study", "within", "between")),
                  htz0 = rows_of(htz0, c("x1", "x2", "x3", "group"))),
  robust = records,
  metafor_pins = metafor_pins,
  errors = errors), OUT)
cat("wrote", OUT, "\n")
