"""Confidence intervals for tau², I² and H², as metafor 3.8-1's ``confint()`` of an ``rma.uni`` fit.

``TAU2_CI_METHODS`` is the registry the CLI offers as ``heterogeneity --tau2-ci``: ``qp`` (the
Q-profile, the default everywhere), ``pl`` (profile likelihood), ``wald``, ``wald-log`` and
``wald-sqrt``.

The Q-profile interval (Viechtbauer 2007), metafor's ``type = "QP"``:

The generalized Q statistic Q(tau²) = y' P(tau²) y (sum w (y - mu_w)² with w = 1 / (v + tau²)
without moderators) follows a chi-square distribution on k - p df at the true tau², and decreases
in tau². The interval collects the tau² values not rejected:

* lower bound: the root of Q(tau²) = chi²_{k-p, 1 - alpha/2}, or 0 when Q(0) is already below it;
* upper bound: the root of Q(tau²) = chi²_{k-p, alpha/2}, or 0 when Q(0) is below it (then the
  interval is the single point 0: metafor's "null set" flag, ``ci_null``).

As metafor, the roots are searched on [0, max(100, 10 tau²)]; a bound that lies beyond the upper
limit is reported as that limit with the sign ">" (bcg, k = 2: [0, >100]). The bounds do not depend
on the tau² estimator; I² and H² bounds are transformed with the typical within-study variance
s² = (k - p) / tr P0: I² = 100 tau² / (tau² + s²), H² = 1 + tau² / s².

The profile-likelihood interval (Hardy & Thompson 1996), metafor's ``type = "PL"``, for ML and
REML fits: the tau² values whose (restricted) log-likelihood ll is within chi²_{1, level} / 2 of
the fit's, i.e. the roots of 2 (ll(tau²_hat) - ll(tau²)) = chi²_{1, level} below and above the
estimate. The lower bound is 0 when tau² = 0 is inside; the upper bound is searched up to
max(100, 10 tau²) and reported as that limit with ">" beyond it (metafor's limits).

The Wald interval, metafor's ``type = "Wald"``: tau² ± z_{1 - alpha/2} se(tau²) with the
estimator's standard error (metafor's ``se.tau2``, :func:`ivigmeta.core.tau2.tau2_se`), the lower
bound truncated at 0; ``wald-log`` and ``wald-sqrt`` (metafor's "Wald.log", "Wald.sqrt") build it on
the log or square-root scale of tau² by the delta method and back-transform
(:func:`wald_transformed_ci`).

For every type the I² and H² bounds transform the tau² bounds with the typical within-study
variance s², as metafor does (its ``vt``).

metafor 3.8-1 also has ``type = "GENQ"`` (Jackson's generalised Q interval; it needs a fit with
``method = "GENQ"`` and the CompQuadForm package): not offered here. It has no Biggerstaff-Tweedie
or Sidik-Jonkman type (docs/methods.md).

Without moderators the Q-profile uses chi-square quantiles from
:mod:`ivigmeta.core.distributions`; the profile likelihood imports scipy (its root finder) lazily.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ivigmeta.core.distributions import chi2_ppf, z_crit
from ivigmeta.core.tau2 import make_design, solve_q
from ivigmeta.errors import ModelError
from ivigmeta.results import HeterogeneityCI


def qprofile_ci(
    yi: Sequence[float],
    vi: Sequence[float],
    tau2: float,
    level: float = 0.95,
    X: Any = None,
) -> HeterogeneityCI:
    """Q-profile interval for tau² (and I², H²) around the estimate ``tau2``."""
    design = make_design(yi, vi, X)
    k, p = int(design.k[0]), design.p
    df = k - p
    if df < 1:
        raise ModelError(
            f"a confidence interval for tau² needs more studies than coefficients (k = {k})"
        )
    alpha = 1.0 - level
    crit_upper = chi2_ppf(1.0 - alpha / 2.0, df)  # Q above this: tau² = 0 is rejected
    crit_lower = chi2_ppf(alpha / 2.0, df)
    tau2_max = max(100.0, 10.0 * tau2)

    def q(t: float) -> float:
        return float(design.q(np.array([t]))[0][0])

    def root(target: float) -> float:
        return float(solve_q(design, np.array([target]), np.array([tau2_max]))[0][0])

    q_min = q(0.0)
    q_max = q(tau2_max)
    lb_sign = ub_sign = ""
    ci_null = False
    if q_min < crit_lower:
        low = high = 0.0
        lb_sign = ub_sign = "<"
        ci_null = True
    else:
        if q_max > crit_lower:
            high, ub_sign = tau2_max, ">"
        else:
            high = root(crit_lower)
        if q_max > crit_upper:
            low = high = tau2_max
            lb_sign = ub_sign = ">"
        elif q_min < crit_upper:
            low = 0.0
        else:
            low = root(crit_upper)
    return _interval(design, "qp", level, low, high, lb_sign, ub_sign, ci_null)


def _interval(
    design: Any,
    code: str,
    level: float,
    low: float,
    high: float,
    lb_sign: str = "",
    ub_sign: str = "",
    ci_null: bool = False,
) -> HeterogeneityCI:
    """The tau² bounds with their I² and H² bounds (typical within-study variance s²)."""
    df = int(design.k[0]) - design.p
    tr = float(design.trace_p(np.zeros(1))[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        # numpy division: degenerate weights (tr P = 0 or inf) give NaN or inf, not an exception
        s2 = np.float64(df) / np.float64(tr)
        i2 = 100.0 * np.array([low, high]) / (s2 + np.array([low, high]))
        h2 = 1.0 + np.array([low, high]) / s2
    return HeterogeneityCI(
        level=level,
        tau2_low=low,
        tau2_high=high,
        i2_low=float(i2[0]),
        i2_high=float(i2[1]),
        h2_low=float(h2[0]),
        h2_high=float(h2[1]),
        lb_sign=lb_sign,
        ub_sign=ub_sign,
        ci_null=ci_null,
        method=TAU2_CI_METHODS[code],
        code=code,
    )


#: ``heterogeneity --tau2-ci`` choices (metafor's confint types "QP", "PL", "Wald", "Wald.log",
#: "Wald.sqrt") and the name
#: each interval reports (the JSON's ``ci_method``).
TAU2_CI_METHODS: dict[str, str] = {
    "qp": "Q-profile",
    "pl": "profile likelihood",
    "wald": "Wald",
    "wald-log": "Wald, log scale",
    "wald-sqrt": "Wald, square-root scale",
}

#: The estimators whose likelihood the profile-likelihood interval profiles.
PL_ESTIMATORS = ("ML", "REML")


def check_tau2_ci_method(method: str) -> str:
    """Lower-case ``method`` and check it is a key of ``TAU2_CI_METHODS``."""
    key = method.lower()
    if key not in TAU2_CI_METHODS:
        raise ModelError(
            f"unknown interval type for tau² '{method}' (choose one of {', '.join(TAU2_CI_METHODS)})"
        )
    return key


def _check_df(design: Any) -> None:
    k = int(design.k[0])
    if k - design.p < 1:
        raise ModelError(
            f"a confidence interval for tau² needs more studies than coefficients (k = {k})"
        )


def profile_likelihood_ci(
    yi: Sequence[float],
    vi: Sequence[float],
    tau2: float,
    tau2_method: str,
    level: float = 0.95,
    X: Any = None,
) -> HeterogeneityCI:
    """Profile-likelihood interval for tau² (and I², H²) around the ML or REML estimate ``tau2``
    (module docstring; metafor's ``confint(fit, type = "PL")``)."""
    from scipy.optimize import brentq

    if tau2_method not in PL_ESTIMATORS:
        raise ModelError(
            "the profile-likelihood interval for tau² needs a maximum-likelihood fit "
            f"(--tau2 ML or REML), not {tau2_method}"
        )
    design = make_design(yi, vi, X)
    _check_df(design)
    reml = tau2_method == "REML"
    crit = chi2_ppf(level, 1)
    ll_hat = float(design.loglik(np.array([tau2]), reml)[0])
    tau2_max = max(100.0, 10.0 * tau2)

    def excess(t: float) -> float:
        # the likelihood-ratio statistic at t minus its critical value: < 0 inside the interval
        return 2.0 * (ll_hat - float(design.loglik(np.array([t]), reml)[0])) - crit

    def root(a: float, b: float) -> float:
        return float(brentq(excess, a, b, xtol=1e-300, rtol=8.9e-16, maxiter=500))

    low = 0.0 if excess(0.0) <= 0.0 else root(0.0, tau2)
    ub_sign = ""
    if excess(tau2_max) < 0.0:
        high, ub_sign = tau2_max, ">"
    else:
        high = root(tau2, tau2_max)
    return _interval(design, "pl", level, low, high, "", ub_sign)


def wald_ci(
    yi: Sequence[float],
    vi: Sequence[float],
    tau2: float,
    tau2_se: float,
    level: float = 0.95,
    X: Any = None,
) -> HeterogeneityCI:
    """Wald interval max(0, tau² - z se), tau² + z se (and I², H²) with the estimator's standard
    error ``tau2_se`` (metafor's ``confint(fit, type = "Wald")``)."""
    if not math.isfinite(tau2_se):
        raise ModelError("the Wald interval for tau² needs the standard error of tau²")
    design = make_design(yi, vi, X)
    _check_df(design)
    half = z_crit(level) * tau2_se
    return _interval(design, "wald", level, max(0.0, tau2 - half), tau2 + half)


def wald_transformed_ci(
    yi: Sequence[float],
    vi: Sequence[float],
    tau2: float,
    tau2_se: float,
    scale: str,
    level: float = 0.95,
    X: Any = None,
) -> HeterogeneityCI:
    """Wald interval on the log or square-root scale of tau², back-transformed (metafor's
    ``confint(fit, type = "Wald.log" | "Wald.sqrt")``), ``scale`` "log" or "sqrt": the delta
    method gives se(log tau²) = se / tau², se(sqrt tau²) = se / (2 sqrt tau²), so

    * log: tau² exp(± z se / tau²) (the upper bound at least tau²);
    * sqrt: (max(0, sqrt tau² - z se / (2 sqrt tau²)))², (sqrt tau² + z se / (2 sqrt tau²))².

    Both need tau² > 0 (the transformed standard error is infinite at 0).
    """
    code = f"wald-{scale}"
    if not math.isfinite(tau2_se):
        raise ModelError("the Wald interval for tau² needs the standard error of tau²")
    if not tau2 > 0.0:
        raise ModelError(
            f"the {TAU2_CI_METHODS[code]} interval for tau² needs tau² > 0 (tau² = {tau2:g})"
        )
    design = make_design(yi, vi, X)
    _check_df(design)
    z = z_crit(level)
    if scale == "log":
        step = z * tau2_se / tau2
        low, high = tau2 * math.exp(-step), max(tau2, tau2 * math.exp(step))
    else:
        root_t = math.sqrt(tau2)
        step = z * tau2_se / (2.0 * root_t)
        low, high = max(0.0, root_t - step) ** 2, (root_t + step) ** 2
    return _interval(design, code, level, low, high)


def tau2_ci(
    method: str,
    yi: Sequence[float],
    vi: Sequence[float],
    tau2: float,
    tau2_method: str,
    tau2_se: float = math.nan,
    level: float = 0.95,
    X: Any = None,
) -> HeterogeneityCI:
    """The interval of type ``method`` (a key of ``TAU2_CI_METHODS``) for a fit with estimate
    ``tau2`` by ``tau2_method`` and standard error ``tau2_se``."""
    key = check_tau2_ci_method(method)
    if key == "pl":
        return profile_likelihood_ci(yi, vi, tau2, tau2_method, level, X)
    if key == "wald":
        return wald_ci(yi, vi, tau2, tau2_se, level, X)
    if key in ("wald-log", "wald-sqrt"):
        return wald_transformed_ci(yi, vi, tau2, tau2_se, key[5:], level, X)
    return qprofile_ci(yi, vi, tau2, level, X)
