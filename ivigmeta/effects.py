"""Effect sizes and sampling variances from 2x2 counts (metafor's ``escalc``).

For study i with a events among n1 treated and c events among n2 controls (b = n1 - a,
d = n2 - c non-events), after the continuity correction described below:

* RR (log risk ratio): yi = log(a / n1) - log(c / n2), vi = 1/a - 1/n1 + 1/c - 1/n2
* OR (log odds ratio): yi = log(a d / (b c)),        vi = 1/a + 1/b + 1/c + 1/d
* RD (risk difference): yi = a / n1 - c / n2,          vi = p1 (1 - p1) / n1 + p2 (1 - p2) / n2

Continuity correction (``cc``, default 0.5) with ``cc_policy``:

* ``only0`` (default; metafor ``to="only0"``, CMA): add ``cc`` to all four cells of any study with
  a zero cell, events or non-events (so n1 and n2 grow by 2 cc);
* ``all``: add it to every study; ``none``: never (a study whose effect or variance is then
  undefined is excluded, with the reason).

References: Deeks & Higgins, Statistical algorithms in Review Manager 5 (2010); Viechtbauer (2010),
metafor's ``escalc`` documentation.
"""

from __future__ import annotations

import math
from typing import Sequence

from ivigmeta.data import Study
from ivigmeta.distributions import norm_p_two_sided, z_crit
from ivigmeta.errors import DataError
from ivigmeta.results import EffectSizes, Estimate, Exclusion

MEASURES = ("RR", "OR", "RD")
CC_POLICIES = ("only0", "all", "none")


def normalize_measure(measure: str) -> str:
    """Upper-case a measure name and check it is known."""
    m = measure.upper()
    if m not in MEASURES:
        raise DataError(f"unknown measure '{measure}' (choose one of {', '.join(MEASURES)})")
    return m


def _cells(study: Study) -> tuple[int, int, int, int]:
    a, n1, c, n2 = study.counts
    return a, n1 - a, c, n2 - c


def _effect(a: float, b: float, c: float, d: float, measure: str) -> tuple[float, float]:
    n1, n2 = a + b, c + d
    if measure == "RR":
        return math.log(a / n1) - math.log(c / n2), 1 / a - 1 / n1 + 1 / c - 1 / n2
    if measure == "OR":
        return math.log((a * d) / (b * c)), 1 / a + 1 / b + 1 / c + 1 / d
    p1, p2 = a / n1, c / n2
    return p1 - p2, p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2


def compute_effects(
    studies: Sequence[Study],
    measure: str = "RR",
    cc: float = 0.5,
    cc_policy: str = "only0",
) -> EffectSizes:
    """Compute ``yi`` and ``vi`` for every study; studies whose effect is undefined are excluded.

    Parameters
    ----------
    studies : the validated study rows.
    measure : ``RR``, ``OR`` or ``RD``.
    cc : continuity correction added to each cell.
    cc_policy : ``only0`` (studies with a zero cell), ``all`` or ``none``.
    """
    measure = normalize_measure(measure)
    if cc_policy not in CC_POLICIES:
        raise DataError(
            f"unknown continuity-correction policy '{cc_policy}' (choose one of {', '.join(CC_POLICIES)})"
        )
    if not (cc >= 0 and math.isfinite(cc)):
        raise DataError(f"the continuity correction must be a non-negative number, not {cc}")
    kept: list[Study] = []
    yi: list[float] = []
    vi: list[float] = []
    added: list[float] = []
    excluded: list[Exclusion] = []
    for study in studies:
        cells = _cells(study)
        has_zero = min(cells) == 0
        add = cc if (cc_policy == "all" or (cc_policy == "only0" and has_zero)) else 0.0
        a, b, c, d = (x + add for x in cells)
        try:
            y, v = _effect(a, b, c, d, measure)
        except (ZeroDivisionError, ValueError):
            y = v = math.nan
        if not (math.isfinite(y) and math.isfinite(v) and v > 0):
            excluded.append(
                Exclusion(
                    study.study,
                    f"{measure} undefined: zero cell(s) with continuity correction {add:g}"
                    if has_zero
                    else f"{measure} has zero sampling variance",
                    study.row,
                )
            )
            continue
        kept.append(study)
        yi.append(y)
        vi.append(v)
        added.append(add)
    return EffectSizes(
        measure=measure,
        studies=tuple(kept),
        yi=tuple(yi),
        vi=tuple(vi),
        cc_added=tuple(added),
        cc=cc,
        cc_policy=cc_policy,
        excluded=tuple(excluded),
    )


def study_estimate(y: float, v: float, measure: str, level: float = 0.95) -> Estimate:
    """Wald z test and interval for one study's effect."""
    se = math.sqrt(v)
    z = y / se
    crit = z_crit(level)
    return Estimate(
        measure=measure,
        theta=y,
        se=se,
        statistic=z,
        p_value=norm_p_two_sided(z),
        ci_low_theta=y - crit * se,
        ci_high_theta=y + crit * se,
    )
