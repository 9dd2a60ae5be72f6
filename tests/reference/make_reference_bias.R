#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## metafor reference values for issue 17 items 6 and 7: the Mantel-Haenszel model statistics
## (Cochran-Mantel-Haenszel, Breslow-Day, Tarone), leave-one-out and cumulative analyses of
## rma.mh / rma.peto fits, regtest() for every predictor x model, and fsn() for every type.
##
## Run from the repository root:
##     Rscript tests/reference/make_reference_bias.R
## Writes tests/reference/metafor_bias.json (schema: tests/reference/README.md,
## "metafor_bias.json").
##
## Conventions as make_reference.R: analysis scale (log RR, log OR), escalc defaults
## (add = 1/2, to = "only0", drop00 = FALSE), rma.mh / rma.peto with their own defaults
## (correct = TRUE), level 95, metafor's dotted names with "_" (ci.lb -> ci_lb); each record
## computed inside capture(): an R error becomes "error", R warnings go to "warnings".
## ---------------------------------------------------------------------------

suppressPackageStartupMessages(library(metafor))

OUT   <- file.path("tests", "reference", "metafor_bias.json")
LEVEL <- 95
CTRL  <- list(threshold = 1e-10, maxiter = 1000, tol = 1e-12)

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
nn <- function(x) if (is.null(x)) NA_real_ else unname(x)

## ===========================================================================
## Data sets: three with 2x2 counts, one with given log odds ratios only
## ===========================================================================

make_datasets <- function() {
  s <- read.csv("studies.csv", stringsAsFactors = FALSE)
  ivig <- data.frame(study = s$study, year = as.integer(s$year),
                     ai = as.integer(s$treat_events), n1i = as.integer(s$treat_total),
                     ci = as.integer(s$control_events), n2i = as.integer(s$control_total),
                     stringsAsFactors = FALSE)
  bcg <- with(dat.bcg, data.frame(
    study = author, year = as.integer(year), ai = as.integer(tpos),
    n1i = as.integer(tpos + tneg), ci = as.integer(cpos),
    n2i = as.integer(cpos + cneg), stringsAsFactors = FALSE))
  li <- with(dat.li2007, data.frame(
    study = as.character(study), year = as.integer(year), ai = as.integer(ai),
    n1i = as.integer(n1i), ci = as.integer(ci), n2i = as.integer(n2i),
    stringsAsFactors = FALSE))
  hack <- with(dat.hackshaw1998, data.frame(
    study = as.character(author), year = as.integer(year), yi = yi, vi = vi,
    stringsAsFactors = FALSE))
  sets <- list(
    ivig = list(data = ivig, counts = TRUE,
      source = "the repository's studies.csv (8 IVIG RCTs; ai/n1i IVIG, ci/n2i control)"),
    bcg = list(data = bcg, counts = TRUE,
      source = "metadat dat.bcg (ai = tpos, n1i = tpos + tneg, ci = cpos, n2i = cpos + cneg)"),
    li2007 = list(data = li, counts = TRUE,
      source = "metadat dat.li2007 (magnesium after myocardial infarction; death)"),
    hackshaw1998 = list(data = hack, counts = FALSE,
      source = "metadat dat.hackshaw1998 (passive smoking and lung cancer; yi = log OR, vi given)"))
  for (nm in names(sets)) {
    d <- sets[[nm]]$data
    rownames(d) <- NULL
    d$slab <- make.unique(paste(d$study, d$year), sep = " ")
    sets[[nm]]$data <- d
  }
  sets
}

dataset_json <- function(ds) {
  d <- ds$data
  cols <- if (ds$counts) c("ai", "n1i", "ci", "n2i") else c("yi", "vi")
  rows <- lapply(seq_len(nrow(d)), function(i) {
    r <- list(row = i, study = d$study[i], slab = d$slab[i], year = d$year[i])
    for (m in cols) r[[m]] <- d[[m]][i]
    r
  })
  list(source = ds$source, k = nrow(d), counts = ds$counts, rows = rows)
}

es_for <- function(ds, measure) {
  d <- ds$data
  if (ds$counts) {
    escalc(measure = measure, ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = d, slab = slab)
  } else {
    escalc(measure = "GEN", yi = yi, vi = vi, data = d, slab = slab)
  }
}
count_sets <- function(sets) sets[vapply(sets, function(s) s$counts, TRUE)]
mh_fit <- function(d, measure, correct = TRUE)
  rma.mh(measure = measure, ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = d, slab = slab,
         correct = correct, level = LEVEL)
peto_fit <- function(d)
  rma.peto(ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = d, slab = slab, level = LEVEL)

## ===========================================================================
## rma_mh_tests: rma.mh's model statistics (OR; for RR and RD metafor leaves them NA)
## ===========================================================================

block_mh_tests <- function(sets) {
  out <- list()
  for (nm in names(count_sets(sets))) for (m in c("OR", "RR", "RD")) for (cor in c(TRUE, FALSE)) {
    if (m != "OR" && !cor) next
    out[[length(out) + 1]] <- capture(
      list(dataset = nm, measure = m, correct = cor), function() {
        f <- mh_fit(sets[[nm]]$data, m, cor)
        list(beta = c(f$beta), se = f$se,
             MH = nn(f$MH), MHp = nn(f$MHp), CO = nn(f$CO), COp = nn(f$COp),
             BD = nn(f$BD), BDp = nn(f$BDp), TA = nn(f$TA), TAp = nn(f$TAp),
             k_pos = nn(f$k.pos), k = f$k)
      })
  }
  ## hand-made edge cases: one table without information (a = c = 0), and a single study
  edge <- list(
    one_uninformative = data.frame(ai = c(3L, 0L, 5L), n1i = c(20L, 15L, 30L),
                                   ci = c(6L, 0L, 9L), n2i = c(21L, 14L, 28L)),
    common_or_one = data.frame(ai = c(2L, 4L), n1i = c(4L, 8L), ci = c(2L, 4L), n2i = c(4L, 8L)))
  for (nm in names(edge)) {
    d <- edge[[nm]]
    d$slab <- paste("Study", seq_len(nrow(d)))
    out[[length(out) + 1]] <- capture(
      list(dataset = nm, measure = "OR", correct = TRUE, rows = d[, 1:4]), function() {
        f <- mh_fit(d, "OR")
        list(beta = c(f$beta), se = f$se,
             MH = nn(f$MH), MHp = nn(f$MHp), CO = nn(f$CO), COp = nn(f$COp),
             BD = nn(f$BD), BDp = nn(f$BDp), TA = nn(f$TA), TAp = nn(f$TAp),
             k_pos = nn(f$k.pos), k = f$k)
      })
  }
  out
}

## ===========================================================================
## leave1out / cumul of rma.mh, rma.peto and rma(method = "FE") fits (ivigmeta --model common
## with --common MH, PETO, IV)
## ===========================================================================

sens_values <- function(x) list(
  slab = arr(as.character(x$slab)), estimate = arr(x$estimate), se = arr(x$se),
  zval = arr(x$zval), pval = arr(x$pval), ci_lb = arr(x$ci.lb), ci_ub = arr(x$ci.ub),
  Q = arr(x$Q), Qp = arr(x$Qp), I2 = arr(x$I2), H2 = arr(x$H2))

block_sens <- function(sets, what) {
  out <- list()
  for (nm in names(count_sets(sets))) for (method in c("MH", "PETO", "FE")) {
    measures <- if (method == "PETO") "OR" else if (method == "FE") c("OR", "RR") else
      c("OR", "RR", "RD")
    for (m in measures) {
      out[[length(out) + 1]] <- capture(
        list(dataset = nm, measure = m, method = method,
             order_by = if (what == "cumul") "year" else NA), function() {
          d <- sets[[nm]]$data
          f <- if (method == "MH") mh_fit(d, m) else if (method == "PETO") peto_fit(d) else
            rma(yi, vi, data = es_for(sets[[nm]], m), method = "FE", level = LEVEL)
          x <- if (what == "cumul") cumul(f, order = d$year) else leave1out(f)
          sens_values(x)
        })
    }
  }
  out
}

## ===========================================================================
## regtest: every predictor x model, the fit's tau^2 method (DL, REML) and test (z, knha)
## ===========================================================================

PREDICTORS <- c("sei", "vi", "ni", "ninv", "sqrtni", "sqrtninv")

block_regtest <- function(sets) {
  out <- list()
  for (nm in names(sets)) {
    m <- if (nm == "li2007") "OR" else if (nm == "hackshaw1998") "GEN" else "RR"
    es <- es_for(sets[[nm]], m)
    for (method in c("DL", "REML")) for (test in c("z", "knha")) {
      if (method == "REML" && test == "knha") next
      fit <- rma(yi, vi, data = es, method = method, test = test, level = LEVEL,
                 control = CTRL)
      for (model in c("rma", "lm")) for (pred in PREDICTORS) {
        if (model == "lm" && (method != "DL" || test != "z")) next
        out[[length(out) + 1]] <- capture(
          list(dataset = nm, measure = m, model = model, predictor = pred,
               method = if (model == "rma") method else NA,
               test = if (model == "rma") test else "t"), function() {
            r <- regtest(fit, model = model, predictor = pred)
            cf <- if (model == "rma") coef(summary(r$fit)) else coef(summary(r$fit))
            list(zval = r$zval, pval = r$pval, dfs = nn(r$dfs),
                 est = nn(r$est), ci_lb = nn(r$ci.lb), ci_ub = nn(r$ci.ub),
                 coef_est = arr(cf[, 1]), coef_se = arr(cf[, 2]),
                 tau2 = if (model == "rma") r$fit$tau2 else NA)
          })
      }
    }
  }
  out
}

## ===========================================================================
## fsn: every type of metafor 3.8-1 except REM (a simulation: rnorm draws, not reproducible)
## ===========================================================================

block_fsn <- function(sets) {
  out <- list()
  for (nm in names(sets)) {
    m <- if (nm == "li2007") "OR" else if (nm == "hackshaw1998") "GEN" else "RR"
    es <- es_for(sets[[nm]], m)
    variants <- list(
      list(type = "Rosenthal", weighted = FALSE, target = NULL, alpha = 0.05),
      list(type = "Rosenthal", weighted = FALSE, target = NULL, alpha = 0.1),
      list(type = "Orwin", weighted = FALSE, target = NULL, alpha = 0.05),
      list(type = "Orwin", weighted = TRUE, target = NULL, alpha = 0.05),
      list(type = "Orwin", weighted = FALSE, target = 0.05, alpha = 0.05),
      list(type = "Orwin", weighted = TRUE, target = 0.05, alpha = 0.05),
      list(type = "Rosenberg", weighted = FALSE, target = NULL, alpha = 0.05),
      list(type = "Rosenberg", weighted = FALSE, target = NULL, alpha = 0.1))
    for (v in variants) {
      out[[length(out) + 1]] <- capture(
        list(dataset = nm, measure = m, type = v$type, weighted = v$weighted,
             target_given = if (is.null(v$target)) NA else v$target, alpha = v$alpha),
        function() {
          r <- if (is.null(v$target)) {
            fsn(es$yi, es$vi, type = v$type, weighted = v$weighted, alpha = v$alpha)
          } else {
            fsn(es$yi, es$vi, type = v$type, weighted = v$weighted, alpha = v$alpha,
                target = v$target)
          }
          list(fsnum = r$fsnum, pval = nn(r$pval), meanes = nn(r$meanes),
               target = nn(r$target))
        })
    }
  }
  out
}

## ===========================================================================

sanity <- function(sets) {
  f <- mh_fit(sets$li2007$data, "OR")
  ## metafor's printout for dat.li2007 (rma.mh, OR): CMH = 0.2179, Tarone = 64.9633
  stopifnot(abs(f$MH - 0.2179) < 1e-4, abs(f$TA - 64.9633) < 1e-4)
  r <- regtest(rma(yi, vi, data = es_for(sets$ivig, "RR"), method = "DL"), model = "lm")
  stopifnot(abs(r$pval - 0.3616) < 1e-4)   # the paper's Egger p = 0.362
}

main <- function() {
  sets <- make_datasets()
  sanity(sets)
  res <- list(
    generated_by = "tests/reference/make_reference_bias.R",
    r_version = R.version.string,
    metafor_version = as.character(packageVersion("metafor")),
    metadat_version = as.character(packageVersion("metadat")),
    generated_on = format(Sys.Date()),
    settings = list(level = LEVEL, rma_control = CTRL),
    datasets = lapply(sets, dataset_json),
    mh_tests = block_mh_tests(sets),
    leave1out_common = block_sens(sets, "leave1out"),
    cumul_common = block_sens(sets, "cumul"),
    regtest = block_regtest(sets),
    fsn = block_fsn(sets))
  write_json_file(res, OUT)
  blocks <- names(res)[vapply(res, function(x) is.list(x) && is.null(names(x)), TRUE)]
  for (b in blocks) {
    n_err <- sum(vapply(res[[b]], function(r) !is.null(r$error), TRUE))
    cat(sprintf("%-18s %4d records, %3d errors\n", b, length(res[[b]]), n_err))
  }
  cat(sprintf("wrote %s (%.0f kB)\n", OUT, file.size(OUT) / 1024))
}

main()
