"""The rma.glmm meta-regression fixture (tests/reference/metafor_glmm_mods.json) and designs.

Written by tests/reference/make_reference_glmm_mods.R (conventions in its header and in
tests/reference/README.md); the tests never need R.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

REFERENCE = Path(__file__).resolve().parent / "reference" / "metafor_glmm_mods.json"


@functools.lru_cache(maxsize=1)
def reference() -> dict[str, Any]:
    return json.loads(REFERENCE.read_text())


def records() -> list[dict[str, Any]]:
    return reference()["records"]


def record_name(rec: dict[str, Any]) -> str:
    return f"{rec['dataset']}-{rec['measure']}-{rec['model']}-{rec['mods']}"


def columns(dataset: str) -> dict[str, list[Any]]:
    return reference()["datasets"][dataset]["columns"]


def counts(dataset: str) -> tuple[str, list, list, list | None, list | None]:
    """(measure, x1, n1, x2, n2) of a data set (PLO: x2, n2 None)."""
    ds = reference()["datasets"][dataset]
    c = ds["columns"]
    if ds["measure"] == "OR":
        return "OR", c["ai"], c["n1i"], c["ci"], c["n2i"]
    if ds["measure"] == "PLO":
        return "PLO", c["xi"], c["ni"], None, None
    return "IRR", c["x1i"], c["t1i"], c["x2i"], c["t2i"]


def design(dataset: str, mod: str, scaled: bool = False) -> list[list[float]]:
    """R's model.matrix(~ mod): a numeric column as is (``scaled``: centred and divided by its
    sd, as metafor's scaleX, the scale of its optimizer's parameters), a character column as
    indicators of its levels but the first in sorted order (R's factor coding)."""
    col = columns(dataset)[mod]
    if isinstance(col[0], str):
        levels = sorted(set(col))
        return [[1.0] + [1.0 if v == lev else 0.0 for lev in levels[1:]] for v in col]
    if not scaled:
        return [[1.0, float(v)] for v in col]
    n = len(col)
    mean = sum(col) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in col) / (n - 1))
    return [[1.0, (v - mean) / sd] for v in col]


def metafor_parameters(rec: dict[str, Any], block: str) -> dict[str, Any] | None:
    """metafor's optimum (on its scaled design) as keyword arguments of ``loglik_at``."""
    params = rec[block].get("params")
    if params is None:
        return None
    p = len(rec[block]["estimate"])
    if "par" in params:  # CM.EL (OR): nlminb's c(beta, log(tau2))
        return {"theta": params["par"][:p], "tau": math.exp(params["par"][p] / 2)}
    fixef, theta = params["fixef"], params["theta"]
    if rec["model"] == "UM.RS":  # fixef (X.fit, const), theta (study intercept, group)
        return {"theta": fixef[:p], "mu": fixef[p], "sigma": theta[0], "tau": theta[1]}
    if rec["model"] == "UM.FS" and rec["measure"] != "PLO":
        return {"theta": fixef[:p], "tau": theta[0], "intercepts": fixef[p:]}
    return {"theta": fixef[:p], "tau": theta[0]}
