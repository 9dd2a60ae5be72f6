"""Tolerances for comparisons with metafor, named by kind of quantity, in one place.

All comparisons are relative (|ours - metafor| <= rel * |metafor|) with, where a quantity can be
exactly 0, an absolute floor. Each looser value is explained where it is defined.
"""

from __future__ import annotations

import math

#: Closed-form quantities (effect sizes, Q, DL/HE/SJ tau², pooled estimates, weights, p-values):
#: both sides are the same formula in double precision.
CLOSED_FORM = 1e-9
#: Estimates that depend on an iterative tau² (PM root, Fisher-scored ML/REML compared with
#: tests/reference `rma_tight`) or on a root search (the Q-profile bounds, uniroot tol 1e-12):
#: metafor's root is accurate to about 1e-12 absolute; relative 1e-7 leaves margin for tau² ~ 1e-4.
ITERATIVE = 1e-7
#: p-values: metafor uses R's pchisq/pnorm/pt, we use our own tails (1e-14 relative) or scipy.
P_VALUE = 1e-8
#: Absolute floor for quantities that are 0 at the boundary (tau², I², H² - 1, Q-profile bounds).
ABS_FLOOR = 1e-12

#: metafor's default-threshold ML/REML fits (the `rma` block, control threshold = 1e-10) stop
#: when the tau² step is below 1e-10 in absolute terms. Near the boundary Fisher scoring converges
#: linearly, so metafor stops up to ~3e-10 short of the optimum (nielweise2007 RD ML: 5.91635e-5
#: vs 5.91632e-5, which metafor itself reaches with threshold 1e-16; lau1992 ML: 5e-12 instead
#: of 0). Against that block tau² is compared with this absolute tolerance, and quantities derived
#: from tau² with a relative 1e-5; the strict comparison is with the `rma_tight` block.
METAFOR_STOP_TAU2_ABS = 1e-9
METAFOR_STOP_REL = 1e-5
#: ... and I² (percent) and H² where metafor's tau² is a few 1e-11 instead of the boundary 0
#: (lau1992 RD REML: tau² 3.8e-11 gives I² = 7.6e-6 %).
METAFOR_STOP_I2_ABS = 1e-4
METAFOR_STOP_H2_ABS = 1e-6
#: ... and p-values, whose relative error in the far tail is about z² times that of z
#: (lau1992 RD REML: z = 8.1, p = 6.7e-16).
METAFOR_STOP_P_REL = 1e-3
#: Even with threshold 1e-15 (`rma_tight`) metafor approaches a boundary optimum by halving
#: steps and stops at tau² ~ 1e-16 rather than 0 (lau1992 ML): I² is then ~1e-10 %, not 0.
BOUNDARY_I2_ABS = 1e-8
BOUNDARY_H2_ABS = 1e-10


#: Sensitivity methods (tests/test_cumulative.py, test_influence.py, test_bias.py): REML records
#: are compared with the `cumul_tight`/`influence_tight`/`trimfill_tight` blocks at ITERATIVE.
#: Where metafor's tight refit fails (threshold 1e-15 never reached: nielweise2007 cumulative steps
#: 7 and 10) the default-threshold record is used; it stops a few 1e-10 short in tau², and the
#: pooled estimates then agree to ~1e-9 relative: 1e-6 leaves margin.
CUMUL_STOPPED_SHORT_REL = 1e-6
#: metafor's fsn() returns the fail-safe N already rounded up to a whole number: compared exactly.


def close(ours: float | None, ref: float | None, rel: float, abs_floor: float = ABS_FLOOR) -> bool:
    """True when ``ours`` agrees with ``ref`` to ``rel`` relative or ``abs_floor`` absolute."""
    if ref is None or ours is None:
        return ref is None and (ours is None or not math.isfinite(ours))
    if math.isinf(ref) or math.isinf(ours):
        return ref == ours
    return abs(ours - ref) <= max(rel * abs(ref), abs_floor)


def rel_diff(ours: float, ref: float) -> float:
    """|ours - ref| / |ref| (absolute difference when ref is 0), for reports."""
    if ref == 0:
        return abs(ours)
    return abs(ours - ref) / abs(ref)


# GLMMs (tests/test_glmm.py) against metafor's rma.glmm (tests/reference/metafor_glmm.json).
#: Estimate and tau² against the `tight` records (lme4 with bobyqa and PIRLS tolerance 1e-10,
#: CM.EL with integrate() rel.tol 1e-10): both sides are then at the optimum of the same
#: likelihood to ~1e-7 (largest observed 2e-6: collins1985a CM.EL, where metafor's nlminb stops
#: at its rel.tol 1e-10 in the objective).
GLMM_TIGHT = 1e-5
#: ... and tau² near the boundary, where the relative error is meaningless.
GLMM_TAU2_ABS = 1e-8
#: Standard errors and CI bounds, as issue 19 asks (1e-4). lme4's se come from a
#: finite-difference Hessian of its deviance (deriv12, step 1e-4), ~3e-5 from the exact one here.
GLMM_SE = 1e-4
#: CM.EL (OR): metafor's se is numDeriv's Richardson Hessian of an objective computed with R's
#: integrate(); the quadrature error is amplified by 1/h² and moves its se by ~2e-4 between
#: integrate's default and tight rel.tol (nielweise2007: 0.35107 / 0.35098). ivigmeta's agrees
#: with a Hessian of scipy.integrate.quad at rel. 1e-13 to 1e-7 (test_cm_el_quadrature).
GLMM_CMEL_SE = 3e-4
#: The `default` records: lme4's default Nelder-Mead stage stops short of the UM.FS optimum with
#: its k + 2 parameters (lme4 warns "Model failed to converge with max|grad| = 0.0089";
#: nielweise2007: estimate -1.23692 there, -1.236493 at the optimum, which the tight refit and
#: ivigmeta both reach; ivigmeta's log-likelihood is 7.5e-5 higher), and lme4's default PIRLS
#: tolerance moves the Laplace fits (UM.RS) by up to ~1e-3 in tau² (nielweise2008). Against
#: those records estimate and tau² are compared at this, and the log-likelihood ordering checks
#: the rest.
GLMM_DEFAULT = 2e-3
#: ... their se: UM.RS's finite-difference Hessian of an objective with imprecise conditional
#: modes (bcg: 3.7e-3, nielweise2008: 1.3e-2 at lme4's default PIRLS tolerance).
GLMM_DEFAULT_SE = 2e-2
#: Heterogeneity tests of the saturated logistic/Poisson regressions (UM.FS, CM.AL, IRR, PLO):
#: R's glm() stops with finite coefficients for a zero cell (its MLE is infinite), which leaves
#: those studies a weight of ~1e-9 instead of 0 (collins1985a with its double zeros: 1e-5).
GLMM_TEST = 1e-4
#: UM.RS Wald test: metafor inverts lme4's finite-difference Hessian of the saturated model's
#: deviance over k + 2 parameters, several of which diverge (a zero cell), so its QE.Wld moves by
#: ~4e-3 between control settings (nielweise2007: 12.9198 default, 12.9673 tight; ivigmeta
#: 12.9163 from the exact inverse information).
GLMM_UMRS_WALD = 1e-2
#: Log-likelihood: ivigmeta's optimum must be at least metafor's (evaluated with ivigmeta's
#: likelihood at metafor's parameters) up to rounding; and that likelihood must be lme4's own
#: at the same parameters (same quadrature) to GLMM_SAME_OBJECTIVE: lme4's conditional modes
#: stop at its PIRLS tolerance, which leaves its Laplace value up to ~1.5e-8 relative below the
#: one at converged modes (nielweise2007 UM.RS: -74.8577153 vs -74.8577142).
GLMM_LOGLIK = 1e-9
GLMM_SAME_OBJECTIVE = 1e-7

#: RTET (tests/test_rtet.py). The bivariate normal CDF against mvtnorm's TVPACK (Genz's
#: deterministic bivariate algorithm, double precision): measured max 2.2e-16 absolute on a grid
#: with |ρ| up to 0.99999 (absolute, as Φ2 can be ~1e-30 in the tails).
BVN_CDF_ABS = 1e-14
#: The tetrachoric root and its variance against the exact values the reference script computes
#: (uniroot tol 1e-14 on TVPACK; the delta-method variance): measured 4e-15 in yi, 9e-10 relative
#: in vi (near ρ = 1, where R's side loses digits), else 1e-14.
RTET_EXACT = 1e-9
#: ... and against metafor's own escalc(measure = "RTET"), which maximises the likelihood with
#: optimize() then Nelder-Mead optim() (reltol 1e-8) and differentiates it with optim's
#: finite-difference Hessian (step 1e-3): measured |Δyi| <= 1.9e-5 and |Δvi|/vi <= 1.1e-4 on
#: the tables with |ρ| < 0.95 of metafor_rtet.json; the Hessian's step is coarse where the
#: likelihood bends sharply, |Δvi|/vi 1.2e-3 at ρ = -0.955 and 2.1e-2 at ρ = 0.988.
METAFOR_RTET_YI_ABS = 5e-5
METAFOR_RTET_VI_REL = 3e-4
METAFOR_RTET_VI_REL_STRONG = 3e-2

#: Location-scale models (tests/test_location_scale.py): the (RE)ML surface is flat at the
#: optimum and metafor's optimizers use numerical gradients; its optimizers (nlm, BFGS, bobyqa,
#: Nelder-Mead, nloptr) reach one log-likelihood to 1e-13 but scatter in alpha by up to ~5e-7
#: (1.5e-6 for the intercept-only scale ~ 1 fit, whose exp(alpha) ivigmeta matches with the
#: plain REML tau² to ITERATIVE). alpha is compared with this absolute tolerance, its standard
#: errors (metafor's numerical Hessian, at metafor's alpha) relatively; the log-likelihoods are
#: compared at LS_LOGLIK_ABS and ivigmeta's optimum is checked to be at least as high as
#: metafor's alpha.
LS_ALPHA_ABS = 3e-6
LS_SE_REL = 3e-6
#: beta and its SEs at the fitted tau²_i inherit the alpha error through W (up to ~3e-8).
LS_BETA_ABS = 1e-7
LS_LOGLIK_ABS = 1e-10

#: robumeta's robu() (tests/test_rve.py): closed form in both (method-of-moments tau², WLS,
#: sandwich, Satterthwaite df), the same arithmetic in another order: agreement to ~1e-14.
ROBUMETA = 1e-10
#: robumeta's p-values are 2 * (1 - pt(|t|, df)): absolute error up to ~1e-16 in the far tail.
ROBUMETA_P_ABS = 1e-14
