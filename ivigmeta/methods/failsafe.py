"""Fail-safe N: how many unpublished null studies would overturn the result (metafor's ``fsn``).

* Rosenthal (1979), Stouffer's method: z_i = y_i / sqrt(v_i), Z = |sum z_i| / sqrt(k), observed
  one-sided p = P(N(0,1) > Z); N = max(0, k (Z / z_(1-alpha))² - k), z_(1-alpha) one-sided.
* Orwin (1983): unweighted mean effect m = mean(y_i) (``orwin``), or the inverse-variance
  weighted mean m = sum w y / sum w, w = 1 / v (``orwin-weighted``: metafor's
  ``fsn(type = "Orwin", weighted = TRUE)``), and a target (trivial) effect t on the analysis
  scale, by default m / 2 (metafor's default), given the sign of m; N = max(0, k (m - t) / t).
* Rosenberg (2005): the inverse-variance common-effect estimate and its two-sided z test;
  N = max(0, k ((sum w y / z_(1-alpha/2))² - sum w) / sum w).

N is rounded up to a whole number unless it is within sqrt(machine epsilon) of one, then rounded
(as metafor). metafor 3.8-1 has one more type, "REM" (a random-effects fail-safe N found by
simulation with R's random numbers), which is not reproduced; its "General" type came later
(metafor 4.0). The fail-safe N ignores heterogeneity and effect size (Rosenthal) and is not
recommended as a test of publication bias (Cochrane Handbook 13.3.5.4); it is reported because
reviewers ask for it.
"""

from __future__ import annotations

import math

from ivigmeta.core.distributions import norm_p_two_sided, norm_ppf, norm_sf
from ivigmeta.errors import ModelError
from ivigmeta.results import RATIO_MEASURES, FailSafeN, MetaAnalysis, NotApplicable

METHODS = ("Rosenthal", "Orwin", "Orwin-weighted", "Rosenberg")
_INTEGER_TOL = math.sqrt(2.220446049250313e-16)


def normalize_method(method: str) -> str:
    for m in METHODS:
        if m.lower() == method.lower():
            return m
    raise ModelError(f"unknown fail-safe N method '{method}' (choose one of {', '.join(METHODS)})")


def target_theta(target: float, measure: str) -> float:
    """Orwin's target given on the reported scale (a ratio for RR/OR) on the analysis scale."""
    if measure in RATIO_MEASURES:
        if not (target > 0 and math.isfinite(target)):
            raise ModelError(f"the Orwin target must be a positive {measure}, not {target:g}")
        return math.log(target)
    if not math.isfinite(target):
        raise ModelError(f"the Orwin target must be a finite number, not {target}")
    return target


def _round_up(n: float) -> float:
    if math.isinf(n):
        return n
    return float(math.ceil(n)) if abs(n - round(n)) >= _INTEGER_TOL else float(round(n))


def fail_safe_n(
    ma: MetaAnalysis, method: str = "Rosenthal", alpha: float = 0.05, target: float | None = None
) -> FailSafeN | NotApplicable:
    """Fail-safe N of ``ma``'s effect sizes; ``target`` (Orwin) on the reported scale."""
    method = normalize_method(method)
    weighted = method == "Orwin-weighted"
    if weighted:
        method = "Orwin"
    if not 0 < alpha < 1:
        raise ModelError(f"alpha must be between 0 and 1, not {alpha:g}")
    es = ma.effects
    yi, vi, k = es.yi, es.vi, es.k
    if k < 1:
        return NotApplicable("failsafe", "no studies")
    p_value: float | None = None
    mean: float | None = None
    tgt: float | None = None
    if method == "Rosenthal":
        z = abs(math.fsum(y / math.sqrt(v) for y, v in zip(yi, vi)) / math.sqrt(k))
        p_value = norm_sf(z)
        n = max(0.0, k * (z / norm_ppf(1.0 - alpha)) ** 2 - k)
    elif method == "Orwin":
        if weighted:
            w = [1.0 / v for v in vi]
            mean = math.fsum(wi * y for wi, y in zip(w, yi)) / math.fsum(w)
        else:
            mean = math.fsum(yi) / k
        tgt = mean / 2 if target is None else target_theta(target, es.measure)
        if tgt == 0:
            return NotApplicable(
                "failsafe", "Orwin's N is infinite for a target equal to the null effect"
            )
        if mean != 0 and math.copysign(1.0, tgt) != math.copysign(1.0, mean):
            tgt = -tgt  # the target is a distance from the null in the direction of the mean
        n = max(0.0, k * (mean - tgt) / tgt)
    else:
        w = [1.0 / v for v in vi]
        sw = math.fsum(w)
        swy = math.fsum(wi * y for wi, y in zip(w, yi))
        mean = swy / sw
        p_value = norm_p_two_sided(mean / math.sqrt(1.0 / sw))
        n = max(0.0, k * ((swy / norm_ppf(1.0 - alpha / 2)) ** 2 - sw) / sw)
    return FailSafeN(
        method=method,
        n=_round_up(n),
        n_exact=n,
        alpha=alpha,
        p_value=p_value,
        mean_theta=mean,
        target_theta=tgt,
        k=k,
        measure=es.measure,
        weighted=weighted,
    )
