"""The test of excess significance (Ioannidis & Trikalinos 2007), as metafor's ``tes()`` with
its defaults (two-sided study tests at alpha = 0.05, H0 = 0, the one-sided "greater" test of
excess, tes.alpha = 0.10).

With each study's z_i = (y_i - H0) / se_i and the critical value c = z_{1 - alpha/2}:

* a study is significant when |z_i| >= c; O is their number;
* its power at the assumed true effect theta (by default the common-effect, inverse-variance
  estimate, as metafor's ``tes(yi, vi)``) is P(|Z| >= c) for Z ~ N((theta - H0) / se_i, 1);
  E = sum of the powers;
* the excess is tested three ways (metafor's ``test``): "chi2", the one-sample proportion test of
  O out of k against E / k without continuity correction (R's prop.test): X² =
  (O - E)² / (E (1 - E / k)), p = P(N(0, 1) >= sign(O - E) sqrt(X²)); "binom", P(Bin(k, E / k)
  >= O); "exact", P(S >= O) for S the sum of independent Bernoulli(power_i) (the Poisson-
  binomial distribution, by convolution). ``p_value`` is the one metafor uses by default: the
  exact test when the number of subsets it sums over, sum_{j >= O} C(k, j), is at most 10^6,
  else the chi-square test;
* the limit estimate theta_lim: the assumed effect at which the chosen test's p-value equals
  tes.alpha (0.10), searched from H0 towards theta and beyond (metafor's ``theta.lim``); None
  when already at H0 the p-value is at least tes.alpha.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ivigmeta.core.distributions import norm_ppf, norm_sf
from ivigmeta.errors import ModelError
from ivigmeta.results import ExcessSignificance, MetaAnalysis

ALPHA = 0.05
TES_ALPHA = 0.10


def _powers(se: Sequence[float], theta: float, h0: float, crit: float) -> list[float]:
    return [norm_sf(crit - (theta - h0) / s) + norm_sf(crit + (theta - h0) / s) for s in se]


def _poisson_binomial_upper(powers: Sequence[float], o: int) -> float:
    """P(S >= o), S = sum of independent Bernoulli(powers)."""
    dist = [1.0]
    for p in powers:
        nxt = [0.0] * (len(dist) + 1)
        for j, q in enumerate(dist):
            nxt[j] += q * (1.0 - p)
            nxt[j + 1] += q * p
        dist = nxt
    return min(1.0, math.fsum(dist[o:]))


def _binom_upper(k: int, o: int, p: float) -> float:
    return min(1.0, math.fsum(math.comb(k, j) * p**j * (1 - p) ** (k - j) for j in range(o, k + 1)))


def _tests(powers: Sequence[float], o: int) -> tuple[float, float, float, float, float]:
    """E, X², the chi-square, binomial and exact p-values of the excess (one-sided)."""
    k = len(powers)
    e = math.fsum(powers)
    p = e / k
    denom = e * (1.0 - p)
    x2 = (o - e) ** 2 / denom if denom > 0 else math.inf
    z = math.copysign(math.sqrt(x2), o - e) if math.isfinite(x2) else math.copysign(math.inf, o - e)
    return e, x2, norm_sf(z), _binom_upper(k, o, p), _poisson_binomial_upper(powers, o)


def _chosen(k: int, o: int) -> str:
    return "exact" if sum(math.comb(k, j) for j in range(o, k + 1)) <= 10**6 else "chi2"


def excess_significance(ma: MetaAnalysis, h0: float = 0.0) -> ExcessSignificance:
    """The test of excess significance of the studies of ``ma`` (module docstring)."""
    es = ma.effects
    k = es.k
    if k < 2:
        raise ModelError(f"the test of excess significance needs at least 2 studies (have {k})")
    se = [math.sqrt(v) for v in es.vi]
    if not all(s > 0 and math.isfinite(s) for s in se):
        raise ModelError("the test of excess significance needs positive sampling variances")
    crit = norm_ppf(1.0 - ALPHA / 2.0)
    y = list(es.yi)
    w = [1.0 / v for v in es.vi]
    theta = math.fsum(wi * yi for wi, yi in zip(w, y)) / math.fsum(w)
    o = sum(1 for yi, s in zip(y, se) if abs((yi - h0) / s) >= crit)
    powers = _powers(se, theta, h0, crit)
    e, x2, p_chi2, p_binom, p_exact = _tests(powers, o)
    test = _chosen(k, o)

    def p_at(t: float) -> float:
        res = _tests(_powers(se, t, h0, crit), o)
        return res[4] if test == "exact" else res[2]

    return ExcessSignificance(
        k=k,
        observed=o,
        expected=e,
        ratio=o / e if e > 0 else math.inf,
        test=test,
        p_value=p_exact if test == "exact" else p_chi2,
        x2=x2,
        p_chi2=p_chi2,
        p_binom=p_binom,
        p_exact=p_exact,
        theta=theta,
        theta_lim=_limit(p_at, h0, theta),
        powers=tuple(powers),
        measure=es.measure,
    )


def _limit(p_at, h0: float, theta: float) -> float | None:  # type: ignore[no-untyped-def]
    """The effect at which the test's p-value equals TES_ALPHA, searched from H0 towards theta
    (and beyond, doubling the step), by bisection to double precision."""
    if p_at(h0) - TES_ALPHA >= 0:
        return None
    direction = 1.0 if theta >= h0 else -1.0
    step = max(abs(theta - h0), 1e-3)
    lo, hi = h0, h0 + direction * step
    for _ in range(200):
        if p_at(hi) - TES_ALPHA > 0:
            break
        lo, hi = hi, h0 + direction * (abs(hi - h0) * 2.0)
    else:
        return None
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if mid in (lo, hi):
            break
        if p_at(mid) - TES_ALPHA > 0:
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2.0


__all__ = ["excess_significance"]
