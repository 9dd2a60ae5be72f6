"""Cochran's Q and the heterogeneity statistics derived from it, for many groups at once.

* Q = sum w_i (y_i - theta_FE)², w_i = 1 / v_i, on k - 1 df (Cochran 1954);
* I² = 100 tau² / (tau² + s²) and H² = (tau² + s²) / s² with the "typical" within-study variance
  s² = (k - 1) sum w / ((sum w)² - sum w²) = (k - 1) / tr P0 (Higgins & Thompson 2002, as
  metafor computes them); under DerSimonian-Laird this equals the Q-based
  I² = 100 max(0, (Q - df) / Q);
* ``i2_q`` is always the Q-based value that meta and RevMan 5 print;
* the Q-profile confidence intervals for tau², I² and H² come from :mod:`ivigmeta.core.confint`.

tr P0 is computed without cancellation (:func:`ivigmeta.core.groups.trace_p`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ivigmeta.core.distributions import chi2_sf_array
from ivigmeta.core.groups import Groups
from ivigmeta.core.models import InterceptModels

if TYPE_CHECKING:
    from ivigmeta.results import Heterogeneity, HeterogeneityCI


@dataclass(frozen=True)
class QStatistic:
    """Cochran's Q with the common-effect estimate it is centred on."""

    q: float
    df: int
    theta_fe: float
    sum_w: float


@dataclass(frozen=True)
class GroupHeterogeneity:
    """Q, its p-value and the typical within-study variance per group (k >= 2)."""

    q: np.ndarray
    df: np.ndarray
    p_value: np.ndarray
    theta_fe: np.ndarray
    sum_w: np.ndarray
    #: Higgins & Thompson's s² (NaN where tr P0 is not positive)
    s2: np.ndarray

    def i2(self, tau2: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return 100.0 * tau2 / (tau2 + self.s2)

    def h2(self, tau2: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (tau2 + self.s2) / self.s2

    def i2_q(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.q > 0, 100.0 * np.maximum(0.0, (self.q - self.df) / self.q), 0.0)


def group_heterogeneity(
    y: np.ndarray, v: np.ndarray, g: Groups, models: InterceptModels | None = None
) -> GroupHeterogeneity:
    """Cochran's Q about the inverse-variance common effect, and s², for every group.

    Q and tr P0 are the random-effects model's at tau² = 0 (``models``, built here if not given:
    a fit passes its own, which has them already)."""
    m = models if models is not None else InterceptModels(y, v, g)
    w = 1.0 / v
    sw = g.sum(w)
    theta = g.sum(w * y) / sw
    zero = np.zeros(len(g))
    q = m.q(zero)[0]
    df = g.sizes - 1
    c = m.trace_p(zero)
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = np.where(c > 0, df / c, np.nan)
    return GroupHeterogeneity(q, df, chi2_sf_array(q, df), theta, sw, s2)


def q_about(y: np.ndarray, v: np.ndarray, g: Groups, theta: np.ndarray) -> np.ndarray:
    """Cochran's Q centred on a given estimate per group, sum w (y - theta)², w = 1 / v (RevMan 5
    and meta centre it on the Mantel-Haenszel estimate for Mantel-Haenszel analyses)."""
    r = y - g.spread(theta)
    return g.sum(r * r / v)


def _one(yi: Sequence[float], vi: Sequence[float]) -> GroupHeterogeneity:
    return group_heterogeneity(
        np.asarray(yi, dtype=float), np.asarray(vi, dtype=float), Groups.single(len(yi))
    )


def cochran_q(yi: Sequence[float], vi: Sequence[float]) -> QStatistic:
    """Cochran's Q about the inverse-variance common-effect estimate (one analysis)."""
    h = _one(yi, vi)
    return QStatistic(float(h.q[0]), len(yi) - 1, float(h.theta_fe[0]), float(h.sum_w[0]))


def typical_variance(vi: Sequence[float]) -> float | None:
    """Higgins & Thompson's typical within-study variance s²; ``None`` for k < 2."""
    if len(vi) < 2:
        return None
    s2 = float(_one([0.0] * len(vi), vi).s2[0])
    return None if math.isnan(s2) else s2


def i2_from_q(q: float, df: int) -> float:
    """Q-based I² in percent: 100 max(0, (Q - df) / Q), 0 when Q = 0."""
    if q <= 0:
        return 0.0
    return 100.0 * max(0.0, (q - df) / q)


def heterogeneity_result(
    h: GroupHeterogeneity,
    i: int,
    tau2: float,
    tau2_method: str,
    ci: HeterogeneityCI | None,
) -> Heterogeneity:
    """The :class:`~ivigmeta.results.Heterogeneity` of group ``i``."""
    from ivigmeta.results import Heterogeneity

    s2 = float(h.s2[i])
    known = not math.isnan(s2)
    return Heterogeneity(
        q=float(h.q[i]),
        df=int(h.df[i]),
        p_value=float(h.p_value[i]),
        i2=100.0 * tau2 / (tau2 + s2) if known else None,
        h2=(tau2 + s2) / s2 if known else None,
        tau2=tau2,
        tau=math.sqrt(tau2),
        i2_q=i2_from_q(float(h.q[i]), int(h.df[i])),
        tau2_method=tau2_method,
        ci=ci,
    )


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
    from ivigmeta.results import Heterogeneity

    if len(yi) < 2:
        return Heterogeneity(None, 0, None, None, None, None, None, None, tau2_method)
    h = _one(yi, vi)
    ci = None
    if level is not None and not math.isnan(float(h.s2[0])):
        from ivigmeta.core.confint import qprofile_ci

        ci = qprofile_ci(yi, vi, tau2, level)
    return heterogeneity_result(h, 0, tau2, tau2_method, ci)
