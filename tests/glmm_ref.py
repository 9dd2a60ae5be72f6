"""The rma.glmm reference fixture (tests/reference/metafor_glmm.json) and its data sets.

Written by tests/reference/make_reference_glmm.R (conventions in its header and in
tests/reference/README.md); the tests never need R.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

REFERENCE = Path(__file__).resolve().parent / "reference" / "metafor_glmm.json"


@functools.lru_cache(maxsize=1)
def reference() -> dict[str, Any]:
    return json.loads(REFERENCE.read_text())


def records() -> list[dict[str, Any]]:
    return reference()["records"]


def record_name(rec: dict[str, Any]) -> str:
    drop = "" if rec["drop00"] else "-keep00"
    return f"{rec['dataset']}-{rec['measure']}-{rec['model']}{drop}"


def columns(dataset: str) -> dict[str, list[Any]]:
    return reference()["datasets"][dataset]["columns"]


def is_double_zero(measure: str, x1: float, n1: float, x2: float, n2: float) -> bool:
    """metafor's drop00 rule: no events (OR: or only events) in both groups."""
    if measure == "OR":
        return (x1 == 0 and x2 == 0) or (x1 == n1 and x2 == n2)
    if measure == "IRR":
        return x1 == 0 and x2 == 0
    return False


def counts(dataset: str, drop00: bool) -> tuple[str, list, list, list | None, list | None]:
    """(measure, x1, n1, x2, n2) of a data set, double zeros dropped when ``drop00``."""
    ds = reference()["datasets"][dataset]
    c, measure = ds["columns"], ds["measure"]
    if measure == "OR":
        x1, n1, x2, n2 = c["ai"], c["n1i"], c["ci"], c["n2i"]
    elif measure == "IRR":
        x1, n1, x2, n2 = c["x1i"], c["t1i"], c["x2i"], c["t2i"]
    else:
        x1, n1 = c["xi"], c["ni"]
        return measure, list(x1), list(n1), None, None
    keep = [
        i
        for i in range(len(x1))
        if not (drop00 and is_double_zero(measure, x1[i], n1[i], x2[i], n2[i]))
    ]
    return (
        measure,
        [x1[i] for i in keep],
        [n1[i] for i in keep],
        [x2[i] for i in keep],
        [n2[i] for i in keep],
    )


def metafor_parameters(rec: dict[str, Any], block: str) -> dict[str, Any] | None:
    """metafor's optimum as keyword arguments of ``ivigmeta.core.glmm.loglik_at``."""
    fit = rec[block]
    params = fit.get("params")
    if params is None:
        return None
    if "par" in params:  # CM.EL (OR): nlminb's c(beta, log(tau2))
        return {"theta": params["par"][0], "tau": math.exp(params["par"][1] / 2)}
    fixef, theta = params["fixef"], params["theta"]
    if rec["model"] == "UM.RS":  # fixef (X.fit, const), theta (study intercept, group)
        return {"theta": fixef[0], "mu": fixef[1], "sigma": theta[0], "tau": theta[1]}
    if rec["model"] == "UM.FS" and rec["measure"] != "PLO":
        return {"theta": fixef[0], "tau": theta[0], "intercepts": fixef[1:]}
    return {"theta": fixef[0], "tau": theta[0]}
