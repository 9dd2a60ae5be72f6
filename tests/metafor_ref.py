"""The metafor reference fixture (tests/reference/metafor.json) and the data sets it was run on.

Written by tests/reference/make_reference.R (schema in tests/reference/README.md); the tests
never need R.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from ivigmeta.core.effects import compute_effects
from ivigmeta.io.studies import Study
from ivigmeta.results import EffectSizes

REFERENCE = Path(__file__).resolve().parent / "reference" / "metafor.json"


@functools.lru_cache(maxsize=1)
def reference() -> dict[str, Any]:
    return json.loads(REFERENCE.read_text())


def block(name: str) -> list[dict[str, Any]]:
    return reference()[name]


def unit_case(case: str, **keys: Any) -> dict[str, Any]:
    """The one `unit_cases` record named ``case`` (and matching ``keys``)."""
    found = [
        r
        for r in block("unit_cases")
        if r["case"] == case and all(r.get(k) == v for k, v in keys.items())
    ]
    assert len(found) == 1, (case, keys, len(found))
    assert "error" not in found[0], found[0]
    return found[0]


def record_id(rec: dict[str, Any], keys: tuple[str, ...]) -> str:
    return "-".join(str(rec.get(k)) for k in keys)


def studies(dataset: str) -> tuple[Study, ...]:
    """The data set's rows as ivigmeta studies (moderators as text fields, NA as empty)."""
    rows = reference()["datasets"][dataset]["rows"]
    out = []
    for r in rows:
        fields = {"study": r["slab"], "year": str(r["year"])}
        for key in ("ablat", "alloc", "nk_criterion", "timing"):
            if key in r:
                fields[key] = (
                    ""
                    if r[key] is None
                    else (f"{r[key]:g}" if isinstance(r[key], float) else str(r[key]))
                )
        out.append(
            Study(
                row=r["row"] + 1,
                study=r["slab"],
                year=r["year"],
                treat_events=r["ai"],
                treat_total=r["n1i"],
                control_events=r["ci"],
                control_total=r["n2i"],
                fields=fields,
            )
        )
    return tuple(out)


@functools.cache
def effects(dataset: str, measure: str) -> EffectSizes:
    """escalc defaults: 0.5 added to every cell of a study with a zero cell, nothing dropped."""
    return compute_effects(studies(dataset), measure=measure)
