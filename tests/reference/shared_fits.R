## Shared by make_reference_fixed_tau2.R, make_reference_unweighted.R and
## make_reference_matrices.R (source after json_writer.R): the IVIG and dat.bcg counts as those
## scripts write them, a fit's fitstats() as a record, and a matrix as a JSON list of rows.

## IVIG (studies.csv) and dat.bcg counts with their label columns: slab, year, ai, n1i, ci, n2i
## and nk_criterion / ablat.
reference_counts <- function() {
  s <- read.csv("studies.csv", stringsAsFactors = FALSE)
  ivig <- data.frame(slab = s$study, year = s$year, ai = s$treat_events, n1i = s$treat_total,
                     ci = s$control_events, n2i = s$control_total,
                     nk_criterion = s$nk_criterion, stringsAsFactors = FALSE)
  bcg <- with(dat.bcg, data.frame(slab = author, year = year, ai = tpos, n1i = tpos + tneg,
                                  ci = cpos, n2i = cpos + cneg, ablat = ablat,
                                  stringsAsFactors = FALSE))
  list(ivig = ivig, bcg = bcg)
}

fitstats_of <- function(fit) {
  fs <- fitstats(fit)
  list(ll = fs[1, 1], dev = fs[2, 1], AIC = fs[3, 1], BIC = fs[4, 1], AICc = fs[5, 1])
}

rows_of <- function(m) {
  m <- as.matrix(m)
  arr(lapply(seq_len(nrow(m)), function(i) arr(unname(m[i, ]))))
}
