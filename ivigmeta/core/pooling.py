"""Common-effect and random-effects pooling (inverse variance), intervals and prediction interval.

* Common effect (inverse variance): theta = sum w y / sum w, se = 1 / sqrt(sum w), w = 1 / v.
* Random effects: w* = 1 / (v + tau²) with tau² from :mod:`ivigmeta.core.tau2`.
* Intervals: Wald z (default), or Hartung-Knapp-Sidik-Jonkman (``hk``: se² = sum w* (y - theta)² /
  ((k - 1) sum w*), t on k - 1 df; Hartung & Knapp 2001, Sidik & Jonkman 2002), as metafor's
  ``test = "knha"`` (no truncation of the variance factor).
* Prediction interval: theta ± crit sqrt(se² + tau²), crit from the normal (z) or t on k - 1 df
  (hk), as metafor's ``predict()`` (Riley et al. 2011).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from ivigmeta.core.distributions import norm_p_two_sided, t_crit, t_p_two_sided, z_crit
from ivigmeta.core.effects import study_estimate
from ivigmeta.core.heterogeneity import heterogeneity
from ivigmeta.core.tau2 import estimate_tau2
from ivigmeta.errors import ModelError
from ivigmeta.results import CommonFit, EffectSizes, FitOptions, MetaAnalysis, RandomFit

CI_METHODS = ("z", "hk")
_EPS = 2.220446049250313e-16


def _percent(w: Sequence[float]) -> tuple[float, ...]:
    """Weights in percent (NaN when they sum to zero, e.g. Mantel-Haenszel double zeros only)."""
    total = math.fsum(w)
    if total <= 0:
        return tuple(math.nan for _ in w)
    return tuple(100.0 * x / total for x in w)


def wald_common(
    measure: str,
    method: str,
    theta: float,
    se: float,
    weights: Sequence[float],
    level: float = 0.95,
    **extra: Any,
) -> CommonFit:
    """A common-effect estimate with its Wald z test and interval; ``weights`` become percent."""
    z = theta / se
    crit = z_crit(level)
    return CommonFit(
        measure=measure,
        theta=theta,
        se=se,
        statistic=z,
        p_value=norm_p_two_sided(z),
        ci_low_theta=theta - crit * se,
        ci_high_theta=theta + crit * se,
        method=method,
        weights=_percent(weights),
        **extra,
    )


def common_iv(es: EffectSizes, level: float = 0.95) -> CommonFit:
    """Inverse-variance common-effect estimate with a Wald z test and interval."""
    w = [1.0 / v for v in es.vi]
    sw = math.fsum(w)
    theta = math.fsum(wi * y for wi, y in zip(w, es.yi)) / sw
    return wald_common(es.measure, "IV", theta, math.sqrt(1.0 / sw), w, level)


def _common_mh(es: EffectSizes, level: float = 0.95) -> CommonFit:
    from ivigmeta.core.mantel_haenszel import common_mh

    es.require_counts("Mantel-Haenszel")
    return common_mh(es, level)


def _common_peto(es: EffectSizes, level: float = 0.95) -> CommonFit:
    from ivigmeta.core.mantel_haenszel import common_peto

    es.require_counts("Peto's method")
    return common_peto(es, level)


#: ``--common`` choices: inverse variance, Mantel-Haenszel, Peto (ivigmeta.core.mantel_haenszel).
COMMON_METHODS: dict[str, Callable[[EffectSizes, float], CommonFit]] = {
    "IV": common_iv,
    "MH": _common_mh,
    "PETO": _common_peto,
}


def random_effects(
    yi: Sequence[float],
    vi: Sequence[float],
    measure: str,
    tau2: float,
    tau2_method: str = "DL",
    ci_method: str = "z",
    level: float = 0.95,
) -> RandomFit:
    """Random-effects estimate for a given tau², with z or Hartung-Knapp inference."""
    k = len(yi)
    w = [1.0 / (v + tau2) for v in vi]
    sw = math.fsum(w)
    theta = math.fsum(wi * y for wi, y in zip(w, yi)) / sw
    se = math.sqrt(1.0 / sw)
    df: float | None = None
    if ci_method == "z":
        crit = z_crit(level)
        stat = theta / se
        p = norm_p_two_sided(stat)
    elif ci_method == "hk":
        if k < 2:
            raise ModelError("Hartung-Knapp intervals need at least 2 studies")
        df = k - 1
        rss = math.fsum(wi * (y - theta) ** 2 for wi, y in zip(w, yi))
        # As metafor: a weighted residual sum of squares below machine epsilon is exactly 0.
        se = 0.0 if rss <= _EPS else math.sqrt(rss / (df * sw))
        crit = t_crit(level, df)
        stat = theta / se if se > 0 else math.copysign(math.inf, theta) if theta else 0.0
        p = t_p_two_sided(stat, df) if se > 0 else (0.0 if theta else 1.0)
    else:
        raise ModelError(
            f"unknown interval method '{ci_method}' (choose one of {', '.join(CI_METHODS)})"
        )
    pi_se = math.sqrt(se * se + tau2)
    return RandomFit(
        measure=measure,
        theta=theta,
        se=se,
        statistic=stat,
        p_value=p,
        ci_low_theta=theta - crit * se,
        ci_high_theta=theta + crit * se,
        tau2_method=tau2_method,
        ci_method=ci_method,
        tau2=tau2,
        df=df,
        pi_low_theta=theta - crit * pi_se,
        pi_high_theta=theta + crit * pi_se,
        weights=_percent(w),
    )


def fit(es: EffectSizes, options: FitOptions | None = None) -> MetaAnalysis:
    """Fit the common-effect and random-effects models to ``es``.

    With a single study nothing is pooled: ``common``, ``random`` and ``heterogeneity`` are
    ``None`` and the study's own estimate is reported. No study at all is a :class:`ModelError`.
    """
    options = options or FitOptions()
    if not 0 < options.level < 1:
        raise ModelError(
            f"the confidence level must be between 0 and 100 percent, not {options.level * 100:g}"
        )
    if es.k == 0:
        reasons = "; ".join(f"{e.study}: {e.reason}" for e in es.excluded)
        raise ModelError("no usable studies" + (f" (excluded: {reasons})" if reasons else ""))
    estimates = tuple(study_estimate(y, v, es.measure, options.level) for y, v in zip(es.yi, es.vi))
    if es.k == 1:
        return MetaAnalysis(es, options, estimates, None, None, None)
    common_method = options.common_method.upper()
    if common_method not in COMMON_METHODS:
        raise ModelError(
            f"unknown common-effect method '{options.common_method}' "
            f"(choose one of {', '.join(COMMON_METHODS)})"
        )
    common = COMMON_METHODS[common_method](es, options.level)
    t2 = estimate_tau2(es.yi, es.vi, options.tau2_method)
    random = random_effects(
        es.yi, es.vi, es.measure, t2.tau2, t2.method, options.ci_method, options.level
    )
    het = heterogeneity(es.yi, es.vi, t2.tau2, t2.method, options.level)
    return MetaAnalysis(es, options, estimates, common, random, het)
