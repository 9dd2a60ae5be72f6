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
