"""RevMan 5's statistical methods (Deeks & Higgins 2010, "Statistical algorithms in Review
Manager 5"; Cochrane Handbook chapter 10), for one analysis and its subgroups.

Where RevMan differs from metafor's defaults (and so from ivigmeta's for CSV input):

* Study effects: 0.5 is added to all four cells of a study with a zero cell (OR, RR, RD; for
  every computation from the counts, MH included); a study with no events in either arm (or,
  for OR and RR, events only) is not estimable. SMD is Hedges'
  adjusted g with J = 1 - 3 / (4N - 9) and Var = N / (n1 n2) + g² / (2 (N - 3.94)).
* Mantel-Haenszel uses the corrected counts; the MH risk difference has Greenland & Robins'
  (1985) variance sum (a b n2³ + c d n1³) / (n1 n2 N²) / (sum n1 n2 / N)². (OR and RR with the
  corrected counts reproduce real RevMan files; for RD the same rule is assumed.)
* Heterogeneity: Chi² = sum w (y - theta)² with inverse-variance weights w = 1 / v around the
  method's own estimate (MH, IV), or Peto's sum (O - E)² / V - (sum (O - E))² / sum V; df = the
  estimable rows minus 1; I² = max(0, (Chi² - df) / Chi²).
* Random effects: DerSimonian-Laird from that Chi²: tau² = max(0, (Chi² - df) / (sum w - sum w² /
  sum w)), then inverse-variance weights 1 / (v + tau²).
* Z is |theta| / se, P two-sided normal; intervals are Wald z at the analysis's own levels.
* Subgroup differences: the subgroups' pooled estimates (the analysis's model) are compared by
  an inverse-variance Chi² on J - 1 df, with its I² (Borenstein & Higgins 2013).
* Weights are percentages of the whole outcome: a study's weight inside a subgroup is its share
  of the total of all studies' weights (each computed with its subgroup's tau² in random-effects
  analyses).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ivigmeta.core.distributions import chi2_sf_array, norm_p_array, z_crit
from ivigmeta.core.groups import Groups
from ivigmeta.errors import ModelError

CC = 0.5


@dataclass(frozen=True)
class StudyEffects:
    """Per row: RevMan's effect (analysis scale), its variance, and whether it is estimable."""

    yi: np.ndarray
    vi: np.ndarray
    estimable: np.ndarray
    #: Peto's O - E and V per row (OR data only), else empty
    oe: np.ndarray
    v_peto: np.ndarray
    #: the corrected counts a, n1, c, n2 (dichotomous data), else empty
    counts: tuple[np.ndarray, ...] = ()


def dichotomous_effects(
    a: np.ndarray, n1: np.ndarray, c: np.ndarray, n2: np.ndarray, measure: str
) -> StudyEffects:
    """RevMan's study effects from 2x2 counts (module docstring)."""
    a, n1, c, n2 = (np.asarray(x, dtype=float) for x in (a, n1, c, n2))
    b, d = n1 - a, n2 - c
    zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    add = np.where(zero, CC, 0.0)
    ac, bc, cc, dc = a + add, b + add, c + add, d + add
    m1, m2 = ac + bc, cc + dc
    no_events = (a == 0) & (c == 0)
    all_events = (b == 0) & (d == 0)
    estimable = (n1 > 0) & (n2 > 0) & ~no_events
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "OR":
            yi = np.log(ac * dc / (bc * cc))
            vi = 1 / ac + 1 / bc + 1 / cc + 1 / dc
            estimable &= ~all_events
        elif measure == "RR":
            yi = np.log((ac / m1) / (cc / m2))
            vi = 1 / ac - 1 / m1 + 1 / cc - 1 / m2
            estimable &= ~all_events
        elif measure == "RD":
            yi = ac / m1 - cc / m2
            vi = ac * bc / m1**3 + cc * dc / m2**3
        else:
            raise ModelError(f"RevMan's dichotomous methods have no measure {measure}")
        n = n1 + n2
        oe = a - (a + c) * n1 / n
        v_peto = (a + c) * (b + d) * n1 * n2 / (n * n * (n - 1))
    estimable &= np.isfinite(yi) & np.isfinite(vi) & (vi > 0)
    return StudyEffects(yi, vi, estimable, oe, v_peto, (ac, m1, cc, m2))


def peto_effects(a: np.ndarray, n1: np.ndarray, c: np.ndarray, n2: np.ndarray) -> StudyEffects:
    """Peto's log odds ratio per study: (O - E) / V, variance 1 / V (no correction needed)."""
    fx = dichotomous_effects(a, n1, c, n2, "OR")
    with np.errstate(divide="ignore", invalid="ignore"):
        yi = fx.oe / fx.v_peto
        vi = 1 / fx.v_peto
    est = np.isfinite(yi) & np.isfinite(vi) & (fx.v_peto > 0)
    return StudyEffects(yi, vi, est, fx.oe, fx.v_peto, fx.counts)


def continuous_effects(
    m1: np.ndarray,
    s1: np.ndarray,
    n1: np.ndarray,
    m2: np.ndarray,
    s2: np.ndarray,
    n2: np.ndarray,
    measure: str,
) -> StudyEffects:
    """MD (Var = s1² / n1 + s2² / n2) or SMD (Hedges' adjusted g, RevMan's variance)."""
    m1, s1, n1, m2, s2, n2 = (np.asarray(x, dtype=float) for x in (m1, s1, n1, m2, s2, n2))
    n = n1 + n2
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "MD":
            yi = m1 - m2
            vi = s1**2 / n1 + s2**2 / n2
        elif measure == "SMD":
            s = np.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / (n - 2))
            yi = (m1 - m2) / s * (1 - 3 / (4 * n - 9))
            vi = n / (n1 * n2) + yi**2 / (2 * (n - 3.94))
        else:
            raise ModelError(f"RevMan's continuous methods have no measure {measure}")
    est = np.isfinite(yi) & np.isfinite(vi) & (vi > 0) & (n1 > 0) & (n2 > 0)
    empty = np.array([])
    return StudyEffects(yi, vi, est, empty, empty)


def generic_effects(yi: np.ndarray, se: np.ndarray) -> StudyEffects:
    """Generic inverse variance: the estimate and SE as entered (log scale for ratios)."""
    yi = np.asarray(yi, dtype=float)
    se = np.asarray(se, dtype=float)
    vi = se * se
    est = np.isfinite(yi) & np.isfinite(vi) & (vi > 0)
    empty = np.array([])
    return StudyEffects(yi, vi, est, empty, empty)


def oe_effects(oe: np.ndarray, var: np.ndarray) -> StudyEffects:
    """O - E and variance data: log effect (O - E) / V, variance 1 / V."""
    oe = np.asarray(oe, dtype=float)
    var = np.asarray(var, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        yi, vi = oe / var, 1 / var
    est = np.isfinite(yi) & (var > 0)
    return StudyEffects(yi, vi, est, oe, var)


@dataclass(frozen=True)
class Pooled:
    """One pooled result as RevMan stores it (analysis scale), per group."""

    theta: np.ndarray
    se: np.ndarray
    z: np.ndarray  # |theta| / se
    p_value: np.ndarray
    chi2: np.ndarray
    df: np.ndarray
    p_chi2: np.ndarray
    i2: np.ndarray  # percent
    tau2: np.ndarray
    #: per row: the weight the row has in its group's estimate (not normalised)
    weights: np.ndarray


def _mh(fx: StudyEffects, g: Groups, measure: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mantel-Haenszel estimate, se and per-row weights on the corrected counts."""
    a, n1, c, n2 = fx.counts
    b, d = n1 - a, n2 - c
    n = n1 + n2
    if measure == "OR":
        p, q = (a + d) / n, (b + c) / n
        ri, si = a * d / n, b * c / n
        r, s = g.sum(ri), g.sum(si)
        theta = np.log(r / s)
        var = 0.5 * (g.sum(p * ri) / r**2 + g.sum(p * si + q * ri) / (r * s) + g.sum(q * si) / s**2)
        w = si
    elif measure == "RR":
        r, s = g.sum(a * n2 / n), g.sum(c * n1 / n)
        theta = np.log(r / s)
        var = g.sum(n1 * n2 * (a + c) / n**2 - a * c / n) / (r * s)
        w = c * n1 / n
    else:  # RD, Greenland & Robins (1985)
        w = n1 * n2 / n
        sw = g.sum(w)
        theta = g.sum((a * n2 - c * n1) / n) / sw
        var = g.sum((a * b * n2**3 + c * d * n1**3) / (n1 * n2 * n * n)) / sw**2
    return theta, np.sqrt(var), w


def pool(fx: StudyEffects, g: Groups, measure: str, method: str, model: str) -> Pooled:
    """Pool every group of (estimable) rows with RevMan's ``method`` and ``model``."""
    y, v = fx.yi, fx.vi
    with np.errstate(divide="ignore", invalid="ignore"):
        w_iv = 1.0 / v
        s1 = g.sum(w_iv)
        k = g.sizes.astype(float)
        df = k - 1
        if method == "MH":
            theta_c, se_c, w_c = _mh(fx, g, measure)
        elif method == "PETO":
            sv = g.sum(fx.v_peto)
            theta_c = g.sum(fx.oe) / sv
            se_c = np.sqrt(1 / sv)
            w_c = fx.v_peto
        else:
            theta_c = g.sum(w_iv * y) / s1
            se_c = np.sqrt(1 / s1)
            w_c = w_iv
        if method == "PETO":
            chi2 = g.sum(fx.oe**2 / fx.v_peto) - g.sum(fx.oe) ** 2 / g.sum(fx.v_peto)
        else:
            chi2 = g.sum(w_iv * (y - g.spread(theta_c)) ** 2)
        chi2 = np.maximum(chi2, 0.0)
        i2 = np.where(chi2 > 0, np.maximum(0.0, (chi2 - df) / chi2) * 100, 0.0)
        p_chi2 = np.where(df > 0, chi2_sf_array(chi2, np.maximum(df, 1)), np.nan)
        tau2 = np.maximum(0.0, (chi2 - df) / (s1 - g.sum(w_iv * w_iv) / s1))
        tau2 = np.where(df > 0, tau2, 0.0)
        if model == "random":
            w_r = 1.0 / (v + g.spread(tau2))
            sr = g.sum(w_r)
            theta, se, weights = g.sum(w_r * y) / sr, np.sqrt(1 / sr), w_r
        else:
            theta, se, weights = theta_c, se_c, w_c
        z = np.abs(theta / se)
    return Pooled(theta, se, z, norm_p_array(z), chi2, df, p_chi2, i2, tau2, weights)


@dataclass(frozen=True)
class SubgroupTest:
    chi2: float
    df: int
    p_value: float
    i2: float


def subgroup_test(theta: Sequence[float], se: Sequence[float]) -> SubgroupTest:
    """RevMan 5's test for subgroup differences: inverse-variance Chi² of the subgroup estimates."""
    t = np.asarray(theta, dtype=float)
    w = 1 / np.asarray(se, dtype=float) ** 2
    keep = np.isfinite(t) & np.isfinite(w)
    t, w = t[keep], w[keep]
    df = len(t) - 1
    if df < 1:
        return SubgroupTest(math.nan, max(df, 0), math.nan, math.nan)
    mean = float((w * t).sum() / w.sum())
    chi2 = float(max(0.0, (w * (t - mean) ** 2).sum()))
    p = float(chi2_sf_array(np.array([chi2]), np.array([float(df)]))[0])
    i2 = max(0.0, (chi2 - df) / chi2) * 100 if chi2 > 0 else 0.0
    return SubgroupTest(chi2, df, p, i2)


def wald_interval(
    theta: np.ndarray, se: np.ndarray, level_percent: float
) -> tuple[np.ndarray, np.ndarray]:
    crit = z_crit(level_percent / 100)
    return theta - crit * se, theta + crit * se


def _back(x: float, log: bool) -> float:
    return math.exp(x) if log else x


@dataclass(frozen=True)
class AnalysisNumbers:
    """What RevMan stores for an analysis, recomputed: by RevMan's attribute names, on RevMan's
    display scale (ratios exponentiated), per study row, per subgroup and for the total."""

    studies: tuple[dict[str, float], ...]  # one per row (empty for a row not estimable)
    subgroups: tuple[dict[str, float], ...]  # one per subgroup code 0..J-1 (empty if none)
    total: dict[str, float]
    subgroup_test: dict[str, float]


def _pooled_numbers(p: Pooled, i: int, level: float, log: bool) -> dict[str, float]:
    theta, se = float(p.theta[i]), float(p.se[i])
    crit = z_crit(level / 100)
    out = {
        "EFFECT_SIZE": _back(theta, log),
        "CI_START": _back(theta - crit * se, log),
        "CI_END": _back(theta + crit * se, log),
        "Z": float(p.z[i]),
        "P_Z": float(p.p_value[i]),
        "CHI2": float(p.chi2[i]),
        "DF": float(p.df[i]),
        "I2": float(p.i2[i]),
        "TAU2": float(p.tau2[i]),
    }
    if p.df[i] >= 1:
        out["P_CHI2"] = float(p.p_chi2[i])
    return out


def analysis_numbers(
    fx: StudyEffects,
    subgroup: np.ndarray,
    n_subgroups: int,
    measure: str,
    method: str,
    model: str,
    ci_study: float,
    ci_total: float,
    log: bool,
    entered: bool = False,
) -> AnalysisNumbers:
    """Recompute everything RevMan stores for one analysis.

    ``subgroup`` codes each row's subgroup 0..n_subgroups - 1 (all 0 without subgroups); rows
    not estimable take no part. Weights are percentages of the whole outcome. ``entered``: the
    rows' EFFECT_SIZE is the value as entered (generic inverse variance: analysis scale).
    """
    est = fx.estimable
    k = len(fx.yi)
    weights = np.full(k, np.nan)
    subs: list[dict[str, float]] = []
    theta_sub, se_sub = [], []
    for j in range(n_subgroups):
        mask = est & (subgroup == j)
        if not mask.any():
            subs.append({})
            continue
        p = pool(take(fx, mask), Groups.single(int(mask.sum())), measure, method, model)
        weights[mask] = p.weights
        subs.append(_pooled_numbers(p, 0, ci_total, log))
        theta_sub.append(float(p.theta[0]))
        se_sub.append(float(p.se[0]))
    total_w = float(np.nansum(weights))
    crit = z_crit(ci_study / 100)
    studies: list[dict[str, float]] = []
    for i in range(k):
        if not est[i]:
            studies.append({})
            continue
        y, v = float(fx.yi[i]), float(fx.vi[i])
        se = math.sqrt(v)
        studies.append(
            {
                "EFFECT_SIZE": y if entered else _back(y, log),
                "CI_START": _back(y - crit * se, log),
                "CI_END": _back(y + crit * se, log),
                "SE": se,
                "VAR": v,
                "WEIGHT": 100 * float(weights[i]) / total_w,
            }
        )
    total: dict[str, float] = {}
    if est.any():
        p = pool(take(fx, est), Groups.single(int(est.sum())), measure, method, model)
        total = _pooled_numbers(p, 0, ci_total, log)
    test: dict[str, float] = {}
    if n_subgroups >= 2 and len(theta_sub) >= 2:
        t = subgroup_test(theta_sub, se_sub)
        test = {"Q": t.chi2, "P_Q": t.p_value, "I2_Q": t.i2}
    return AnalysisNumbers(tuple(studies), tuple(subs), total, test)


def take(fx: StudyEffects, keep: np.ndarray) -> StudyEffects:
    """The rows ``keep`` of ``fx``."""

    def sub(x: np.ndarray) -> np.ndarray:
        return x[keep] if len(x) else x

    return StudyEffects(
        fx.yi[keep],
        fx.vi[keep],
        fx.estimable[keep],
        sub(fx.oe),
        sub(fx.v_peto),
        tuple(c[keep] for c in fx.counts),
    )


# ---------------------------------------------------------------------------------------------
# A fit with RevMan's methods (``--software revman``): the same result objects as any fit.

SOFTWARES = ("metafor", "revman")


def check_software(software: str) -> str:
    s = software.lower()
    if s not in SOFTWARES:
        raise ModelError(f"unknown software {software!r} (choose metafor or revman)")
    return s


def revman_effects(es: Any) -> Any:
    """``es`` with RevMan's study effects where RevMan's differ from escalc's defaults: SMD is
    Hedges' adjusted g with RevMan's variance; counts get 0.5 in all four cells of a study with
    a zero cell (the default --cc also gives)."""
    from dataclasses import replace

    if es.measure != "SMD":
        return es
    ys, vs = list(es.yi), list(es.vi)
    for i, s in enumerate(es.studies):
        o = s.outcome
        if s.outcome_kind != "continuous" or o is None:
            continue
        fx = continuous_effects(
            np.array([o["treat_mean"]]),
            np.array([o["treat_sd"]]),
            np.array([o["treat_n"]]),
            np.array([o["control_mean"]]),
            np.array([o["control_sd"]]),
            np.array([o["control_n"]]),
            "SMD",
        )
        ys[i], vs[i] = float(fx.yi[0]), float(fx.vi[0])
    return replace(es, yi=tuple(ys), vi=tuple(vs))
