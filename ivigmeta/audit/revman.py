"""Auditing a RevMan file: recompute every analysis with RevMan's methods and check every number
RevMan stored (``ivigmeta reproduce FILE.rm5``).

The data of each analysis are read by :mod:`ivigmeta.io.revman`, recomputed by
:mod:`ivigmeta.core.revman`, and each stored number becomes one :class:`NumberCheck` of the same
:class:`ReproduceResult` a published-numbers file gives.

Tolerances (RevMan stores full doubles): relative 1e-6 for every number, relative 1e-3 for
p-values (RevMan's small p-values come from a less precise normal / chi-square tail), and an
absolute 1e-9 where RevMan stored exactly 0 (tau², I², a Z of 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ivigmeta.core import revman as rm
from ivigmeta.io.revman import DATA_FIELDS, Analysis, Review, Row, cell_number

REL_TOL = 1e-6
P_REL_TOL = 1e-3
ZERO_TOL = 1e-9

#: RevMan's pooled attributes: (attribute, quantity named in labels, kind)
POOLED = (
    ("EFFECT_SIZE", "estimate", "effect"),
    ("CI_START", "CI lower", "effect"),
    ("CI_END", "CI upper", "effect"),
    ("Z", "Z", "number"),
    ("P_Z", "P(Z)", "p"),
    ("CHI2", "Chi²", "number"),
    ("DF", "df", "number"),
    ("P_CHI2", "P(Chi²)", "p"),
    ("I2", "I²", "number"),
    ("TAU2", "Tau²", "number"),
)
STUDY = (
    ("EFFECT_SIZE", "estimate"),
    ("CI_START", "CI lower"),
    ("CI_END", "CI upper"),
    ("SE", "SE"),
    ("VAR", "variance"),
    ("WEIGHT", "weight"),
)
SUBGROUP_TEST = (
    ("Q", "subgroup differences Chi²", "number"),
    ("P_Q", "subgroup differences P", "p"),
    ("I2_Q", "subgroup differences I²", "number"),
)


#: RevMan's CSV export rounds to 8 decimals: half a unit of the 8th decimal is allowed too.
CSV_ABS_TOL = 5e-9


def close(stored: float, ours: float, kind: str, abs_tol: float = 0.0) -> bool:
    """Whether ``ours`` reproduces ``stored`` at the documented tolerance."""
    if not math.isfinite(ours):
        return False
    if abs(ours - stored) <= abs_tol * (1 + 1e-9):
        return True
    if stored == 0:
        return abs(ours) <= ZERO_TOL
    tol = P_REL_TOL if kind == "p" else REL_TOL
    return abs(ours - stored) <= tol * abs(stored)


def _floats(rows: Sequence[Row], field: str) -> np.ndarray:
    return np.array(
        [
            cell_number(r.data.get(field)) if cell_number(r.data.get(field)) is not None else np.nan
            for r in rows
        ],
        dtype=float,
    )


def study_effects(a: Analysis, rows: Sequence[Row]) -> rm.StudyEffects:
    """RevMan's per-study effects of ``rows`` of analysis ``a``."""
    if a.data_type == "dichotomous":
        e1, n1, e2, n2 = (_floats(rows, f) for f in ("EVENTS_1", "TOTAL_1", "EVENTS_2", "TOTAL_2"))
        if a.swap_events:
            e1, e2 = n1 - e1, n2 - e2
        if a.method == "PETO":
            return rm.peto_effects(e1, n1, e2, n2)
        return rm.dichotomous_effects(e1, n1, e2, n2, a.measure)
    if a.data_type == "continuous":
        m1, s1, n1, m2, s2, n2 = (
            _floats(rows, f) for f in ("MEAN_1", "SD_1", "TOTAL_1", "MEAN_2", "SD_2", "TOTAL_2")
        )
        return rm.continuous_effects(m1, s1, n1, m2, s2, n2, a.measure)
    if a.data_type == "oe":
        return rm.oe_effects(_floats(rows, "O_E"), _floats(rows, "VAR"))
    return rm.generic_effects(_floats(rows, "EFFECT_SIZE"), _floats(rows, "SE"))


class _Checks:
    def __init__(self, path: str, abs_tol: float = 0.0) -> None:
        self.path = path
        self.abs_tol = abs_tol
        self.items: list[Any] = []

    def add(
        self,
        label: str,
        number: str,
        key: str,
        stored: float | None,
        ours: float,
        kind: str,
        note: str = "",
    ) -> None:
        from ivigmeta.results import NumberCheck

        if stored is None:
            return
        ok = close(stored, ours, kind, self.abs_tol)
        tol = (
            "relative 1e-3"
            if kind == "p"
            else ("absolute 1e-9" if stored == 0 else "relative 1e-6")
        )
        if self.abs_tol:
            tol += f", or absolute {self.abs_tol:g} for the CSV export's 8 decimals"
        self.items.append(
            NumberCheck(
                label=label,
                printed=repr(stored),
                expect="match",
                note=note,
                command="revman",
                args=(self.path, "--analysis", number),
                path=key,
                verdict="reproduced" if ok else "differs",
                recomputed=float(ours),
                rounded=f"{ours:.10g}",
                explanation="" if ok else f"differs beyond the tolerance ({tol})",
            )
        )


def audit_analysis(a: Analysis, checks: _Checks) -> None:
    """Recompute the outcome ``a`` (with its subgroups) and check what RevMan stored."""
    rows = list(a.rows)
    if not rows:
        return
    fx = study_effects(a, rows)
    # RevMan's own ESTIMABLE flag decides which rows count (a row it estimated is recomputed
    # whenever its effect is defined with the correction, e.g. a double zero for RD)
    flagged = np.array([r.estimable for r in rows])
    defined = np.isfinite(fx.yi) & np.isfinite(fx.vi) & (fx.vi > 0)
    fx = replace(fx, estimable=flagged & defined)
    method = a.method if a.data_type in ("dichotomous", "oe") else "IV"
    if a.data_type == "oe" and method == "PETO":
        method = "IV"  # (O - E) / V with variance 1 / V: Peto's estimate is the IV one
    codes = {s.number: j for j, s in enumerate(a.subgroups)}
    sub = np.array([codes.get(r.subgroup, 0) for r in rows])
    got = rm.analysis_numbers(
        fx,
        sub,
        max(1, len(a.subgroups)),
        a.measure,
        method,
        a.model,
        a.ci_study,
        a.ci_total,
        a.log_scale or a.measure == "ratio",
        entered=a.data_type == "generic",
    )
    inputs = DATA_FIELDS[a.data_type]  # e.g. generic rows' EFFECT_SIZE and SE are the data
    for r, values in zip(rows, got.studies):
        for key, name in STUDY:
            if key in values and key not in inputs:
                checks.add(
                    f"{a.number} {r.study}: {name}",
                    a.number,
                    f"study.{key}",
                    r.stored.get(key),
                    values[key],
                    "number",
                )
    for s, values in zip(a.subgroups, got.subgroups):
        _pooled_checks(a, s.number, s.stored, values, checks)
    if a.totals != "NO":
        _pooled_checks(a, a.number, a.stored, got.total, checks)
    for key, name, kind in SUBGROUP_TEST:
        if a.subgroup_test and key in got.subgroup_test:
            checks.add(
                f"{a.number} {name}", a.number, key, a.stored.get(key), got.subgroup_test[key], kind
            )


def _pooled_checks(
    a: Analysis,
    number: str,
    stored: Mapping[str, float | None],
    values: Mapping[str, float],
    checks: _Checks,
) -> None:
    for key, name, kind in POOLED:
        if key not in values:
            continue
        note = (
            "fixed-effect analysis: RevMan stores 0"
            if key == "TAU2" and a.model != "random"
            else ""
        )
        ours = 0.0 if note else values[key]
        checks.add(f"{number} {name}", number, key, stored.get(key), ours, kind, note)


def audit_review(review: Review, path: str):
    """Every stored number of every analysis of ``review`` checked (a ReproduceResult)."""
    from ivigmeta.results import ReproduceResult, ReproduceSummary

    checks = _Checks(path, CSV_ABS_TOL if review.from_csv else 0.0)
    for a in review.analyses:
        if a.parent:  # subgroups are checked with their outcome
            continue
        audit_analysis(a, checks)
    return ReproduceResult(
        source=review.source,
        paper={
            "title": review.title or review.source,
            "id": review.id,
            "doi": review.doi,
            "kind": "revman",
            "analyses": len(review.analyses),
            "unsupported": [n for n, _ in review.unsupported],
            "not_stored": [a.number for a in review.analyses if not a.parent and not a.has_results],
        },
        data=review.source,
        numbers=tuple(checks.items),
        summary=ReproduceSummary.of(checks.items),
        runs=0,
    )
