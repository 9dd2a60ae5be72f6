#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## metafor reference values for cluster-robust inference: robust(fit, cluster, adjust) of
## rma.uni fits with and without moderators (metafor's default sandwich, clubSandwich = FALSE;
## the clubSandwich package is not used), and predict() of the robust object.
##
## Run from the repository root:
##     Rscript tests/reference/make_reference_robust.R
## Writes tests/reference/metafor_robust.json (schema: tests/reference/README.md,
## "metafor_robust.json").
##
## Data: dat.bcg (log RR, escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg)) with the
## clusters `alloc` (3 clusters) and `pair` (trials 1-2, 3-4, ..., 13: 7 clusters); and
## dat.konstantopoulos2011 (yi, vi as given) with the clusters `district` (11 clusters).
## Fits: rma(yi, vi, mods, method, test = "z") with the tight control below; robust() uses the
## fit's tau², beta and (X' W X)^-1, so test = "z" is the fit it is applied to.
## ---------------------------------------------------------------------------

suppressPackageStartupMessages(library(metafor))

OUT   <- file.path("tests", "reference", "metafor_robust.json")
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
bcg$pair <- paste0("p", (seq_len(nrow(bcg)) + 1) %/% 2)
kon <- dat.konstantopoulos2011
kon$slab <- paste0("district ", kon$district, ", school ", kon$school)
DATA <- list(bcg = bcg, konstantopoulos2011 = kon)

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
       clusters = c("alloc", "pair"), newmods = NULL),
  list(dataset = "bcg", mods = "~ablat", methods = c("DL", "REML", "FE"),
       clusters = c("alloc", "pair"), newmods = c(10, 55), newmods_text = c("ablat=10", "ablat=55")),
  list(dataset = "konstantopoulos2011", mods = "~1", methods = c("REML"),
       clusters = c("district"), newmods = NULL),
  list(dataset = "konstantopoulos2011", mods = "~year", methods = c("REML"),
       clusters = c("district"), newmods = c(1980), newmods_text = c("year=1980")))

records <- list()
for (case in CASES) for (method in case$methods) for (cl in case$clusters)
  for (adjust in c(TRUE, FALSE)) {
    records[[length(records) + 1]] <- capture(
      list(dataset = case$dataset, mods = case$mods, method = method, test = "z",
           cluster = cl, adjust = adjust,
           newmods_text = if (is.null(case$newmods)) arr(character(0)) else arr(case$newmods_text)),
      function() {
        d <- DATA[[case$dataset]]
        fit <- rma(yi, vi, mods = as.formula(case$mods), data = d, method = method,
                   control = CTRL)
        r <- robust(fit, cluster = d[[cl]], adjust = adjust)
        pr <- if (is.null(case$newmods)) predict(r) else predict(r, newmods = case$newmods)
        out <- list(k = r$k, p = r$p, n = r$n, cluster_values = arr(as.character(d[[cl]])),
                    tau2 = r$tau2, coef_names = arr(rownames(r$beta)), beta = arr(r$beta),
                    se = arr(r$se), tval = arr(r$zval), df = r$dfs, pval = arr(r$pval),
                    ci_lb = arr(r$ci.lb), ci_ub = arr(r$ci.ub),
                    vb = lapply(seq_len(nrow(r$vb)), function(i) arr(r$vb[i, ])),
                    QM = r$QM, QMdf = arr(r$QMdf), QMp = r$QMp, vbest = r$vbest,
                    model_se = arr(fit$se),
                    pred = arr(pr$pred), pred_se = arr(pr$se), pred_ci_lb = arr(pr$ci.lb),
                    pred_ci_ub = arr(pr$ci.ub))
        ## FE fits have no prediction interval beyond the CI.
        out$pred_pi_lb <- arr(if (is.null(pr$pi.lb)) pr$ci.lb else pr$pi.lb)
        out$pred_pi_ub <- arr(if (is.null(pr$pi.ub)) pr$ci.ub else pr$pi.ub)
        out
      })
  }

## What robust() refuses: no more clusters than coefficients (dat.bcg ~ablat + alloc as
## moderators with the 3 alloc clusters).
errors <- list(
  capture(list(dataset = "bcg", mods = "~ablat + factor(alloc)", method = "DL", test = "z",
               cluster = "alloc", adjust = TRUE),
          function() {
            fit <- rma(yi, vi, mods = ~ablat + factor(alloc), data = bcg, method = "DL")
            robust(fit, cluster = bcg$alloc)
            list()
          }))

write_json_file(list(
  generated_by = "tests/reference/make_reference_robust.R",
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  generated_on = format(Sys.Date()),
  settings = list(level = 95, add = 0.5, to = "only0", control = CTRL),
  datasets = list(bcg = rows_of(bcg, c("ablat", "alloc", "pair")),
                  konstantopoulos2011 = rows_of(kon, c("district", "year"))),
  robust = records,
  errors = errors), OUT)
cat("wrote", OUT, "\n")
