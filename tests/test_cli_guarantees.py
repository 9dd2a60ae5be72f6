"""User-facing guarantees of the command line: option values are checked before any work, an
output never replaces an input, and a failed write is a one-line error that leaves nothing behind."""

from __future__ import annotations

import json
import math
import sys

import pytest

from ivigmeta.cli import main

# Every command taking --level and the model options, with what else it needs to run.
LEVEL_COMMANDS = {
    "pool": [],
    "heterogeneity": [],
    "loo": [],
    "subgroup": ["--by", "nk_criterion"],
    "cumulative": [],
    "influence": [],
    "bias": [],
    "metareg": ["--mod", "year"],
    "batch": ["-g", "nk_criterion"],
    "report": ["-o", "{tmp}/report"],
}
COMMON_COMMANDS = [c for c in LEVEL_COMMANDS if c != "metareg"]  # metareg has no --common


def command_args(command: str, studies_path, tmp_path, *extra: str) -> list[str]:
    rest = [a.format(tmp=tmp_path) for a in LEVEL_COMMANDS[command]]
    return [command, str(studies_path), *rest, *extra]


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """``ivigmeta ARGS`` through the console-script entry point (which turns crashes into the
    'internal error' line): (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["ivigmeta", *args])
    monkeypatch.delenv("IVIGMETA_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main()
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), out, err


def assert_one_line_error(err: str, prefix: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"Error: {prefix}"), lines[0]
    assert "internal error" not in lines[0]
    return lines[0]


# ---------------------------------------------------------------------------------------------
# --level: a percentage strictly between 0 and 100; a fraction is a usage error naming the percent


@pytest.mark.parametrize("command", sorted(LEVEL_COMMANDS))
@pytest.mark.parametrize("value, meant", [("0.9", "90"), ("0.95", "95"), ("0.999", "99.9")])
def test_fraction_level_is_usage_error_naming_the_percent(
    run, studies_path, tmp_path, command, value, meant
):
    result = run(*command_args(command, studies_path, tmp_path, "--level", value))
    assert result.exit_code == 2, result.output
    assert f"did you mean --level {meant}?" in result.stderr
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("command", sorted(LEVEL_COMMANDS))
@pytest.mark.parametrize("value", ["0", "-5", "100", "150", "nan", "inf", "abc"])
def test_level_outside_0_100_is_usage_error(run, studies_path, tmp_path, command, value):
    result = run(*command_args(command, studies_path, tmp_path, "--level", value))
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--level'" in result.stderr


@pytest.mark.parametrize(
    "value, z", [("1", 0.01253346951), ("50", 0.6744897502), ("99.99", 3.890591886)]
)
def test_levels_in_range_are_accepted(run, studies_path, value, z):
    result = run("pool", str(studies_path), "--level", value, "-f", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    random = data["random"]
    # the interval is theta -/+ z se on the log scale: z is qnorm(1/2 + level/200) (R's value)
    half = (math.log(random["ci_high"]) - math.log(random["ci_low"])) / 2
    assert half == pytest.approx(z * random["se"], rel=1e-6)


# ---------------------------------------------------------------------------------------------
# Unknown option values are usage errors: click's message, exit status 2


BAD_VALUES = [
    ("--tau2", "FOO", "'FOO' is not one of 'DL', 'REML', 'ML', 'PM', 'HE', 'SJ'."),
    ("--measure", "HR", "'HR' is not one of 'RR', 'OR', 'RD'."),
    ("--ci", "x", "'x' is not one of 'z', 'hk'."),
    ("--cc-policy", "x", "'x' is not one of 'only0', 'all', 'none'."),
]


@pytest.mark.parametrize("command", sorted(LEVEL_COMMANDS))
@pytest.mark.parametrize("option, value, message", BAD_VALUES)
def test_unknown_option_value_is_usage_error(
    run, studies_path, tmp_path, command, option, value, message
):
    result = run(*command_args(command, studies_path, tmp_path, option, value))
    assert result.exit_code == 2, result.output
    assert f"Error: Invalid value for '{option}': {message}" in result.stderr
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("command", sorted(COMMON_COMMANDS))
def test_unknown_common_method_is_usage_error(run, studies_path, tmp_path, command):
    result = run(*command_args(command, studies_path, tmp_path, "--common", "x"))
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--common': 'x' is not one of 'IV', 'MH', 'PETO'." in result.stderr


@pytest.mark.parametrize(
    "given, canonical",
    [
        (["--tau2", "reml"], ["--tau2", "REML"]),
        (["--measure", "or"], ["--measure", "OR"]),
        (["--ci", "HK"], ["--ci", "hk"]),
        (["--measure", "OR", "--common", "peto"], ["--measure", "OR", "--common", "PETO"]),
        (["--common", "Mh"], ["--common", "MH"]),
    ],
)
def test_option_values_in_either_case_still_work(run, studies_path, given, canonical):
    got = run("pool", str(studies_path), *given, "-f", "json")
    want = run("pool", str(studies_path), *canonical, "-f", "json")
    assert got.exit_code == 0, got.output
    assert got.stdout == want.stdout


def test_batch_accepts_lower_case_tau2(run, studies_path):
    got = run("batch", str(studies_path), "-g", "nk_criterion", "--tau2", "reml")
    want = run("batch", str(studies_path), "-g", "nk_criterion", "--tau2", "REML")
    assert got.exit_code == 0, got.output
    assert got.stdout == want.stdout


def test_reference_keeps_the_documented_metavars(run):
    text = run("pool", "--help").stdout
    for shown in ("--measure RR|OR|RD", "--cc-policy only0|all|none", "--tau2 DL|REML|ML|PM|HE|SJ",
                  "--ci z|hk", "--common IV|MH|PETO", "--level FLOAT"):  # fmt: skip
        assert shown in text
