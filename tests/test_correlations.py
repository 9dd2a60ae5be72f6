"""Correlations (ZCOR, COR, UCOR) and one group's means (MN, MNLN) at the CLI: read in
metafor's and meta's naming, pooled as metafor pools them (tests/reference/metafor_outcomes.json,
written by make_reference_outcomes.R), shown back-transformed, bad rows one-line errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import assert_row_error, pool_json
from conftest import write_columns as _write

from ivigmeta.io.outcome_columns import detect_outcome
from tests.tolerances import ITERATIVE

REF = json.loads((Path(__file__).parent / "reference" / "metafor_outcomes.json").read_text())
RECORDS = {(r["name"], r["measure"]): r for r in REF["records"]}
BACK = {r["measure"]: r for r in REF["backtransformed"]}


def _molloy(tmp_path, naming: str) -> str:
    d = RECORDS[("molloy2014", "ZCOR")]["data"]
    r, n = ("ri", "ni") if naming == "metafor" else ("cor", "n")
    return _write(tmp_path, f"molloy_{naming}.csv", {r: d["ri"], n: d["ni"]})


def _normand(tmp_path, naming: str) -> str:
    d = RECORDS[("normand1999_arm1", "MN")]["data"]
    names = ("mi", "sdi", "ni") if naming == "metafor" else ("mean", "sd", "n")
    return _write(
        tmp_path, f"normand_{naming}.csv", dict(zip(names, (d[k] for k in ("mi", "sdi", "ni"))))
    )


def _pool_json(run, path: str, *args: str) -> dict:
    return pool_json(run, path, "--tau2", "REML", *args)


@pytest.mark.parametrize("naming", ["metafor", "meta"])
@pytest.mark.parametrize("measure", ["ZCOR", "COR", "UCOR"])
def test_pool_of_correlations_is_metafors_predict(run, tmp_path, naming, measure):
    args = () if measure == "ZCOR" else ("--measure", measure)  # ZCOR is the default
    got = _pool_json(run, _molloy(tmp_path, naming), *args)
    ref = BACK[measure]
    assert got["measure"] == measure and got["k"] == 16 and got["excluded"] == []
    random = got["random"]
    for key, mine in {
        "pred": "estimate",
        "ci_lb": "ci_low",
        "ci_ub": "ci_high",
        "pi_lb": "pi_low",
        "pi_ub": "pi_high",
    }.items():
        assert random[mine] == pytest.approx(ref[key], rel=ITERATIVE, abs=1e-12), key
    study = got["studies"][0]
    assert study["source"] == "correlation" and study["cor"] == 0.187 and study["n"] == 109
    if measure == "ZCOR":
        # the study's own estimate, back-transformed, is its correlation again
        assert study["estimate"] == pytest.approx(0.187, rel=1e-12)


@pytest.mark.parametrize("naming", ["metafor", "meta"])
@pytest.mark.parametrize("measure", ["MN", "MNLN"])
def test_pool_of_one_groups_means_is_metafors_predict(run, tmp_path, naming, measure):
    args = () if measure == "MN" else ("--measure", measure)
    got = _pool_json(run, _normand(tmp_path, naming), *args)
    ref = BACK[measure]
    assert got["measure"] == measure and got["k"] == 9
    assert got["random"]["estimate"] == pytest.approx(ref["pred"], rel=ITERATIVE)
    assert got["random"]["ci_low"] == pytest.approx(ref["ci_lb"], rel=ITERATIVE)
    assert got["random"]["pi_high"] == pytest.approx(ref["pi_ub"], rel=ITERATIVE)
    assert got["studies"][0]["source"] == "mean"


def test_the_table_shows_the_pooled_correlation(run, tmp_path):
    out = run("pool", _molloy(tmp_path, "metafor"), "--tau2", "REML")
    assert out.exit_code == 0, out.stderr
    ref = BACK["ZCOR"]
    assert "Correlation (ZCOR)" in out.stdout
    shown = f"{ref['pred']:.3f} [{ref['ci_lb']:.3f}, {ref['ci_ub']:.3f}]"
    line = next(x for x in out.stdout.splitlines() if x.startswith("Random effects"))
    assert shown in line
    assert "metafor's correlations and sample sizes (ri, ni)" in out.stderr


def test_the_table_shows_the_pooled_mean_on_its_scale(run, tmp_path):
    out = run("pool", _normand(tmp_path, "meta"), "--tau2", "REML", "--measure", "MNLN")
    assert out.exit_code == 0, out.stderr
    ref = BACK["MNLN"]
    line = next(x for x in out.stdout.splitlines() if x.startswith("Random effects"))
    assert f"{ref['pred']:.2f} [{ref['ci_lb']:.2f}, {ref['ci_ub']:.2f}]" in line
    assert "Mean (MNLN)" in out.stdout


def test_a_measure_that_does_not_fit_correlations_names_both(run, tmp_path):
    out = run("pool", _molloy(tmp_path, "meta"), "--measure", "MN")
    assert out.exit_code == 1
    assert "--measure MN does not fit the columns" in out.stderr
    assert "correlation data" in out.stderr and "ZCOR, COR, UCOR" in out.stderr


@pytest.mark.parametrize(
    ("header", "row", "message"),
    [
        ("ri,ni", "1.2,40", r"row 3, column 'ri': '1.2' is not a correlation"),
        ("cor,n", "-1.01,40", r"row 3, column 'cor': '-1.01' is not a correlation"),
        ("ri,ni", "0.2,3", r"row 3, column 'ni': '3' is not allowed \(.*n > 3\)"),
        ("cor,n", "0.2,", r"row 3, column 'n': missing value"),
        ("mi,sdi,ni", "5,0,20", r"row 3, column 'sdi': '0' is not allowed"),
        ("mean,sd,n", "5,1,1", r"row 3, column 'n': '1' is not allowed"),
    ],
)
def test_bad_rows_are_one_line_errors(run, tmp_path, header, row, message):

    first = {"ri,ni": "0.3,50", "cor,n": "0.3,50"}.get(header, "5,1.5,30")
    path = tmp_path / "bad.csv"
    path.write_text(f"study,{header}\nA,{first}\nB,{row}\nC,{first}\n")
    out = run("pool", str(path))
    assert_row_error(out, path, 3, message)


def test_undefined_effects_are_excluded_with_the_reason(run, tmp_path):
    path = _write(tmp_path, "edge.csv", {"ri": [0.3, 1.0, 0.2, 0.5], "ni": [50, 40, 4, 30]})
    zcor = _pool_json(run, path)
    assert [(e["row"], e["study"]) for e in zcor["excluded"]] == [(3, "s2")]
    assert "ZCOR is infinite" in zcor["excluded"][0]["reason"]
    ucor = _pool_json(run, path, "--measure", "UCOR")
    reasons = {e["row"]: e["reason"] for e in ucor["excluded"]}
    assert set(reasons) == {3, 4} and "n > 4" in reasons[4]
    means = _write(tmp_path, "neg.csv", {"mi": [5, -2, 7], "sdi": [1, 1, 2], "ni": [10, 12, 14]})
    mnln = _pool_json(run, means, "--measure", "MNLN")
    assert [e["row"] for e in mnln["excluded"]] == [3]
    assert "positive mean" in mnln["excluded"][0]["reason"]


def test_columns_names_a_correlation_table(run, tmp_path):
    d = RECORDS[("molloy2014", "ZCOR")]["data"]
    path = _write(tmp_path, "own.csv", {"R": d["ri"], "N": d["ni"]})
    got = _pool_json(run, path, "--columns", "cor=R,n=N")
    assert got["measure"] == "ZCOR"
    assert got["random"]["estimate"] == pytest.approx(BACK["ZCOR"]["pred"], rel=ITERATIVE)


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        (["study", "cor", "n"], "correlation"),
        (["study", "ri", "ni"], "correlation"),
        (["study", "mean", "sd", "n"], "mean"),
        (["study", "mi", "sdi", "ni"], "mean"),
        # the kinds before decide when their columns are all there
        (["study", "event", "n", "cor"], "proportion"),
        (["study", "xi", "ni", "ri"], "proportion"),
        (["study", "events", "total", "mean", "sd", "n"], "proportion"),
        (["study", "m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i", "mi", "sdi", "ni"], "continuous"),
        (["study", "cor", "n", "mean", "sd"], "correlation"),
    ],
)
def test_the_first_kind_whose_columns_are_all_there_decides(header, kind):
    found = detect_outcome(header)
    assert found is not None and found[0] == kind


def test_batch_pools_correlations_as_pool(run, tmp_path):
    """batch's groups against pool of each group's own file (and metafor for the whole set)."""
    d = RECORDS[("molloy2014", "ZCOR")]["data"]
    groups = ["a" if i < 8 else "b" for i in range(len(d["ri"]))]
    long = _write(tmp_path, "long.csv", {"g": groups, "ri": d["ri"], "ni": d["ni"]})
    whole = _write(
        tmp_path, "whole.csv", {"g": ["all"] * len(groups), "ri": d["ri"], "ni": d["ni"]}
    )
    out = run("batch", long, "-g", "g", "--tau2", "REML", "--format", "csv")
    assert out.exit_code == 0, out.stderr
    frame = pd.read_csv(io.StringIO(out.stdout)).set_index("g")
    for name in ("a", "b"):
        rows = [i for i, g in enumerate(groups) if g == name]
        own = _write(
            tmp_path,
            f"{name}.csv",
            {"ri": [d["ri"][i] for i in rows], "ni": [d["ni"][i] for i in rows]},
        )
        ref = _pool_json(run, own)["random"]
        assert frame.loc[name, "random_estimate"] == pytest.approx(ref["estimate"], rel=1e-12)
        assert frame.loc[name, "random_ci_low"] == pytest.approx(ref["ci_low"], rel=1e-12)
        assert frame.loc[name, "tau2"] == pytest.approx(ref["tau2"], rel=1e-12)
    out = run("batch", whole, "-g", "g", "--tau2", "REML", "--format", "csv")
    row = pd.read_csv(io.StringIO(out.stdout)).iloc[0]
    assert row["random_estimate"] == pytest.approx(BACK["ZCOR"]["pred"], rel=ITERATIVE)
    assert row["random_pi_high"] == pytest.approx(BACK["ZCOR"]["pi_ub"], rel=ITERATIVE)


def test_batch_fails_the_group_of_a_bad_correlation_with_pools_message(run, tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("g,study,cor,n\nx,A,0.3,50\nx,B,1.2,40\ny,C,0.1,30\ny,D,0.5,20\n")
    out = run("batch", str(path), "-g", "g", "--format", "csv")
    assert out.exit_code == 0, out.stderr
    frame = pd.read_csv(io.StringIO(out.stdout)).set_index("g")
    assert frame.loc["x", "status"] == "error"
    assert frame.loc["x", "reason"] == (
        f"{path}, row 3, column 'cor': '1.2' is not a correlation (expected a value between -1 "
        "and 1)"
    )
    assert frame.loc["y", "status"] == "ok" and frame.loc["y", "k"] == 2
