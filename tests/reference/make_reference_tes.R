#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## metafor reference values for `bias --test tes`: the test of excess significance
## (tes(yi, vi, test = T) with metafor's defaults), on dat.dorn2007 (metafor's own test case),
## dat.bcg and the IVIG studies, log RR.
##
## Run from the repository root:
##     Rscript tests/reference/make_reference_tes.R
## Writes tests/reference/metafor_tes.json (schema: tests/reference/README.md,
## "metafor_tes.json"). metafor finds theta.lim with uniroot()'s default tolerance
## (eps^0.25); `theta_lim_tight` is the same root of metafor's own tes() p-value found with
## tol = 1e-12 (what ivigmeta is compared with).
## ---------------------------------------------------------------------------

suppressPackageStartupMessages(library(metafor))

OUT <- file.path("tests", "reference", "metafor_tes.json")
source(file.path("tests", "reference", "json_writer.R"))

s <- read.csv("studies.csv", stringsAsFactors = FALSE)
DATA <- list(
  dorn2007 = with(dat.dorn2007, data.frame(ai = x.a, n1i = n.a, ci = x.p, n2i = n.p)),
  bcg = with(dat.bcg, data.frame(ai = tpos, n1i = tpos + tneg, ci = cpos, n2i = cpos + cneg)),
  ivig = data.frame(ai = s$treat_events, n1i = s$treat_total, ci = s$control_events,
                    n2i = s$control_total))

records <- list()
for (name in names(DATA)) for (test in c("chi2", "binom", "exact")) {
  d <- DATA[[name]]
  es <- escalc("RR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = d)
  r <- tes(es$yi, es$vi, test = test, progbar = FALSE)
  p_at <- function(t) tes(es$yi, es$vi, theta = t, test = test, progbar = FALSE,
                          find.lim = FALSE)$pval - 0.1
  tight <- NA
  if (!is.null(r$theta.lim) && !is.na(r$theta.lim)) {
    tight <- if (r$theta >= 0) {
      uniroot(p_at, c(0, r$theta), extendInt = "upX", tol = 1e-12)$root
    } else {
      uniroot(p_at, c(r$theta, 0), extendInt = "downX", tol = 1e-12)$root
    }
  }
  records[[length(records) + 1]] <- list(
    dataset = name, measure = "RR", test = test, k = r$k, O = r$O, E = r$E,
    X2 = if (is.na(r$X2)) NA else r$X2, pval = r$pval, theta = r$theta,
    theta_lim = if (is.null(r$theta.lim)) NA else r$theta.lim, theta_lim_tight = tight,
    power = arr(r$power), default_test = tes(es$yi, es$vi, progbar = FALSE)$test)
}

write_json_file(list(
  generated_by = "tests/reference/make_reference_tes.R",
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  generated_on = format(Sys.Date()),
  settings = list(alpha = 0.05, H0 = 0, alternative = "two.sided",
                  tes_alternative = "greater", tes_alpha = 0.1),
  data = list(dorn2007 = list(ai = arr(DATA$dorn2007$ai), n1i = arr(DATA$dorn2007$n1i),
                              ci = arr(DATA$dorn2007$ci), n2i = arr(DATA$dorn2007$n2i))),
  tes = records), OUT)
cat("wrote", OUT, "\n")
