"""metafor reference records for the sensitivity, influence and small-study-effect tests, and the
tolerances they are compared with, named by kind of quantity in this one place.

The records come from tests/reference/make_reference.R (metafor 3.8-1; schema in
tests/reference/README.md). All comparisons are relative, |ours - ref| <= rel |ref|, with an
absolute floor where a quantity can be exactly 0.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

from ivigmeta.data import Study
from ivigmeta.effects import compute_effects
from ivigmeta.pooling import fit
from ivigmeta.results import FitOptions, MetaAnalysis
from ivigmeta.tau2 import TAU2_METHODS

REFERENCE = Path(__file__).resolve().parent / "reference" / "metafor.json"

#: Closed-form quantities given tau² (pooled estimates, SEs, residuals, DFFITS, Cook's D, hat
#: values, Kendall's tau, regression coefficients, trim-and-fill estimates, fail-safe inputs):
#: the same formulas in double precision. Observed agreement is 1e-11 or better; Cook's D and
#: DFFITS are differences of nearly equal estimates, which costs three digits.
CLOSED_FORM = 1e-9
#: Quantities that depend on an iterative tau² (REML; metafor's control threshold 1e-10 on tau²).
ITERATIVE = 1e-7
#: p-values: metafor uses R's pnorm/pchisq/pt, we use math.erfc, our own incomplete gamma and
#: scipy.special; both are accurate to ~1e-14 relative away from underflow.
P_VALUE = 1e-8
#: REML steps where metafor's tight refit fails (threshold 1e-15 is never reached: nielweise2007
#: cumulative steps 7 and 10) are compared with its default-threshold (1e-10) fit instead, which
#: stops a few 1e-10 short of the optimum in tau²; derived quantities then agree to ~1e-9, and 1e-6
#: leaves margin for differences of nearly equal estimates.
STOPPED_SHORT = 1e-6
#: Absolute floor for quantities that are exactly 0 (tau² at the boundary, Q of a single study).
ABS_FLOOR = 1e-12
#: metafor's fsn() returns the fail-safe N already rounded up to a whole number: compared exactly.


def rel_tol(method: str) -> float:
    """The relative tolerance of a fit under ``method`` (DL is closed-form)."""
    return CLOSED_FORM if method in ("DL", "HE") else ITERATIVE


def close(ours: float | None, ref: float | None, rel: float, abs_floor: float = ABS_FLOOR) -> bool:
    if ref is None or ours is None:
        return ref is None and (ours is None or not math.isfinite(ours))
    return abs(ours - ref) <= max(rel * abs(ref), abs_floor)


@functools.lru_cache(maxsize=1)
def reference() -> dict[str, Any]:
    return json.loads(REFERENCE.read_text())


def block(name: str, **where: Any) -> list[dict[str, Any]]:
    return [r for r in reference()[name] if all(r.get(k) == v for k, v in where.items())]


def studies(dataset: str) -> tuple[Study, ...]:
    """The data set's rows as ivigmeta studies; the label is metafor's unique slab."""
    return tuple(
        Study(
            row=r["row"] + 1,
            study=r["slab"],
            year=r["year"],
            treat_events=r["ai"],
            treat_total=r["n1i"],
            control_events=r["ci"],
            control_total=r["n2i"],
            fields={"study": r["slab"], "year": str(r["year"])},
        )
        for r in reference()["datasets"][dataset]["rows"]
    )


@functools.cache
def fitted(dataset: str, measure: str = "RR", method: str = "DL") -> MetaAnalysis:
    """The fit metafor's record was computed from (escalc defaults, level 95, z)."""
    return fit(compute_effects(studies(dataset), measure=measure), FitOptions(tau2_method=method))


def skip_unless_method(method: str) -> None:
    """REML parity tests start running when the REML estimator is in the registry (issue 3)."""
    import pytest

    if method not in TAU2_METHODS:
        pytest.skip(f"tau² estimator {method} is not implemented yet")


def parity_records(name: str) -> list[dict[str, Any]]:
    """DL records of block ``name``, and its REML records from ``<name>_tight``: metafor refitted
    with Fisher-scoring threshold 1e-15 (tests/reference/README.md). With the default block's
    threshold 1e-10 metafor stops a few 1e-10 short of the REML optimum, which shows at 1e-7
    relative in differences of nearly equal estimates such as DFFITS (lau1992)."""
    return block(name, method="DL") + block(f"{name}_tight")


def record_id(rec: dict[str, Any], *keys: str) -> str:
    return "-".join(str(rec.get(k)) for k in keys)
