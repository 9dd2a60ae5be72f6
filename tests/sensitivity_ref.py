"""metafor reference records for the sensitivity, influence and small-study-effect tests.

The records come from tests/reference/make_reference.R (metafor 3.8-1; schema in
tests/reference/README.md), read through tests/metafor_ref.py; tolerances are in
tests/tolerances.py.
"""

from __future__ import annotations

import functools
from typing import Any

from metafor_ref import reference, studies
from tolerances import CLOSED_FORM, ITERATIVE

from ivigmeta.core.effects import compute_effects
from ivigmeta.core.pooling import fit
from ivigmeta.results import FitOptions, MetaAnalysis


def rel_tol(method: str) -> float:
    """The relative tolerance of a fit under ``method`` (DL is closed-form)."""
    return CLOSED_FORM if method in ("DL", "HE") else ITERATIVE


def block(name: str, **where: Any) -> list[dict[str, Any]]:
    """The records of block ``name`` whose keys equal ``where``."""
    return [r for r in reference()[name] if all(r.get(k) == v for k, v in where.items())]


@functools.cache
def fitted(dataset: str, measure: str = "RR", method: str = "DL", test: str = "z") -> MetaAnalysis:
    """The fit metafor's record was computed from (escalc defaults, level 95; metafor's test
    "z" or "knha", our --ci z or hk)."""
    options = FitOptions(tau2_method=method, ci_method="hk" if test == "knha" else "z")
    return fit(compute_effects(studies(dataset), measure=measure), options)


def parity_records(name: str) -> list[dict[str, Any]]:
    """DL records of block ``name``, and its REML records from ``<name>_tight``: metafor refitted
    with Fisher-scoring threshold 1e-15 (tests/reference/README.md). With the default block's
    threshold 1e-10 metafor stops a few 1e-10 short of the REML optimum, which shows at 1e-7
    relative in differences of nearly equal estimates such as DFFITS (lau1992)."""
    return block(name, method="DL") + block(f"{name}_tight")


def record_id(rec: dict[str, Any], *keys: str) -> str:
    return "-".join(str(rec.get(k)) for k in keys)
