"""Tail areas and quantiles of the normal, chi-square and t distributions.

The normal and chi-square functions use only :mod:`math` (and :mod:`statistics` for the normal
quantile), so the default ``pool`` path never imports scipy. The t distribution, needed only by
Hartung-Knapp intervals, meta-regression under ``--ci hk`` and the regression tests for
small-study effects, imports :mod:`scipy.special` on first use.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported by the array functions (``--help`` stays light)
    import numpy as np

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


def _gammainc_series(a: float, x: float) -> float:
    """Regularized lower incomplete gamma P(a, x) by its power series (for x < a + 1)."""
    log_prefactor = -x + a * math.log(x) - math.lgamma(a)
    term = total = 1.0 / a
    ap = a
    for _ in range(100_000):
        ap += 1.0
        term *= x / ap
        total += term
        if abs(term) < abs(total) * 1e-17:
            break
    return total * math.exp(log_prefactor)


def gammainc(a: float, x: float) -> float:
    """Regularized lower incomplete gamma function P(a, x) = 1 - Q(a, x).

    Computed directly by the series where it is small (x < a + 1), so that lower-tail
    probabilities keep their relative accuracy (the Q-profile interval needs 2.5% quantiles).
    """
    if x <= 0.0:
        return 0.0
    if x < a + 1.0:
        return min(1.0, _gammainc_series(a, x))
    return 1.0 - gammaincc(a, x)


def gammaincc(a: float, x: float) -> float:
    """Regularized upper incomplete gamma function Q(a, x).

    Series for x < a + 1, Lentz's continued fraction otherwise (Press et al., Numerical Recipes,
    section 6.2); relative accuracy about 1e-15 in either branch.
    """
    if x <= 0.0:
        return 1.0
    log_prefactor = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1.0:
        return max(0.0, 1.0 - _gammainc_series(a, x))
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


def chi2_cdf(x: float, df: float) -> float:
    """Lower tail P(X <= x) of a chi-square variable with ``df`` degrees of freedom."""
    if df <= 0:
        raise ValueError("chi-square degrees of freedom must be positive")
    if math.isinf(x):
        return 1.0
    return gammainc(df / 2.0, x / 2.0)


def chi2_ppf(p: float, df: float) -> float:
    """Quantile of the chi-square distribution: the x with P(X <= x) = p, for 0 < p < 1.

    Pure Python (the Q-profile interval is part of the default ``pool`` output, which must not
    import scipy): Wilson-Hilferty start, then Newton steps on the log of the smaller tail,
    safeguarded by bisection on a bracket, to full double precision.
    """
    if not 0.0 < p < 1.0:
        raise ValueError("the probability must be strictly between 0 and 1")
    if df <= 0:
        raise ValueError("chi-square degrees of freedom must be positive")
    a = df / 2.0
    lower = p <= 0.5
    target = math.log(p if lower else 1.0 - p)

    def g(x: float) -> float:
        # log of the smaller tail minus its target; increasing in x for the lower tail.
        tail = chi2_cdf(x, df) if lower else chi2_sf(x, df)
        return (math.log(tail) if tail > 0 else -math.inf) - target

    def log_density(x: float) -> float:
        return (a - 1.0) * math.log(x) - x / 2.0 - a * math.log(2.0) - math.lgamma(a)

    z = norm_ppf(p)
    h = 2.0 / (9.0 * df)
    x = df * max(1.0 - h + z * math.sqrt(h), 1e-3) ** 3
    if lower:
        # Far in the lower tail P(X <= x) ~ (x / 2)^a / Gamma(a + 1): start there (Wilson-Hilferty
        # is floored at 1e-3 and the bracket would take hundreds of halvings to get down).
        small = 2.0 * math.exp((target + math.lgamma(a + 1.0)) / a)
        if small < 1e-20:
            # The next term of the series is a relative x a / (2 (a + 1)): below 1e-20 the
            # leading term is the quantile to double precision (0 when it underflows).
            return small
        if small < x:
            x = small
    lo, hi = 0.0, math.inf
    for _ in range(500):
        gx = g(x)
        if gx == 0.0:
            return x
        # Bracket: for the lower tail g increases with x, for the upper tail it decreases.
        if (gx < 0) == lower:
            lo = x
        else:
            hi = x
        tail = chi2_cdf(x, df) if lower else chi2_sf(x, df)
        slope = math.exp(log_density(x)) / tail if tail > 0 else math.inf
        if not lower:
            slope = -slope
        step = gx / slope if slope not in (0.0, math.inf, -math.inf) else math.nan
        new = x - step
        if not (lo < new < hi) or math.isnan(new):
            new = (lo + hi) / 2.0 if math.isfinite(hi) else 2.0 * max(x, 1.0)
        if abs(new - x) <= 1e-15 * x:
            return new
        x = new
    return x


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


# ---------------------------------------------------------------------------------------------
# The same tails over arrays (one value per group of the engine), without scipy.


def erfc_array(x: np.ndarray) -> np.ndarray:
    """math.erfc element by element: the scalar core's exact normal tails, without scipy."""
    import numpy as np

    _erfc = np.frompyfunc(math.erfc, 1, 1)
    x = np.asarray(x, dtype=float)
    return _erfc(x).astype(float) if x.size else np.empty(0)


def norm_p_array(z: np.ndarray) -> np.ndarray:
    """Two-sided normal p-value 2 P(Z > |z|) = erfc(|z| / sqrt 2)."""
    import numpy as np

    return erfc_array(np.abs(z) / math.sqrt(2.0))


def chi2_sf_array(x: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Upper tail of chi-square with whole-number ``df`` (Q's k - 1), closed form, no scipy.

    With h = x / 2 and m = floor(df / 2): for even df, P = exp(-h) sum_{j<m} h^j / j!; for odd df,
    P = erfc(sqrt h) + exp(-h) sum_{j<m} h^(j + 1/2) / Gamma(j + 3/2) (Abramowitz & Stegun
    26.4.4-5). The terms are summed relative to the largest one in log space, so large Q and large
    df neither overflow nor underflow before the end.
    """
    import numpy as np

    x = np.asarray(x, dtype=float)
    df = np.asarray(df, dtype=float)
    out = np.full(x.shape, np.nan)
    ok = np.isfinite(x) & (df >= 1)
    out[np.isinf(x) & (x > 0)] = 0.0
    zero = ok & (x <= 0)
    out[zero] = 1.0
    ok &= x > 0
    if not ok.any():
        return out
    h = x[ok] / 2.0
    n = df[ok].astype(np.int64)
    m = n // 2
    odd = (n % 2) == 1
    off = np.where(odd, 0.5, 0.0)  # the sum runs over j + off
    top = int(m.max())
    # log Gamma(j + off + 1) for j < top, both parities, from a small table.
    lg_even = np.array([math.lgamma(j + 1.0) for j in range(max(top, 1))])
    lg_odd = np.array([math.lgamma(j + 1.5) for j in range(max(top, 1))])
    logh = np.log(h)
    # Largest term: j + off nearest h - ... ; take j* = clip(floor(h - off), 0, m - 1).
    jstar = np.clip(np.floor(h - off), 0, np.maximum(m - 1, 0)).astype(np.int64)
    lg_star = np.where(
        odd,
        lg_odd[np.minimum(jstar, len(lg_odd) - 1)],
        lg_even[np.minimum(jstar, len(lg_even) - 1)],
    )
    lead = -h + (jstar + off) * logh - lg_star
    # Work on the elements sorted by m, descending: term j only concerns a prefix of them.
    order = np.argsort(-m, kind="stable")
    hs, logs, offs, leads, odds = h[order], logh[order], off[order], lead[order], odd[order]
    live_counts = np.searchsorted(-m[order], -np.arange(top), side="left")  # #{m > j}
    total_s = np.zeros(h.shape)
    with np.errstate(under="ignore"):
        for j in range(top):
            c = int(live_counts[j])
            if c == 0:
                break
            lg = np.where(odds[:c], lg_odd[j], lg_even[j])
            total_s[:c] += np.exp(-hs[:c] + (j + offs[:c]) * logs[:c] - lg - leads[:c])
        total = np.empty_like(total_s)
        total[order] = total_s
        series = np.where(m > 0, np.exp(lead) * total, 0.0)
    tail = np.where(odd, erfc_array(np.sqrt(h)), 0.0)
    out[ok] = tail + series
    return out


def t_p_array(t: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Two-sided p-values of Student's t (scipy.special, imported on first use)."""
    import numpy as np
    from scipy.special import stdtr

    return 2.0 * stdtr(df, -np.abs(t))


def t_crit_array(level: float, df: np.ndarray) -> np.ndarray:
    """Two-sided critical values of Student's t for a confidence ``level`` in (0, 1)."""

    from scipy.special import stdtrit

    return stdtrit(df, 1.0 - (1.0 - level) / 2.0)


def bvn_cdf(h: np.ndarray, k: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Bivariate standard normal CDF Φ2(h, k; ρ) = P(X <= h, Y <= k), corr(X, Y) = ρ, over arrays.

    Owen's (1956, eq. 3.1) reduction to his T function, which scipy evaluates to double precision
    (Patefield & Tandy 2000): Φ2 = Φ(h)/2 + Φ(k)/2 - T(h, a_h) - T(k, a_k) - β with
    a_h = (k - ρ h) / (h sqrt(1 - ρ²)), a_k = (h - ρ k) / (k sqrt(1 - ρ²)) and β = 1/2 when
    h k < 0 or (h k = 0 and h + k < 0), else 0; T(0, ±inf) = ±1/4, Φ2(0, 0; ρ) = 1/4 + asin(ρ)/(2π),
    Φ2(h, k; 1) = Φ(min(h, k)), Φ2(h, k; -1) = max(0, Φ(h) + Φ(k) - 1). Deterministic and exact to
    about 1e-16 in absolute terms (unlike a randomised quasi-Monte Carlo integration).
    """
    import numpy as np
    from scipy.special import ndtr, owens_t

    h, k, rho = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (h, k, rho)))
    out = np.full(h.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        r = np.sqrt((1 - rho) * (1 + rho))
        inner = np.abs(rho) < 1

        def t_term(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            # T(x, (y - ρ x) / (x r)), with y - ρ x written as (y - x) + x (1 - ρ) (no cancellation)
            slope = ((y - x) + x * (1 - rho)) / (x * r)
            t = owens_t(x, np.where(x == 0, 0.0, slope))
            return np.where(x == 0, np.where(y == 0, 0.0, np.sign(y) * 0.25), t)

        beta = np.where((h * k < 0) | ((h * k == 0) & (h + k < 0)), 0.5, 0.0)
        gen = 0.5 * ndtr(h) + 0.5 * ndtr(k) - t_term(h, k) - t_term(k, h) - beta
        both0 = (h == 0) & (k == 0)
        gen = np.where(both0, 0.25 + np.arcsin(np.clip(rho, -1, 1)) / (2 * math.pi), gen)
        out = np.where(inner, gen, out)
        out = np.where(rho == 1, ndtr(np.minimum(h, k)), out)
        out = np.where(rho == -1, np.maximum(0.0, ndtr(h) + ndtr(k) - 1), out)
    return np.clip(out, 0.0, 1.0)
