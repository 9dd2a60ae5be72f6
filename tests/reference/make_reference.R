#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## metafor reference values for ivigmeta's Python test-suite.
##
## Run from the repository root:
##     Rscript tests/reference/make_reference.R
## Writes tests/reference/metafor.json (schema: tests/reference/README.md).
##
## Conventions
##  * Effect sizes are on metafor's analysis scale (log RR, log OR, RD); nothing
##    is back-transformed.
##  * escalc defaults everywhere (add = 1/2, to = "only0", drop00 = FALSE,
##    vtype = "LS"); level = 95.
##  * Iterative tau^2 estimators use the tight control list CTRL below.
##  * metafor's dotted names become underscores in JSON (ci.lb -> ci_lb,
##    se.tau2 -> se_tau2, cook.d -> cook_d, ...).
##  * Per-study arrays are in dataset row order unless a record says otherwise
##    (cumul: cumulative order; trimfill: observed rows then filled studies).
##  * Every record is computed inside capture(): an R error becomes
##    "error": "<message>" and R warnings are collected in "warnings".
##  * Numbers are written with the shortest of 15/16/17 significant digits that
##    round-trips exactly to the same double; NA/NaN/Inf are written as null.
## ---------------------------------------------------------------------------

suppressPackageStartupMessages(library(metafor))
grDevices::pdf(NULL)                  # baujat() draws a plot; discard it

OUT   <- file.path("tests", "reference", "metafor.json")
LEVEL <- 95
## Fisher scoring (ML/REML) stops when the tau^2 change < threshold; PM uses
## uniroot() with tolerance 'tol' (metafor's default tol is eps^0.25 ~ 1.2e-4).
CTRL  <- list(threshold = 1e-10, maxiter = 1000, tol = 1e-12)
## Q-profile CIs (confint) use uniroot() too; default tol is eps^0.25.
CI_CTRL <- list(tol = 1e-12, maxiter = 1000)

RE_METHODS  <- c("DL", "REML", "ML", "PM", "HE", "SJ")
ALL_METHODS <- c("FE", RE_METHODS)
MEASURES    <- c("RR", "OR", "RD")

## Minimal JSON writer (jsonlite only offers 15 significant digits): shared
source(file.path("tests", "reference", "json_writer.R"))

## ===========================================================================
## Helpers
## ===========================================================================

## Evaluate 'expr' (a function of no arguments returning a named list of
## values), catching errors and collecting warnings.
capture <- function(header, compute) {
  warns <- character(0)
  val <- withCallingHandlers(
    tryCatch(compute(), error = function(e) structure(
      list(error = conditionMessage(e)), class = "ref_error")),
    warning = function(w) {
      warns <<- c(warns, conditionMessage(w))
      invokeRestart("muffleWarning")
    })
  if (inherits(val, "ref_error")) val <- unclass(val)
  c(header, val, list(warnings = arr(as.character(unique(warns)))))
}

num_or_null <- function(x) if (is.null(x)) NA_real_ else unname(x)

## escalc with the defaults (add = 1/2, to = "only0", drop00 = FALSE).
es_for <- function(d, measure) {
  escalc(measure = measure, ai = ai, n1i = n1i, ci = ci, n2i = n2i,
         data = d, slab = slab)
}

fit_rma <- function(es, method, test = "z", mods = NULL) {
  if (is.null(mods)) {
    rma(yi, vi, data = es, method = method, test = test, level = LEVEL,
        control = CTRL)
  } else {
    rma(yi, vi, mods = mods, data = es, method = method, test = test,
        level = LEVEL, control = CTRL)
  }
}

## ===========================================================================
## Datasets
## ===========================================================================

make_datasets <- function() {
  ivig <- data.frame(
    study = c("Ahmadi", "Jafarzadeh", "Mahmoud", "Moraru", "Perricone",
              "Ramos-Medina", "Stricker", "Winger"),
    year  = c(2019L, 2019L, 2004L, 2012L, 2008L, 2014L, 2005L, 2008L),
    ai    = c(33L, 38L, 5L, 19L, 12L, 79L, 38L, 20L),
    n1i   = c(38L, 44L, 7L, 20L, 12L, 82L, 44L, 37L),
    ci    = c(18L, 21L, 6L, 2L, 9L, 12L, 2L, 4L),
    n2i   = c(40L, 50L, 8L, 4L, 12L, 39L, 20L, 21L),
    nk_criterion = c("yes", "no", "no", "yes", "no", "yes", "no", "yes"),
    timing = c("after", NA, "after", "after", "after", "after", "before",
               "before"),
    stringsAsFactors = FALSE)

  bcg <- with(dat.bcg, data.frame(
    study = author, year = as.integer(year), ai = as.integer(tpos),
    n1i = as.integer(tpos + tneg), ci = as.integer(cpos),
    n2i = as.integer(cpos + cneg), ablat = as.numeric(ablat),
    alloc = as.character(alloc), stringsAsFactors = FALSE))

  ## 'label' is passed explicitly: the metadat data sets name their study
  ## label column differently (study / author / trial).
  two_arm <- function(d, label) data.frame(
    study = as.character(label), year = as.integer(d$year),
    ai = as.integer(d$ai), n1i = as.integer(d$n1i), ci = as.integer(d$ci),
    n2i = as.integer(d$n2i), stringsAsFactors = FALSE)

  sets <- list(
    ivig = list(data = ivig,
      source = "ivigmeta paper: 8 RCTs of IVIG (ai/n1i = IVIG live births, ci/n2i = control)"),
    ivig_nk = list(data = ivig[ivig$nk_criterion == "yes", ],
      source = "ivig rows with nk_criterion == 'yes' (DL tau2 = 0 boundary case)"),
    bcg = list(data = bcg,
      source = "metafor/metadat dat.bcg (ai = tpos, n1i = tpos + tneg, ci = cpos, n2i = cpos + cneg)"),
    bcg_k2 = list(data = bcg[1:2, ],
      source = "first 2 rows of dat.bcg (k = 2)"),
    egger2001 = list(data = two_arm(dat.egger2001, dat.egger2001$study),
      source = "metadat dat.egger2001 (magnesium after myocardial infarction; death)"),
    nielweise2007 = list(data = two_arm(dat.nielweise2007, dat.nielweise2007$author),
      source = "metadat dat.nielweise2007 (anti-infective catheters; catheter-related bloodstream infections)"),
    lau1992 = list(data = two_arm(dat.lau1992, dat.lau1992$trial),
      source = "metadat dat.lau1992 (intravenous streptokinase after myocardial infarction; death)")
  )
  for (nm in names(sets)) {
    d <- sets[[nm]]$data
    rownames(d) <- NULL
    d$slab <- paste(d$study, d$year)      # unique study label used as slab
    stopifnot(!anyDuplicated(d$slab))
    sets[[nm]]$data <- d
  }
  sets
}

dataset_json <- function(ds) {
  d <- ds$data
  bi <- d$n1i - d$ai
  di <- d$n2i - d$ci
  zero   <- d$ai == 0 | bi == 0 | d$ci == 0 | di == 0
  double <- (d$ai == 0 & d$ci == 0) | (bi == 0 & di == 0)
  rows <- lapply(seq_len(nrow(d)), function(i) {
    r <- list(row = i, study = d$study[i], slab = d$slab[i], year = d$year[i],
              ai = d$ai[i], n1i = d$n1i[i], ci = d$ci[i], n2i = d$n2i[i])
    for (m in intersect(c("ablat", "alloc", "nk_criterion", "timing"), names(d)))
      r[[m]] <- d[[m]][i]
    r
  })
  list(source = ds$source, k = nrow(d),
       zero_cell_rows = arr(d$slab[zero & !double]),
       double_zero_rows = arr(d$slab[double]),
       rows = rows)
}

## ===========================================================================
## Blocks
## ===========================================================================

## escalc(measure, ai, n1i, ci, n2i): per-study yi, vi.
block_escalc <- function(sets) {
  out <- list()
  for (nm in names(sets)) for (m in MEASURES) {
    out[[length(out) + 1]] <- capture(
      list(dataset = nm, measure = m, add = 0.5, to = "only0", drop00 = FALSE),
      function() {
        es <- es_for(sets[[nm]]$data, m)
        list(yi = arr(es$yi), vi = arr(es$vi))
      })
  }
  out
}

## Values of an intercept-only rma.uni fit plus predict(fit) and weights(fit).
rma_values <- function(fit) {
  pr <- predict(fit, level = LEVEL)
  v <- list(beta = c(fit$beta), se = fit$se, zval = fit$zval,
            pval = fit$pval, ci_lb = fit$ci.lb, ci_ub = fit$ci.ub,
            tau2 = fit$tau2, tau = sqrt(fit$tau2),
            se_tau2 = num_or_null(fit$se.tau2),
            I2 = fit$I2, H2 = fit$H2, QE = fit$QE, QEp = fit$QEp,
            k = fit$k, p = fit$p, dfs = num_or_null(fit$dfs),
            pred = c(pr$pred), pred_se = c(pr$se),
            pi_lb = c(pr$pi.lb), pi_ub = c(pr$pi.ub),
            cr_lb = num_or_null(c(pr$cr.lb)), cr_ub = num_or_null(c(pr$cr.ub)),
            weights = arr(weights(fit)))
  if (fit$method %in% c("ML", "REML")) {
    fs <- fitstats(fit)
    v$logLik <- fs[1, 1]; v$deviance <- fs[2, 1]; v$AIC <- fs[3, 1]
    v$BIC <- fs[4, 1]; v$AICc <- fs[5, 1]
  }
  v
}

## rma(yi, vi, method, test) on escalc output; predict(fit); weights(fit).
block_rma <- function(sets) {
  out <- list()
  for (nm in names(sets)) for (m in MEASURES) {
    es <- es_for(sets[[nm]]$data, m)
    for (meth in ALL_METHODS) for (tst in c("z", "knha")) {
      if (meth == "FE" && tst == "knha") next
      out[[length(out) + 1]] <- capture(
        list(dataset = nm, measure = m, method = meth, test = tst),
        function() rma_values(fit_rma(es, meth, tst)))
    }
  }
  out
}

## confint(rma(..., method)) random-effects block (Q-profile, metafor default).
block_confint <- function(sets) {
  out <- list()
  for (nm in names(sets)) for (m in MEASURES) {
    es <- es_for(sets[[nm]]$data, m)
    for (meth in RE_METHODS) {
      out[[length(out) + 1]] <- capture(
        list(dataset = nm, measure = m, method = meth, type = "QP"),
        function() {
          ci <- confint(fit_rma(es, meth), control = CI_CTRL)
          r <- ci$random
          list(tau2 = arr(r["tau^2", ]), tau = arr(r["tau", ]),
               I2 = arr(r["I^2(%)", ]), H2 = arr(r["H^2", ]),
               lb_sign = ci$lb.sign, ub_sign = ci$ub.sign,
               ci_null = ci$ci.null)
        })
    }
  }
  out
}

## Values common to rma.mh / rma.peto fits.
mh_values <- function(r) {
  list(beta = c(r$beta), se = r$se, zval = r$zval, pval = r$pval,
       ci_lb = r$ci.lb, ci_ub = r$ci.ub, QE = r$QE, QEp = r$QEp,
       I2 = r$I2, H2 = r$H2, k = r$k, k_yi = r$k.yi, k_pos = r$k.pos,
       yi = arr(r$yi.f), vi = arr(r$vi.f), weights = arr(weights(r)),
       add = arr(r$add), to = arr(r$to), drop00 = arr(r$drop00))
}

## rma.mh(measure, ai, n1i, ci, n2i) with metafor's rma.mh defaults.
block_rma_mh <- function(sets) {
  out <- list()
  for (nm in names(sets)) for (m in MEASURES) {
    d <- sets[[nm]]$data
    out[[length(out) + 1]] <- capture(
      list(dataset = nm, measure = m, method = "MH"),
      function() {
        r <- rma.mh(measure = m, ai = ai, n1i = n1i, ci = ci, n2i = n2i,
                    data = d, slab = slab, level = LEVEL)
        v <- mh_values(r)
        v$correct <- r$correct
        for (s in c("CO", "COp", "MH", "MHp", "BD", "BDp", "TA", "TAp"))
          v[[s]] <- num_or_null(r[[s]])
        v
      })
  }
  out
}

## rma.peto(ai, n1i, ci, n2i) (log odds ratio) with its defaults.
block_rma_peto <- function(sets) {
  out <- list()
  for (nm in names(sets)) {
    d <- sets[[nm]]$data
    out[[length(out) + 1]] <- capture(
      list(dataset = nm, measure = "PETO", method = "PETO"),
      function() {
        r <- rma.peto(ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = d,
                      slab = slab, level = LEVEL)
        mh_values(r)
      })
  }
  out
}

## Mixed-effects meta-regression: rma(yi, vi, mods = ~ ..., method, test).
block_metareg <- function(sets, methods = ALL_METHODS) {
  ivig <- sets$ivig$data
  specs <- list(
    list(dataset = "bcg", d = sets$bcg$data, mods = ~ ablat, subset = "all"),
    list(dataset = "bcg", d = sets$bcg$data, mods = ~ factor(alloc), subset = "all"),
    list(dataset = "bcg", d = sets$bcg$data, mods = ~ ablat + year, subset = "all"),
    list(dataset = "ivig", d = ivig, mods = ~ nk_criterion, subset = "all"),
    list(dataset = "ivig", d = ivig[!is.na(ivig$timing), ], mods = ~ timing,
         subset = "timing not missing"))
  out <- list()
  for (s in specs) {
    es <- es_for(s$d, "RR")
    for (meth in methods) for (tst in c("z", "knha")) {
      if (meth == "FE" && tst == "knha") next
      out[[length(out) + 1]] <- capture(
        list(dataset = s$dataset, measure = "RR", method = meth, test = tst,
             mods = paste(deparse(s$mods), collapse = ""), subset = s$subset,
             studies = arr(s$d$slab)),
        function() {
          fit <- fit_rma(es, meth, tst, mods = s$mods)
          list(coef_names = arr(rownames(fit$beta)), beta = arr(fit$beta),
               se = arr(fit$se), zval = arr(fit$zval), pval = arr(fit$pval),
               ci_lb = arr(fit$ci.lb), ci_ub = arr(fit$ci.ub),
               QM = fit$QM,
               QMdf = if (tst == "knha") arr(fit$QMdf) else fit$QMdf[1],
               QMp = fit$QMp, QE = fit$QE, QEdf = fit$k - fit$p,
               QEp = fit$QEp, tau2 = fit$tau2,
               se_tau2 = num_or_null(fit$se.tau2), I2 = fit$I2, H2 = fit$H2,
               R2 = num_or_null(fit$R2), k = fit$k, p = fit$p,
               dfs = num_or_null(fit$dfs), weights = arr(weights(fit)))
        })
    }
  }
  out
}

## Subgroups with separate tau^2: one rma() per level, then the between-group
## Q = rma(beta_g, se_g^2, method = "FE")$QE on the level estimates.
block_subgroup <- function(sets) {
  ivig <- sets$ivig$data
  out <- list()
  for (var in c("nk_criterion", "timing")) for (m in c("RR", "OR"))
    for (meth in c("DL", "REML")) {
      d <- ivig[!is.na(ivig[[var]]), ]
      out[[length(out) + 1]] <- capture(
        list(dataset = "ivig", measure = m, method = meth, test = "z",
             by = var, studies = arr(d$slab)),
        function() {
          levs <- sort(unique(d[[var]]))
          groups <- lapply(levs, function(lv) {
            fit <- fit_rma(es_for(d[d[[var]] == lv, ], m), meth)
            list(level = lv, k = fit$k, studies = arr(d$slab[d[[var]] == lv]),
                 beta = c(fit$beta), se = fit$se, zval = fit$zval,
                 pval = fit$pval, ci_lb = fit$ci.lb, ci_ub = fit$ci.ub,
                 tau2 = fit$tau2, I2 = fit$I2, H2 = fit$H2, QE = fit$QE,
                 QEp = fit$QEp)
          })
          b  <- vapply(groups, function(g) g$beta, 0)
          se <- vapply(groups, function(g) g$se, 0)
          bt <- rma(b, se^2, method = "FE")
          list(groups = groups, Q_between = bt$QE,
               df_between = length(levs) - 1L, p_between = bt$QEp)
        })
    }
  out
}

## leave1out(rma(...)): element i = fit without study i.
block_leave1out <- function(sets) {
  out <- list()
  for (nm in names(sets)) for (m in c("RR", "OR")) for (meth in c("DL", "REML")) {
    es <- es_for(sets[[nm]]$data, m)
    out[[length(out) + 1]] <- capture(
      list(dataset = nm, measure = m, method = meth, test = "z"),
      function() {
        l <- leave1out(fit_rma(es, meth))
        list(omitted = arr(l$slab), estimate = arr(l$estimate), se = arr(l$se),
             zval = arr(l$zval), pval = arr(l$pval), ci_lb = arr(l$ci.lb),
             ci_ub = arr(l$ci.ub), Q = arr(l$Q), Qp = arr(l$Qp),
             tau2 = arr(l$tau2), I2 = arr(l$I2), H2 = arr(l$H2))
      })
  }
  out
}

## cumul(rma(...), order = year): step j = fit on the first j studies.
block_cumul <- function(sets, methods = c("DL", "REML")) {
  out <- list()
  for (nm in names(sets)) for (meth in methods) {
    d <- sets[[nm]]$data
    es <- es_for(d, "RR")
    out[[length(out) + 1]] <- capture(
      list(dataset = nm, measure = "RR", method = meth, test = "z",
           order_by = "year"),
      function() {
        cu <- cumul(fit_rma(es, meth), order = year)
        list(added = arr(cu$slab), rows = arr(match(cu$slab, d$slab)),
             year = arr(d$year[match(cu$slab, d$slab)]),
             estimate = arr(cu$estimate), se = arr(cu$se), zval = arr(cu$zval),
             pval = arr(cu$pvals), ci_lb = arr(cu$ci.lb), ci_ub = arr(cu$ci.ub),
             Q = arr(cu$Q), Qp = arr(cu$Qp), tau2 = arr(cu$tau2),
             I2 = arr(cu$I2), H2 = arr(cu$H2))
      })
  }
  out
}

## influence(rma(...)) and baujat(rma(...)).
block_influence <- function(sets, methods = c("DL", "REML"), test = "z") {
  out <- list()
  for (nm in names(sets)) for (meth in methods) {
    es <- es_for(sets[[nm]]$data, "RR")
    out[[length(out) + 1]] <- capture(
      list(dataset = nm, measure = "RR", method = meth, test = test),
      function() {
        fit <- fit_rma(es, meth, test)
        inf <- influence(fit)
        x <- inf$inf
        bj <- baujat(fit)
        list(rstudent = arr(x$rstudent), dffits = arr(x$dffits),
             cook_d = arr(x$cook.d), cov_r = arr(x$cov.r),
             tau2_del = arr(x$tau2.del), QE_del = arr(x$QE.del),
             hat = arr(x$hat), weight = arr(x$weight), inf = arr(x$inf),
             is_infl = arr(inf$is.infl), dfbs = arr(inf$dfbs[[1]]),
             baujat_x = arr(bj$x), baujat_y = arr(bj$y))
      })
  }
  out
}

## ranktest(rma(...)) (Begg & Mazumdar; cor.test(..., "kendall", exact = TRUE)).
block_ranktest <- function(sets) {
  out <- list()
  for (nm in names(sets)) for (m in c("RR", "OR")) {
    es <- es_for(sets[[nm]]$data, m)
    out[[length(out) + 1]] <- capture(
      list(dataset = nm, measure = m, method = "DL"),
      function() {
        fit <- fit_rma(es, "DL")
        r <- ranktest(fit)
        ## mirror R's cor.test(): exact only if n < 50 and no ties
        wi <- 1 / fit$vi
        ys <- (fit$yi - sum(wi * fit$yi) / sum(wi)) / sqrt(fit$vi - 1 / sum(wi))
        n  <- length(ys)
        ties <- min(length(unique(ys)), length(unique(fit$vi))) < n
        list(tau = unname(r$tau), pval = r$pval,
             exact_used = (n < 50) && !ties)
      })
  }
  out
}

## regtest(fit, model = "lm"|"rma", predictor = ...), ret.fit = TRUE.
block_regtest <- function(sets) {
  out <- list()
  preds <- c("sei", "vi", "ninv", "sqrtninv")
  for (nm in names(sets)) for (m in c("RR", "OR")) {
    es <- es_for(sets[[nm]]$data, m)
    combos <- c(list(list(model = "lm", method = NA_character_)),
                lapply(c("DL", "REML"), function(x) list(model = "rma", method = x)))
    for (cb in combos) for (pr in preds) {
      out[[length(out) + 1]] <- capture(
        list(dataset = nm, measure = m, model = cb$model, predictor = pr,
             method = cb$method, test = if (cb$model == "lm") "t" else "z"),
        function() {
          fit <- fit_rma(es, if (is.na(cb$method)) "DL" else cb$method)
          r <- regtest(fit, model = cb$model, predictor = pr, ret.fit = TRUE)
          if (cb$model == "lm") {
            cf <- summary(r$fit)$coefficients
            cn <- sub("^X", "", rownames(cf)); ce <- cf[, 1]; cs <- cf[, 2]
            tau2 <- NA_real_
          } else {
            cn <- rownames(r$fit$beta); ce <- r$fit$beta; cs <- r$fit$se
            tau2 <- r$fit$tau2
          }
          list(zval = r$zval, pval = r$pval, dfs = num_or_null(r$dfs),
               est = num_or_null(r$est), ci_lb = num_or_null(r$ci.lb),
               ci_ub = num_or_null(r$ci.ub), coef_names = arr(cn),
               coef_est = arr(ce), coef_se = arr(cs), tau2 = tau2)
        })
    }
  }
  out
}

## ranktest() on constructed inputs that reach R's normal approximation, which
## none of the data sets does (all have k < 50 and no ties): tied variances,
## k >= 50, and both. yi and vi are stored in the records.
block_ranktest_extra <- function() {
  cases <- list(
    ties = list(yi = sin(1:12), vi = 0.05 + (1:12 %% 4) / 10),
    large = list(yi = cos(1:60) + (1:60) / 100, vi = 0.02 + (1:60) / 200),
    large_ties = list(yi = sin(1:70) / 2, vi = 0.1 + (1:70 %% 9) / 20))
  out <- list()
  for (nm in names(cases)) {
    cs <- cases[[nm]]
    out[[length(out) + 1]] <- capture(
      list(case = nm, yi = arr(cs$yi), vi = arr(cs$vi)),
      function() {
        r <- ranktest(cs$yi, cs$vi)
        list(tau = unname(r$tau), pval = r$pval)
      })
  }
  out
}

## Small constructed inputs that unit tests used to check against their own
## arithmetic (tests/test_tau2.py, test_effects_input.py, test_bias.py): each
## record has a `case` name and the inputs it was computed from.
block_unit_cases <- function() {
  out <- list()
  add <- function(header, compute) out[[length(out) + 1]] <<- capture(header, compute)
  ## Six effects with equal sampling variances (v = 0.04): the estimators' closed forms.
  y6 <- c(0.10, 0.62, -0.25, 0.41, 0.90, 0.05); v6 <- rep(0.04, 6)
  for (meth in RE_METHODS) {
    add(list(case = "equal_variances", method = meth, yi = arr(y6), vi = arr(v6)),
        function() {
          f <- rma(y6, v6, method = meth, control = TIGHT_CTRL)
          list(tau2 = f$tau2, beta = c(f$beta), se = f$se)
        })
  }
  ## k = 2 with Knapp-Hartung: a t on 1 df.
  add(list(case = "k2_knha", method = "REML", yi = arr(c(0.1, 0.8)), vi = arr(c(0.05, 0.09))),
      function() {
        f <- rma(c(0.1, 0.8), c(0.05, 0.09), method = "REML", test = "knha",
                 control = TIGHT_CTRL)
        pr <- predict(f)
        list(beta = c(f$beta), se = f$se, zval = f$zval, pval = f$pval,
             ci_lb = f$ci.lb, ci_ub = f$ci.ub, dfs = f$dfs, tau2 = f$tau2,
             pi_lb = c(pr$pi.lb), pi_ub = c(pr$pi.ub))
      })
  ## Identical effects, tau2 fixed at 0, Knapp-Hartung: metafor sets the variance factor to 0.
  add(list(case = "knha_identical_effects", method = "FIXED_TAU2_0",
           yi = arr(rep(0.2, 3)), vi = arr(c(0.1, 0.2, 0.3))),
      function() {
        f <- rma(rep(0.2, 3), c(0.1, 0.2, 0.3), tau2 = 0, test = "knha")
        list(beta = c(f$beta), se = f$se, zval = f$zval, pval = f$pval,
             ci_lb = f$ci.lb, ci_ub = f$ci.ub)
      })
  ## A double-zero study kept with the correction (escalc's drop00 = FALSE default).
  add(list(case = "escalc_double_zero", measure = "RR", ai = 0, n1i = 12, ci = 0, n2i = 11),
      function() {
        e <- escalc(measure = "RR", ai = 0, n1i = 12, ci = 0, n2i = 11)
        list(yi = c(e$yi), vi = c(e$vi))
      })
  ## Rosenthal's fail-safe N from two studies (log OR).
  add(list(case = "fsn_two_studies", measure = "OR", type = "Rosenthal",
           ai = arr(c(5, 8)), n1i = arr(c(10, 20)), ci = arr(c(3, 4)), n2i = arr(c(10, 20))),
      function() {
        e <- escalc(measure = "OR", ai = c(5, 8), n1i = c(10, 20), ci = c(3, 4),
                    n2i = c(10, 20))
        f <- fsn(e$yi, e$vi)
        list(fsnum = f$fsnum, pval = f$pval)
      })
  out
}

## trimfill(rma(...), estimator, side).
block_trimfill <- function(sets, methods = c("DL", "REML")) {
  out <- list()
  for (nm in names(sets)) for (meth in methods)
    for (est in c("L0", "R0")) for (side in c("default", "left", "right")) {
      es <- es_for(sets[[nm]]$data, "RR")
      out[[length(out) + 1]] <- capture(
        list(dataset = nm, measure = "RR", method = meth, test = "z",
             estimator = est, side_requested = side),
        function() {
          fit <- fit_rma(es, meth)
          ## trimfill() does not pass fit$control on to its internal rma()
          ## calls, so hand CTRL over explicitly (through '...').
          tf <- if (side == "default") trimfill(fit, estimator = est, control = CTRL)
                else trimfill(fit, estimator = est, side = side, control = CTRL)
          list(side = tf$side, k0 = tf$k0, se_k0 = num_or_null(tf$se.k0),
               p_k0 = num_or_null(tf$p.k0), k = tf$k, beta = c(tf$beta),
               se = tf$se, zval = tf$zval, pval = tf$pval, ci_lb = tf$ci.lb,
               ci_ub = tf$ci.ub, tau2 = tf$tau2, I2 = tf$I2, H2 = tf$H2,
               QE = tf$QE, QEp = tf$QEp, slab = arr(as.character(tf$slab)),
               yi = arr(tf$yi), vi = arr(tf$vi), fill = arr(tf$fill))
        })
    }
  out
}

## fsn(yi, vi, type = ...) on log RR.
block_fsn <- function(sets) {
  out <- list()
  for (nm in names(sets)) {
    es <- es_for(sets[[nm]]$data, "RR")
    mean_sign <- sign(mean(es$yi))
    variants <- list(
      list(type = "Rosenthal", target = NULL, label = "default"),
      list(type = "Orwin", target = NULL, label = "default (meanes/2)"),
      list(type = "Orwin", target = mean_sign * log(1.1),
           label = "sign(mean yi) * log(1.1)"),
      list(type = "Rosenberg", target = NULL, label = "default"))
    for (v in variants) {
      out[[length(out) + 1]] <- capture(
        list(dataset = nm, measure = "RR", type = v$type, alpha_arg = 0.05,
             target_arg = if (is.null(v$target)) NA_real_ else v$target,
             target_label = v$label),
        function() {
          f <- if (is.null(v$target)) fsn(es$yi, es$vi, type = v$type)
               else fsn(es$yi, es$vi, type = v$type, target = v$target)
          list(fsnum = f$fsnum, alpha = f$alpha, pval = num_or_null(f$pval),
               meanes = num_or_null(f$meanes), target = num_or_null(f$target))
        })
    }
  }
  out
}

## ===========================================================================
## The estimators at metafor parity: ML and REML refitted with
## a much tighter Fisher-scoring threshold. With threshold = 1e-10 metafor stops
## when the tau^2 step is below 1e-10 in absolute terms, which near the boundary
## (linear convergence) leaves tau^2 up to ~3e-10 short of the optimum
## (nielweise2007 RD ML 5.91635e-5 vs 5.91632e-5). These blocks let the Python
## tests compare ML/REML strictly.
## ===========================================================================

TIGHT_CTRL <- list(threshold = 1e-15, maxiter = 100000, tol = 1e-12)

with_tight_control <- function(compute) {
  old <- CTRL
  on.exit(CTRL <<- old)
  CTRL <<- TIGHT_CTRL
  compute()
}

## rma(yi, vi, method = ML/REML, test) with TIGHT_CTRL; same keys as block_rma.
block_rma_tight <- function(sets) with_tight_control(function() {
  out <- list()
  for (nm in names(sets)) for (m in MEASURES) {
    es <- es_for(sets[[nm]]$data, m)
    for (meth in c("ML", "REML")) for (tst in c("z", "knha")) {
      out[[length(out) + 1]] <- capture(
        list(dataset = nm, measure = m, method = meth, test = tst),
        function() rma_values(fit_rma(es, meth, tst)))
    }
  }
  out
})

## The metareg models with method = ML/REML and TIGHT_CTRL; same keys as block_metareg.
block_metareg_tight <- function(sets) with_tight_control(function() {
  block_metareg(sets, methods = c("ML", "REML"))
})

## ===========================================================================
## The REML records of cumul, influence and trimfill again
## with a much tighter Fisher-scoring threshold. With threshold = 1e-10 metafor
## stops up to a few 1e-10 short of the REML optimum, which shows at 1e-7
## relative in differences of nearly equal estimates (DFFITS, lau1992), and
## with maxiter = 1000 some cumulative steps do not converge at all (NA:
## nielweise2007 steps 8 and 12). Same keys as the blocks they repeat.
## influence_knha: influence() of DL and REML fits with test = "knha" (the
## Knapp-Hartung scale factor enters DFFITS, DFBETAS, Cook's D and COVRATIO).
## ===========================================================================

## TIGHT_CTRL and with_tight_control() are defined above.
block_sensitivity_tight <- function(sets) with_tight_control(function() {
  list(cumul = block_cumul(sets, "REML"),
       influence = block_influence(sets, "REML"),
       trimfill = block_trimfill(sets, "REML"),
       influence_knha = block_influence(sets, c("DL", "REML"), test = "knha"))
})

## ===========================================================================
## Peters' and Harbord's tests: NOT from a package. Debian has no r-cran-meta,
## and metafor has neither test (regtest(predictor = "ninv") weights by 1/vi,
## not Peters' weights). These records implement the published formulas with
## base R's lm(), the way meta's metabias() does, as an independent check of
## ivigmeta's arithmetic (not of metafor):
##  * Peters et al. (2006, JAMA 295:676): lm(yi ~ I(1/N), weights =
##    1 / (1/(a+c) + 1/(b+d))), raw counts; yi from escalc (only0 + 1/2).
##  * Harbord et al. (2006, Stat Med 25:3443), odds ratios: efficient score
##    Z = a - (a+c) n1/N and hypergeometric variance
##    V = n1 n2 (a+c)(b+d) / (N^2 (N-1)), raw counts; lm(Z/V ~ I(1/sqrt(V)),
##    weights = V), i.e. Z/sqrt(V) regressed on sqrt(V) (the intercept there
##    is the slope here).
## Studies with no events or no non-events in both arms (a+c = 0 or
## b+d = 0) are dropped; the test of the slope is t on k - 2 df.
## ===========================================================================
block_peters_harbord <- function(sets) {
  out <- list()
  specs <- list(list(test = "Peters", measure = "RR"),
                list(test = "Peters", measure = "OR"),
                list(test = "Harbord", measure = "OR"))
  for (nm in names(sets)) for (sp in specs) {
    d <- sets[[nm]]$data
    out[[length(out) + 1]] <- capture(
      list(dataset = nm, measure = sp$measure, test = sp$test,
           source = "published formula with base R lm(); not a package"),
      function() {
        es <- es_for(d, sp$measure)
        ## as.numeric: the products below overflow R's 32-bit integers for bcg.
        a <- as.numeric(d$ai); c <- as.numeric(d$ci)
        n1 <- as.numeric(d$n1i); n2 <- as.numeric(d$n2i); N <- n1 + n2
        ev <- a + c; nev <- N - ev
        keep <- ev > 0 & nev > 0
        if (sp$test == "Peters") {
          y <- es$yi[keep]; x <- 1 / N[keep]; w <- 1 / (1 / ev[keep] + 1 / nev[keep])
        } else {
          Z <- a - ev * n1 / N
          V <- n1 * n2 * ev * nev / (N^2 * (N - 1))
          y <- (Z / V)[keep]; x <- 1 / sqrt(V[keep]); w <- V[keep]
        }
        if (sum(keep) < 3) stop("fewer than 3 studies")
        cf <- summary(lm(y ~ x, weights = w))$coefficients
        list(used = arr(d$slab[keep]), k = sum(keep), bias = cf[2, 1],
             se = cf[2, 2], t = cf[2, 3], df = sum(keep) - 2L, pval = cf[2, 4],
             intercept = cf[1, 1], intercept_se = cf[1, 2])
      })
  }
  out
}

## ===========================================================================
## Sanity checks against published / expected values
## ===========================================================================

sanity <- function(sets) {
  chk <- function(label, got, want, tol = 0.005) {
    ok <- isTRUE(all(abs(got - want) <= tol))
    cat(sprintf("%-58s %s  (expected %s) %s\n", label,
                paste(formatC(got, digits = 4, format = "f"), collapse = " "),
                paste(want, collapse = " "), if (ok) "OK" else "MISMATCH"))
    ok
  }
  ivig <- sets$ivig$data
  es <- es_for(ivig, "RR")
  fit <- fit_rma(es, "DL")
  oks <- c(
    chk("ivig RR DL exp(beta) [ci]", exp(c(fit$beta, fit$ci.lb, fit$ci.ub)),
        c(1.98, 1.44, 2.73)),
    chk("ivig RR DL QE / df / I2", c(fit$QE, fit$k - 1, fit$I2),
        c(19.36, 7, 63.8), 0.05),
    chk("Perricone RR [ci] (0.5 added to all four cells)",
        exp(es$yi[5] + c(0, -1, 1) * qnorm(.975) * sqrt(es$vi[5])),
        c(1.32, 0.93, 1.86)),
    chk("ivig ~ nk_criterion DL QMp",
        fit_rma(es, "DL", mods = ~ nk_criterion)$QMp, 0.266, 0.0005),
    chk("ivig ~ timing (k = 7) DL QMp",
        fit_rma(es_for(ivig[!is.na(ivig$timing), ], "RR"), "DL",
                mods = ~ timing)$QMp, 0.071, 0.0005),
    chk("ivig regtest(model = 'lm') p", regtest(fit, model = "lm")$pval,
        0.362, 0.0005),
    chk("ivig leave1out DL without Ramos-Medina exp(est) [ci]",
        with(leave1out(fit), exp(c(estimate[6], ci.lb[6], ci.ub[6]))),
        c(1.81, 1.31, 2.50)),
    chk("ivig leave1out DL without Mahmoud exp(est) [ci]",
        with(leave1out(fit), exp(c(estimate[3], ci.lb[3], ci.ub[3]))),
        c(2.17, 1.59, 2.96)),
    chk("ivig_nk RR DL tau2", fit_rma(es_for(sets$ivig_nk$data, "RR"), "DL")$tau2,
        0, 1e-12))
  if (!all(oks)) stop("sanity checks failed")
}

## ===========================================================================
## Main
## ===========================================================================

main <- function() {
  sets <- make_datasets()
  sanity(sets)
  res <- list(
    generated_by = "tests/reference/make_reference.R",
    r_version = R.version.string,
    metafor_version = as.character(packageVersion("metafor")),
    metadat_version = as.character(packageVersion("metadat")),
    generated_on = format(Sys.Date()),
    settings = list(level = LEVEL, add = 0.5, to = "only0", drop00 = FALSE,
                    vtype = "LS", rma_control = CTRL,
                    confint_control = CI_CTRL, tight_control = TIGHT_CTRL),
    datasets = lapply(sets, dataset_json),
    escalc = block_escalc(sets),
    rma = block_rma(sets),
    confint = block_confint(sets),
    rma_mh = block_rma_mh(sets),
    rma_peto = block_rma_peto(sets),
    metareg = block_metareg(sets),
    subgroup_separate = block_subgroup(sets),
    leave1out = block_leave1out(sets),
    cumul = block_cumul(sets),
    influence = block_influence(sets),
    ranktest = block_ranktest(sets),
    regtest = block_regtest(sets),
    trimfill = block_trimfill(sets),
    fsn = block_fsn(sets),
    rma_tight = block_rma_tight(sets),
    metareg_tight = block_metareg_tight(sets),
    peters_harbord = block_peters_harbord(sets))
  tight <- block_sensitivity_tight(sets)
  res$cumul_tight <- tight$cumul
  res$influence_tight <- tight$influence
  res$trimfill_tight <- tight$trimfill
  res$influence_knha <- tight$influence_knha
  res$ranktest_extra <- block_ranktest_extra()
  res$unit_cases <- block_unit_cases()
  write_json_file(res, OUT)
  blocks <- names(res)[vapply(res, function(x) is.list(x) && is.null(names(x)), TRUE)]
  for (b in blocks) {
    n_err <- sum(vapply(res[[b]], function(r) !is.null(r$error), TRUE))
    cat(sprintf("%-18s %4d records, %3d errors\n", b, length(res[[b]]), n_err))
  }
  cat(sprintf("wrote %s (%.0f kB)\n", OUT, file.size(OUT) / 1024))
}

main()
