#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## metafor reference values for anova(fit, L = ...) (linear combinations of meta-regression
## coefficients; issue 17): on dat.bcg log RR with mods ~ ablat + alloc (REML and DL, test z and
## knha) and on metafor's own test_misc_anova.r example, one and several rows.
##
## Run from the repository root:
##     Rscript tests/reference/make_reference_contrasts.R
## Writes tests/reference/metafor_contrasts.json (schema: tests/reference/README.md,
## "metafor_contrasts.json").
## ---------------------------------------------------------------------------

suppressPackageStartupMessages(library(metafor))
OUT  <- file.path("tests", "reference", "metafor_contrasts.json")
CTRL <- list(threshold = 1e-13, maxiter = 10000, stepadj = 0.5)
source(file.path("tests", "reference", "json_writer.R"))

bcg <- with(dat.bcg, data.frame(slab = author, year = year, ai = tpos, n1i = tpos + tneg,
                                ci = cpos, n2i = cpos + cneg, ablat = ablat, alloc = alloc,
                                stringsAsFactors = FALSE))
es <- escalc("RR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = bcg, slab = slab)
## ivigmeta's default reference level is the first in file order: random (row 1)
es$alloc <- relevel(factor(es$alloc), ref = "random")

## rows of L over (intrcpt, ablat, allocalternate, allocsystematic)
LS <- list(
  one = rbind(c(1, 30, 0, 0)),
  levels = rbind(c(0, 0, 1, -1)),
  two = rbind(c(1, 30, 0, 0), c(0, 0, 1, -1)),
  three = rbind(c(0, 1, 0, 0), c(0, 0, 1, 0), c(0, 0, 0, 1))
)
records <- list()
for (method in c("REML", "DL")) for (test in c("z", "knha")) for (name in names(LS)) {
  fit <- rma(yi, vi, mods = ~ ablat + alloc, data = es, method = method, test = test,
             control = CTRL)
  L <- LS[[name]]
  a <- anova(fit, L = L)
  records[[length(records) + 1]] <- list(
    method = method, test = test, name = name, coef_names = arr(rownames(fit$beta)),
    L = arr(lapply(seq_len(nrow(L)), function(i) arr(L[i, ]))),
    estimate = arr(as.numeric(a$Xb)), se = arr(as.numeric(a$se)),
    zval = arr(as.numeric(a$zval)), pval = arr(as.numeric(a$pval)),
    QM = if (nrow(L) > 1) a$QM else NULL, QMdf = if (nrow(L) > 1) arr(a$QMdf) else NULL,
    QMp = if (nrow(L) > 1) a$QMp else NULL)
}
out <- list(
  metafor_version = as.character(packageVersion("metafor")),
  r_version = R.version.string,
  data = lapply(seq_len(nrow(bcg)), function(i) as.list(bcg[i, ])),
  tests = records)
write_json_file(out, OUT)
cat("wrote", OUT, "\n")
