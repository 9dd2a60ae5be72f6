"""Cochran's Q and the heterogeneity statistics derived from it.

* Q = sum w_i (y_i - theta_FE)², w_i = 1 / v_i, on k - 1 df (Cochran 1954);
* I² = 100 tau² / (tau² + s²) and H² = (tau² + s²) / s² with the "typical" within-study variance
  s² = (k - 1) sum w / ((sum w)² - sum w²) (Higgins & Thompson 2002, as metafor computes them);
  under DerSimonian-Laird this equals the Q-based I² = 100 max(0, (Q - df) / Q);
* ``i2_q`` is always the Q-based value that meta and RevMan 5 print;
* the Q-profile confidence intervals for tau², I² and H² come from :mod:`ivigmeta.core.confint`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ivigmeta.core.distributions import chi2_sf
from ivigmeta.core.tau2 import sum_w_minus_sum_w2_over_sum_w
from ivigmeta.results import Heterogeneity


@dataclass(frozen=True)
class QStatistic:
    """Cochran's Q with the common-effect estimate it is centred on."""

    q: float
    df: int
    theta_fe: float
    sum_w: float


def cochran_q(yi: Sequence[float], vi: Sequence[float]) -> QStatistic:
    """Cochran's Q about the inverse-variance common-effect estimate."""
    w = [1.0 / v for v in vi]
    sw = math.fsum(w)
    theta = math.fsum(wi * y for wi, y in zip(w, yi)) / sw
    q = math.fsum(wi * (y - theta) ** 2 for wi, y in zip(w, yi))
    return QStatistic(q=q, df=len(yi) - 1, theta_fe=theta, sum_w=sw)


def typical_variance(vi: Sequence[float]) -> float | None:
    """Higgins & Thompson's typical within-study variance s²; ``None`` for k < 2."""
    k = len(vi)
    if k < 2:
        return None
    w = [1.0 / v for v in vi]
    # (k - 1) sum w / ((sum w)² - sum w²) = (k - 1) / c with c as in DerSimonian-Laird.
    c = sum_w_minus_sum_w2_over_sum_w(w)
    if not c > 0:
        return None
    return (k - 1) / c


def i2_from_q(q: float, df: int) -> float:
    """Q-based I² in percent: 100 max(0, (Q - df) / Q), 0 when Q = 0."""
    if q <= 0:
        return 0.0
    return 100.0 * max(0.0, (q - df) / q)


def heterogeneity(
    yi: Sequence[float],
    vi: Sequence[float],
    tau2: float,
    tau2_method: str = "DL",
    level: float | None = 0.95,
) -> Heterogeneity:
    """All heterogeneity statistics for effect sizes ``yi``, ``vi`` and an estimated ``tau2``.

    With a ``level`` the Q-profile confidence intervals for tau², I² and H² are attached
    (:mod:`ivigmeta.core.confint`); ``level=None`` skips them.
    """
    k = len(yi)
    if k < 2:
        return Heterogeneity(None, 0, None, None, None, None, None, None, tau2_method)
    qs = cochran_q(yi, vi)
    s2 = typical_variance(vi)
    if s2 is None:
        i2 = h2 = None
    else:
        i2 = 100.0 * tau2 / (tau2 + s2)
        h2 = (tau2 + s2) / s2
    return Heterogeneity(
        q=qs.q,
        df=qs.df,
        p_value=chi2_sf(qs.q, qs.df),
        i2=i2,
        h2=h2,
        tau2=tau2,
        tau=math.sqrt(tau2),
        i2_q=i2_from_q(qs.q, qs.df),
        tau2_method=tau2_method,
        ci=_ci(yi, vi, tau2, level) if level is not None and s2 is not None else None,
    )


def _ci(yi: Sequence[float], vi: Sequence[float], tau2: float, level: float):
    from ivigmeta.core.confint import qprofile_ci

    return qprofile_ci(yi, vi, tau2, level)
