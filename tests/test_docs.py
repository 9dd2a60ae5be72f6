"""The CLI reference in docs/ is generated from --help and must not drift."""

from __future__ import annotations

import runpy

from conftest import ROOT


def test_cli_reference_is_current():
    gen = runpy.run_path(str(ROOT / "docs" / "gen_cli.py"))
    expected = gen["generate"]()
    actual = (ROOT / "docs" / "cli.md").read_text()
    assert actual == expected, "docs/cli.md is stale: run `python docs/gen_cli.py > docs/cli.md`"


def test_every_command_is_documented():
    from ivigmeta.cli import cli

    text = (ROOT / "docs" / "cli.md").read_text()
    for name in cli.commands:
        assert f"## ivigmeta {name}" in text


def test_figures_page_shows_every_generated_figure():
    """docs/figures.md shows each figure docs/make_figures.py generates, and each is committed."""
    import re

    gen = runpy.run_path(str(ROOT / "docs" / "make_figures.py"))
    page = (ROOT / "docs" / "figures.md").read_text()
    shown = re.findall(r"!\[[^\]]*\]\(figures/([^)]+)\)", page)
    assert sorted(shown) == sorted(gen["FIGURES"])
    for name, (command, _, _) in gen["FIGURES"].items():
        assert (ROOT / "docs" / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"`{command}`" in page


def test_tutorial_pregnancy_duration_numbers_are_metafors():
    """docs/tutorial.md quotes the pooled pregnancy-duration MD and SMD: metafor's values
    (tests/reference/metafor_outcomes.json, record ivig_duration, DL with z), rounded as printed."""
    import json

    ref = json.loads((ROOT / "tests" / "reference" / "metafor_outcomes.json").read_text())
    fits = {r["measure"]: r["fits"][0] for r in ref["records"] if r["name"] == "ivig_duration"}
    assert fits["MD"]["method"] == "DL" and fits["MD"]["test"] == "z"
    text = (ROOT / "docs" / "tutorial.md").read_text()
    md, smd = fits["MD"], fits["SMD"]
    flat = " ".join(text.split())
    assert (
        f"{md['estimate']:.2f} weeks [{md['ci_lb']:.2f}, {md['ci_ub']:.2f}] (p = {md['pval']:.3f})"
        in flat
    )
    assert f"I² = {md['I2']:.1f}% (Q = {md['QE']:.2f}, df = 2)" in flat
    assert f"Hedges' g is {smd['estimate']:.2f} [{smd['ci_lb']:.2f}, {smd['ci_ub']:.2f}]" in flat
