"""`ivigmeta metareg` beyond the mixed-effects fit: --model common, --predict, --permutations
with --seed, and --plot (the bubble plot). Numbers are tested against metafor in
tests/test_metareg_parity.py; here the CLI must carry them, and refuse bad requests cleanly."""

from __future__ import annotations

import csv
import json
import math
import xml.etree.ElementTree as ET

import pytest
from conftest import ROOT
from metafor_ref import studies as reference_studies

from ivigmeta.core.effects import compute_effects
from ivigmeta.io.studies import load_table
from ivigmeta.methods.metareg import metareg_analysis


@pytest.fixture
def bcg_path():
    """metafor's dat.bcg with metafor's column names (docs/examples/bcg.csv)."""
    return ROOT / "docs" / "examples" / "bcg.csv"


def test_the_example_file_is_metafors_dat_bcg(bcg_path):
    ours = load_table(str(bcg_path)).studies
    ref = reference_studies("bcg")
    assert [(s.treat_events, s.treat_total, s.control_events, s.control_total) for s in ours] == [
        (s.treat_events, s.treat_total, s.control_events, s.control_total) for s in ref
    ]
    assert [(s.fields["ablat"], s.fields["alloc"]) for s in ours] == [
        (s.fields["ablat"], s.fields["alloc"]) for s in ref
    ]
    assert [f"{s.study} {s.year}" for s in ours] == [s.study for s in ref]


def _json(run, *args):
    result = run("metareg", *args, "-f", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_common_model_json(run, bcg_path):
    data = _json(run, str(bcg_path), "--mod", "ablat", "--model", "common")
    assert (data["model"], data["tau2_method"], data["tau2"], data["r2"]) == (
        "common",
        "FE",
        0,
        None,
    )
    assert data["predictions"] == [] and data["permutation"] is None
    assert len(data["vcov"]) == 2 and data["vcov"][0][1] == data["vcov"][1][0]
    assert math.isclose(data["vcov"][1][1], data["coefficients"][1]["se"] ** 2, rel_tol=1e-12)
    table = run("metareg", str(bcg_path), "--mod", "ablat", "--model", "common")
    assert "Fixed-effects (common-effect) meta-regression (RR, z, k = 13)" in table.stdout
    assert "R²" not in table.stdout


def test_predict_json_table_and_csv(run, bcg_path):
    args = (str(bcg_path), "--mod", "ablat", "--predict", "ablat=10", "--predict", "ablat=55")
    data = _json(run, *args)
    es = compute_effects(load_table(str(bcg_path)).studies)
    reg = metareg_analysis(es, ["ablat"], predict=["ablat=10", "ablat=55"])
    assert [p["label"] for p in data["predictions"]] == ["ablat=10", "ablat=55"]
    for ours, p in zip(reg.predictions, data["predictions"]):
        assert p["at"] == dict(ours.at) and p["estimate"] == ours.estimate
        assert p["pi_low"] < p["ci_low"] < p["estimate"] < p["ci_high"] < p["pi_high"]
        assert p["reported"]["estimate"] == math.exp(p["estimate"])
    table = run("metareg", *args)
    assert table.exit_code == 0 and "Predicted effects" in table.stdout
    first = data["predictions"][0]["reported"]
    assert (
        f"{first['estimate']:.2f} [{first['ci_low']:.2f}, {first['ci_high']:.2f}]" in table.stdout
    )
    rows = list(csv.DictReader(run("metareg", *args, "-f", "csv").stdout.splitlines()))
    assert [r["kind"] for r in rows] == ["coefficient", "coefficient", "prediction", "prediction"]
    assert float(rows[2]["estimate"]) == data["predictions"][0]["estimate"]


def test_permutations_exact_and_seeded(run, studies_path, bcg_path):
    exact = _json(run, str(studies_path), "--mod", "nk_criterion", "--permutations", "1000")
    perm = exact["permutation"]
    assert perm["exact"] and perm["seed"] is None and perm["failed"] == 0
    assert [c["name"] for c in perm["coefficients"]] == [c["name"] for c in exact["coefficients"]]
    args = (str(bcg_path), "--mod", "ablat", "--permutations", "100", "--seed", "7")
    one, two = _json(run, *args), _json(run, *args)
    assert one["permutation"] == two["permutation"] and one["permutation"]["seed"] == 7
    assert not one["permutation"]["exact"] and one["permutation"]["iterations"] == 100
    table = run("metareg", *args)
    assert "Permutation p" in table.stdout and "100 random permutations, seed 7" in table.stdout
    csv_rows = list(csv.DictReader(run("metareg", *args, "-f", "csv").stdout.splitlines()))
    assert (
        float(csv_rows[1]["permutation_p_value"])
        == one["permutation"]["coefficients"][1]["p_value"]
    )


def _ids(path):
    return {el.get("id") for el in ET.parse(path).getroot().iter() if el.get("id")}


def test_bubble_plot(run, bcg_path, tmp_path):
    target = tmp_path / "bubble.svg"
    plain = _json(run, str(bcg_path), "--mod", "ablat")
    result = run("metareg", str(bcg_path), "--mod", "ablat", "-f", "json", "--plot", str(target))
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == plain
    assert {
        "regression-line",
        "ci-band",
        "pi-low",
        "pi-high",
        "studies",
        "bubble-note",
        "null",
    } <= _ids(target)
    assert "labels-12" in _ids(target)
    two = tmp_path / "two.svg"
    result = run(
        "metareg", str(bcg_path), "--mod", "ablat", "--mod", "alloc", "--model", "common",
        "--plot", str(two),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    ids = _ids(two)
    assert "regression-line" in ids and "pi-low" not in ids  # common effect: no PI


def test_bubble_plot_data_follow_the_model(bcg_path):
    from ivigmeta.api import metareg_bubble

    es = compute_effects(load_table(str(bcg_path)).studies)
    reg = metareg_analysis(es, ["ablat"], predict=["ablat=13", "ablat=55"])
    b = metareg_bubble(reg)
    assert (b.grid[0], b.grid[-1]) == (13.0, 55.0)
    for p, i in zip(reg.predictions, (0, -1)):
        assert math.isclose(b.line[i], p.estimate, rel_tol=1e-12)
        assert math.isclose(b.ci_low[i], p.ci_low, rel_tol=1e-12)
        assert math.isclose(b.pi_high[i], p.pi_high, rel_tol=1e-12)
    assert b.weights == tuple(1 / (v + reg.tau2) for v in reg.vi)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--predict", "ablat=ten"], "'ablat' is a continuous moderator: 'ten' is not a number"),
        (["--predict", "lat=10"], "'lat' is not a moderator of the model"),
        (["--mod", "alloc", "--predict", "ablat=10"], "missing: alloc"),
        (["--plot-mod", "alloc", "--plot", "PLOT"], "--plot-mod alloc: not a moderator"),
        (["--mod", "alloc", "--plot-mod", "alloc", "--plot", "PLOT"], "a categorical moderator"),
    ],
)
def test_bad_requests_are_one_line_errors(run, bcg_path, tmp_path, extra, message):
    extra = [str(tmp_path / "b.png") if x == "PLOT" else x for x in extra]
    result = run("metareg", str(bcg_path), "--mod", "ablat", *extra)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if not line.startswith("note: ")]
    assert len(errors) == 1 and errors[0].startswith("Error: ") and message in errors[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "b.png").exists()


def test_bubble_needs_a_continuous_moderator(run, studies_path, tmp_path):
    result = run(
        "metareg", str(studies_path), "--mod", "nk_criterion", "--plot", str(tmp_path / "b.svg")
    )
    assert result.exit_code == 1 and "needs a continuous moderator" in result.stderr


@pytest.mark.parametrize(
    "extra", [["--seed", "3"], ["--plot-mod", "ablat"], ["--permutations", "1"]]
)
def test_usage_errors(run, bcg_path, extra):
    result = run("metareg", str(bcg_path), "--mod", "ablat", *extra)
    assert result.exit_code == 2 and "Error:" in result.stderr
