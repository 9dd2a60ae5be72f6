#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## metafor reference values for `ivigmeta transf` and ivigmeta.core.transforms: every
## transf.* function of metafor 3.8-1 at a grid of inputs, boundaries included (r = +-1 and
## +-0.999, p = 0 and 1, small and large n, tau2 = 0 and > 0), and the values metafor's own
## tests pin (tests/testthat/test_misc_transf.r).
##
## Run from the repository root:
##     Rscript tests/reference/make_reference_transf.R
## Writes tests/reference/metafor_transf.json (schema: tests/reference/README.md,
## "metafor_transf.json").
##
## The integral transforms (transf.ztor.int, transf.exp.int, transf.ilogit.int) call R's
## integrate() with its default rel.tol (.Machine$double.eps^0.25, about 1.2e-4): their
## `value` is what metafor returns. `value_tight` is the same integral (the same integrand,
## the same bounds: xi -+ 10 sqrt(tau2) unless lower/upper are given) by integrate() with
## rel.tol = 1e-13 and abs.tol = 1e-15 (looser, down to 1e-10 and 1e-13, only where the
## integral is 0 or near it and integrate() reports a roundoff error: ztor.int at xi = 0),
## what ivigmeta is pinned against tightly.
## ---------------------------------------------------------------------------

suppressPackageStartupMessages(library(metafor))

OUT <- file.path("tests", "reference", "metafor_transf.json")
source(file.path("tests", "reference", "json_writer.R"))

## JSON has no infinities or NaN: those are written as the strings "Inf", "-Inf", "NaN"
## (NA as "NA"), every other value as a number.
vals <- function(z) {
  lapply(as.vector(z), function(v) {
    if (is.nan(v)) "NaN" else if (is.na(v)) "NA" else if (is.infinite(v)) {
      if (v > 0) "Inf" else "-Inf"
    } else v
  })
}

records <- list()
add <- function(fun, x, value, args = list(), tight = NULL, source = "grid") {
  rec <- list(fun = fun, source = source, x = vals(x), args = args, value = vals(value))
  if (!is.null(tight)) rec$value_tight <- vals(tight)
  records[[length(records) + 1L]] <<- rec
}

## ---- closed-form transforms without arguments -----------------------------------------------
r <- c(-1, -0.999, -0.5, 0, 0.3, 0.5, 0.999, 1)
add("rtoz", r, transf.rtoz(r))
z <- c(-20, -5, -1, 0, 0.5493061443340548, 1, 5, 20)
add("ztor", z, transf.ztor(z))
p <- c(0, 1e-10, 0.001, 0.1, 0.5, 0.9, 0.999, 1)
add("logit", p, transf.logit(p))
lg <- c(-800, -40, -10, -2.197224577336219, 0, 3, 40, 800)
add("ilogit", lg, transf.ilogit(lg))
add("arcsin", p, transf.arcsin(p))
as <- c(-0.1, 0, 0.3217505543966422, 0.7853981633974483, 1.5, asin(1), 1.6, 3)
add("iarcsin", as, transf.iarcsin(as))
sq <- c(-1, -1e-8, 0, 0.1, 2, 1e5)
add("isqrt", sq, transf.isqrt(sq))
add("ahw", p, transf.ahw(p))
ah <- c(-0.1, 0, 0.2, 0.535841, 1, 1.2, 2.5)
add("iahw", ah, transf.iahw(ah))
ab <- c(0, 0.1, 0.5, 0.9, 0.999, 1)
add("abt", ab, transf.abt(ab))
iab <- c(-1, 0, 0.5, 2.302585092994046, 50, 800)
add("iabt", iab, transf.iabt(iab))
d <- c(-3, -2, -0.5, 0, 0.3, 1.5, 4)
for (f in c("dtobesd", "dtocles", "dtou1", "dtou2", "dtou3")) add(f, d, get(paste0("transf.", f))(d))
add("dtomd", d, transf.dtomd(d, targs = list(sd = 2.5)), args = list(sd = 2.5))
add("dtomd", d, transf.dtomd(d, targs = 0.7), args = list(sd = 0.7))
add("dtorpb", d, transf.dtorpb(d))
n1 <- c(10, 20, 5, 100, 40, 3, 250)
n2 <- c(12, 20, 50, 100, 10, 3, 250)
add("dtorpb", d, transf.dtorpb(d, n1i = n1, n2i = n2), args = list(n1 = arr(n1), n2 = arr(n2)))

## ---- proportions: Freeman-Tukey ---------------------------------------------------------------
pp <- c(0, 0.05, 0.1, 0.5, 0.9, 1)
for (n in c(1, 2, 10, 1000)) {
  add("pft", pp, transf.pft(pp, n), args = list(n = arr(n)))
}
nv <- c(3, 10, 25, 100, 7, 1000)
add("pft", pp, transf.pft(pp, nv), args = list(n = arr(nv)))
for (n in c(1, 2, 10, 1000)) {
  x <- c(-0.5, 0, transf.pft(0, n), 0.2, 0.3733940404, 0.785398, 1.2, transf.pft(1, n), 1.6, 2)
  add("ipft", x, transf.ipft(x, n), args = list(n = arr(n)))
}
x6 <- c(0.2, 0.3, 0.5, 0.785398, 1.2, 1.5)
add("ipft", x6, transf.ipft(x6, nv), args = list(n = arr(nv)))
hm_x <- c(-0.1, 0, 0.1, 0.2, 0.3733940404, 0.6, 0.785398, 1.0, 1.3, 1.5, 1.6)
for (ns in list(c(10), c(10, 20, 50), c(2, 3, 400), c(1000, 5000))) {
  add("ipft.hm", hm_x, transf.ipft.hm(hm_x, targs = list(ni = ns)), args = list(n = arr(ns)))
}

## ---- rates: Freeman-Tukey square roots -------------------------------------------------------
rt <- c(0, 0.01, 0.1, 2, 50)
for (t in c(0.5, 10, 1000)) add("irft", rt, transf.irft(rt, t), args = list(time = arr(t)))
tv <- c(1, 10, 100, 1000, 5)
add("irft", rt, transf.irft(rt, tv), args = list(time = arr(tv)))
for (t in c(0.5, 10, 1000)) {
  x <- c(0, transf.irft(0, t) / 2, transf.irft(0, t), 0.2, 0.381721, 1, 7)
  add("iirft", x, transf.iirft(x, t), args = list(time = arr(t)))
}

## ---- odds ratios to risk differences and risk ratios -----------------------------------------
lo <- c(-3, -0.5, 0, 0.4, 2.5)
for (pc in c(0, 0.05, 0.2, 0.9, 1)) {
  add("logortord", lo, transf.logortord(lo, pc = pc), args = list(pc = arr(pc)))
  add("logortorr", lo, transf.logortorr(lo, pc = pc), args = list(pc = arr(pc)))
}
pcv <- c(0.1, 0.3, 0.5, 0.7, 0.95)
add("logortord", lo, transf.logortord(lo, pc = pcv), args = list(pc = arr(pcv)))
add("logortorr", lo, transf.logortorr(lo, pc = pcv), args = list(pc = arr(pcv)))

## ---- integral transforms ----------------------------------------------------------------------
H <- list(ztor.int = tanh, exp.int = exp, ilogit.int = plogis)
tight <- function(h, xi, tau2, lower, upper) {
  if (tau2 == 0) return(h(xi))
  if (is.null(lower)) lower <- xi - 10 * sqrt(tau2)
  if (is.null(upper)) upper <- xi + 10 * sqrt(tau2)
  ## the tightest rel.tol integrate() reaches without a roundoff error (1e-13 everywhere but
  ## where the integral is 0 or close to it: ztor.int at xi = 0, or xi = 0.2 with tau2 = 4)
  for (rt in c(1e-13, 1e-12, 1e-11, 1e-10)) for (at in c(1e-15, 1e-13)) {
    v <- tryCatch(integrate(function(z) h(z) * dnorm(z, mean = xi, sd = sqrt(tau2)),
                            lower = lower, upper = upper, rel.tol = rt, abs.tol = at,
                            subdivisions = 1000L)$value, error = function(e) NULL)
    if (!is.null(v)) return(v)
  }
  stop("integrate() failed at rel.tol = 1e-10")
}
GRID <- list(ztor.int = c(-3, -1, 0, 0.2, 0.5493061443340548, 1, 2.5),
             exp.int = c(-5, -1, log(0.5), 0, 0.3, 1, 3),
             ilogit.int = c(-6, -2.197224577336219, -1, 0, 0.5, 2, 5))
for (f in names(H)) {
  fun <- get(paste0("transf.", f))
  for (tau2 in c(0, 0.001, 0.01, 0.1, 0.5, 1, 4)) {
    x <- GRID[[f]]
    value <- sapply(x, fun, targs = list(tau2 = tau2))
    tv <- sapply(x, function(xi) tight(H[[f]], xi, tau2, NULL, NULL))
    add(f, x, value, args = list(tau2 = tau2), tight = tv)
  }
  for (b in list(c(-10, 10), c(-3, 3), c(-1, 2))) {
    x <- GRID[[f]]
    value <- sapply(x, fun, targs = list(tau2 = 0.1, lower = b[1], upper = b[2]))
    tv <- sapply(x, function(xi) tight(H[[f]], xi, 0.1, b[1], b[2]))
    add(f, x, value, args = list(tau2 = 0.1, lower = b[1], upper = b[2]), tight = tv)
  }
}

## ---- metafor's own pins (tests/testthat/test_misc_transf.r) ----------------------------------
own <- function(fun, x, value, args = list(), tight = NULL) {
  add(fun, x, value, args = args, tight = tight, source = "test_misc_transf.r")
}
own("rtoz", 0.5, transf.rtoz(0.5))
own("logit", 0.1, transf.logit(0.1))
own("arcsin", 0.1, transf.arcsin(0.1))
own("pft", 0.1, transf.pft(0.1, 10), args = list(n = arr(10)))
own("ipft", transf.pft(0.1, 10), transf.ipft(transf.pft(0.1, 10), 10), args = list(n = arr(10)))
own("ipft.hm", transf.pft(0.1, 10), transf.ipft.hm(transf.pft(0.1, 10), targs = list(ni = 10)),
    args = list(n = arr(10)))
own("isqrt", 0.1, transf.isqrt(0.1))
own("irft", 0.1, transf.irft(0.1, 10), args = list(time = arr(10)))
own("iirft", transf.irft(0.1, 10), transf.iirft(transf.irft(0.1, 10), 10), args = list(time = arr(10)))
own("ahw", 0.9, transf.ahw(0.9))
own("iahw", transf.ahw(0.9), transf.iahw(transf.ahw(0.9)))
own("abt", 0.9, transf.abt(0.9))
own("iabt", transf.abt(0.9), transf.iabt(transf.abt(0.9)))
for (tau2 in c(0, 0.1)) {
  own("ztor.int", transf.rtoz(0.5), transf.ztor.int(transf.rtoz(0.5), targs = list(tau2 = tau2)),
      args = list(tau2 = tau2), tight = tight(tanh, transf.rtoz(0.5), tau2, NULL, NULL))
  own("exp.int", log(0.5), transf.exp.int(log(0.5), targs = list(tau2 = tau2)),
      args = list(tau2 = tau2), tight = tight(exp, log(0.5), tau2, NULL, NULL))
  own("ilogit.int", transf.logit(0.1), transf.ilogit.int(transf.logit(0.1), targs = list(tau2 = tau2)),
      args = list(tau2 = tau2), tight = tight(plogis, transf.logit(0.1), tau2, NULL, NULL))
}
own("exp.int", log(0.5), transf.exp.int(log(0.5), targs = list(tau2 = 0.1, lower = -10, upper = 10)),
    args = list(tau2 = 0.1, lower = -10, upper = 10), tight = tight(exp, log(0.5), 0.1, -10, 10))

## ---- predict(fit, transf = transf.*.int, targs = list(tau2 = fit$tau2)) ----------------------
## The integral back-transform of the random-effects estimate and its CI bounds (`pool
## --transf-int`): dat.pritz1997 (PLO, ilogit.int), dat.molloy2014 (ZCOR, ztor.int), dat.bcg
## (log RR, exp.int), DL (closed-form tau2) and REML (control threshold 1e-13). `pred`, `ci_lb`,
## `ci_ub` are metafor's (integrate() at its default rel.tol); `*_tight` the same integrals at
## rel.tol 1e-13. metafor also transforms pi.lb and pi.ub this way (recorded as `pi_lb`,
## `pi_ub`; ivigmeta does not report them, docs/methods.md).
DATA <- list(
  pritz1997 = list(measure = "PLO", h = plogis, fun = transf.ilogit.int,
                   es = escalc("PLO", xi = xi, ni = ni, data = dat.pritz1997),
                   data = list(events = arr(dat.pritz1997$xi), total = arr(dat.pritz1997$ni))),
  molloy2014 = list(measure = "ZCOR", h = tanh, fun = transf.ztor.int,
                    es = escalc("ZCOR", ri = ri, ni = ni, data = dat.molloy2014),
                    data = list(cor = arr(dat.molloy2014$ri), n = arr(dat.molloy2014$ni))),
  bcg = list(measure = "RR", h = exp, fun = transf.exp.int,
             es = escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg),
             data = list(treat_events = arr(dat.bcg$tpos),
                         treat_total = arr(dat.bcg$tpos + dat.bcg$tneg),
                         control_events = arr(dat.bcg$cpos),
                         control_total = arr(dat.bcg$cpos + dat.bcg$cneg))))
predictions <- list()
for (name in names(DATA)) for (method in c("DL", "REML")) {
  d <- DATA[[name]]
  fit <- rma(yi, vi, data = d$es, method = method, control = list(threshold = 1e-13))
  p <- predict(fit, transf = d$fun, targs = list(tau2 = fit$tau2))
  tt <- function(x) tight(d$h, x, fit$tau2, NULL, NULL)
  predictions[[length(predictions) + 1L]] <- list(
    dataset = name, measure = d$measure, method = method, data = d$data,
    tau2 = fit$tau2, beta = as.numeric(fit$beta), ci_lb_theta = fit$ci.lb,
    ci_ub_theta = fit$ci.ub, pred = p$pred, ci_lb = p$ci.lb, ci_ub = p$ci.ub,
    pi_lb = p$pi.lb, pi_ub = p$pi.ub, pred_tight = tt(as.numeric(fit$beta)),
    ci_lb_tight = tt(fit$ci.lb), ci_ub_tight = tt(fit$ci.ub))
}

out <- list(
  generator = "tests/reference/make_reference_transf.R",
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  functions = arr(ls("package:metafor", pattern = "^transf")),
  integrate_default_rel_tol = .Machine$double.eps^0.25,
  records = records,
  predictions = predictions)
write_json_file(out, OUT)
cat("wrote", OUT, "with", length(records), "records\n")
