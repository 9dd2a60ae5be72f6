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
) -> CountPooled:
    """Mantel-Haenszel on raw counts, as metafor's rma.mh (formulas in the module docstring)."""
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
    return CountPooled(theta, se, code, weights, qv, df, qp, i2, h2, k_yi)


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
    return CountPooled(theta, se, code, var, qv, df, qp, i2, h2, k_yi)


def raise_common_error(code: int) -> None:
    """Raise the ModelError of an undefined Mantel-Haenszel / Peto estimate."""
    if code:
        raise ModelError(COMMON_ERRORS[code])
