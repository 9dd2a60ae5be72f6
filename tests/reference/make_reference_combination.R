#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## Reference values for Stouffer's and Fisher's combination tests (ivigmeta combine): R's metap
## package (Dewey), sumz() (log.input = TRUE) and sumlog(), on one-sided p-values p = pnorm(-z) of each study's
## z = yi / sqrt(vi) (escalc log RR of the IVIG studies and dat.bcg, and PyMARE's z values of
## its test_combination_tests.py). Modes: directed (p = pnorm(-z)), undirected
## (p = pnorm(-|z|)) and concordant (p = min(1, 2 min(p_up, p_down)), the directed test run on
## z and on -z).
##
## Run from the repository root:
##     Rscript tests/reference/make_reference_combination.R
## Writes tests/reference/combination.json (schema: tests/reference/README.md,
## "combination.json"). Needs metafor (escalc) and metap (Debian r-cran-metap).
## ---------------------------------------------------------------------------

suppressPackageStartupMessages({ library(metafor); library(metap) })

OUT <- file.path("tests", "reference", "combination.json")
source(file.path("tests", "reference", "json_writer.R"))

s <- read.csv("studies.csv", stringsAsFactors = FALSE)
ivig <- escalc("RR", ai = s$treat_events, n1i = s$treat_total, ci = s$control_events,
               n2i = s$control_total)
bcg <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)

SETS <- list(
  pymare_z1 = list(yi = c(2.1, 0.7, -0.2, 4.1, 3.8), vi = rep(1, 5), w = NULL),
  pymare_z2 = list(yi = c(-0.6, -1.61, -2.3, -0.8, -4.01), vi = rep(1, 5), w = NULL),
  ivig = list(yi = as.numeric(ivig$yi), vi = as.numeric(ivig$vi),
              w = s$treat_total + s$control_total),
  bcg = list(yi = as.numeric(bcg$yi), vi = as.numeric(bcg$vi),
             w = dat.bcg$tpos + dat.bcg$tneg + dat.bcg$cpos + dat.bcg$cneg)
)

## The p-values go in on the log scale (log.input = TRUE): metap omits p-values that are exactly
## 0 or 1 in double precision (pnorm(-z) of a study with z < -8.3 is 1), which its log form keeps;
## sumlog() has no log input but keeps p = 1.
directed <- function(z, method, w) {
  logp <- pnorm(-z, log.p = TRUE)
  stopifnot(all(logp < 0))
  if (method == "stouffer") {
    r <- if (is.null(w)) sumz(logp, log.input = TRUE) else
      sumz(logp, weights = w, log.input = TRUE)
    list(statistic = as.numeric(r$z), df = NULL, p = as.numeric(r$p))
  } else {
    r <- sumlog(exp(logp))  # sumlog keeps p <= 1 (a p of 1 adds log 1 = 0)
    list(statistic = as.numeric(r$chisq), df = as.integer(r$df), p = as.numeric(r$p))
  }
}

records <- list()
for (name in names(SETS)) {
  d <- SETS[[name]]
  z <- d$yi / sqrt(d$vi)
  for (method in c("stouffer", "fisher")) {
    for (weighted in if (method == "stouffer" && !is.null(d$w)) c(FALSE, TRUE) else FALSE) {
      w <- if (weighted) d$w else NULL
      for (mode in c("directed", "undirected", "concordant")) {
        if (mode == "concordant") {
          up <- directed(z, method, w)
          down <- directed(-z, method, w)
          p <- min(1, 2 * min(up$p, down$p))
          stat <- if (up$p <= down$p) up$statistic else down$statistic
          df <- up$df
        } else {
          r <- directed(if (mode == "undirected") abs(z) else z, method, w)
          p <- r$p
          stat <- r$statistic
          df <- r$df
        }
        records[[length(records) + 1]] <- list(
          set = name, method = method, mode = mode, weighted = weighted,
          z_in = arr(z), statistic = stat, df = df, p_value = p, z = qnorm(p, lower.tail = FALSE))
      }
    }
  }
}

out <- list(
  metap_version = as.character(packageVersion("metap")),
  metafor_version = as.character(packageVersion("metafor")),
  r_version = R.version.string,
  sets = lapply(SETS, function(d) list(yi = arr(d$yi), vi = arr(d$vi),
                                       w = if (is.null(d$w)) NULL else arr(d$w))),
  tests = records)
write_json_file(out, OUT)
cat("wrote", OUT, "\n")
