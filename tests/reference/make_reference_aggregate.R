#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## metafor reference values for `ivigmeta aggregate`: aggregate.escalc(), which collapses
## dependent effect sizes within clusters into one effect per cluster, and rma() of the
## aggregated effects (the pipeline `ivigmeta aggregate ... -f csv | ivigmeta pool`).
##
## Run from the repository root:
##     Rscript tests/reference/make_reference_aggregate.R
## Writes tests/reference/metafor_aggregate.json (schema: tests/reference/README.md,
## "metafor_aggregate.json").
##
## The cases follow metafor's own tests (tests/testthat/test_misc_aggregate.r): dat.assink2016
## (CS rho 0.6; CAR with time = esid, phi 0.9; ID; unweighted), dat.konstantopoulos2011 by
## district (ID, addk; unweighted), and 2x2 counts: escalc("RR") of dat.bcg clustered by alloc.
## ---------------------------------------------------------------------------

suppressPackageStartupMessages(library(metafor))

OUT  <- file.path("tests", "reference", "metafor_aggregate.json")
CTRL <- list(threshold = 1e-13, maxiter = 10000, stepadj = 0.5)

source(file.path("tests", "reference", "json_writer.R"))

columns_of <- function(df) {
  out <- lapply(names(df), function(n) {
    v <- df[[n]]
    if (is.factor(v)) v <- as.character(v)
    arr(v)
  })
  setNames(out, names(df))
}

## The input tables, as the Python tests write them to CSV (column order kept).
assink <- dat.assink2016
assink$rho_s <- (assink$study %% 5 + 1) / 10        # a per-cluster rho: 0.1 .. 0.5 by study
konst <- as.data.frame(dat.konstantopoulos2011)
konst <- konst[, c("district", "school", "study", "year", "yi", "vi")]
bcg <- dat.bcg[, c("trial", "author", "year", "tpos", "tneg", "cpos", "cneg", "ablat", "alloc")]
DATA <- list(assink2016 = assink, konstantopoulos2011 = konst, bcg = bcg)

effects_of <- function(name) {
  d <- DATA[[name]]
  if (name == "bcg") {
    escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = d)
  } else {
    escalc(yi = yi, vi = vi, data = d)
  }
}

fit_record <- function(agg, method) {
  res <- rma(yi, vi, data = agg, method = method, test = "z", control = CTRL)
  list(method = method, k = res$k, beta = as.numeric(res$beta), se = res$se,
       ci_lb = res$ci.lb, ci_ub = res$ci.ub, tau2 = res$tau2, QE = res$QE)
}

## case: name, dataset, cluster, struct, rho, phi, time, weighted, per-cluster rho column
CASES <- list(
  list(name = "assink_cs", data = "assink2016", cluster = "study", struct = "CS", rho = 0.6),
  list(name = "assink_car", data = "assink2016", cluster = "study", struct = "CAR",
       phi = 0.9, time = "esid"),
  list(name = "assink_id", data = "assink2016", cluster = "study", struct = "ID"),
  list(name = "assink_cs_unweighted", data = "assink2016", cluster = "study", struct = "CS",
       rho = 0.6, weighted = FALSE),
  list(name = "assink_cs_car", data = "assink2016", cluster = "study", struct = "CS+CAR",
       rho = 0.3, phi = 0.8, time = "esid"),
  list(name = "assink_cs_rho_column", data = "assink2016", cluster = "study", struct = "CS",
       rho_column = "rho_s"),
  list(name = "assink_cs_negative", data = "assink2016", cluster = "study", struct = "CS",
       rho = -0.04),
  list(name = "konstantopoulos_id", data = "konstantopoulos2011", cluster = "district",
       struct = "ID"),
  list(name = "konstantopoulos_id_unweighted", data = "konstantopoulos2011",
       cluster = "district", struct = "ID", weighted = FALSE),
  list(name = "konstantopoulos_cs", data = "konstantopoulos2011", cluster = "district",
       struct = "CS", rho = 0.5),
  list(name = "bcg_rr_cs", data = "bcg", cluster = "alloc", struct = "CS", rho = 0.6),
  list(name = "bcg_rr_car", data = "bcg", cluster = "alloc", struct = "CAR", phi = 0.7,
       time = "year")
)

records <- list()
for (case in CASES) {
  es <- effects_of(case$data)
  weighted <- if (is.null(case$weighted)) TRUE else case$weighted
  args <- list(x = es, cluster = es[[case$cluster]], struct = case$struct,
               weighted = weighted, addk = TRUE)
  if (!is.null(case$rho_column)) {
    ## one rho per cluster, in the order of the clusters' first appearance
    first <- !duplicated(es[[case$cluster]])
    args$rho <- es[[case$rho_column]][first]
  } else if (!is.null(case$rho)) {
    args$rho <- case$rho
  }
  if (!is.null(case$phi)) args$phi <- case$phi
  if (!is.null(case$time)) args$time <- es[[case$time]]
  agg <- do.call(aggregate, args)
  ## the aggregated escalc object as written (ki: metafor's addk column)
  other <- setdiff(names(agg), c("yi", "vi", "ki", case$cluster))
  records[[length(records) + 1]] <- list(
    name = case$name, data = case$data, cluster = case$cluster, struct = case$struct,
    rho = if (is.null(case$rho)) NULL else case$rho,
    rho_column = if (is.null(case$rho_column)) NULL else case$rho_column,
    phi = if (is.null(case$phi)) NULL else case$phi,
    time = if (is.null(case$time)) NULL else case$time,
    weighted = weighted,
    measure = if (case$data == "bcg") "RR" else "GEN",
    clusters = arr(as.character(agg[[case$cluster]])),
    ki = arr(as.integer(agg$ki)),
    yi = arr(as.numeric(agg$yi)),
    vi = arr(as.numeric(agg$vi)),
    columns = columns_of(agg[, other, drop = FALSE]),
    fits = list(fit_record(agg, "DL"), fit_record(agg, "REML"))
  )
}

## What aggregate() refuses: a non-positive-definite V (rho = -1: two perfectly negatively
## correlated estimates), a rho outside [-1, 1], CAR without a time variable.
errors <- list()
err_case <- function(name, expr) {
  msg <- tryCatch(suppressWarnings({ expr; "" }), error = function(e) conditionMessage(e))
  errors[[length(errors) + 1]] <<- list(name = name, error = msg)
}
es <- effects_of("assink2016")
err_case("not_positive_definite", aggregate(es, cluster = study, rho = -1))
err_case("rho_outside", aggregate(es, cluster = study, rho = 1.5))
err_case("car_without_time", aggregate(es, cluster = study, struct = "CAR", phi = 0.5))

write_json_file(list(
  metafor_version = as.character(packageVersion("metafor")),
  R_version = paste(R.version$major, R.version$minor, sep = "."),
  data = lapply(DATA, columns_of),
  records = records,
  errors = errors
), OUT)
cat("wrote", OUT, "\n")
