"""Tail areas and quantiles of the normal, chi-square and t distributions.

The normal and chi-square functions use only :mod:`math` (and :mod:`statistics` for the normal
quantile), so the default ``pool`` path never imports scipy. The t distribution, needed only by
Hartung-Knapp intervals, meta-regression under ``--ci hk`` and the regression tests for
small-study effects, imports :mod:`scipy.special` on first use.
"""

from __future__ import annotations

import math
from statistics import NormalDist

_SQRT2 = math.sqrt(2.0)
_STD_NORMAL = NormalDist()
_TINY = 1e-300


def norm_sf(z: float) -> float:
    """Upper tail P(Z > z) of the standard normal, exact to double precision via erfc."""
    return 0.5 * math.erfc(z / _SQRT2)


def norm_p_two_sided(z: float) -> float:
    """Two-sided p-value 2 P(Z > |z|)."""
    return math.erfc(abs(z) / _SQRT2)


def norm_ppf(p: float) -> float:
    """Standard normal quantile (Wichura's AS241 through :class:`statistics.NormalDist`)."""
    return _STD_NORMAL.inv_cdf(p)


def z_crit(level: float) -> float:
    """Two-sided critical value of the normal distribution for a confidence ``level`` in (0, 1)."""
    return norm_ppf(1.0 - (1.0 - level) / 2.0)


def gammaincc(a: float, x: float) -> float:
    """Regularized upper incomplete gamma function Q(a, x).

    Series for x < a + 1, Lentz's continued fraction otherwise (Press et al., Numerical Recipes,
    section 6.2); relative accuracy about 1e-15 in either branch.
    """
    if x <= 0.0:
        return 1.0
    log_prefactor = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        ap = a
        for _ in range(100_000):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-17:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefactor))
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, 100_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < _TINY:
            d = _TINY
        c = b + an / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return math.exp(log_prefactor) * h


def chi2_sf(x: float, df: float) -> float:
    """Upper tail P(X > x) of a chi-square variable with ``df`` degrees of freedom."""
    if df <= 0:
        raise ValueError("chi-square degrees of freedom must be positive")
    if math.isinf(x):
        return 0.0
    return gammaincc(df / 2.0, x / 2.0)


def t_p_two_sided(t: float, df: float) -> float:
    """Two-sided p-value of Student's t with ``df`` degrees of freedom."""
    from scipy.special import stdtr

    return float(2.0 * stdtr(df, -abs(t)))


def t_crit(level: float, df: float) -> float:
    """Two-sided critical value of Student's t for a confidence ``level`` in (0, 1)."""
    from scipy.special import stdtrit

    return float(stdtrit(df, 1.0 - (1.0 - level) / 2.0))


def f_sf(x: float, df1: float, df2: float) -> float:
    """Upper tail of the F distribution (omnibus test of a meta-regression under ``--ci hk``)."""
    from scipy.special import fdtrc

    return float(fdtrc(df1, df2, x))
