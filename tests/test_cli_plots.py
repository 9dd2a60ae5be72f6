"""--plot on the commands: the figure is written next to the usual output, bad targets fail
cleanly before any work, and nothing heavy is imported unless a figure is asked for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from conftest import ROOT

ROB_EXAMPLE = ROOT / "docs" / "examples" / "rob_example.csv"


def svg_ids(path) -> set[str]:
    return {el.get("id") for el in ET.parse(path).getroot().iter() if el.get("id")}


@pytest.mark.parametrize(
    "args, ids",
    [
        (["pool"], {"diamond-random", "null-line", "square-0", "square-7"}),
        (["pool", "--model", "both"], {"diamond-common", "diamond-random"}),
        (["loo"], {"reference-line", "reference-band", "point-7"}),
        (["bias", "--contour"], {"studies", "funnel-limits", "contour-0.01-right"}),
        (["heterogeneity"], {"studies", "pooled-line"}),
        (["bias"], {"filled-studies", "trimfill-line"}),
        (["influence"], {"studies"}),
        (["influence", "--figure", "diagnostics"], {"cook_d-cutoff", "rstudent-0", "weight-7"}),
        (["cumulative"], {"point-0", "point-7", "reference-line", "reference-band"}),
        (["pool", "--figure", "labbe"], {"pooled-curve", "no-effect", "studies", "labels-7"}),
        (["bias", "--label-studies"], {"funnel-limits", "labels-0", "labels-7"}),
        (["heterogeneity"], {"labels-0", "labels-7"}),
        (["influence"], {"labels-0", "labels-7"}),
    ],
)
def test_plot_written_and_table_unchanged(run, studies_path, tmp_path, args, ids):
    target = tmp_path / "figure.svg"
    plain = run(*args, str(studies_path), "-f", "json")
    result = run(*args, str(studies_path), "-f", "json", "--plot", str(target))
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(plain.stdout)
    assert f"figure written to {target}" in result.stderr
    assert ids <= svg_ids(target)
    assert os.listdir(tmp_path) == ["figure.svg"]


def test_pool_plot_png_and_labels(run, studies_path, tmp_path):
    target = tmp_path / "forest.png"
    result = run(
        "pool", str(studies_path), "--plot", str(target), "--labels", "Favours no IVIG,Favours IVIG"
    )
    assert result.exit_code == 0
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(data[16:20], "big") > 2000  # 300 dpi by default
    assert "1.98 [1.44, 2.73]" in result.stdout


def test_subgroup_plot_paths():
    from ivigmeta.cli.commands import per_column_paths

    assert per_column_paths(None, ("a",)) == {}
    assert per_column_paths("out/by.pdf", ("nk_criterion",)) == {"nk_criterion": "out/by.pdf"}
    assert per_column_paths("by.png", ("a b", "c", "a b")) == {
        "a b": "by_a_b.png",
        "c": "by_c.png",
    }


def test_subgroup_plot_one_file_per_column(run, studies_path, tmp_path):
    two = tmp_path / "sg.svg"
    result = run(
        "subgroup", str(studies_path), "--by", "nk_criterion", "--by", "timing", "--plot", str(two)
    )
    assert result.exit_code == 0
    assert {"diamond-random-yes", "diamond-random-no"} <= svg_ids(tmp_path / "sg_nk_criterion.svg")
    assert {"diamond-random-after", "diamond-random-before"} <= svg_ids(tmp_path / "sg_timing.svg")
    assert not two.exists()


def test_rob_plot(run, tmp_path):
    target = tmp_path / "rob.svg"
    result = run("rob", str(ROB_EXAMPLE), "--plot", str(target))
    assert result.exit_code == 0
    ids = svg_ids(target)
    assert {"rob-0-0", "rob-7-7", "contradiction-7"} <= ids


@pytest.mark.parametrize(
    "command, name, fragment",
    [
        (["pool"], "forest.jpg", "cannot write a figure with '.jpg' (use one of .png, .svg, .pdf)"),
        (["loo"], "missing/loo.png", "directory"),
        (["rob", str(ROB_EXAMPLE)], "rob", "no extension"),
    ],
)
def test_bad_plot_target_fails_before_any_output(
    run, studies_path, tmp_path, command, name, fragment
):
    target = tmp_path / name
    args = [*command] if command[0] == "rob" else [*command, str(studies_path)]
    result = run(*args, "--plot", str(target))
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {target}: ") and fragment in lines[0]
    assert os.listdir(tmp_path) == []


def test_bad_labels_is_a_usage_error(run, studies_path):
    result = run("pool", str(studies_path), "--labels", "only one caption")
    assert result.exit_code == 2
    assert "two captions" in result.stderr


def test_radial_needs_two_studies(run, tmp_path):
    data = tmp_path / "one.csv"
    data.write_text(
        "study,year,treat_events,treat_total,control_events,control_total\nA,2000,5,10,3,10\n"
    )
    result = run("heterogeneity", str(data), "--plot", str(tmp_path / "r.svg"))
    assert result.exit_code == 1 and "at least 2" in result.stderr
    assert not (tmp_path / "r.svg").exists()


def test_no_heavy_imports_without_plot(studies_path):
    """`--help` and `pool` (no --plot) never import matplotlib, pandas or scipy.stats (numpy is the engine's)."""
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from ivigmeta.cli import cli\n"
        "r = CliRunner()\n"
        "assert r.invoke(cli, ['--help']).exit_code == 0\n"
        f"assert r.invoke(cli, ['pool', {str(studies_path)!r}]).exit_code == 0\n"
        f"assert r.invoke(cli, ['rob', {str(ROB_EXAMPLE)!r}, '-f', 'json']).exit_code == 0\n"
        "print(sorted(m for m in ('matplotlib', 'pandas', 'scipy.stats') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_pool_plot_sort_and_xlim(run, studies_path, tmp_path):
    target = tmp_path / "sorted.svg"
    ok = run(
        "pool", str(studies_path), "--plot", str(target), "--sort", "weight", "--xlim", "0.25,20"
    )
    assert ok.exit_code == 0, ok.output
    assert target.exists()
    bad = run("pool", str(studies_path), "--plot", str(target), "--xlim", "a,b")
    assert bad.exit_code == 2 and "LOW,HIGH" in bad.output
    neg = run("pool", str(studies_path), "--plot", str(tmp_path / "n.svg"), "--xlim", "0,5")
    assert neg.exit_code == 1 and "Error: --xlim 0,5: expected 0 < LOW < HIGH" in neg.stderr


def test_funnel_without_the_triangle(run, studies_path, tmp_path):
    target = tmp_path / "funnel.svg"
    result = run("bias", str(studies_path), "--plot", str(target), "--no-triangle")
    assert result.exit_code == 0, result.stderr
    ids = svg_ids(target)
    assert "studies" in ids and "funnel-limits" not in ids and "pooled-line" in ids


def test_labbe_needs_counts(run, tmp_path):
    path = tmp_path / "means.csv"
    path.write_text(
        "study,treat_mean,treat_sd,treat_n,control_mean,control_sd,control_n\n"
        "A,10,2,20,12,2,20\nB,11,3,30,12,3,30\n"
    )
    result = run("pool", str(path), "--plot", str(tmp_path / "l.png"), "--figure", "labbe")
    assert result.exit_code == 1
    assert "the L'Abbé plot is for RR, OR and RD analyses" in result.stderr
