#!/usr/bin/env Rscript
## metafor 3.8-1 gosh() on the paper's studies.csv (log RR, escalc defaults), for ivigmeta gosh.
## Run from the repository root: Rscript tests/reference/make_reference_gosh.R
## Writes tests/reference/metafor_gosh.json: for the equal-effects ("FE") and the DL fits, every
## subset (all 2^8 - 1) as the bitmask of its studies in studies.csv order (bit i: row i + 2),
## with gosh()'s estimate (log scale) and I2.
suppressPackageStartupMessages(library(metafor))
source(file.path("tests", "reference", "json_writer.R"))
d <- read.csv("studies.csv", stringsAsFactors = FALSE)
es <- escalc(measure = "RR", ai = treat_events, n1i = treat_total, ci = control_events,
             n2i = control_total, data = d)
one <- function(method) {
  fit <- rma(yi, vi, data = es, method = method)
  g <- gosh(fit, progbar = FALSE, parallel = "no")
  bits <- apply(g$incl, 1, function(r) sum(2^(which(r) - 1)))
  list(method = method, k = fit$k, members = arr(bits), estimate = arr(g$res$estimate),
       i2 = arr(g$res$I2), tau2 = arr(g$res$tau2))
}
out <- list(metafor = as.character(packageVersion("metafor")), r = R.version.string,
            studies = arr(d$study), fits = list(one("FE"), one("DL")))
write_json_file(out, file.path("tests", "reference", "metafor_gosh.json"))
cat("wrote tests/reference/metafor_gosh.json\n")
