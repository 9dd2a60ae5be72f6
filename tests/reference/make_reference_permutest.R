#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## metafor reference values for issue 17 item 5: exact permutation tests of meta-regression
## and intercept-only models (permutest(fit, exact = TRUE)).
##
## Run from the repository root:
##     Rscript tests/reference/make_reference_permutest.R
## Writes tests/reference/metafor_permutest.json (schema: tests/reference/README.md,
## "metafor_permutest.json").
##
## Only exact tests are pinned: an approximate test draws from R's random number generator,
## which ivigmeta does not reproduce. Conventions as make_reference.R: log RR, escalc defaults
## (add = 1/2, to = "only0"), level 95. Iterative fits use the tight control below.
## ---------------------------------------------------------------------------

suppressPackageStartupMessages(library(metafor))

OUT  <- file.path("tests", "reference", "metafor_permutest.json")
CTRL <- list(threshold = 1e-13, maxiter = 10000, stepadj = 0.5)

source(file.path("tests", "reference", "json_writer.R"))

s <- read.csv("studies.csv", stringsAsFactors = FALSE)
ivig <- data.frame(ai = s$treat_events, n1i = s$treat_total, ci = s$control_events,
                   n2i = s$control_total, nk_criterion = s$nk_criterion,
                   stringsAsFactors = FALSE)
bcg <- with(dat.bcg, data.frame(ai = tpos, n1i = tpos + tneg, ci = cpos, n2i = cpos + cneg,
                                ablat = ablat, alloc = alloc, stringsAsFactors = FALSE))
## The first 8 BCG trials: a continuous moderator with 8! / (2! 2!) = 10080 distinct orders.
DATA <- list(ivig = ivig, bcg = bcg, bcg8 = bcg[1:8, ])

CASES <- list(
  list(dataset = "ivig", mods = "~1"),
  list(dataset = "ivig", mods = "~nk_criterion"),
  list(dataset = "bcg8", mods = "~ablat"),
  list(dataset = "bcg", mods = "~factor(alloc)"),
  list(dataset = "bcg", mods = "~1"))

records <- list()
for (case in CASES) for (method in c("DL", "REML", "FE")) for (test in c("z", "knha")) {
  if (case$dataset == "bcg" && case$mods == "~factor(alloc)" && method == "REML") next
  es <- escalc("RR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = DATA[[case$dataset]])
  fit <- rma(yi, vi, mods = as.formula(case$mods), data = es, method = method, test = test,
             control = CTRL)
  pt <- permutest(fit, exact = TRUE, progbar = FALSE)
  records[[length(records) + 1]] <- list(
    dataset = case$dataset, measure = "RR", mods = case$mods, method = method, test = test,
    k = fit$k, coef_names = arr(rownames(fit$beta)), beta = arr(fit$beta),
    zval = arr(fit$zval), QM = fit$QM,
    pval = arr(pt$pval), QMp = pt$QMp)
}

write_json_file(list(
  generated_by = "tests/reference/make_reference_permutest.R",
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  generated_on = format(Sys.Date()),
  settings = list(level = 95, add = 0.5, to = "only0", control = CTRL, exact = TRUE),
  permutest = records), OUT)
cat("wrote", OUT, "\n")
