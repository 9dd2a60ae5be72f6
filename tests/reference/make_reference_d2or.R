#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## metafor reference values for escalc's D2ORL, D2ORN and D2OR (an SMD converted to a log odds
## ratio; issue 17): escalc on dat.normand1999 and a small hand-typed set, and rma() pooling
## (DL, REML) of the D2ORL and D2ORN effects of dat.normand1999.
##
## Run from the repository root:
##     Rscript tests/reference/make_reference_d2or.R
## Writes tests/reference/metafor_d2or.json (schema: tests/reference/README.md,
## "metafor_d2or.json").
## ---------------------------------------------------------------------------

suppressPackageStartupMessages(library(metafor))

OUT  <- file.path("tests", "reference", "metafor_d2or.json")
CTRL <- list(threshold = 1e-13, maxiter = 10000, stepadj = 0.5)
source(file.path("tests", "reference", "json_writer.R"))

nd <- dat.normand1999
hand <- data.frame(m1i = c(10, 12, 11, 5), sd1i = c(2, 3, 2, 1), n1i = c(20, 30, 15, 4),
                   m2i = c(9, 10, 11.5, 5), sd2i = c(2.5, 3, 2, 1.5), n2i = c(22, 28, 15, 3))
DATA <- list(
  normand1999 = data.frame(m1i = nd$m1i, sd1i = nd$sd1i, n1i = nd$n1i,
                           m2i = nd$m2i, sd2i = nd$sd2i, n2i = nd$n2i),
  hand = hand)

escalcs <- list()
for (name in names(DATA)) for (measure in c("D2ORL", "D2ORN", "D2OR")) {
  d <- DATA[[name]]
  es <- escalc(measure, m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i,
               n2i = n2i, data = d)
  escalcs[[length(escalcs) + 1]] <- list(dataset = name, measure = measure,
                                         yi = arr(as.numeric(es$yi)),
                                         vi = arr(as.numeric(es$vi)))
}
fits <- list()
for (measure in c("D2ORL", "D2ORN")) for (method in c("DL", "REML")) {
  d <- DATA$normand1999
  es <- escalc(measure, m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i,
               n2i = n2i, data = d)
  fit <- rma(yi, vi, data = es, method = method, control = CTRL)
  fits[[length(fits) + 1]] <- list(dataset = "normand1999", measure = measure, method = method,
                                   beta = fit$beta[1], se = fit$se, ci_lb = fit$ci.lb,
                                   ci_ub = fit$ci.ub, tau2 = fit$tau2, QE = fit$QE,
                                   I2 = fit$I2)
}
out <- list(
  metafor_version = as.character(packageVersion("metafor")),
  r_version = R.version.string,
  datasets = lapply(DATA, function(d) lapply(seq_len(nrow(d)), function(i) as.list(d[i, ]))),
  escalc = escalcs,
  rma = fits)
write_json_file(out, OUT)
cat("wrote", OUT, "\n")
