#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## metafor reference values for `ivigmeta influence --mod COL`: case-deletion influence
## diagnostics of meta-regression models, influence(rma(yi, vi, mods = ~ ..., method = ...)),
## the Baujat coordinates baujat(fit) and the leave-one-out coefficients (each study's
## refit without it, by rma() itself).
##
## Run from the repository root:
##     Rscript tests/reference/make_reference_influence_mods.R
## Writes tests/reference/metafor_influence_mods.json (schema: tests/reference/README.md,
## "metafor_influence_mods.json").
##
## Conventions as make_reference.R: analysis scale (log RR), escalc defaults (add = 1/2,
## to = "only0"), level 95, metafor's dotted names with "_" (cook.d -> cook_d). Iterative
## fits use the tight control below. Categorical moderators are factors whose levels are in
## file order (the first level is the reference), as ivigmeta codes them; `ivigmeta_names`
## are ivigmeta's names of the coefficients (intercept, ablat, alloc=alternate, ...).
## Studies with a missing moderator are dropped by rma() (na.action = "na.omit"); `excluded`
## lists their labels.
## ---------------------------------------------------------------------------

suppressPackageStartupMessages(library(metafor))

OUT  <- file.path("tests", "reference", "metafor_influence_mods.json")
CTRL <- list(threshold = 1e-13, maxiter = 10000, stepadj = 0.5, tol = 1e-12)

source(file.path("tests", "reference", "json_writer.R"))

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

in_file_order <- function(x) {
  x[!is.na(x) & x == ""] <- NA
  factor(x, levels = unique(x[!is.na(x)]))
}

s <- read.csv("studies.csv", stringsAsFactors = FALSE)
ivig <- data.frame(slab = paste(s$study, s$year), ai = s$treat_events, n1i = s$treat_total,
                   ci = s$control_events, n2i = s$control_total,
                   nk_criterion = in_file_order(s$nk_criterion),
                   timing = in_file_order(s$timing), stringsAsFactors = FALSE)
bcg <- with(dat.bcg, data.frame(slab = paste(author, year), ai = tpos, n1i = tpos + tneg,
                                ci = cpos, n2i = cpos + cneg, ablat = ablat,
                                alloc = in_file_order(alloc), stringsAsFactors = FALSE))
## dat.bcg without its 5th study (Comstock & Webster 1969): the allocation "alternate" then has a
## single study, whose deletion leaves that dummy inestimable (metafor: coef.na, NA values).
DATA <- list(ivig = ivig, bcg = bcg, bcg_drop5 = bcg[-5, ])

## dataset, formula, ivigmeta's --mod columns, methods, tests
ALL_T <- c("z", "knha")
SPECS <- list(
  list(dataset = "ivig", mods = "~nk_criterion", columns = "nk_criterion",
       methods = c("DL", "REML", "FE"), tests = ALL_T),
  list(dataset = "ivig", mods = "~timing", columns = "timing",
       methods = c("DL", "REML", "FE"), tests = ALL_T),
  list(dataset = "ivig", mods = "~nk_criterion + timing", columns = c("nk_criterion", "timing"),
       methods = c("DL", "REML"), tests = ALL_T),
  list(dataset = "bcg", mods = "~ablat", columns = "ablat",
       methods = c("DL", "REML", "ML", "PM", "HE", "SJ", "FE"), tests = ALL_T),
  list(dataset = "bcg", mods = "~alloc", columns = "alloc",
       methods = c("DL", "REML", "FE"), tests = ALL_T),
  list(dataset = "bcg", mods = "~ablat + alloc", columns = c("ablat", "alloc"),
       methods = c("DL", "REML", "FE"), tests = ALL_T),
  list(dataset = "bcg", mods = "~1", columns = character(0),
       methods = c("FE"), tests = ALL_T),
  list(dataset = "bcg_drop5", mods = "~alloc", columns = "alloc",
       methods = c("DL", "REML"), tests = "z"))

ivigmeta_name <- function(name, data) {
  if (name == "intrcpt") return("intercept")
  for (col in names(data)) {
    if (is.factor(data[[col]]) && startsWith(name, col)) {
      return(paste0(col, "=", substring(name, nchar(col) + 1)))
    }
  }
  name
}

records <- list()
for (spec in SPECS) for (method in spec$methods) for (test in spec$tests) {
  records[[length(records) + 1]] <- capture(
    list(dataset = spec$dataset, measure = "RR", mods = spec$mods,
         columns = arr(spec$columns), method = method, test = test),
    function() {
      es <- escalc("RR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = DATA[[spec$dataset]],
                   slab = slab)
      fit <- rma(yi, vi, mods = as.formula(spec$mods), data = es, method = method,
                 test = test, control = CTRL)
      inf <- influence(fit)
      pdf(NULL)
      bj <- baujat(fit)
      invisible(dev.off())
      used <- which(fit$not.na)
      names_r <- rownames(fit$beta)
      names_i <- vapply(names_r, ivigmeta_name, "", data = DATA[[spec$dataset]])
      ## the leave-one-out coefficients: rma() itself on the studies without study i
      beta_del <- lapply(seq_along(used), function(i) {
        res <- try(suppressWarnings(rma(yi, vi, mods = as.formula(spec$mods),
                                        data = es[used[-i], ], method = method, test = test,
                                        control = CTRL)), silent = TRUE)
        if (inherits(res, "try-error") || any(res$coef.na)) return(arr(rep(NA_real_, fit$p)))
        arr(res$beta)
      })
      dfbs <- setNames(lapply(seq_len(fit$p), function(j) arr(inf$dfbs[[j]])), names_i)
      list(k = fit$k, p = fit$p, tau2 = fit$tau2, s2w = fit$s2w, beta = arr(fit$beta),
           coef_names = arr(names_r), ivigmeta_names = arr(unname(names_i)),
           slab = arr(as.character(fit$slab[fit$not.na])),
           excluded = arr(as.character(es$slab[!fit$not.na])),
           rstudent = arr(inf$inf$rstudent), dffits = arr(inf$inf$dffits),
           cook_d = arr(inf$inf$cook.d), cov_r = arr(inf$inf$cov.r),
           tau2_del = arr(inf$inf$tau2.del), QE_del = arr(inf$inf$QE.del),
           hat = arr(inf$inf$hat), weight = arr(inf$inf$weight), dfbs = dfbs,
           is_infl = arr(inf$is.infl), inf = arr(inf$inf$inf),
           baujat_x = arr(bj$x), baujat_y = arr(bj$y), beta_del = beta_del)
    })
}

write_json_file(list(
  generated_by = "tests/reference/make_reference_influence_mods.R",
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  generated_on = format(Sys.Date()),
  settings = list(level = 95, add = 0.5, to = "only0", control = CTRL),
  influence_mods = records), OUT)
cat("wrote", OUT, "\n")
