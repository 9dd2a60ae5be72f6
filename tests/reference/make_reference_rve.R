#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## robumeta reference values for `ivigmeta rve`: robust variance estimation for dependent
## effect sizes, robu() with the correlated (CORR) and hierarchical (HIER) effects weights,
## with and without Tipton's (2015) small-sample correction.
##
## Run from the repository root:
##     Rscript tests/reference/make_reference_rve.R
## Writes tests/reference/robumeta_rve.json (schema: tests/reference/README.md,
## "robumeta_rve.json"). Needs Debian's r-cran-robumeta (2.0-3).
##
## Data: robumeta's own corrdat and hierdat (the examples of its documentation), and the
## grid data of PyMARE's robumeta alignment test (neurostuff/PyMARE,
## pymare/tests/data/robumeta_correlated_effects.csv; its values are pasted below).
## ---------------------------------------------------------------------------

suppressPackageStartupMessages(library(robumeta))

OUT <- file.path("tests", "reference", "robumeta_rve.json")
source(file.path("tests", "reference", "json_writer.R"))

columns_of <- function(df) {
  out <- lapply(names(df), function(n) {
    v <- df[[n]]
    if (is.factor(v)) v <- as.character(v)
    arr(v)
  })
  setNames(out, names(df))
}

data(corrdat, package = "robumeta")
data(hierdat, package = "robumeta")
corr <- as.data.frame(corrdat)[, c("esid", "studyid", "effectsize", "var", "binge",
                                   "followup", "males", "college")]
## a text moderator (robumeta codes it with treatment contrasts, the first level in sorted
## order, "college", the reference)
corr$setting <- ifelse(corr$college == 1, "college", "community")
## dummies of one study each: a coefficient resting on one cluster, whose I - H_jj is singular
## (the small-sample adjustment's eigenvalue threshold at work)
corr$d1 <- as.numeric(corr$studyid == 1)
corr$d2 <- as.numeric(corr$studyid == 2)
hier <- as.data.frame(hierdat)[, c("esid", "studyid", "effectsize", "var", "binge",
                                   "sreport", "males", "age", "followup")]

## PyMARE's pymare/tests/data/robumeta_correlated_effects.csv
pymare <- read.csv(text = "study,effect,var_constant_within_study,within,between,var_within_study
1,-0.0073,0.19,-1.624,-0.882,0.1273
2,1.3934,0.209,-0.305,-0.934,0.3027
2,2.0386,0.209,1.437,-0.934,0.3476
2,0.9493,0.209,0.593,-0.934,0.0962
2,0.7504,0.209,-0.724,-0.934,0.1485
3,0.277,0.163,0.332,-1.085,0.3829
3,0.0764,0.163,-0.057,-1.085,0.0893
4,0.8485,0.193,0.351,-0.32,0.1298
4,-0.1053,0.193,-0.283,-0.32,0.4616
4,0.0949,0.193,0.162,-0.32,0.3292
5,2.1082,0.076,0.036,-1.797,0.0893
6,0.5885,0.133,-0.511,-0.333,0.196
6,1.2319,0.133,-0.372,-0.333,0.2383
6,-0.502,0.133,-2.254,-0.333,0.1301
6,0.5587,0.133,-1.259,-0.333,0.0917
6,0.8294,0.133,-1.044,-0.333,0.2733
7,3.0638,0.282,3.284,-0.201,0.5098
7,-0.9789,0.282,-0.622,-0.201,0.4162
8,-0.2288,0.396,-0.445,-0.997,0.8376
8,-1.0822,0.396,-0.992,-0.997,0.615
8,-0.5791,0.396,-2.323,-0.997,0.9741
9,-1.9666,0.214,-0.882,1.334,0.1775
9,-1.2482,0.214,0.083,1.334,0.3344
10,0.7104,0.352,0.867,-0.882,0.4983
10,-1.2881,0.352,-0.993,-0.882,0.4019
10,2.1542,0.352,3.247,-0.882,0.5781
10,1.1171,0.352,0.318,-0.882,0.3147")
pymare$row <- seq_len(nrow(pymare))

DATA <- list(corrdat = corr, hierdat = hier, pymare = pymare)
## name -> (effect, variance, cluster)
COLS <- list(corrdat = c("effectsize", "var", "studyid"),
             hierdat = c("effectsize", "var", "studyid"),
             pymare = c("effect", NA, "study"))

fit_case <- function(data, mods, model, rho, small, variances = NULL) {
  d <- DATA[[data]]
  cols <- COLS[[data]]
  d$y__ <- d[[cols[1]]]
  d$v__ <- d[[if (is.null(variances)) cols[2] else variances]]
  d$g__ <- d[[cols[3]]]
  rhs <- if (length(mods)) paste(mods, collapse = " + ") else "1"
  f <- as.formula(paste("y__ ~", rhs))
  res <- eval(bquote(robu(.(f), data = d, studynum = g__, var.eff.size = v__,
                          modelweights = .(model), rho = .(rho), small = .(small))))
  tab <- res$reg_table
  df <- res$data.full
  list(
    data = data, mods = arr(mods), model = model, rho = rho, small = small,
    variances = if (is.null(variances)) cols[2] else variances,
    labels = arr(as.character(tab$labels)),
    b = arr(tab$b.r), se = arr(tab$SE), t = arr(tab$t), df = arr(tab$dfs),
    p = arr(tab$prob), ci_lb = arr(tab$CI.L), ci_ub = arr(tab$CI.U),
    vcov = lapply(seq_len(nrow(res$VR.r)), function(i) arr(res$VR.r[i, ])),
    tau2 = as.numeric(res$mod_info$tau.sq),
    omega2 = if (model == "HIER") as.numeric(res$mod_info$omega.sq) else NULL,
    I2 = if (model == "CORR") as.numeric(res$mod_info$I.2) else NULL,
    ## robumeta's Qe (not returned): the first-stage fit's residuals and working weights,
    ## as robu() stores them in data.full
    QE = sum(df$weights * df$e^2),
    N = res$N, M = res$M, k_min = min(res$k), k_mean = mean(res$k),
    k_median = stats::median(res$k), k_max = max(res$k)
  )
}

CORR_MODS <- c("males", "college", "binge")
HIER_MODS <- c("binge", "followup", "sreport", "age")
RHOS <- c(0, 0.4, 0.8, 1)

cases <- list()
add <- function(name, ...) {
  rec <- fit_case(...)
  cases[[length(cases) + 1]] <<- c(list(name = name), rec)
}
for (small in c(TRUE, FALSE)) {
  s <- if (small) "small" else "large"
  for (rho in RHOS) {
    add(sprintf("corrdat_mods_rho%g_%s", rho, s), "corrdat", CORR_MODS, "CORR", rho, small)
    add(sprintf("corrdat_intercept_rho%g_%s", rho, s), "corrdat", character(0), "CORR", rho,
        small)
  }
  add(sprintf("corrdat_setting_%s", s), "corrdat", c("setting", "males"), "CORR", 0.8, small)
  add(sprintf("corrdat_one_study_dummy_%s", s), "corrdat", c("males", "d1"), "CORR", 0.8, small)
  add(sprintf("corrdat_one_study_dummy_hier_%s", s), "corrdat", c("males", "d2"), "HIER", 0.8,
      small)
  add(sprintf("hierdat_mods_%s", s), "hierdat", HIER_MODS, "HIER", 0.8, small)
  add(sprintf("hierdat_intercept_%s", s), "hierdat", character(0), "HIER", 0.8, small)
  add(sprintf("hierdat_corr_%s", s), "hierdat", c("binge", "sreport"), "CORR", 0.8, small)
}
## PyMARE's grid: intercept, within, within + between x rho x both variance columns (small =
## TRUE, as PyMARE pins it; small = FALSE at rho 0.8), and HIER on the same data.
DESIGNS <- list(intercept = character(0), within = "within", both = c("within", "between"))
for (variances in c("var_constant_within_study", "var_within_study")) {
  for (design in names(DESIGNS)) {
    for (rho in RHOS) {
      add(sprintf("pymare_%s_rho%g_%s", design, rho, variances), "pymare", DESIGNS[[design]],
          "CORR", rho, TRUE, variances)
    }
    add(sprintf("pymare_%s_rho0.8_%s_large", design, variances), "pymare", DESIGNS[[design]],
        "CORR", 0.8, FALSE, variances)
    for (small in c(TRUE, FALSE)) {
      add(sprintf("pymare_%s_hier_%s_%s", design, variances, if (small) "small" else "large"),
          "pymare", DESIGNS[[design]], "HIER", 0.8, small, variances)
    }
  }
}

## robumeta's HIER eigenvalue threshold is not scale-free: the effects / 1000 (variances / 1e6)
## lose every eigenvalue of the adjustment, SE 0 (ivigmeta: the unscaled results, rescaled).
add("hierdat_binge_sreport_small", "hierdat", c("binge", "sreport"), "HIER", 0.8, TRUE)
scaled <- hier
scaled$effectsize <- scaled$effectsize / 1000
scaled$var <- scaled$var / 1e6
DATA$hierdat_scaled <- scaled
COLS$hierdat_scaled <- COLS$hierdat
add("hierdat_scaled_binge_sreport_small", "hierdat_scaled", c("binge", "sreport"), "HIER", 0.8,
    TRUE)

## What robu() refuses: rho outside [0, 1].
errors <- list()
err_case <- function(name, expr) {
  msg <- tryCatch(suppressWarnings({ expr; "" }), error = function(e) conditionMessage(e))
  errors[[length(errors) + 1]] <<- list(name = name, error = msg)
}
err_case("rho_outside", robu(effectsize ~ 1, data = corr, studynum = studyid,
                             var.eff.size = var, rho = 1.5))

write_json_file(list(
  robumeta_version = as.character(packageVersion("robumeta")),
  R_version = paste(R.version$major, R.version$minor, sep = "."),
  data = lapply(DATA, columns_of),
  cases = cases,
  errors = errors
), OUT)
cat("wrote", OUT, "\n")
