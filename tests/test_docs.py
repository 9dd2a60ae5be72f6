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
