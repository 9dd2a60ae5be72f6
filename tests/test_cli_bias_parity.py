"""CLI plumbing of issue 17 items 6 and 7: pool's CMH / Tarone keys and lines, loo and cumulative
--model common, bias --predictor / --regtest-model / --failsafe orwin-weighted, and the
one-line errors. The numbers are tested against metafor in tests/test_bias_parity.py."""

from __future__ import annotations

import json

import pytest

HACKSHAW_LIKE = (
    "study,year,yi,vi\nA,1981,0.17,0.019\nB,1984,0.37,0.033\nC,1988,0.70,0.54\nD,1990,0.1,0.05\n"
)


def _json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_pool_mh_or_json_has_cmh_and_tarone(run, studies_path):
    data = _json(
        run("pool", str(studies_path), "--measure", "OR", "--common", "MH", "--format", "json")
    )
    common = data["common"]
    assert set(common["cmh"]) == {"statistic", "df", "p_value"} and common["cmh"]["df"] == 1
    assert common["tarone"]["df"] == 7 and common["breslow_day"]["df"] == 7
    assert common["cochran"]["statistic"] > common["cmh"]["statistic"]
    # the keys that were there stay, in their places
    kept = [
        "method", "theta", "se", "statistic", "estimate", "ci_low", "ci_high", "p_value",
        "q", "q_df", "q_p_value", "i2", "h2", "k_yi", "cmh",
    ]  # fmt: skip
    assert [k for k in common if k in kept] == kept  # (ci_method was added after method)


def test_pool_mh_or_table_shows_the_tests(run, studies_path):
    result = run("pool", str(studies_path), "--measure", "OR", "--common", "MH", "--ascii")
    assert result.exit_code == 0
    assert (
        "Cochran-Mantel-Haenszel test (OR = 1, continuity-corrected): chi² = 122.00"
        in result.stdout
    )
    assert (
        "Tarone's test for heterogeneity of the odds ratios: chi² = 19.15, df = 7" in result.stdout
    )


@pytest.mark.parametrize("common", ["IV", "PETO"])
def test_pool_without_mh_or_has_no_cmh_keys(run, studies_path, common):
    data = _json(
        run("pool", str(studies_path), "--measure", "OR", "--common", common, "--format", "json")
    )
    assert "cmh" not in data["common"] and "tarone" not in data["common"]


def test_pool_mh_rr_notes_that_cmh_is_for_odds_ratios(run, studies_path):
    result = run("pool", str(studies_path), "--common", "MH", "--format", "json")
    assert result.exit_code == 0
    assert "cmh" not in json.loads(result.stdout)["common"]
    assert "Cochran-Mantel-Haenszel and Tarone tests are for odds ratios" in result.stderr
    assert "use --measure OR" in result.stderr


@pytest.mark.parametrize("command", ["loo", "cumulative"])
def test_model_common_reports_the_common_refits(run, studies_path, command):
    args = (command, str(studies_path), "--measure", "OR", "--common", "PETO", "--model", "common")
    data = _json(run(*args, "--format", "json"))
    assert data["model"] == "common" and data["common_method"] == "PETO"
    rows = data["omitted" if command == "loo" else "steps"]
    assert all("tau2" not in r for r in rows)
    table = run(*args, "--ascii")
    assert "(common effect, PETO)" in table.stdout and "tau²" not in table.stdout


@pytest.mark.parametrize("command", ["loo", "cumulative"])
def test_model_random_is_the_default(run, studies_path, command):
    default = _json(run(command, str(studies_path), "--format", "json"))
    explicit = _json(run(command, str(studies_path), "--model", "random", "--format", "json"))
    assert default == explicit and "model" not in default


def test_model_common_with_glmm_is_one_line_error(run, studies_path):
    result = run(
        "loo", str(studies_path), "--glmm", "UM.FS", "--model", "common", "--measure", "OR"
    )
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: --model common") and "Traceback" not in result.output


def test_bias_default_output_has_no_regtest(run, studies_path):
    data = _json(run("bias", str(studies_path), "--format", "json"))
    assert "regtest" not in data and "regtest" not in data["tests"]
    assert set(data["egger"]) == {"intercept", "se", "t", "df", "p_value", "slope", "slope_se", "k"}


def test_bias_predictor_implies_regtest(run, studies_path):
    data = _json(run("bias", str(studies_path), "--predictor", "ni", "--format", "json"))
    assert data["tests"][:2] == ["egger", "regtest"]
    reg = data["regtest"]
    assert reg["model"] == "rma" and reg["predictor"] == "ni" and reg["limit_theta"] is None
    lm = _json(
        run(
            "bias",
            str(studies_path),
            "--test",
            "regtest",
            "--regtest-model",
            "lm",
            "--format",
            "json",
        )
    )
    assert (
        lm["tests"] == ["regtest"]
        and lm["regtest"]["distribution"] == "t"
        and lm["regtest"]["df"] == 6
    )
    assert (
        lm["regtest"]["limit_ci_low"]
        < lm["regtest"]["limit_estimate"]
        < lm["regtest"]["limit_ci_high"]
    )


def test_bias_table_shows_the_limit_estimate(run, studies_path):
    result = run("bias", str(studies_path), "--test", "regtest", "--ascii")
    assert result.exit_code == 0
    assert "Regression test (regtest)" in result.stdout and "limit estimate RR" in result.stdout


def test_predictor_ni_without_sample_sizes_is_one_line_error(run, tmp_path):
    path = tmp_path / "effects.csv"
    path.write_text(HACKSHAW_LIKE)
    result = run("bias", str(path), "--measure", "OR", "--predictor", "ni")
    assert result.exit_code == 1
    errors = [ln for ln in result.stderr.strip().splitlines() if not ln.startswith("note: ")]
    assert len(errors) == 1
    assert errors[0].startswith("Error: --predictor ni needs each study's sample size")
    assert errors[0].endswith("A (row 2) and 3 more give only an effect")
    ok = run("bias", str(path), "--measure", "OR", "--predictor", "vi", "--format", "json")
    assert ok.exit_code == 0


def test_bias_csv_names_the_regtest_row(run, studies_path):
    result = run("bias", str(studies_path), "--test", "regtest", "--format", "csv")
    assert result.exit_code == 0
    header, row = result.stdout.splitlines()[:2]
    assert header.startswith("test,") and row.startswith("regtest,rma,sei,z,")


def test_unknown_predictor_is_usage_error(run, studies_path):
    result = run("bias", str(studies_path), "--predictor", "n")
    assert result.exit_code == 2


def test_failsafe_orwin_weighted(run, studies_path):
    data = _json(
        run(
            "bias",
            str(studies_path),
            "--test",
            "failsafe",
            "--failsafe",
            "orwin-weighted",
            "--format",
            "json",
        )
    )
    fs = data["failsafe"]
    assert fs["method"] == "Orwin" and fs["weighted"] is True
    plain = _json(
        run(
            "bias",
            str(studies_path),
            "--test",
            "failsafe",
            "--failsafe",
            "orwin",
            "--format",
            "json",
        )
    )["failsafe"]
    assert "weighted" not in plain and plain["mean_theta"] != fs["mean_theta"]
