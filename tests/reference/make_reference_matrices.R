#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## metafor reference values for issue 17 (the model's k x k matrices): vcov(fit) and
## vcov(fit, type = "obs" | "fitted" | "resid"), hatvalues(fit, type = "matrix") and
## weights(fit, type = "matrix") of rma.uni fits with and without moderators (REML, DL, FE;
## test = "z" and "knha"; user weights), and weights(type = "matrix") of
## rma.mh (OR, RR, RD on dat.bcg; IRR, IRD on dat.nielweise2008) and rma.peto fits.
##
## Run from the repository root:
##     Rscript tests/reference/make_reference_matrices.R
## Writes tests/reference/metafor_matrices.json (schema: tests/reference/README.md,
## "metafor_matrices.json"). Matrices are written row by row (a list of rows).
##
## Conventions as make_reference.R: analysis scale (log RR), escalc defaults (add = 1/2,
## to = "only0"), level 95, metafor's dotted names with "_". Iterative fits use the tight
## control below.
## ---------------------------------------------------------------------------

suppressPackageStartupMessages(library(metafor))

OUT  <- file.path("tests", "reference", "metafor_matrices.json")
CTRL <- list(threshold = 1e-13, maxiter = 10000, stepadj = 0.5)

source(file.path("tests", "reference", "json_writer.R"))
source(file.path("tests", "reference", "shared_fits.R"))

bcg <- with(dat.bcg, data.frame(slab = paste(author, year), ai = tpos, n1i = tpos + tneg,
                                ci = cpos, n2i = cpos + cneg, ablat = ablat, year = year,
                                w = seq_len(13), stringsAsFactors = FALSE))
niel <- with(dat.nielweise2008, data.frame(slab = paste(authors, year), x1i = x1i, t1i = t1i,
                                           x2i = x2i, t2i = t2i, stringsAsFactors = FALSE))

es <- escalc("RR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = bcg, slab = slab)

CASES <- list(
  list(mods = "~1", method = "DL", test = "z", user_weights = FALSE, weighted = TRUE),
  list(mods = "~1", method = "REML", test = "z", user_weights = FALSE, weighted = TRUE),
  list(mods = "~1", method = "FE", test = "z", user_weights = FALSE, weighted = TRUE),
  list(mods = "~1", method = "DL", test = "knha", user_weights = FALSE, weighted = TRUE),
  list(mods = "~ablat", method = "REML", test = "z", user_weights = FALSE, weighted = TRUE),
  list(mods = "~ablat", method = "DL", test = "knha", user_weights = FALSE, weighted = TRUE),
  list(mods = "~ablat", method = "FE", test = "z", user_weights = FALSE, weighted = TRUE),
  list(mods = "~ablat + year", method = "REML", test = "z", user_weights = FALSE, weighted = TRUE),
  list(mods = "~ablat", method = "REML", test = "z", user_weights = TRUE, weighted = TRUE),
  list(mods = "~1", method = "DL", test = "z", user_weights = TRUE, weighted = TRUE)
)

uni <- lapply(CASES, function(cs) {
  fit <- if (cs$user_weights) {
    rma(yi, vi, mods = as.formula(cs$mods), data = es, method = cs$method, test = cs$test,
        weights = w, control = CTRL)
  } else {
    rma(yi, vi, mods = as.formula(cs$mods), data = es, method = cs$method, test = cs$test,
        weighted = cs$weighted, control = CTRL)
  }
  c(cs, list(dataset = "bcg", measure = "RR", k = fit$k, tau2 = fit$tau2,
             coef_names = arr(rownames(fit$beta)), beta = arr(fit$beta),
             slab = arr(as.character(fit$slab)),
             vcov = rows_of(vcov(fit)), obs = rows_of(vcov(fit, type = "obs")),
             fitted = rows_of(vcov(fit, type = "fitted")),
             resid = rows_of(vcov(fit, type = "resid")),
             hat = rows_of(hatvalues(fit, type = "matrix")),
             hat_diagonal = arr(unname(hatvalues(fit))),
             weights = rows_of(weights(fit, type = "matrix")),
             weights_percent = arr(unname(weights(fit)))))
})

counts <- list()
for (measure in c("OR", "RR", "RD")) {
  fit <- rma.mh(measure = measure, ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = bcg,
                slab = slab)
  counts[[length(counts) + 1]] <- list(
    dataset = "bcg", method = "MH", measure = measure, k = fit$k,
    slab = arr(as.character(fit$slab)), vcov = rows_of(vcov(fit)),
    fitted = rows_of(vcov(fit, type = "fitted")),
    weights = rows_of(weights(fit, type = "matrix")), weights_percent = arr(unname(weights(fit))))
}
fit <- rma.peto(ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = bcg, slab = slab)
counts[[length(counts) + 1]] <- list(
  dataset = "bcg", method = "PETO", measure = "PETO", k = fit$k,
  slab = arr(as.character(fit$slab)), vcov = rows_of(vcov(fit)),
  fitted = rows_of(vcov(fit, type = "fitted")),
  weights = rows_of(weights(fit, type = "matrix")), weights_percent = arr(unname(weights(fit))))
for (measure in c("IRR", "IRD")) {
  fit <- rma.mh(measure = measure, x1i = x1i, t1i = t1i, x2i = x2i, t2i = t2i, data = niel,
                slab = slab)
  counts[[length(counts) + 1]] <- list(
    dataset = "nielweise2008", method = "MH", measure = measure, k = fit$k,
    slab = arr(as.character(fit$slab)), vcov = rows_of(vcov(fit)),
    fitted = rows_of(vcov(fit, type = "fitted")),
    weights = rows_of(weights(fit, type = "matrix")), weights_percent = arr(unname(weights(fit))))
}

out <- list(
  metafor_version = as.character(packageVersion("metafor")),
  r_version = R.version.string,
  settings = list(control = CTRL),
  datasets = list(
    bcg = lapply(seq_len(nrow(bcg)), function(i) as.list(bcg[i, ])),
    nielweise2008 = lapply(seq_len(nrow(niel)), function(i) as.list(niel[i, ]))),
  rma_uni = uni,
  counts = counts)
write_json_file(out, OUT)
cat("wrote", OUT, "\n")
