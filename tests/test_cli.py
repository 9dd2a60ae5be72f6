"""CLI plumbing: every subcommand in every format, stdin, exit codes and error messages.

Numbers are tested in the core (test_paper.py and the metafor parity tests); here we check that
the CLI carries them through and fails cleanly.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

COMMANDS = {
    "pool": [],
    "heterogeneity": [],
    "loo": [],
    "subgroup": ["--by", "nk_criterion"],
    "bias": [],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("fmt", ["table", "json", "csv", "markdown"])
def test_every_command_every_format(run, studies_path, command, fmt):
    result = run(command, str(studies_path), *COMMANDS[command], "--format", fmt)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.strip()
    if fmt == "json":
        json.loads(out)
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
        assert rows
    elif fmt == "markdown":
        assert out.startswith("### ")
        assert "| --- |" in out or "| --- | " in out


def test_pool_json_contract(run, studies_path):
    data = json.loads(run("pool", str(studies_path), "--format", "json").stdout)
    assert {"measure", "k", "studies", "common", "random", "heterogeneity", "excluded"} <= set(data)
    study_keys = {
        "study",
        "treat_events",
        "treat_total",
        "control_events",
        "control_total",
        "theta",
        "se",
        "estimate",
        "ci_low",
        "ci_high",
        "p_value",
        "weight_common",
        "weight_random",
    }
    assert all(study_keys <= set(s) for s in data["studies"])
    assert {"method", "theta", "se", "estimate", "ci_low", "ci_high", "p_value"} <= set(
        data["common"]
    )
    assert {
        "tau2_method",
        "ci_method",
        "theta",
        "se",
        "estimate",
        "ci_low",
        "ci_high",
        "p_value",
    } <= set(data["random"])
    assert {"q", "df", "p_value", "i2", "h2", "tau2", "tau"} <= set(data["heterogeneity"])
    assert data["random"]["tau2_method"] == "DL"
    assert f"{data['random']['estimate']:.2f}" == "1.98"
    # Full precision, not display rounding.
    assert data["random"]["estimate"] != round(data["random"]["estimate"], 2)


def test_other_json_contracts(run, studies_path):
    het = json.loads(run("heterogeneity", str(studies_path), "-f", "json").stdout)
    assert {"q", "df", "p_value", "i2", "h2", "tau2", "tau"} <= set(het)
    loo = json.loads(run("loo", str(studies_path), "-f", "json").stdout)
    keys = {"study", "theta", "se", "estimate", "ci_low", "ci_high", "p_value", "q", "i2", "tau2"}
    assert len(loo["omitted"]) == 8 and all(keys <= set(r) for r in loo["omitted"])
    sg = json.loads(
        run(
            "subgroup", str(studies_path), "--by", "nk_criterion", "--by", "timing", "-f", "json"
        ).stdout
    )
    assert [b["column"] for b in sg["by"]] == ["nk_criterion", "timing"]
    level_keys = {
        "level",
        "k",
        "studies",
        "theta",
        "se",
        "estimate",
        "ci_low",
        "ci_high",
        "p_value",
        "q",
        "q_p_value",
        "i2",
        "tau2",
    }
    for b in sg["by"]:
        assert all(level_keys <= set(lv) for lv in b["levels"])
        assert {"method", "qm", "df", "p_value"} <= set(b["test"])
        assert "excluded" in b
    assert [e["study"] for e in sg["by"][1]["excluded"]] == ["Jafarzadeh"]
    bias = json.loads(run("bias", str(studies_path), "-f", "json").stdout)
    assert {"intercept", "se", "t", "df", "p_value"} <= set(bias["egger"])


def test_pool_table_is_table_2(run, studies_path):
    out = run("pool", str(studies_path)).stdout
    assert "Perricone (2008)" in out and "1.32 [0.93, 1.86]" in out
    assert "8.64 [2.31, 32.33]" in out
    assert "1.98 [1.44, 2.73]" in out
    assert "Q = 19.36, df = 7" in out
    assert "39.1 (2.1)" in out  # the descriptive duration columns of Table 2


def test_subgroup_table_is_table_3_and_notes_on_stderr(run, studies_path):
    result = run("subgroup", str(studies_path), "--by", "nk_criterion", "--by", "timing")
    assert "2.32 [1.78, 3.02]" in result.stdout
    assert "4.47 [1.53, 13.05]" in result.stdout
    assert "p = 0.266" in result.stdout and "p = 0.071" in result.stdout
    assert "Jafarzadeh" in result.stderr and "timing" in result.stderr


def test_loo_range_line(run, studies_path):
    out = run("loo", str(studies_path)).stdout
    assert "1.81 [1.31, 2.50] without Ramos-Medina" in out
    assert "2.17 [1.59, 2.96] without Mahmoud" in out


def test_stdin(run, studies_path):
    text = studies_path.read_text()
    result = run("pool", "-", "--format", "json", input=text)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["k"] == 8


def test_default_file_is_studies_csv(run, studies_path, monkeypatch):
    monkeypatch.chdir(studies_path.parent)
    result = run("pool", "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)["k"] == 8


def test_measures(run, studies_path):
    for measure in ("RR", "or", "RD"):
        data = json.loads(run("pool", str(studies_path), "--measure", measure, "-f", "json").stdout)
        assert data["measure"] == measure.upper()


HEADER = "study,year,treat_events,treat_total,control_events,control_total\n"


@pytest.mark.parametrize(
    "content, fragments",
    [
        ("", ["empty"]),
        (
            "study,year,treat_events,treat_total,control_events\nA,2000,1,2,3\n",
            ["row 1", "control_total", "missing"],
        ),
        (HEADER + "A,2000,x,10,3,10\n", ["row 2", "'treat_events'", "'x'", "not a number"]),
        (HEADER + "A,2000,1.5,10,3,10\n", ["row 2", "'treat_events'", "whole number"]),
        (HEADER + "A,2000,1,10,-3,10\n", ["row 2", "'control_events'", "negative"]),
        (HEADER + "A,2000,1,10,3,10\nB,2001,12,10,3,10\n", ["row 3", "'treat_events'", "exceed"]),
    ],
)
def test_bad_input_messages(run, tmp_path, content, fragments):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    result = run("pool", str(path))
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert str(path) in lines[0]
    for fragment in fragments:
        assert fragment in lines[0]


def test_missing_file(run, tmp_path):
    result = run("pool", str(tmp_path / "nope.csv"))
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {tmp_path / 'nope.csv'}: file not found"


def test_unknown_by_column(run, studies_path):
    result = run("subgroup", str(studies_path), "--by", "dose")
    assert result.exit_code == 1
    assert "no column 'dose'" in result.stderr and "nk_criterion" in result.stderr


def test_unknown_measure_is_usage_error(run, studies_path):
    result = run("pool", str(studies_path), "--measure", "HR")
    assert result.exit_code == 2
    assert (
        "Error: Invalid value for '--measure': 'HR' is not one of 'RR', 'OR', 'RD', 'AS', 'MD'"
        in (result.stderr)
    )


def test_unknown_format_is_usage_error(run, studies_path):
    assert run("pool", str(studies_path), "--format", "xml").exit_code == 2


def test_single_study_is_not_pooled(run, tmp_path):
    path = tmp_path / "one.csv"
    path.write_text(HEADER + "A,2000,5,10,3,10\n")
    result = run("pool", str(path), "-f", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["k"] == 1 and data["random"] is None and data["heterogeneity"] is None
    assert "no pooling" in result.stderr
    assert run("loo", str(path)).exit_code == 1


def test_version_and_short_help(run):
    from ivigmeta import __version__

    assert __version__ in run("--version").stdout
    assert "pool" in run("-h").stdout


def test_python_dash_m_and_console_script(studies_path):
    """The installed entry points, in a real subprocess (no traceback, JSON on stdout)."""
    proc = subprocess.run(
        [sys.executable, "-m", "ivigmeta", "pool", str(studies_path), "-f", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(proc.stdout)["random"]["tau2_method"] == "DL"
    bad = subprocess.run(
        [sys.executable, "-m", "ivigmeta", "pool", "/nonexistent.csv"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
