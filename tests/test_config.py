"""Settings once: ivigmeta.toml, [tool.ivigmeta] in pyproject.toml, --config FILE and IVIGMETA_*
environment variables set option defaults; the command line wins; `ivigmeta config` says where
each value came from; bad settings are one-line errors naming their source."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

STUDIES = (ROOT / "studies.csv").read_text()


def ivigmeta(tmp_path, *args, env=None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("IVIGMETA_")}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ivigmeta", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environ,
    )


@pytest.fixture
def here(tmp_path):
    (tmp_path / "studies.csv").write_text(STUDIES)
    return tmp_path


def random_of(result) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["random"]


def test_file_env_and_command_line_precedence(here):
    (here / "ivigmeta.toml").write_text('tau2 = "REML"\n[pool]\nci = "hk"\n')
    got = random_of(ivigmeta(here, "pool", "-f", "json"))
    assert (got["tau2_method"], got["ci_method"]) == ("REML", "hk")
    env = random_of(ivigmeta(here, "pool", "-f", "json", env={"IVIGMETA_TAU2": "PM"}))
    assert env["tau2_method"] == "PM" and env["ci_method"] == "hk"
    cli = random_of(
        ivigmeta(here, "pool", "-f", "json", "--tau2", "SJ", env={"IVIGMETA_TAU2": "PM"})
    )
    assert cli["tau2_method"] == "SJ"
    # the [pool] table is pool's alone
    shown = json.loads(ivigmeta(here, "config", "loo", "-f", "json").stdout)["settings"]
    by = {s["option"]: s for s in shown}
    assert (by["ci"]["value"], by["ci"]["source"]) == ("z", "default")
    assert (by["tau2"]["value"], by["tau2"]["source"]) == ("REML", "ivigmeta.toml")


def test_pyproject_table_and_explicit_config(here):
    (here / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.ivigmeta]\ntau2 = "ML"\n')
    assert random_of(ivigmeta(here, "pool", "-f", "json"))["tau2_method"] == "ML"
    (here / "other.toml").write_text('tau2 = "HE"\n')
    got = random_of(ivigmeta(here, "--config", "other.toml", "pool", "-f", "json"))
    assert got["tau2_method"] == "HE"
    # ivigmeta.toml is preferred to pyproject.toml
    (here / "ivigmeta.toml").write_text('tau2 = "SJ"\n')
    assert random_of(ivigmeta(here, "pool", "-f", "json"))["tau2_method"] == "SJ"


def test_columns_from_a_settings_file_reach_pool_and_batch(tmp_path):
    (tmp_path / "own.csv").write_text("g,study,EvT,NT,EvC,NC\nA,a,3,20,6,21\nA,b,5,30,9,28\n")
    (tmp_path / "ivigmeta.toml").write_text(
        'columns = "treat_events=EvT,treat_total=NT,control_events=EvC,control_total=NC"\n'
    )
    pooled = random_of(ivigmeta(tmp_path, "pool", "own.csv", "-f", "json"))
    batch = ivigmeta(tmp_path, "batch", "own.csv", "-g", "g")
    assert batch.returncode == 0, batch.stderr
    row = dict(zip(*(line.split(",") for line in batch.stdout.splitlines()[:2])))
    assert float(row["random_theta"]) == pytest.approx(pooled["theta"], rel=1e-12)


@pytest.mark.parametrize(
    "toml, env, message",
    [
        (
            'tua2 = "REML"\n',
            {},
            "ivigmeta.toml: 'tua2' is not an ivigmeta option (did you mean 'tau2'?)",
        ),
        (
            '[pool]\nmeasure = "XX"\n',
            {},
            "ivigmeta.toml [pool]: measure = 'XX': 'XX' is not one of",
        ),
        ("[pol]\ntau2 = 1\n", {}, "ivigmeta.toml: [pol] is not a command"),
        ("tau2 = \n", {}, "ivigmeta.toml: not valid TOML"),
        (
            None,
            {"IVIGMETA_LEVEL": "abc"},
            "IVIGMETA_LEVEL: level = 'abc': 'abc' is not a valid float",
        ),
    ],
)
def test_bad_settings_are_one_line_errors(here, toml, env, message):
    if toml is not None:
        (here / "ivigmeta.toml").write_text(toml)
    result = ivigmeta(here, "pool", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_config_command_says_where_each_value_came_from(here):
    (here / "ivigmeta.toml").write_text('tau2 = "REML"\nlabels = ["Favours A", "Favours B"]\n')
    result = ivigmeta(here, "config", "pool", "-f", "json", env={"IVIGMETA_CC_POLICY": "all"})
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    by = {s["option"]: s for s in data["settings"]}
    assert data["settings_file"] == "ivigmeta.toml"
    assert (by["tau2"]["value"], by["tau2"]["source"]) == ("REML", "ivigmeta.toml")
    assert (by["cc_policy"]["value"], by["cc_policy"]["source"]) == ("all", "IVIGMETA_CC_POLICY")
    assert by["labels"]["value"] == "Favours A,Favours B"
    assert by["level"]["source"] == "default"
    text = ivigmeta(here, "config").stdout
    assert "tau2" in text and "ivigmeta.toml" in text
