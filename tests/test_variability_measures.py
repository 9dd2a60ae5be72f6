"""Variability and point-biserial measures at the CLI: two groups' means and SDs as CVR, VR
(Nakagawa et al. 2015), RPB and RBIS (Jacobs & Viechtbauer 2017), one group's means as CVLN and
SDLN; pooled as metafor pools them (tests/reference/metafor_outcomes.json, written by
make_reference_outcomes.R), shown back-transformed, undefined rows excluded with the reason,
bad rows one-line errors, batch = pool."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import assert_row_error
from conftest import pool_json as _pool_json
from conftest import write_columns as _write

from tests.tolerances import CLOSED_FORM, ITERATIVE

REF = json.loads((Path(__file__).parent / "reference" / "metafor_outcomes.json").read_text())
RECORDS = {(r["name"], r["measure"]): r for r in REF["records"]}
BACK = {r["measure"]: r for r in REF["backtransformed"]}

TWO_METAFOR = ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")
TWO_IVIGMETA = ("treat_mean", "treat_sd", "treat_n", "control_mean", "control_sd", "control_n")
ONE_METAFOR = ("mi", "sdi", "ni")
ONE_IVIGMETA = ("mean", "sd", "n")


def _normand(tmp_path, naming: str) -> str:
    d = RECORDS[("normand1999", "CVR")]["data"]
    names = TWO_METAFOR if naming == "metafor" else TWO_IVIGMETA
    return _write(tmp_path, f"normand_{naming}.csv", dict(zip(names, (d[k] for k in TWO_METAFOR))))


def _arm1(tmp_path, naming: str) -> str:
    d = RECORDS[("normand1999_arm1", "CVLN")]["data"]
    names = ONE_METAFOR if naming == "metafor" else ONE_IVIGMETA
    return _write(tmp_path, f"arm1_{naming}.csv", dict(zip(names, (d[k] for k in ONE_METAFOR))))


BACK_KEYS = {
    "pred": "estimate",
    "ci_lb": "ci_low",
    "ci_ub": "ci_high",
    "pi_lb": "pi_low",
    "pi_ub": "pi_high",
}


@pytest.mark.parametrize("naming", ["metafor", "ivigmeta"])
@pytest.mark.parametrize("measure", ["CVR", "VR", "RPB", "RBIS"])
@pytest.mark.parametrize("tau2", ["DL", "REML"])
def test_pool_of_two_groups_variability_is_metafors_rma(run, tmp_path, naming, measure, tau2):
    rec = RECORDS[("normand1999", measure)]
    ref = next(f for f in rec["fits"] if f["method"] == tau2 and f["test"] == "z")
    got = _pool_json(run, _normand(tmp_path, naming), "--measure", measure, "--tau2", tau2)
    assert got["measure"] == measure and got["k"] == 9 and got["excluded"] == []
    tol = CLOSED_FORM if tau2 == "DL" else ITERATIVE
    random = got["random"]
    for key, mine in {"estimate": "theta", "se": "se"}.items():
        assert random[mine] == pytest.approx(ref[key], rel=tol), key
    assert random["tau2"] == pytest.approx(ref["tau2"], rel=tol, abs=1e-12)
    assert [s["yi"] for s in got["studies"]] == pytest.approx(rec["yi"], rel=CLOSED_FORM)
    assert [s["vi"] for s in got["studies"]] == pytest.approx(rec["vi"], rel=CLOSED_FORM)


@pytest.mark.parametrize("measure", ["CVR", "VR", "RPB", "RBIS"])
def test_two_groups_variability_is_reported_as_predict(run, tmp_path, measure):
    """CVR and VR as ratios (predict with exp), RPB and RBIS as they are."""
    got = _pool_json(run, _normand(tmp_path, "ivigmeta"), "--measure", measure, "--tau2", "REML")
    random = got["random"]
    for key, mine in BACK_KEYS.items():
        assert random[mine] == pytest.approx(BACK[measure][key], rel=ITERATIVE), key
    if measure in ("RPB", "RBIS"):
        assert random["estimate"] == random["theta"]
    else:
        assert random["estimate"] != random["theta"]


@pytest.mark.parametrize("naming", ["metafor", "ivigmeta"])
@pytest.mark.parametrize("measure", ["CVLN", "SDLN"])
def test_one_groups_variability_is_metafors_predict(run, tmp_path, naming, measure):
    got = _pool_json(run, _arm1(tmp_path, naming), "--measure", measure, "--tau2", "REML")
    assert got["measure"] == measure and got["k"] == 9 and got["excluded"] == []
    rec = RECORDS[("normand1999_arm1", measure)]
    assert [s["yi"] for s in got["studies"]] == pytest.approx(rec["yi"], rel=CLOSED_FORM)
    ref = next(f for f in rec["fits"] if f["method"] == "REML" and f["test"] == "z")
    assert got["random"]["theta"] == pytest.approx(ref["estimate"], rel=ITERATIVE)
    for key, mine in BACK_KEYS.items():
        assert got["random"][mine] == pytest.approx(BACK[measure][key], rel=ITERATIVE), key


def test_the_tables_show_the_scale_of_each_measure(run, tmp_path):
    path = _normand(tmp_path, "metafor")
    for measure, header, d in (("CVR", "CVR [95% CI]", 2), ("RPB", "Correlation (RPB)", 3)):
        out = run("pool", path, "--measure", measure, "--tau2", "REML")
        assert out.exit_code == 0, out.stderr
        assert header in out.stdout
        ref = BACK[measure]
        line = next(x for x in out.stdout.splitlines() if x.startswith("Random effects"))
        assert f"{ref['pred']:.{d}f} [{ref['ci_lb']:.{d}f}, {ref['ci_ub']:.{d}f}]" in line
    out = run("pool", _arm1(tmp_path, "metafor"), "--measure", "SDLN", "--tau2", "REML")
    assert out.exit_code == 0, out.stderr
    assert "SD (SDLN)" in " ".join(out.stdout.split())


def test_a_mean_at_or_below_zero_is_excluded_from_cvr_and_cvln_only(run, tmp_path):
    two = _write(
        tmp_path,
        "two.csv",
        dict(
            zip(
                TWO_METAFOR,
                zip(*[(10, 2, 20, 8, 2.5, 22), (-3, 2, 15, 4, 1, 16), (12, 3, 30, 9, 2, 28)]),
            )
        ),
    )
    cvr = _pool_json(run, two, "--measure", "CVR")
    assert [e["row"] for e in cvr["excluded"]] == [3] and cvr["k"] == 2
    assert "CVR undefined" in cvr["excluded"][0]["reason"]
    assert "positive means" in cvr["excluded"][0]["reason"]
    for measure in ("VR", "RPB", "RBIS", "MD"):
        assert _pool_json(run, two, "--measure", measure)["excluded"] == [], measure
    one = _write(tmp_path, "one.csv", {"mi": [10, 0, 12], "sdi": [2, 1, 3], "ni": [20, 15, 30]})
    cvln = _pool_json(run, one, "--measure", "CVLN")
    assert [e["row"] for e in cvln["excluded"]] == [3]
    assert "CVLN undefined" in cvln["excluded"][0]["reason"]
    assert _pool_json(run, one, "--measure", "SDLN")["excluded"] == []


@pytest.mark.parametrize(
    ("header", "row", "measure", "message"),
    [
        (TWO_METAFOR, "10,2,20,8,0,22", "VR", r"column 'sd2i': '0' is not allowed"),
        (TWO_IVIGMETA, "10,2,1,8,2,22", "RPB", r"column 'treat_n': '1' is not allowed"),
        (TWO_METAFOR, "10,x,20,8,2,22", "CVR", r"column 'sd1i': 'x' is not a number"),
        (ONE_METAFOR, "10,-1,20", "SDLN", r"column 'sdi': '-1' is not allowed"),
        (ONE_IVIGMETA, "10,2,", "CVLN", r"column 'n': missing value"),
    ],
)
def test_bad_rows_are_one_line_errors(run, tmp_path, header, row, measure, message):
    ok = "10,2,20,8,2.5,22" if len(header) == 6 else "10,2,20"
    path = tmp_path / "bad.csv"
    path.write_text(f"study,{','.join(header)}\nA,{ok}\nB,{row}\nC,{ok}\n")
    out = run("pool", str(path), "--measure", measure)
    assert_row_error(out, path, 3, message)


def test_a_measure_of_the_other_kind_names_both(run, tmp_path):
    out = run("pool", _arm1(tmp_path, "ivigmeta"), "--measure", "CVR")
    assert out.exit_code == 1 and "Traceback" not in out.stderr
    assert "--measure CVR does not fit the columns" in out.stderr
    assert "MN, MNLN, CVLN, SDLN" in out.stderr


@pytest.mark.parametrize(
    ("measure", "one_group"), [("CVR", False), ("RBIS", False), ("CVLN", True), ("SDLN", True)]
)
def test_batch_pools_the_variability_measures_as_pool(run, tmp_path, measure, one_group):
    key = ("normand1999_arm1", "CVLN") if one_group else ("normand1999", "CVR")
    d = RECORDS[key]["data"]
    groups = ["a"] * 5 + ["b"] * 4
    long = _write(tmp_path, "long.csv", {"g": groups, **d})
    out = run("batch", long, "-g", "g", "--measure", measure, "--tau2", "REML", "--format", "csv")
    assert out.exit_code == 0, out.stderr
    frame = pd.read_csv(io.StringIO(out.stdout)).set_index("g")
    for name in ("a", "b"):
        rows = [i for i, g in enumerate(groups) if g == name]
        own = _write(tmp_path, f"{name}.csv", {k: [v[i] for i in rows] for k, v in d.items()})
        ref = _pool_json(run, own, "--measure", measure, "--tau2", "REML")["random"]
        assert frame.loc[name, "random_estimate"] == pytest.approx(ref["estimate"], rel=1e-12)
        assert frame.loc[name, "random_ci_low"] == pytest.approx(ref["ci_low"], rel=1e-12)
        assert frame.loc[name, "tau2"] == pytest.approx(ref["tau2"], rel=1e-12, abs=1e-15)
