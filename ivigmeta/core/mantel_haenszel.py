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

import math

from ivigmeta.core.distributions import chi2_sf
from ivigmeta.errors import ModelError
from ivigmeta.io.studies import Study
from ivigmeta.results import CommonFit, EffectSizes


def _raw(study: Study) -> tuple[float, float, float, float, float, float, float]:
    a, n1, c, n2 = (float(x) for x in study.counts)
    return a, n1 - a, c, n2 - c, n1, n2, n1 + n2


def _double_zero(study: Study) -> bool:
    a, b, c, d, *_ = _raw(study)
    return (a == 0 and c == 0) or (b == 0 and d == 0)


def _add(study: Study, es: EffectSizes) -> float:
    a, b, c, d, *_ = _raw(study)
    if es.cc_policy == "all" or (es.cc_policy == "only0" and min(a, b, c, d) == 0):
        return es.cc
    return 0.0


def _q_summary(q: float, k_yi: int, enough: bool = True) -> tuple[float, int, float, float, float]:
    df = k_yi - 1
    if df < 1 or not enough:
        return q, max(df, 0), 1.0, 0.0, 1.0
    i2 = max(0.0, 100.0 * (q - df) / q) if q > 0 else 0.0
    return q, df, chi2_sf(q, df), i2, q / df


def _fit(
    es: EffectSizes, method: str, theta: float, se: float, weights, q_parts, level: float
) -> CommonFit:
    from ivigmeta.core.pooling import wald_common

    q, df, qp, i2, h2 = q_parts
    return wald_common(
        es.measure,
        method,
        theta,
        se,
        weights,
        level,
        q=q,
        q_df=df,
        q_p_value=qp,
        i2=i2,
        h2=h2,
        k_yi=df + 1,
    )


def _per_study_yi_vi(es: EffectSizes) -> tuple[list[float], list[float]]:
    """escalc values with the analysis's continuity correction, double-zero studies dropped."""
    from ivigmeta.core.effects import _effect

    yi, vi = [], []
    for s in es.studies:
        if _double_zero(s):
            continue
        a, b, c, d, *_ = _raw(s)
        add = _add(s, es)
        try:
            y, v = _effect(a + add, b + add, c + add, d + add, es.measure)
        except (ZeroDivisionError, ValueError):
            continue
        if math.isfinite(y) and math.isfinite(v) and v > 0:
            yi.append(y)
            vi.append(v)
    return yi, vi


def common_mh(es: EffectSizes, level: float = 0.95) -> CommonFit:
    """Mantel-Haenszel common-effect estimate (RR, OR or RD) with metafor's variances."""
    cells = [_raw(s) for s in es.studies]
    if es.measure == "OR":
        R = math.fsum(a * d / N for a, b, c, d, n1, n2, N in cells)
        S = math.fsum(b * c / N for a, b, c, d, n1, n2, N in cells)
        if R == 0 or S == 0:
            raise ModelError(
                "the Mantel-Haenszel odds ratio is undefined: "
                + (
                    "no study has events in the treated arm and non-events in the control arm"
                    if R == 0
                    else "no study has non-events in the treated arm and events in the control arm"
                )
            )
        pr = math.fsum((a + d) / N * (a * d / N) for a, b, c, d, n1, n2, N in cells)
        ps_qr = math.fsum(
            (a + d) / N * (b * c / N) + (b + c) / N * (a * d / N) for a, b, c, d, n1, n2, N in cells
        )
        qs = math.fsum((b + c) / N * (b * c / N) for a, b, c, d, n1, n2, N in cells)
        theta = math.log(R / S)
        se = math.sqrt(0.5 * (pr / R**2 + ps_qr / (R * S) + qs / S**2))
        weights = [b * c / N for a, b, c, d, n1, n2, N in cells]
    elif es.measure == "RR":
        if sum(x[0] for x in cells) == 0 or sum(x[2] for x in cells) == 0:
            raise ModelError(
                "the Mantel-Haenszel risk ratio is undefined: an arm has no events in any study"
            )
        R = math.fsum(a * n2 / N for a, b, c, d, n1, n2, N in cells)
        S = math.fsum(c * n1 / N for a, b, c, d, n1, n2, N in cells)
        theta = math.log(R / S)
        var = math.fsum(
            n1 / N * n2 / N * (a + c) - a / N * c for a, b, c, d, n1, n2, N in cells
        ) / (R * S)
        se = math.sqrt(var)
        weights = [c / N * n1 for a, b, c, d, n1, n2, N in cells]
    elif es.measure == "RD":
        sw = math.fsum(n1 * n2 / N for a, b, c, d, n1, n2, N in cells)
        theta = math.fsum(a * n2 / N - c * n1 / N for a, b, c, d, n1, n2, N in cells) / sw
        part1 = math.fsum(
            c * (n1 / N) ** 2 - a * (n2 / N) ** 2 + (n1 / N) * (n2 / N) * (n2 - n1) / 2
            for a, b, c, d, n1, n2, N in cells
        )
        part2 = math.fsum(a * (n2 - c) / N + c * (n1 - a) / N for a, b, c, d, n1, n2, N in cells)
        se = math.sqrt((theta * part1 + part2 / 2) / sw**2)
        weights = [n1 / N * n2 for a, b, c, d, n1, n2, N in cells]
    else:  # pragma: no cover - measures are validated upstream
        raise ModelError(f"Mantel-Haenszel is not available for {es.measure}")
    if not se > 0:
        raise ModelError("the Mantel-Haenszel standard error is zero: no variation to test")
    yi, vi = _per_study_yi_vi(es)
    q = max(0.0, math.fsum((y - theta) ** 2 / v for y, v in zip(yi, vi)))
    return _fit(es, "MH", theta, se, weights, _q_summary(q, len(yi)), level)


def common_peto(es: EffectSizes, level: float = 0.95) -> CommonFit:
    """Peto's one-step odds ratio (OR only)."""
    if es.measure != "OR":
        raise ModelError(
            f"Peto's method estimates an odds ratio: use --measure OR (not {es.measure})"
        )
    cells = [_raw(s) for s in es.studies]
    oe, var = [], []
    for a, b, c, d, n1, n2, N in cells:
        xt, yt = a + c, b + d
        oe.append(a - xt * n1 / N)
        var.append(xt * yt * (n1 / N) * (n2 / N) / (N - 1))
    sv = math.fsum(var)
    if sv <= 0:
        raise ModelError("Peto's odds ratio is undefined: no study has both events and non-events")
    theta = math.fsum(oe) / sv
    se = 1.0 / math.sqrt(sv)
    q = max(
        0.0,
        math.fsum(o * o / v for o, v in zip(oe, var) if v > 0) - math.fsum(oe) ** 2 / sv,
    )
    k_pos = sum(1 for v in var if v > 0)
    # metafor's df comes from the per-study Peto log ORs (continuity-corrected, double zeros dropped).
    k_yi = 0
    for s in es.studies:
        if _double_zero(s):
            continue
        a, b, c, d, *_ = _raw(s)
        add = _add(s, es)
        a, b, c, d = a + add, b + add, c + add, d + add
        n1, n2, N = a + b, c + d, a + b + c + d
        if (a + c) * (b + d) * n1 * n2 / (N * N * (N - 1)) > 0:
            k_yi += 1
    return _fit(es, "PETO", theta, se, var, _q_summary(q, k_yi, k_pos > 1), level)
