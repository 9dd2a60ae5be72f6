"""CLI plumbing of the estimator options: --tau2/--ci/--common on every command, the heterogeneity intervals,
`ivigmeta metareg`, `subgroup --between`, errors and the import budget of the default path.

Numbers are tested against metafor in the core tests; here the CLI must carry them through.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from ivigmeta.core.effects import compute_effects
from ivigmeta.core.pooling import fit
from ivigmeta.io.studies import load_table
from ivigmeta.results import FitOptions

TAU2 = ["DL", "REML", "ML", "PM", "HE", "SJ"]


def _json(run, *args):
    result = run(*args, "-f", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("tau2", TAU2)
@pytest.mark.parametrize("ci", ["z", "hk"])
def test_pool_carries_estimator_interval_and_prediction(run, studies_path, tau2, ci):
    data = _json(run, "pool", str(studies_path), "--tau2", tau2, "--ci", ci)
    r = data["random"]
    core = fit(
        compute_effects(load_table(str(studies_path)).studies),
        FitOptions(tau2_method=tau2, ci_method=ci),
    ).random
    assert (r["tau2_method"], r["ci_method"]) == (tau2, ci)
    assert r["df"] == (7 if ci == "hk" else None)
    assert r["estimate"] == core.estimate and r["tau2"] == core.tau2
    assert r["pi_low"] == core.pi_low and r["pi_high"] == core.pi_high
    assert r["pi_low"] < r["ci_low"] < r["estimate"] < r["ci_high"] < r["pi_high"]
    het = data["heterogeneity"]
    assert het["tau2_method"] == tau2 and het["tau2"] == core.tau2
    assert {"i2", "i2_q", "tau2_ci", "i2_ci", "h2_ci"} <= set(het)
    assert het["tau2_ci"][0] <= het["tau2"] <= het["tau2_ci"][1]


def test_i2_and_i2_q_differ_under_reml_and_agree_under_dl(run, studies_path):
    dl = _json(run, "heterogeneity", str(studies_path))
    reml = _json(run, "heterogeneity", str(studies_path), "--tau2", "REML")
    assert abs(dl["i2"] - dl["i2_q"]) < 1e-9
    assert reml["i2_q"] == dl["i2_q"] and reml["i2"] > reml["i2_q"]


def test_heterogeneity_top_level_intervals_and_table(run, studies_path):
    data = _json(run, "heterogeneity", str(studies_path))
    assert {"tau2_ci", "i2_ci", "h2_ci"} <= set(data)
    # metafor: confint(rma(yi, vi, method = "DL")) on the paper's RR effects (`confint` block).
    from metafor_ref import block
    from tolerances import ITERATIVE, close

    ref = next(
        r
        for r in block("confint")
        if (r["dataset"], r["measure"], r["method"]) == ("ivig", "RR", "DL")
    )
    low, high = ref["I2"][1], ref["I2"][2]
    assert close(data["i2_ci"][0], low, ITERATIVE) and close(data["i2_ci"][1], high, ITERATIVE)
    out = run("heterogeneity", str(studies_path)).stdout
    assert "Q-profile" in out and f"[{low:.1f}%, {high:.1f}%]" in out and "I² (Q-based)" in out
    rows = list(
        csv.DictReader(io.StringIO(run("heterogeneity", str(studies_path), "-f", "csv").stdout))
    )
    assert float(rows[0]["tau2_ci_low"]) == data["tau2_ci"][0]


def test_pool_table_shows_prediction_interval_and_estimator(run, studies_path):
    out = run("pool", str(studies_path), "--tau2", "REML", "--ci", "hk").stdout
    assert "Random effects (REML, hk)" in out and "Prediction interval" in out
    assert "t = " in out


@pytest.mark.parametrize(
    "command, extra",
    [("loo", []), ("subgroup", ["--by", "timing"]), ("bias", []), ("heterogeneity", [])],
)
def test_every_fitting_command_accepts_the_options(run, studies_path, command, extra):
    result = run(command, str(studies_path), *extra, "--tau2", "PM", "--ci", "hk", "--common", "MH")
    assert result.exit_code == 0, result.output


def test_loo_uses_the_chosen_estimator(run, studies_path):
    data = _json(run, "loo", str(studies_path), "--tau2", "SJ", "--ci", "hk")
    assert data["tau2_method"] == "SJ" and data["ci_method"] == "hk"
    assert all(row["tau2_method"] == "SJ" and row["df"] == 6 for row in data["omitted"])


def test_common_mh_and_peto(run, studies_path):
    mh = _json(run, "pool", str(studies_path), "--common", "MH")
    assert mh["common"]["method"] == "MH" and {"q", "q_df", "i2"} <= set(mh["common"])
    peto = _json(run, "pool", str(studies_path), "--common", "peto", "--measure", "OR")
    assert peto["common"]["method"] == "PETO"
    bad = run("pool", str(studies_path), "--common", "PETO")
    assert bad.exit_code == 1
    assert bad.stderr.strip().startswith("Error: Peto's method estimates an odds ratio")


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["metareg", "--mod", "dose"], "no column 'dose'"),
        (
            ["metareg", "--mod", "nk_criterion", "--ref", "maybe"],
            "no moderator (nk_criterion) has this level",
        ),
        (["metareg", "--mod", "study"], "more than 8 studies"),
        (["metareg", "--mod", "year", "--ref", "year=2019"], "continuous moderator"),
        (
            ["metareg", "--mod", "nk_criterion", "--categorical", "year"],
            "not one of the --mod columns",
        ),
    ],
)
def test_bad_options_are_one_line_errors(run, studies_path, args, fragment):
    result = run(args[0], str(studies_path), *args[1:])
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], lines


def test_constant_moderator_is_an_error(run, tmp_path):
    path = tmp_path / "const.csv"
    path.write_text(
        "study,year,treat_events,treat_total,control_events,control_total,arm\n"
        "A,2000,5,10,3,10,x\nB,2001,6,10,2,10,x\nC,2002,4,10,4,10,x\n"
    )
    result = run("metareg", str(path), "--mod", "arm")
    assert result.exit_code == 1 and "constant" in result.stderr


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "markdown"])
def test_metareg_every_format(run, studies_path, fmt):
    result = run("metareg", str(studies_path), "--mod", "nk_criterion", "-f", fmt)
    assert result.exit_code == 0 and result.stdout.strip()
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        assert [r["name"] for r in rows] == ["intercept", "nk_criterion=no"]


def test_metareg_json_contract_and_paper_p(run, studies_path):
    data = _json(run, "metareg", str(studies_path), "--mod", "nk_criterion", "--ref", "no")
    assert {
        "coefficients",
        "qm",
        "qm_df",
        "qm_p_value",
        "qe",
        "qe_df",
        "qe_p_value",
        "tau2",
        "i2",
        "r2",
    } <= set(data)
    assert [c["name"] for c in data["coefficients"]] == ["intercept", "nk_criterion=yes"]
    assert set(data["coefficients"][1]) >= {
        "name",
        "estimate",
        "se",
        "statistic",
        "p_value",
        "ci_low",
        "ci_high",
    }
    assert f"{data['qm_p_value']:.3f}" == "0.266" and data["references"] == {"nk_criterion": "no"}


def test_metareg_hk_reports_f_and_notes_exclusions(run, studies_path):
    result = run("metareg", str(studies_path), "--mod", "timing", "--tau2", "REML", "--ci", "hk")
    assert result.exit_code == 0
    assert "F = " in result.stdout and "df = (1, 5)" in result.stdout
    assert "Jafarzadeh" in result.stderr
    data = _json(
        run, "metareg", str(studies_path), "--mod", "timing", "--ci", "hk", "--ref", "timing=before"
    )
    assert data["qm_df2"] == 5 and data["k"] == 7
    assert [c["name"] for c in data["coefficients"]] == ["intercept", "timing=after"]


def test_metareg_two_moderators(run, studies_path):
    data = _json(run, "metareg", str(studies_path), "--mod", "nk_criterion", "--mod", "year")
    assert [c["name"] for c in data["coefficients"]] == ["intercept", "nk_criterion=no", "year"]
    assert data["qm_df"] == 2 and data["qe_df"] == 5


def test_subgroup_between_separate(run, studies_path):
    data = _json(
        run, "subgroup", str(studies_path), "--by", "nk_criterion", "--between", "separate"
    )
    test = data["by"][0]["test"]
    assert (
        test["method"] == "separate-DL" and test["df"] == 1 and f"{test['p_value']:.3f}" == "0.329"
    )
    hk = _json(
        run, "subgroup", str(studies_path), "--by", "nk_criterion", "--ci", "hk", "--tau2", "REML"
    )
    assert hk["by"][0]["test"]["df2"] == 6 and hk["by"][0]["test"]["method"] == "metareg-REML"
    assert run("subgroup", str(studies_path), "--by", "timing", "--between", "x").exit_code == 2


def test_default_paths_import_no_scipy_pandas_or_matplotlib(studies_path):
    code = (
        "import sys\n"
        "from ivigmeta.cli import cli\n"
        "for args in (['--help'], ['pool', sys.argv[1]], ['pool', sys.argv[1], '-f', 'json'],"
        " ['heterogeneity', sys.argv[1], '-f', 'json']):\n"
        "    try:\n"
        "        cli.main(args=args, prog_name='ivigmeta', standalone_mode=False)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('scipy', 'pandas', 'matplotlib'))\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(studies_path)], capture_output=True, text=True, check=True
    )
    assert "HEAVY []" in proc.stdout, proc.stdout[-500:]
