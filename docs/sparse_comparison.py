"""Print the table of docs/methods.md "Sparse data": each method on metafor's sparse data sets.

    PYTHONPATH=. python docs/sparse_comparison.py

The data come from tests/reference/metafor_glmm.json (written by
tests/reference/make_reference_glmm.R from metafor's data sets); every number is ivigmeta's.
"""

from __future__ import annotations

import json
from pathlib import Path

import ivigmeta

REF = Path(__file__).resolve().parent.parent / "tests" / "reference" / "metafor_glmm.json"
SETS = (
    ("nielweise2007", "OR", ("ai", "n1i", "ci", "n2i")),
    ("collins1985a", "OR", ("ai", "n1i", "ci", "n2i")),
    ("nielweise2008", "IRR", ("x1i", "t1i", "x2i", "t2i")),
)


def main() -> None:
    ref = json.loads(REF.read_text())
    print("| data (measure, k) | method | estimate [95% CI] | tau² |")
    print("| --- | --- | --- | --- |")
    for name, measure, cols in SETS:
        c = ref["datasets"][name]["columns"]
        data = {"study": c["slab"], **{col: c[col] for col in cols}}
        runs = [("IV, 0.5 added, DL", {}), ("IV, 0.5 added, REML", {"tau2": "REML"})]
        if measure == "OR":
            runs += [("Mantel-Haenszel", {"common": "MH"}), ("Peto", {"common": "PETO"})]
        models = (
            ("UM.FS", "UM.RS", "CM.EL", "CM.AL") if measure == "OR" else ("UM.FS", "UM.RS", "CM.EL")
        )
        runs += [(f"GLMM {m}", {"glmm": m}) for m in models]
        for label, opts in runs:
            fit = ivigmeta.pool(data, measure=measure, **opts)
            common = "common" in opts
            est = fit.common if common else fit.random
            tau2 = "" if common else f"{fit.heterogeneity.tau2:.3f}"
            print(
                f"| {name} ({measure}, {fit.k}) | {label} | {est.estimate:.3f} "
                f"[{est.ci_low:.3f}, {est.ci_high:.3f}] | {tau2} |"
            )


if __name__ == "__main__":
    main()
