"""Regenerate docs/figures/*.png from studies.csv (and the example risk-of-bias table).

Run from the repository root:  python docs/make_figures.py
Each figure is what the matching command writes with --plot (shown in docs/figures.md); they are
rendered at a modest resolution to keep the repository small.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "figures"
DPI = 110

# file name -> (command line shown in docs/figures.md, figure kind, options)
FIGURES = {
    "forest.png": (
        'ivigmeta pool studies.csv --labels "Favours control,Favours IVIG" --plot forest.png',
        "forest",
        {"labels": ("Favours control", "Favours IVIG")},
    ),
    "forest_both.png": (
        "ivigmeta pool studies.csv --model both --plot forest_both.png",
        "forest",
        {"model": "both"},
    ),
    "subgroup_nk_criterion.png": (
        "ivigmeta subgroup studies.csv --by nk_criterion --plot subgroup_nk_criterion.png",
        "subgroup-forest",
        {"column": "nk_criterion"},
    ),
    "subgroup_timing.png": (
        "ivigmeta subgroup studies.csv --by timing --plot subgroup_timing.png",
        "subgroup-forest",
        {"column": "timing"},
    ),
    "loo.png": ("ivigmeta loo studies.csv --plot loo.png", "loo", {}),
    "funnel.png": ("ivigmeta bias studies.csv --plot funnel.png", "funnel", {}),
    "funnel_contour.png": (
        "ivigmeta bias studies.csv --contour --plot funnel_contour.png",
        "funnel",
        {"contour": True},
    ),
    "radial.png": ("ivigmeta heterogeneity studies.csv --plot radial.png", "radial", {}),
    "baujat.png": ("ivigmeta influence studies.csv --plot baujat.png", "baujat", {}),
    "influence.png": (
        "ivigmeta influence studies.csv --figure diagnostics --plot influence.png",
        "influence",
        {},
    ),
    "cumulative.png": ("ivigmeta cumulative studies.csv --plot cumulative.png", "cumulative", {}),
    "labbe.png": ("ivigmeta pool studies.csv --figure labbe --plot labbe.png", "labbe", {}),
    "funnel_labels.png": (
        "ivigmeta bias studies.csv --no-triangle --label-studies --plot funnel_labels.png",
        "funnel",
        {"triangle": False, "label_studies": True},
    ),
    "gosh.png": ("ivigmeta gosh studies.csv --plot gosh.png", "gosh", {}),
    "bubble.png": (
        "ivigmeta metareg docs/examples/bcg.csv --mod ablat --plot bubble.png",
        "bubble",
        {},
    ),
    "rob.png": ("ivigmeta rob docs/examples/rob_example.csv --plot rob.png", "rob", {}),
}


def results() -> dict[str, object]:
    """The result object each figure kind is drawn from, fitted once with the default options."""
    from ivigmeta.core.effects import compute_effects
    from ivigmeta.core.pooling import fit
    from ivigmeta.io.studies import load_table
    from ivigmeta.methods.bias import bias_analysis
    from ivigmeta.methods.gosh import gosh
    from ivigmeta.methods.influence import influence
    from ivigmeta.methods.metareg import bubble, metareg_analysis
    from ivigmeta.methods.rob import load_rob
    from ivigmeta.methods.sensitivity import cumulative, leave_one_out
    from ivigmeta.methods.subgroup import subgroup_analysis

    ma = fit(compute_effects(load_table(str(ROOT / "studies.csv")).studies))
    bcg = compute_effects(load_table(str(ROOT / "docs" / "examples" / "bcg.csv")).studies)
    return {
        "forest": ma,
        "subgroup-forest": subgroup_analysis(ma, ["nk_criterion", "timing"]),
        "loo": leave_one_out(ma),
        "funnel": bias_analysis(ma),
        "radial": ma,
        "baujat": influence(ma),
        "influence": influence(ma),
        "rob": load_rob(str(ROOT / "docs" / "examples" / "rob_example.csv")),
        "cumulative": cumulative(ma, "year"),
        "labbe": ma,
        "gosh": gosh(ma),
        "bubble": bubble(metareg_analysis(bcg, ["ablat"])),
    }


def main() -> None:
    from ivigmeta.plots import write_figure

    OUT.mkdir(exist_ok=True)
    fitted = results()
    for name, (_, kind, options) in FIGURES.items():
        path = OUT / name
        write_figure(kind, fitted[kind], str(path), dpi=DPI, **options)
        print(f"{path.relative_to(ROOT)}  {path.stat().st_size // 1024} KiB", file=sys.stderr)


if __name__ == "__main__":
    main()
