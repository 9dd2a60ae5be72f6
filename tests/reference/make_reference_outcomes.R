#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## metafor reference values for the outcome measures of issue 16 (continuous,
## incidence rates, single-group proportions, arcsine RD, correlations and
## single-group means).
##
## Run from the repository root:
##     Rscript tests/reference/make_reference_outcomes.R
## Writes tests/reference/metafor_outcomes.json.
##
## Conventions
##  * escalc() with its default arguments for every measure (add = 1/2,
##    to = "only0" where escalc corrects at all; vtype = "LS").
##  * yi, vi on metafor's analysis scale, in dataset row order.
##  * Pooled fits: DL and REML, with test = "z" and test = "knha"; REML uses
##    the tight control list CTRL (threshold 1e-13, step halving).
##  * Input columns of each record are written under "data" with metafor's
##    argument names (m1i, sd1i, n1i, ..., x1i, t1i, ..., xi, ni, ai, bi, ...,
##    ri, ni, mi, sdi, ni; m1i, m2i, sd1i, sd2i, ni, ri for pre-post changes;
##    xi, ti for one group's rates; ti, ni, mi (and r2i) for partial correlations).
##  * Numbers: the shortest of 15/16/17 significant digits that round-trips.
## ---------------------------------------------------------------------------

suppressPackageStartupMessages(library(metafor))

OUT  <- file.path("tests", "reference", "metafor_outcomes.json")
CTRL <- list(threshold = 1e-13, maxiter = 100000, stepadj = 0.5)

## Minimal JSON writer (jsonlite only offers 15 significant digits): shared
source(file.path("tests", "reference", "json_writer.R"))

## ===========================================================================
fit_block <- function(yi, vi, method, test) {
  ctrl <- if (method == "REML") CTRL else list()
  f <- rma(yi, vi, method = method, test = test, control = ctrl)
  list(method = method, test = test,
       estimate = as.numeric(f$b), se = f$se, zval = f$zval, pval = f$pval,
       ci_lb = f$ci.lb, ci_ub = f$ci.ub, tau2 = f$tau2, QE = f$QE,
       I2 = f$I2, H2 = f$H2, k = f$k)
}

record <- function(name, measure, data, args) {
  es <- do.call(escalc, c(list(measure = measure), args))
  keep <- is.finite(es$yi) & is.finite(es$vi)
  fits <- list()
  for (m in c("DL", "REML")) for (t in c("z", "knha"))
    fits[[length(fits) + 1L]] <- fit_block(es$yi[keep], es$vi[keep], m, t)
  list(name = name, measure = measure,
       data = lapply(data, arr),
       yi = arr(as.numeric(es$yi)), vi = arr(as.numeric(es$vi)),
       fits = fits)
}

records <- list()
add <- function(r) records[[length(records) + 1L]] <<- r

## continuous: dat.normand1999 (MD, SMD, SMDH, ROM) and dat.curtis1998 (ROM)
d <- dat.normand1999
cont <- list(m1i = d$m1i, sd1i = d$sd1i, n1i = d$n1i,
             m2i = d$m2i, sd2i = d$sd2i, n2i = d$n2i)
for (m in c("MD", "SMD", "SMDH", "ROM")) add(record("normand1999", m, cont, cont))
d <- dat.curtis1998
cont <- list(m1i = d$m1i, sd1i = d$sd1i, n1i = d$n1i,
             m2i = d$m2i, sd2i = d$sd2i, n2i = d$n2i)
add(record("curtis1998", "ROM", cont, cont))
for (m in c("MD", "SMD")) add(record("curtis1998", m, cont, cont))

## the IVIG paper's Table 2 pregnancy durations (docs/examples/pregnancy_duration.csv;
## n per arm = the arm's total, as that file assumes)
dur <- list(m1i = c(39.1, 37.5, 37.2), sd1i = c(2.1, 0.9, 3.6), n1i = c(38, 12, 37),
            m2i = c(38.3, 37.2, 38.8), sd2i = c(2.6, 2.49, 1.0), n2i = c(40, 12, 21))
for (m in c("MD", "SMD")) add(record("ivig_duration", m, dur, dur))

## incidence rates: dat.hart1999
d <- dat.hart1999
inc <- list(x1i = d$x1i, t1i = d$t1i, x2i = d$x2i, t2i = d$t2i)
for (m in c("IRR", "IRD", "IRSD")) add(record("hart1999", m, inc, inc))

## single-group proportions: dat.pritz1997
d <- dat.pritz1997
pr <- list(xi = d$xi, ni = d$ni)
for (m in c("PR", "PLO", "PAS", "PFT", "PLN")) add(record("pritz1997", m, pr, pr))

## arcsine risk difference (and RR for comparison): dat.bcg
d <- dat.bcg
tab <- list(ai = d$tpos, bi = d$tneg, ci = d$cpos, di = d$cneg)
for (m in c("AS")) add(record("bcg", m, tab, tab))

## zero cells: escalc's default rules (to = "only0" adds 1/2 for IRR, IRD,
## PR, PLN, PLO; IRSD, PAS, PFT and AS are computed without correction)
inc0 <- list(x1i = c(0, 3, 7, 0, 12), t1i = c(120, 340.5, 800, 95, 1500),
             x2i = c(2, 0, 9, 4, 10), t2i = c(110, 300, 760, 100, 1450.25))
for (m in c("IRR", "IRD", "IRSD")) add(record("zeros", m, inc0, inc0))
pr0 <- list(xi = c(0, 5, 12, 30, 9), ni = c(20, 40, 12, 75, 60))
for (m in c("PR", "PLO", "PAS", "PFT", "PLN")) add(record("zeros", m, pr0, pr0))
tab0 <- list(ai = c(0, 4, 10, 6), bi = c(25, 36, 0, 44),
             ci = c(3, 0, 8, 9), di = c(22, 41, 2, 40))
add(record("zeros", "AS", tab0, tab0))

## correlations: dat.molloy2014 (ri, ni); ZCOR, COR (vtype = "LS") and UCOR
## (r 2F1(1/2, 1/2; (n - 2)/2; 1 - r^2), gsl's hyperg_2F1)
d <- dat.molloy2014
co <- list(ri = d$ri, ni = d$ni)
for (m in c("ZCOR", "COR", "UCOR")) add(record("molloy2014", m, co, co))
## small samples and r near +-1 (UCOR is defined for n > 4, ZCOR for n > 3)
co0 <- list(ri = c(-0.95, 0.97, 0.02, -0.3, 0.6), ni = c(5, 12, 400, 7, 30))
for (m in c("ZCOR", "COR", "UCOR")) add(record("small", m, co0, co0))

## one group's means: dat.normand1999's first arm (m1i, sd1i, n1i) as one-group
## data; MN and MNLN
d <- dat.normand1999
mn <- list(mi = d$m1i, sdi = d$sd1i, ni = d$n1i)
for (m in c("MN", "MNLN")) add(record("normand1999_arm1", m, mn, mn))

## one group measured twice: Morris (2008)'s five training studies (Carlson &
## Schmidt 1999), treatment and control groups apart, as metafor's worked
## example types them (metafor-project.org/doku.php/analyses:morris2008; the
## installed metadat has no dat.morris2008). data: m1i = post-test mean, m2i =
## pre-test mean, sd1i = post-test SD, sd2i = pre-test SD (ivigmeta's
## mean_post, mean_pre, sd_post, sd_pre). MC, SMCC and ROMC are escalc with
## exactly these; SMCR and SMCRH standardize by the pre-test SD, as metafor's
## example: escalc(m1i = m_post, m2i = m_pre, sd1i = sd_pre, sd2i = sd_post).
morris <- list(
  T = list(m1i = c(38.5, 26.8, 0.7, 75.9, 36.0), m2i = c(30.6, 23.5, 0.5, 53.4, 35.6),
           sd1i = c(11.6, 4.1, 0.1, 4.4, 4.6), sd2i = c(15.0, 3.1, 0.1, 14.5, 4.7),
           ni = c(20, 50, 9, 10, 14), ri = c(0.47, 0.64, 0.77, 0.89, 0.44)),
  C = list(m1i = c(19.7, 25.3, 0.6, 60.7, 33.4), m2i = c(23.1, 24.9, 0.6, 55.7, 34.8),
           sd1i = c(14.8, 3.3, 0.2, 17.9, 6.9), sd2i = c(13.8, 4.1, 0.2, 17.3, 3.1),
           ni = c(20, 42, 9, 11, 14), ri = c(0.47, 0.64, 0.77, 0.89, 0.44)))
change_args <- function(d, m) {
  if (m %in% c("SMCR", "SMCRH"))
    list(m1i = d$m1i, m2i = d$m2i, sd1i = d$sd2i, sd2i = d$sd1i, ni = d$ni, ri = d$ri)
  else d
}
for (g in names(morris)) for (m in c("MC", "SMCC", "SMCR", "SMCRH", "ROMC"))
  add(record(paste0("morris2008_", g), m, morris[[g]], change_args(morris[[g]], m)))

## more measures of 2x2 counts on dat.bcg and the zero-cell tables: PHI
## (escalc adds nothing unless add is given), YUQ, YUY, OR2DN, OR2DL
## (corrected as OR: add = 1/2 to every cell of a table with a zero)
d <- dat.bcg
tab <- list(ai = d$tpos, bi = d$tneg, ci = d$cpos, di = d$cneg)
for (m in c("PHI", "YUQ", "YUY", "OR2DN", "OR2DL")) add(record("bcg", m, tab, tab))
for (m in c("PHI", "YUQ", "YUY", "OR2DN", "OR2DL")) add(record("zeros", m, tab0, tab0))

## one group's incidence rates: dat.hart1999's first arm (x1i, t1i) and the
## zero-count rates' first arm as one group's events over person-time; IR and
## IRLN add 1/2 to a zero count (to = "only0"), IRS and IRFT nothing
d <- dat.hart1999
ir <- list(xi = d$x1i, ti = d$t1i)
for (m in c("IRLN", "IR", "IRS", "IRFT")) add(record("hart1999_arm1", m, ir, ir))
ir0 <- list(xi = inc0$x1i, ti = inc0$t1i)
for (m in c("IRLN", "IR", "IRS", "IRFT")) add(record("zeros", m, ir0, ir0))

## two groups' variability and point-biserial correlations on dat.normand1999
## (Nakagawa et al. 2015: CVR, VR; Jacobs & Viechtbauer 2017: RPB, RBIS;
## vtype = "LS"), and one group's variability on its first arm (CVLN, SDLN)
d <- dat.normand1999
cont <- list(m1i = d$m1i, sd1i = d$sd1i, n1i = d$n1i,
             m2i = d$m2i, sd2i = d$sd2i, n2i = d$n2i)
for (m in c("CVR", "VR", "RPB", "RBIS")) add(record("normand1999", m, cont, cont))
mn <- list(mi = d$m1i, sdi = d$sd1i, ni = d$n1i)
for (m in c("CVLN", "SDLN")) add(record("normand1999_arm1", m, mn, mn))

## matched pairs (Zou 2007; Curtin 2017): a hand-typed set of six paired 2x2
## tables, ai = pairs with the event in both members, bi = in the treated member
## only, ci = in the control member only, di = in neither (escalc's layout for
## MPRD, MPRR, MPOR, MPORC, MPPETO); the last table has bi = 0, so escalc's
## to = "only0" adds 1/2 to its four cells. MPORM (marginal table plus ri) is
## not covered.
mp <- list(ai = c(12, 5, 30, 8, 20, 3), bi = c(8, 10, 15, 2, 9, 0),
           ci = c(3, 4, 6, 5, 2, 6), di = c(40, 31, 60, 25, 33, 18))
for (m in c("MPRD", "MPRR", "MPOR", "MPORC", "MPPETO")) add(record("pairs", m, mp, mp))

## probit difference of 2x2 counts (escalc's PBIT: add = 1/2 to every cell of a
## table with a zero, as OR) on dat.bcg and the zero-cell tables
d <- dat.bcg
tab <- list(ai = d$tpos, bi = d$tneg, ci = d$cpos, di = d$cneg)
add(record("bcg", "PBIT", tab, tab))
add(record("zeros", "PBIT", tab0, tab0))

## back-transformed pooled proportions as predict(transf=...) gives them
## (REML, z test): PLO -> transf.ilogit, PAS -> transf.iarcsin, PLN -> exp,
## PFT -> transf.ipft.hm with the harmonic mean of ni.
d <- dat.pritz1997
back <- list()
for (m in c("PR", "PLO", "PAS", "PFT", "PLN")) {
  es <- escalc(measure = m, xi = d$xi, ni = d$ni)
  f <- rma(yi, vi, data = es, method = "REML", control = CTRL)
  p <- switch(m,
    PR  = predict(f),
    PLO = predict(f, transf = transf.ilogit),
    PAS = predict(f, transf = transf.iarcsin),
    PLN = predict(f, transf = exp),
    PFT = predict(f, transf = transf.ipft.hm, targs = list(ni = d$ni)))
  back[[length(back) + 1L]] <- list(measure = m, pred = p$pred,
                                    ci_lb = p$ci.lb, ci_ub = p$ci.ub,
                                    pi_lb = p$pi.lb, pi_ub = p$pi.ub)
}

## back-transformed pooled correlations and means (REML, z test): ZCOR ->
## transf.ztor, MNLN -> exp; COR, UCOR and MN as they are
d <- dat.molloy2014
for (m in c("ZCOR", "COR", "UCOR")) {
  es <- escalc(measure = m, ri = d$ri, ni = d$ni)
  f <- rma(yi, vi, data = es, method = "REML", control = CTRL)
  p <- if (m == "ZCOR") predict(f, transf = transf.ztor) else predict(f)
  back[[length(back) + 1L]] <- list(measure = m, pred = p$pred,
                                    ci_lb = p$ci.lb, ci_ub = p$ci.ub,
                                    pi_lb = p$pi.lb, pi_ub = p$pi.ub)
}
d <- dat.normand1999
for (m in c("MN", "MNLN")) {
  es <- escalc(measure = m, mi = d$m1i, sdi = d$sd1i, ni = d$n1i)
  f <- rma(yi, vi, data = es, method = "REML", control = CTRL)
  p <- if (m == "MNLN") predict(f, transf = exp) else predict(f)
  back[[length(back) + 1L]] <- list(measure = m, pred = p$pred,
                                    ci_lb = p$ci.lb, ci_ub = p$ci.ub,
                                    pi_lb = p$pi.lb, pi_ub = p$pi.ub)
}

## back-transformed pooled pre-post ratio of means (REML, z test): ROMC -> exp
d <- morris$T
es <- escalc(measure = "ROMC", m1i = d$m1i, m2i = d$m2i, sd1i = d$sd1i, sd2i = d$sd2i,
             ni = d$ni, ri = d$ri)
f <- rma(yi, vi, data = es, method = "REML", control = CTRL)
p <- predict(f, transf = exp)
back[[length(back) + 1L]] <- list(measure = "ROMC", pred = p$pred,
                                  ci_lb = p$ci.lb, ci_ub = p$ci.ub,
                                  pi_lb = p$pi.lb, pi_ub = p$pi.ub)

## back-transformed pooled one-group rates (REML, z test): IRLN -> exp, IRS ->
## transf.isqrt; IR and IRFT as they are
d <- dat.hart1999
for (m in c("IRLN", "IR", "IRS", "IRFT")) {
  es <- escalc(measure = m, xi = d$x1i, ti = d$t1i)
  f <- rma(yi, vi, data = es, method = "REML", control = CTRL)
  p <- switch(m, IRLN = predict(f, transf = exp), IRS = predict(f, transf = transf.isqrt),
              predict(f))
  back[[length(back) + 1L]] <- list(measure = m, pred = p$pred,
                                    ci_lb = p$ci.lb, ci_ub = p$ci.ub,
                                    pi_lb = p$pi.lb, pi_ub = p$pi.ub)
}

## back-transformed pooled variability (REML, z test): CVR, VR, CVLN, SDLN ->
## exp; RPB and RBIS as they are
d <- dat.normand1999
for (m in c("CVR", "VR", "RPB", "RBIS")) {
  es <- escalc(measure = m, m1i = d$m1i, sd1i = d$sd1i, n1i = d$n1i,
               m2i = d$m2i, sd2i = d$sd2i, n2i = d$n2i)
  f <- rma(yi, vi, data = es, method = "REML", control = CTRL)
  p <- if (m %in% c("CVR", "VR")) predict(f, transf = exp) else predict(f)
  back[[length(back) + 1L]] <- list(measure = m, pred = p$pred,
                                    ci_lb = p$ci.lb, ci_ub = p$ci.ub,
                                    pi_lb = p$pi.lb, pi_ub = p$pi.ub)
}
for (m in c("CVLN", "SDLN")) {
  es <- escalc(measure = m, mi = d$m1i, sdi = d$sd1i, ni = d$n1i)
  f <- rma(yi, vi, data = es, method = "REML", control = CTRL)
  p <- predict(f, transf = exp)
  back[[length(back) + 1L]] <- list(measure = m, pred = p$pred,
                                    ci_lb = p$ci.lb, ci_ub = p$ci.ub,
                                    pi_lb = p$pi.lb, pi_ub = p$pi.ub)
}

## back-transformed pooled matched pairs (REML, z test): MPRR, MPOR, MPORC,
## MPPETO -> exp; MPRD as it is
for (m in c("MPRD", "MPRR", "MPOR", "MPORC", "MPPETO")) {
  es <- escalc(measure = m, ai = mp$ai, bi = mp$bi, ci = mp$ci, di = mp$di)
  f <- rma(yi, vi, data = es, method = "REML", control = CTRL)
  p <- if (m == "MPRD") predict(f) else predict(f, transf = exp)
  back[[length(back) + 1L]] <- list(measure = m, pred = p$pred,
                                    ci_lb = p$ci.lb, ci_ub = p$ci.ub,
                                    pi_lb = p$pi.lb, pi_ub = p$pi.ub)
}

## partial correlations: dat.aloe2013 (tval, n, preds as escalc's ti, ni, mi)
d <- dat.aloe2013
pc <- list(ti = d$tval, ni = d$n, mi = d$preds)
for (m in c("PCOR", "ZPCOR"))
  add(record("aloe2013", m, pc, pc))
## semi-partial correlations need the model's R² as well (R2 as escalc's r2i)
spc <- c(pc, list(r2i = d$R2))
add(record("aloe2013", "SPCOR", spc, spc))

## back-transformed pooled partial correlations (REML, z test): ZPCOR ->
## transf.ztor; PCOR and SPCOR as they are
for (m in c("PCOR", "ZPCOR", "SPCOR")) {
  es <- escalc(measure = m, ti = spc$ti, ni = spc$ni, mi = spc$mi, r2i = spc$r2i)
  f <- rma(yi, vi, data = es, method = "REML", control = CTRL)
  p <- if (m == "ZPCOR") predict(f, transf = transf.ztor) else predict(f)
  back[[length(back) + 1L]] <- list(measure = m, pred = p$pred,
                                    ci_lb = p$ci.lb, ci_ub = p$ci.ub,
                                    pi_lb = p$pi.lb, pi_ub = p$pi.ub)
}

obj <- list(
  meta = list(R = R.version.string,
              metafor = as.character(packageVersion("metafor")),
              generated_by = "tests/reference/make_reference_outcomes.R"),
  records = records,
  backtransformed = back)
write_json_file(obj, OUT)
cat("wrote", OUT, "\n")
