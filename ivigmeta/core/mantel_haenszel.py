"""Mantel-Haenszel and Peto common-effect estimates from the 2x2 counts (metafor's ``rma.mh``
and ``rma.peto`` with their defaults).

The pooled estimate uses the raw counts (no continuity correction; a double-zero study adds
nothing to a ratio and, for RD, still adds its weight n1 n2 / N). For study i with a, b events /
non-events among n1 treated, c, d among n2 controls, N = n1 + n2:

* OR (Mantel & Haenszel 1959): R = sum a d / N, S = sum b c / N, OR = R / S, with the variance of
  log OR of Robins, Breslow & Greenland (1986):
  1/2 [sum P R_i / R² + sum (P S_i + Q R_i) / (R S) + sum Q S_i / S²], P = (a + d) / N,
  Q = (b + c) / N;
* RR (Greenland & Robins 1985): R = sum a n2 / N, S = sum c n1 / N, RR = R / S,
  Var(log RR) = sum (n1 n2 (a + c) / N² - a c / N) / (R S);
* RD (Greenland & Robins 1985; Sato's variance as metafor): RD = sum (a n2 - c n1) / N /
  sum n1 n2 / N;
* Peto's OR (Yusuf et al. 1985), OR only: O - E = a - (a + c) n1 / N,
  V = (a + c)(b + d) n1 n2 / (N² (N - 1)), log OR = sum (O - E) / sum V, se = 1 / sqrt(sum V).

Weights (percent) are the MH weights b c / N (OR), c n1 / N (RR), n1 n2 / N (RD), and V (Peto).

Heterogeneity as metafor reports it for these fits: MH uses the per-study yi, vi (with the
analysis's continuity correction, double-zero studies dropped): Q = sum (y - theta_MH)² / v; Peto
uses Q = sum (O - E)² / V - (sum (O - E))² / sum V. Both on k_yi - 1 df, I² = 100 max(0, (Q - df)
/ Q), H² = Q / df.

The model statistics of a Mantel-Haenszel odds ratio (metafor's ``rma.mh`` fields MH, CO, BD, TA;
:func:`mh_or_tests`), from the raw counts with m1 = a + c events and m0 = b + d non-events per
study and O - E = a - n1 m1 / N:

* the Cochran-Mantel-Haenszel test (Mantel & Haenszel 1959) of OR = 1:
  (|sum (O - E)| - 1/2)² / sum n1 n2 m1 m0 / (N² (N - 1)) on 1 df, the 1/2 being the continuity
  correction (metafor's default ``correct = TRUE``); Cochran's (1954) version has N³ in place of
  N² (N - 1);
* the Breslow-Day test (Breslow & Day 1980) of equal odds ratios: with A_i the expected a of a
  table with the margins of study i and odds ratio OR_MH (the root in (0, min(n1, m1)) of the
  quadratic (A (n2 - m1 + A)) = OR_MH (n1 - A)(m1 - A)), BD = sum (a - A)² / Var_i,
  1 / Var_i = 1/A + 1/(n1 - A) + 1/(m1 - A) + 1/(n2 - m1 + A), summed over the k_pos tables with
  A > 0, m1 > 0 and m0 > 0, on k_pos - 1 df; Tarone's (1985) correction
  TA = BD - (sum (a - A))² / sum Var_i.

Incidence rates (metafor's ``rma.mh`` with measure IRR or IRD; Rothman, Greenland & Lash 2008):
with x1, x2 events over person-times t1, t2 and T = t1 + t2 per study:

* IRR: R = sum x1 t2 / T, S = sum x2 t1 / T, IRR = R / S, Var(log IRR) =
  sum (t1 / T)(t2 / T)(x1 + x2) / (R S) (undefined when an arm has no events in any study);
  the Mantel-Haenszel test of IRR = 1: (|sum x1 - (x1 + x2) t1 / T| - 1/2)² /
  sum (x1 + x2)(t1 / T)(t2 / T) on 1 df (with the continuity correction, metafor's default);
* IRD = sum (x1 t2 - x2 t1) / T / sum t1 t2 / T, Var = sum (t1 t2 / T)² (x1 / t1² + x2 / t2²) /
  (sum t1 t2 / T)²;
* weights t2 x1 ... as metafor: t1 t2 / T for IRD, x2 t1 / T for IRR; Q as for counts, from the
  per-study escalc IRR / IRD (double zeros dropped).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ivigmeta.core.distributions import chi2_sf_array
from ivigmeta.core.effects import count_effects
from ivigmeta.core.groups import Groups
from ivigmeta.errors import ModelError

#: Why a Mantel-Haenszel or Peto estimate is undefined, by error code (0: defined).
COMMON_ERRORS = (
    "",
    "the Mantel-Haenszel odds ratio is undefined: no study has events in the treated arm and "
    "non-events in the control arm",
    "the Mantel-Haenszel odds ratio is undefined: no study has non-events in the treated arm and "
    "events in the control arm",
    "the Mantel-Haenszel risk ratio is undefined: an arm has no events in any study",
    "the Mantel-Haenszel standard error is zero: no variation to test",
    "Peto's odds ratio is undefined: no study has both events and non-events",
    "the Mantel-Haenszel rate ratio is undefined: an arm has no events in any study",
)


def peto_measure_error(measure: str) -> str:
    """The message for Peto's method asked of another measure than OR (pool and batch)."""
    return f"Peto's method estimates an odds ratio: use --measure OR (not {measure})"


@dataclass(frozen=True)
class CountPooled:
    """A Mantel-Haenszel or Peto estimate per group, with its own heterogeneity test."""

    theta: np.ndarray
    se: np.ndarray
    #: index into COMMON_ERRORS per group (0 when the estimate is defined)
    error: np.ndarray
    #: per row: the method's weight (b c / N, c n1 / N, n1 n2 / N, or Peto's V)
    weights: np.ndarray
    q: np.ndarray
    q_df: np.ndarray
    q_p_value: np.ndarray
    i2: np.ndarray
    h2: np.ndarray
    k_yi: np.ndarray
    #: Mantel-Haenszel odds ratios only: the CMH, Cochran, Breslow-Day and Tarone statistics
    or_tests: MhOddsRatioTests | None = None
    #: per group, over the studies with a per-study effect (yi, vi; k_yi of them): sum log vi,
    #: sum 1 / vi and sum log phi(yi; yi, sqrt vi), for the fit statistics (metafor's rma.mh /
    #: rma.peto fit.stats: the normal likelihood of the yi about the pooled estimate)
    sum_log_v: np.ndarray | None = None
    sum_w: np.ndarray | None = None
    ll_saturated: np.ndarray | None = None
    #: sum (yi - theta)² / vi when it is not ``q`` (Peto's Q is not that sum)
    rss: np.ndarray | None = None
    #: Mantel-Haenszel rate ratios: the MH test of IRR = 1 (statistic, p-value per group)
    rate_test: tuple[np.ndarray, np.ndarray] | None = None
    #: whether the CMH / MH tests above carry the continuity correction 1/2 (metafor's correct)
    correct: bool = True


def _q_summary(q: np.ndarray, k_yi: np.ndarray, enough: np.ndarray) -> tuple[np.ndarray, ...]:
    """Q on k_yi - 1 df, with I² = 100 max(0, (Q - df) / Q) and H² = Q / df, as metafor."""
    df = k_yi - 1
    test = (df >= 1) & enough
    dff = np.maximum(df, 1).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        i2 = np.where(q > 0, np.maximum(0.0, 100.0 * (q - df) / q), 0.0)
        h2 = q / dff
    p = chi2_sf_array(q, dff)
    return (
        np.where(test, df, np.maximum(df, 0)).astype(np.int64),
        np.where(test, p, 1.0),
        np.where(test, i2, 0.0),
        np.where(test, h2, 1.0),
    )


def _corrected(a, n1, c, n2, measure, cc, cc_policy):
    """Per-study escalc values with the analysis's correction; double zeros (no events or no
    non-events in both arms) dropped, as metafor's heterogeneity test for these fits."""
    b, d = n1 - a, n2 - c
    double = ((a == 0) & (c == 0)) | ((b == 0) & (d == 0))
    fx = count_effects(a, n1, c, n2, measure, cc, cc_policy, keep_double_zero=True)
    return fx, ~double


def pool_mh(
    a: np.ndarray,
    n1: np.ndarray,
    c: np.ndarray,
    n2: np.ndarray,
    g: Groups,
    measure: str,
    cc: float,
    cc_policy: str,
    correct: bool = True,
) -> CountPooled:
    """Mantel-Haenszel on raw counts, as metafor's rma.mh (formulas in the module docstring);
    ``correct``: the CMH test with the continuity correction (metafor's ``correct = TRUE``)."""
    b, d = n1 - a, n2 - c
    n = n1 + n2
    code = np.zeros(len(g), np.int8)
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "OR":
            p, q = (a + d) / n, (b + c) / n
            ri, si = a * d / n, b * c / n
            r, s = g.sum(ri), g.sum(si)
            theta = np.log(r / s)
            se = np.sqrt(
                0.5
                * (g.sum(p * ri) / r**2 + g.sum(p * si + q * ri) / (r * s) + g.sum(q * si) / s**2)
            )
            code[s == 0] = 2
            code[r == 0] = 1
            weights = si
        elif measure == "RR":
            r, s = g.sum(a * n2 / n), g.sum(c * n1 / n)
            theta = np.log(r / s)
            se = np.sqrt(g.sum(n1 / n * n2 / n * (a + c) - a / n * c) / (r * s))
            code[(g.sum(a) == 0) | (g.sum(c) == 0)] = 3
            weights = c / n * n1
        else:
            sww = g.sum(n1 * n2 / n)
            theta = g.sum(a * n2 / n - c * n1 / n) / sww
            part1 = g.sum(
                c * (n1 / n) ** 2 - a * (n2 / n) ** 2 + (n1 / n) * (n2 / n) * (n2 - n1) / 2
            )
            part2 = g.sum(a * (n2 - c) / n + c * (n1 - a) / n)
            se = np.sqrt((theta * part1 + part2 / 2) / sww**2)
            weights = n1 / n * n2
    code[(code == 0) & ~(se > 0)] = 4
    fx, keep = _corrected(a, n1, c, n2, measure, cc, cc_policy)
    use = keep & np.isfinite(fx.yi) & np.isfinite(fx.vi) & (fx.vi > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(use, (fx.yi - g.spread(theta)) ** 2 / fx.vi, 0.0)
    qv = np.maximum(0.0, g.sum(terms))
    k_yi = g.sum(use.astype(np.int64))
    df, qp, i2, h2 = _q_summary(qv, k_yi, np.ones(len(g), bool))
    tests = mh_or_tests(a, n1, c, n2, g, correct) if measure == "OR" else None
    return CountPooled(
        theta,
        se,
        code,
        weights,
        qv,
        df,
        qp,
        i2,
        h2,
        k_yi,
        tests,
        *_likelihood_sums(fx.vi, use, g),
        correct=correct,
    )


def _likelihood_sums(
    vi: np.ndarray, use: np.ndarray, g: Groups
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """sum log v, sum 1 / v and sum log phi(y; y, sqrt v) over the rows ``use`` of each group."""
    from ivigmeta.core.fitstats import LOG_2PI

    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(use, vi, 1.0)
        return (
            g.sum(np.where(use, np.log(v), 0.0)),
            g.sum(np.where(use, 1.0 / v, 0.0)),
            g.sum(np.where(use, -0.5 * (LOG_2PI + np.log(v)), 0.0)),
        )


def pool_mh_rates(
    x1: np.ndarray,
    t1: np.ndarray,
    x2: np.ndarray,
    t2: np.ndarray,
    g: Groups,
    measure: str,
    cc: float,
    cc_policy: str,
    correct: bool = True,
) -> CountPooled:
    """Mantel-Haenszel on events over person-time (IRR, IRD), as metafor's rma.mh (module
    docstring); the MH test of IRR = 1 comes as ``rate_test`` (with the continuity correction
    unless ``correct`` is False)."""
    from ivigmeta.core.measures import incidence_effects

    T = t1 + t2
    code = np.zeros(len(g), np.int8)
    rate_test = None
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "IRR":
            r, s = g.sum(x1 * t2 / T), g.sum(x2 * t1 / T)
            theta = np.log(r / s)
            se = np.sqrt(g.sum((t1 / T) * (t2 / T) * (x1 + x2)) / (r * s))
            code[(g.sum(x1) == 0) | (g.sum(x2) == 0)] = 6
            weights = x2 * t1 / T
            xt = x1 + x2
            half = 0.5 if correct else 0.0
            mh = (np.abs(g.sum(x1 - xt * t1 / T)) - half) ** 2 / g.sum(xt * (t1 / T) * (t2 / T))
            mh = np.where(g.sum(xt) > 0, mh, np.nan)
            rate_test = (mh, np.where(np.isfinite(mh), chi2_sf_array(mh, np.ones(len(g))), np.nan))
        else:
            sw = g.sum(t1 * t2 / T)
            theta = g.sum((x1 * t2 - x2 * t1) / T) / sw
            se = np.sqrt(g.sum((t1 * t2 / T) ** 2 * (x1 / t1**2 + x2 / t2**2))) / sw
            weights = t1 * t2 / T
    code[(code == 0) & ~(se > 0)] = 4
    yi, vi, _ = incidence_effects(x1, t1, x2, t2, measure, cc, cc_policy)
    use = ~((x1 == 0) & (x2 == 0)) & np.isfinite(yi) & np.isfinite(vi) & (vi > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(use, (yi - g.spread(theta)) ** 2 / vi, 0.0)
    qv = np.maximum(0.0, g.sum(terms))
    k_yi = g.sum(use.astype(np.int64))
    df, qp, i2, h2 = _q_summary(qv, k_yi, np.ones(len(g), bool))
    return CountPooled(
        theta,
        se,
        code,
        weights,
        qv,
        df,
        qp,
        i2,
        h2,
        k_yi,
        None,
        *_likelihood_sums(vi, use, g),
        rate_test=rate_test,
        correct=correct,
    )


def peto_effects(
    a: np.ndarray, n1: np.ndarray, c: np.ndarray, n2: np.ndarray, cc: float, cc_policy: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per-study Peto log odds ratios and variances (escalc "PETO" with the analysis's
    continuity correction): yi = (a - E) / V, vi = 1 / V, NaN for a double-zero study."""
    b, d = n1 - a, n2 - c
    double = ((a == 0) & (c == 0)) | ((b == 0) & (d == 0))
    fx = count_effects(a, n1, c, n2, "OR", cc, cc_policy, keep_double_zero=True)
    ac, bc, cc_, dc = a + fx.added, b + fx.added, c + fx.added, d + fx.added
    m1, m2, mm = ac + bc, cc_ + dc, ac + bc + cc_ + dc
    with np.errstate(divide="ignore", invalid="ignore"):
        vc = (ac + cc_) * (bc + dc) * m1 * m2 / (mm * mm * (mm - 1))
        yi = (ac - (ac + cc_) * m1 / mm) / vc
        vi = 1.0 / vc
    bad = double | ~(vc > 0)
    return np.where(bad, np.nan, yi), np.where(bad, np.nan, vi)


def pool_peto(
    a: np.ndarray,
    n1: np.ndarray,
    c: np.ndarray,
    n2: np.ndarray,
    g: Groups,
    cc: float,
    cc_policy: str,
) -> CountPooled:
    """Peto's one-step odds ratio on raw counts, as metafor's rma.peto."""
    n = n1 + n2
    xt, yt = a + c, n - a - c
    oe = a - xt * n1 / n
    var = xt * yt * (n1 / n) * (n2 / n) / (n - 1)
    sv = g.sum(var)
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = g.sum(oe) / sv
        se = 1.0 / np.sqrt(sv)
        qv = np.maximum(0.0, g.sum(np.where(var > 0, oe * oe / var, 0.0)) - g.sum(oe) ** 2 / sv)
    code = np.where(sv <= 0, 5, 0).astype(np.int8)
    k_pos = g.sum((var > 0).astype(np.int64))
    # metafor's df comes from the per-study Peto log ORs (continuity-corrected, double zeros
    # dropped).
    b, d = n1 - a, n2 - c
    double = ((a == 0) & (c == 0)) | ((b == 0) & (d == 0))
    fx = count_effects(a, n1, c, n2, "OR", cc, cc_policy, keep_double_zero=True)
    ac, bc, cc_, dc = a + fx.added, b + fx.added, c + fx.added, d + fx.added
    m1, m2, mm = ac + bc, cc_ + dc, ac + bc + cc_ + dc
    with np.errstate(divide="ignore", invalid="ignore"):
        vpos = (ac + cc_) * (bc + dc) * m1 * m2 / (mm * mm * (mm - 1)) > 0
    k_yi = g.sum((~double & vpos).astype(np.int64))
    df, qp, i2, h2 = _q_summary(qv, k_yi, k_pos > 1)
    # The per-study Peto log odds ratios (escalc "PETO" on the corrected counts) for the fit
    # statistics: RSS = sum (yi - theta)² / vi over them.
    use = ~double & vpos
    with np.errstate(divide="ignore", invalid="ignore"):
        vc = (ac + cc_) * (bc + dc) * m1 * m2 / (mm * mm * (mm - 1))
        yc = (ac - (ac + cc_) * m1 / mm) / vc
        vi = np.where(use, 1.0 / vc, 1.0)
        rss = g.sum(np.where(use, (yc - g.spread(theta)) ** 2 / vi, 0.0))
    sums = _likelihood_sums(vi, use, g)
    return CountPooled(theta, se, code, var, qv, df, qp, i2, h2, k_yi, None, *sums, rss)


@dataclass(frozen=True)
class MhOddsRatioTests:
    """Per group: the Cochran-Mantel-Haenszel, Cochran, Breslow-Day and Tarone statistics of a
    Mantel-Haenszel odds ratio (NaN where metafor reports NA)."""

    cmh: np.ndarray
    cmh_p: np.ndarray
    cochran: np.ndarray
    cochran_p: np.ndarray
    breslow_day: np.ndarray
    tarone: np.ndarray
    #: tables with positive information (Breslow-Day, Tarone), df = k_pos - 1
    k_pos: np.ndarray
    breslow_day_p: np.ndarray
    tarone_p: np.ndarray


def mh_or_tests(
    a: np.ndarray,
    n1: np.ndarray,
    c: np.ndarray,
    n2: np.ndarray,
    g: Groups,
    correct: bool = True,
) -> MhOddsRatioTests:
    """The model statistics of a Mantel-Haenszel odds ratio, as metafor's ``rma.mh(measure =
    "OR", correct = correct)`` (formulas in the module docstring), on the raw counts of every
    study (double zeros included: they add nothing)."""
    a, n1, c, n2 = (np.asarray(x, dtype=float) for x in (a, n1, c, n2))
    b, d = n1 - a, n2 - c
    n = n1 + n2
    m1, m0 = a + c, b + d
    with np.errstate(divide="ignore", invalid="ignore"):
        oe = g.sum(a - n1 / n * m1)
        dev = (np.abs(oe) - (0.5 if correct else 0.0)) ** 2
        share = (n1 / n) * (n2 / n) * m1
        cmh = dev / g.sum(share * (m0 / (n - 1)))
        cochran = dev / g.sum(share * (m0 / n))
        none = (g.sum(m1) == 0) | (g.sum(m0) == 0)
        cmh = np.where(none, np.nan, cmh)
        cochran = np.where(none, np.nan, cochran)
        r, s = g.sum(a / n * d), g.sum(b / n * c)
        psi = r / s
        defined = (r != 0) & (s != 0) & np.isfinite(psi)
        psi_i = g.spread(psi)
        # the expected a under OR_MH: the smaller root of the quadratic (Breslow & Day 1980)
        big_a = psi_i * (n1 + m1) + (n2 - m1)
        root = np.sqrt(big_a * big_a - 4.0 * n1 * m1 * psi_i * (psi_i - 1.0))
        expected = np.where(psi_i == 1.0, n1 / n * m1, (big_a - root) / (2.0 * (psi_i - 1.0)))
        pos = (expected > 0) & (m1 > 0) & (m0 > 0)
        inv = 1.0 / expected + 1.0 / (n1 - expected) + 1.0 / (m1 - expected)
        inv = inv + 1.0 / (expected - n1 - m1 + n)
        resid = np.where(pos, a - expected, 0.0)
        bd = np.maximum(0.0, g.sum(np.where(pos, resid * resid * inv, 0.0)))
        ta = np.maximum(0.0, bd - g.sum(resid) ** 2 / g.sum(np.where(pos, 1.0 / inv, 0.0)))
        k_pos = g.sum(pos.astype(np.int64))
    k_pos = np.where(defined, k_pos, 0)
    bd = np.where(defined, bd, np.nan)
    ta = np.where(defined, ta, np.nan)
    df = np.maximum(k_pos - 1, 1).astype(float)
    tested = defined & (k_pos > 1)
    return MhOddsRatioTests(
        cmh=cmh,
        cmh_p=chi2_sf_array(cmh, np.ones(len(g))),
        cochran=cochran,
        cochran_p=chi2_sf_array(cochran, np.ones(len(g))),
        breslow_day=bd,
        tarone=ta,
        k_pos=k_pos,
        breslow_day_p=np.where(tested, chi2_sf_array(np.nan_to_num(bd), df), np.nan),
        tarone_p=np.where(tested, chi2_sf_array(np.nan_to_num(ta), df), np.nan),
    )


def raise_common_error(code: int) -> None:
    """Raise the ModelError of an undefined Mantel-Haenszel / Peto estimate."""
    if code:
        raise ModelError(COMMON_ERRORS[code])
