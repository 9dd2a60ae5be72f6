#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## metafor reference values for rma.mh(correct = TRUE | FALSE) (issue 17): the
## Cochran-Mantel-Haenszel (MH) and Cochran (CO) tests of OR = 1 on dat.bcg and the IVIG studies,
## and the Mantel-Haenszel test of IRR = 1 on dat.nielweise2008, with and without the continuity
## correction.
##
## Run from the repository root:
##     Rscript tests/reference/make_reference_mh_correct.R
## Writes tests/reference/metafor_mh_correct.json (schema: tests/reference/README.md,
## "metafor_mh_correct.json").
## ---------------------------------------------------------------------------

suppressPackageStartupMessages(library(metafor))
OUT <- file.path("tests", "reference", "metafor_mh_correct.json")
source(file.path("tests", "reference", "json_writer.R"))

s <- read.csv("studies.csv", stringsAsFactors = FALSE)
counts <- list(
  bcg = with(dat.bcg, data.frame(slab = paste(author, year), ai = tpos, n1i = tpos + tneg,
                                 ci = cpos, n2i = cpos + cneg)),
  ivig = data.frame(slab = s$study, ai = s$treat_events, n1i = s$treat_total,
                    ci = s$control_events, n2i = s$control_total))
rates <- with(dat.nielweise2008, data.frame(slab = paste(authors, year), x1i = x1i, t1i = t1i,
                                            x2i = x2i, t2i = t2i))
records <- list()
for (name in names(counts)) for (correct in c(TRUE, FALSE)) {
  d <- counts[[name]]
  fit <- rma.mh(measure = "OR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = d,
                correct = correct)
  records[[length(records) + 1]] <- list(dataset = name, measure = "OR", correct = correct,
                                         MH = fit$MH, MHp = fit$MHp, CO = fit$CO,
                                         COp = fit$COp, beta = fit$beta[1])
}
for (correct in c(TRUE, FALSE)) {
  fit <- rma.mh(measure = "IRR", x1i = x1i, t1i = t1i, x2i = x2i, t2i = t2i, data = rates,
                correct = correct)
  records[[length(records) + 1]] <- list(dataset = "nielweise2008", measure = "IRR",
                                         correct = correct, MH = fit$MH, MHp = fit$MHp,
                                         beta = fit$beta[1])
}
out <- list(
  metafor_version = as.character(packageVersion("metafor")),
  r_version = R.version.string,
  datasets = list(
    bcg = lapply(seq_len(nrow(counts$bcg)), function(i) as.list(counts$bcg[i, ])),
    ivig = lapply(seq_len(nrow(counts$ivig)), function(i) as.list(counts$ivig[i, ])),
    nielweise2008 = lapply(seq_len(nrow(rates)), function(i) as.list(rates[i, ]))),
  tests = records)
write_json_file(out, OUT)
cat("wrote", OUT, "\n")
