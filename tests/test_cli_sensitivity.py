"""CLI plumbing of cumulative, influence and the bias suite: formats, JSON contracts, options,
not-applicable reporting and errors. Numbers are tested in the core (test_cumulative.py,
test_influence.py, test_bias.py)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

COMMANDS = {"cumulative": [], "influence": [], "bias": []}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("fmt", ["table", "json", "csv", "markdown"])
def test_every_format(run, studies_path, command, fmt):
    result = run(command, str(studies_path), *COMMANDS[command], "--format", fmt)
    assert result.exit_code == 0, result.output
    out = result.stdout
    if fmt == "json":
        json.loads(out)
    elif fmt == "csv":
        assert list(csv.DictReader(io.StringIO(out)))
    elif fmt == "markdown":
        assert out.startswith("### ")
    else:
        assert out.strip()


def test_cumulative_json_contract(run, studies_path, paper_fit):
    data = json.loads(run("cumulative", str(studies_path), "-f", "json").stdout)
    keys = {"study", "k", "theta", "estimate", "ci_low", "ci_high", "p_value", "i2", "tau2"}
    assert len(data["steps"]) == 8 and all(keys <= set(s) for s in data["steps"])
    assert [s["k"] for s in data["steps"]] == list(range(1, 9))
    years = [s["year"] for s in data["steps"]]
    assert years == sorted(years)
    assert data["steps"][-1]["estimate"] == pytest.approx(paper_fit.random.estimate, rel=1e-14)
    desc = json.loads(run("cumulative", str(studies_path), "--desc", "-f", "json").stdout)
    assert [s["year"] for s in desc["steps"]] == sorted(years, reverse=True)
    assert desc["descending"] is True


def test_cumulative_options_and_errors(run, studies_path, tmp_path):
    by_label = json.loads(
        run("cumulative", str(studies_path), "--order", "nk_criterion", "-f", "json").stdout
    )
    assert [s["order_value"] for s in by_label["steps"]] == ["no"] * 4 + ["yes"] * 4
    missing = run("cumulative", str(studies_path), "--order", "timing")
    assert (
        missing.exit_code == 0 and "Jafarzadeh" in missing.stderr and "added last" in missing.stderr
    )
    bad = run("cumulative", str(studies_path), "--order", "dose")
    assert (
        bad.exit_code == 1 and bad.stderr.startswith("Error: ") and "no column 'dose'" in bad.stderr
    )
    one = tmp_path / "one.csv"
    one.write_text(
        "study,year,treat_events,treat_total,control_events,control_total\nA,2000,5,10,3,10\n"
    )
    assert run("cumulative", str(one)).exit_code == 1


def test_influence_json_contract(run, studies_path):
    data = json.loads(run("influence", str(studies_path), "-f", "json").stdout)
    keys = {
        "study",
        "rstudent",
        "dffits",
        "cook_d",
        "cov_r",
        "tau2_del",
        "qe_del",
        "hat",
        "weight",
        "influential",
        "baujat_x",
        "baujat_y",
    }
    assert len(data["studies"]) == 8 and all(keys <= set(s) for s in data["studies"])
    assert all(isinstance(s["influential"], bool) for s in data["studies"])


def test_influence_single_study_is_an_error(run, tmp_path):
    one = tmp_path / "one.csv"
    one.write_text(
        "study,year,treat_events,treat_total,control_events,control_total\nA,2000,5,10,3,10\n"
    )
    result = run("influence", str(one))
    assert (
        result.exit_code == 1
        and result.stderr.startswith("Error: ")
        and "Traceback" not in result.output
    )


def test_bias_default_suite_for_rr(run, studies_path):
    data = json.loads(run("bias", str(studies_path), "-f", "json").stdout)
    assert data["tests"] == ["egger", "begg", "peters", "trimfill", "failsafe"]
    assert f"{data['egger']['p_value']:.3f}" == "0.362"
    assert {"tau", "p_value"} <= set(data["begg"])
    assert {"k0", "side", "theta", "estimate", "ci_low", "ci_high", "filled"} <= set(
        data["trimfill"]
    )
    assert len(data["trimfill"]["filled"]) == data["trimfill"]["k0"]
    assert {"method", "n"} <= set(data["failsafe"]) and data["failsafe"]["method"] == "Rosenthal"


def test_bias_table_warns_about_power(run, studies_path):
    out = run("bias", str(studies_path)).stdout
    assert "low power" in out and "Egger's regression" in out and "Fail-safe N" in out
    assert "Trim-and-fill: imputed studies" in out  # the paper's data impute studies on the left


def test_bias_options(run, studies_path):
    data = json.loads(
        run(
            "bias",
            str(studies_path),
            "--measure",
            "OR",
            "--test",
            "harbord",
            "--test",
            "trimfill",
            "--side",
            "right",
            "--estimator",
            "R0",
            "-f",
            "json",
        ).stdout
    )
    assert data["tests"] == ["harbord", "trimfill"]
    assert data["trimfill"]["side"] == "right" and data["trimfill"]["side_chosen"] == "given"
    assert data["trimfill"]["estimator"] == "R0" and data["trimfill"]["p_k0"] is not None
    orwin = json.loads(
        run(
            "bias",
            str(studies_path),
            "--test",
            "failsafe",
            "--failsafe",
            "orwin",
            "--target",
            "1.1",
            "-f",
            "json",
        ).stdout
    )["failsafe"]
    assert orwin["method"] == "Orwin" and orwin["target"] == pytest.approx(1.1, rel=1e-14)


def test_bias_not_applicable_is_reported_not_an_error(run, studies_path):
    result = run("bias", str(studies_path), "--test", "harbord", "-f", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["harbord"]["applicable"] is False and "OR" in data["harbord"]["reason"]
    assert "harbord: not applicable" in result.stderr
    two = "study,year,treat_events,treat_total,control_events,control_total\nA,2000,5,10,3,10\nB,2001,8,20,4,20\n"
    result = run("bias", "-", input=two)
    assert result.exit_code == 0
    assert "not applicable" in result.stdout and "at least 3 studies" in result.stdout


def test_bias_bad_options(run, studies_path):
    assert run("bias", str(studies_path), "--test", "funnel").exit_code == 2
    bad = run(
        "bias", str(studies_path), "--test", "failsafe", "--failsafe", "orwin", "--target", "-2"
    )
    assert bad.exit_code == 1 and bad.stderr.startswith("Error: ") and "positive" in bad.stderr


def test_help_and_pool_stay_light(studies_path):
    """--help and pool import neither pandas, scipy.stats nor matplotlib (numpy is the engine's)."""
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from ivigmeta.cli import cli\n"
        "r = CliRunner()\n"
        "assert r.invoke(cli, ['--help']).exit_code == 0\n"
        "for c in ('cumulative', 'influence', 'bias'):\n"
        "    assert r.invoke(cli, [c, '--help']).exit_code == 0\n"
        f"assert r.invoke(cli, ['pool', {str(studies_path)!r}, '-f', 'json']).exit_code == 0\n"
        "heavy = [m for m in ('pandas', 'scipy.stats', 'matplotlib') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == ""
