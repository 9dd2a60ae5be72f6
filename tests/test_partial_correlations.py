"""Partial correlations (PCOR, ZPCOR) from a regression's t statistic, sample size and number
of other predictors, and semi-partial ones (SPCOR) with the model's R² as well: the engine and
the CLI against metafor (escalc and rma on dat.aloe2013,
tests/reference/metafor_outcomes.json, written by make_reference_outcomes.R), ZPCOR shown
back-transformed, bad rows one-line errors, batch as pool."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import assert_row_error
from conftest import pool_json as _pool_json

from ivigmeta.core import measures
from ivigmeta.core.effects import data_effects
from ivigmeta.io.outcome_columns import detect_outcome
from tests.tolerances import CLOSED_FORM, ITERATIVE, METAFOR_STOP_TAU2_ABS

REF = json.loads((Path(__file__).parent / "reference" / "metafor_outcomes.json").read_text())
RECORDS = {(r["name"], r["measure"]): r for r in REF["records"]}
BACK = {r["measure"]: r for r in REF["backtransformed"]}
MEASURES = ("PCOR", "ZPCOR", "SPCOR")
#: ivigmeta's names of metafor's ti, ni, mi, r2i
OURS = {"ti": "t", "ni": "n", "mi": "predictors", "r2i": "r2"}


def _aloe(tmp_path, naming: str, measure: str = "ZPCOR", group: str | None = None) -> str:
    d = RECORDS[("aloe2013", measure)]["data"]
    k = len(d["ti"])
    frame = pd.DataFrame({"study": [f"s{i + 1}" for i in range(k)]})
    if group is not None:
        frame["g"] = [group] * k
    for col in d:  # ti, ni, mi (and r2i for SPCOR)
        frame[col if naming == "metafor" else OURS[col]] = d[col]
    path = tmp_path / f"aloe_{naming}_{measure}_{group}.csv"
    frame.to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize("measure", MEASURES)
def test_engine_yi_vi_are_escalcs(measure):
    rec = RECORDS[("aloe2013", measure)]
    d = rec["data"]
    kind = "partial_r2" if "r2i" in d else "partial"
    cols = np.column_stack([d[c] for c in ("ti", "ni", "mi", "r2i") if c in d])
    fx = data_effects(kind, cols, measure)
    assert fx.ok.all()
    np.testing.assert_allclose(fx.yi, rec["yi"], rtol=CLOSED_FORM, atol=1e-15)
    np.testing.assert_allclose(fx.vi, rec["vi"], rtol=CLOSED_FORM, atol=1e-15)


def test_engine_has_no_variance_without_degrees_of_freedom():
    yi, vi = measures.partial_effects(
        np.array([2.0, 2.0]), np.array([10.0, 5.0]), np.array([9.0, 3.0]), "PCOR"
    )
    assert np.isnan(yi[0]) and np.isnan(vi[0])  # n - m - 1 = 0
    assert yi[1] == pytest.approx(2 / np.sqrt(5)) and vi[1] == pytest.approx((1 - 4 / 5) ** 2)


@pytest.mark.parametrize("naming", ["metafor", "ivigmeta"])
@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("tau2", ["DL", "REML"])
def test_pool_is_metafors_rma(tmp_path, naming, measure, tau2):
    """Reader (either naming), effects and fit against rma(method = DL / REML, test = "z")."""
    from ivigmeta.api import pool

    ref = next(
        f
        for f in RECORDS[("aloe2013", measure)]["fits"]
        if f["method"] == tau2 and f["test"] == "z"
    )
    fitted = pool(_aloe(tmp_path, naming, measure), measure=measure, tau2=tau2)
    assert fitted.measure == measure and fitted.k == ref["k"] == 5
    tol = CLOSED_FORM if tau2 == "DL" else ITERATIVE
    floor = 1e-12 if tau2 == "DL" else METAFOR_STOP_TAU2_ABS
    r, het = fitted.random, fitted.heterogeneity
    got = {
        "estimate": r.theta,
        "se": r.se,
        "ci_lb": r.ci_low_theta,
        "ci_ub": r.ci_high_theta,
        "pval": r.p_value,
        "tau2": het.tau2,
        "QE": het.q,
        "I2": het.i2,
    }
    for key, value in got.items():
        assert value == pytest.approx(ref[key], rel=tol, abs=floor), key


@pytest.mark.parametrize("naming", ["metafor", "ivigmeta"])
@pytest.mark.parametrize("measure", MEASURES)
def test_reported_scale_is_metafors_predict(run, tmp_path, naming, measure):
    """ZPCOR back-transformed as predict(transf = transf.ztor); PCOR as it is."""
    args = ("--tau2", "REML") + (() if measure == "ZPCOR" else ("--measure", measure))
    got = _pool_json(run, _aloe(tmp_path, naming, measure), *args)
    ref = BACK[measure]
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
    assert study["source"] == "partial"
    assert (study["t"], study["n"], study["predictors"]) == (4.61, 218, 4)
    # the study's own estimate on the reported scale is its (semi-)partial correlation
    if measure == "SPCOR":
        assert study["r2"] == 0.24
        own = 4.61 * np.sqrt(1 - 0.24) / np.sqrt(218 - 4 - 1)
    else:
        own = 4.61 / np.sqrt(4.61**2 + 218 - 4 - 1)
    assert study["estimate"] == pytest.approx(own, rel=1e-12)


def test_the_table_shows_the_pooled_partial_correlation(run, tmp_path):
    out = run("pool", _aloe(tmp_path, "metafor"), "--tau2", "REML")
    assert out.exit_code == 0, out.stderr
    ref = BACK["ZPCOR"]
    assert "Partial correlation (ZPCOR)" in out.stdout
    line = next(x for x in out.stdout.splitlines() if x.startswith("Random effects"))
    assert f"{ref['pred']:.3f} [{ref['ci_lb']:.3f}, {ref['ci_ub']:.3f}]" in line
    assert "metafor's t statistics, sample sizes and numbers of other predictors" in out.stderr


def test_the_table_shows_the_pooled_semi_partial_correlation_and_r2(run, tmp_path):
    out = run("pool", _aloe(tmp_path, "ivigmeta", "SPCOR"), "--tau2", "REML", "--measure", "spcor")
    assert out.exit_code == 0, out.stderr
    ref = BACK["SPCOR"]
    assert "Semi-partial correlation (SPCOR)" in out.stdout and "R²" in out.stdout
    line = next(x for x in out.stdout.splitlines() if x.startswith("Random effects"))
    assert f"{ref['pred']:.3f} [{ref['ci_lb']:.3f}, {ref['ci_ub']:.3f}]" in line
    assert "numbers of other predictors and R² (t, n, predictors, r2)" in out.stderr


@pytest.mark.parametrize("naming", ["metafor", "ivigmeta"])
def test_a_table_with_r2_still_pools_pcor_and_zpcor_as_without(run, tmp_path, naming):
    for measure in ("PCOR", "ZPCOR"):
        args = ("--measure", measure, "--tau2", "REML")
        with_r2 = _pool_json(run, _aloe(tmp_path, naming, "SPCOR"), *args)
        without = _pool_json(run, _aloe(tmp_path, naming, measure), *args)
        assert [s["yi"] for s in with_r2["studies"]] == [s["yi"] for s in without["studies"]]
        assert with_r2["random"]["estimate"] == without["random"]["estimate"]
        assert with_r2["random"]["estimate"] == pytest.approx(BACK[measure]["pred"], rel=ITERATIVE)


@pytest.mark.parametrize("naming", ["metafor", "ivigmeta"])
def test_spcor_without_r2_is_a_clear_error(run, tmp_path, naming):
    path = _aloe(tmp_path, naming, "ZPCOR")
    out = run("pool", path, "--measure", "SPCOR")
    assert out.exit_code == 1 and "Traceback" not in out.stderr
    errors = [x for x in out.stderr.splitlines() if x.startswith("Error:")]
    assert errors == [
        f"Error: {path}: --measure SPCOR needs each study's model R²: the table of partial "
        "correlations has no r2 column (metafor: r2i)"
    ]


def test_a_measure_that_does_not_fit_names_both(run, tmp_path):
    out = run("pool", _aloe(tmp_path, "ivigmeta"), "--measure", "ZCOR")
    assert out.exit_code == 1
    assert "--measure ZCOR does not fit the columns" in out.stderr
    assert "partial data" in out.stderr and "ZPCOR, PCOR" in out.stderr


@pytest.mark.parametrize(
    ("header", "row", "message"),
    [
        # no degrees of freedom: n - predictors - 1 <= 0 leaves vi undefined
        ("t,n,predictors", "2.1,5,4", r"column 'n': '5' is not allowed \(.*n - predictors - 1 > 0"),
        ("ti,ni,mi", "2.1,3,2", r"column 'ni': '3' is not allowed \(.*n - predictors - 1 > 0"),
        ("t,n,predictors", "2.1,0,0", r"column 'n': '0' is not allowed \(a sample size must be"),
        ("ti,ni,mi", "2.1,40,-1", r"column 'mi': '-1' is not allowed \(.*cannot be negative"),
        ("t,n,predictors", "abc,40,2", r"column 't': 'abc' is not a number"),
        ("t,n,predictors", ",40,2", r"column 't': missing value"),
        # R² outside [0, 1]
        ("t,n,predictors,r2", "2.1,40,2,1.2", r"column 'r2': '1.2' is not an R² \(expected a"),
        ("ti,ni,mi,r2i", "2.1,40,2,-0.1", r"column 'r2i': '-0.1' is not allowed \(an R² cannot"),
        ("t,n,predictors,r2", "2.1,40,2,", r"column 'r2': missing value"),
        ("ti,ni,mi,r2i", "2.1,40,40,0.3", r"column 'ni': '40' is not allowed \(.*n - predictors"),
    ],
)
def test_bad_rows_are_one_line_errors(run, tmp_path, header, row, message):
    path = tmp_path / "bad.csv"
    good = "2.5,100,3" + (",0.3" if header.count(",") == 3 else "")
    path.write_text(f"study,{header}\nA,{good}\nB,{row}\nC,{good}\n")
    out = run("pool", str(path))
    assert_row_error(out, path, 3, message)


def test_columns_names_a_partial_correlation_table(run, tmp_path):
    d = RECORDS[("aloe2013", "ZPCOR")]["data"]
    path = tmp_path / "own.csv"
    pd.DataFrame({"tval": d["ti"], "N": d["ni"], "preds": d["mi"]}).to_csv(path, index=False)
    got = _pool_json(run, str(path), "--columns", "t=tval,n=N,predictors=preds", "--tau2", "REML")
    assert got["measure"] == "ZPCOR" and got["k"] == 5
    assert got["random"]["estimate"] == pytest.approx(BACK["ZPCOR"]["pred"], rel=ITERATIVE)


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        (["study", "t", "n", "predictors"], "partial"),
        (["study", "ti", "ni", "mi"], "partial"),
        (["study", "t", "n", "predictors", "r2"], "partial_r2"),
        (["study", "ti", "ni", "mi", "r2i"], "partial_r2"),
        (["study", "ti", "ni", "mi", "r2"], "partial"),
        # the kinds before decide when their columns are all there
        (["study", "xi", "ti", "ni", "mi"], "proportion"),
        (["study", "mi", "sdi", "ni", "ti"], "mean"),
        (["study", "events", "time", "t", "n", "predictors"], "rate"),
        (["study", "cor", "n", "t", "predictors"], "correlation"),
        (["study", "ri", "ni", "ti", "mi"], "correlation"),
    ],
)
def test_the_first_kind_whose_columns_are_all_there_decides(header, kind):
    found = detect_outcome(header)
    assert found is not None and found[0] == kind


@pytest.mark.parametrize("measure", MEASURES)
def test_batch_pools_partial_correlations_as_pool(run, tmp_path, measure):
    """batch's groups against pool of each group's own file (and metafor for the whole set)."""
    d = RECORDS[("aloe2013", measure)]["data"]
    groups = ["a", "a", "b", "b", "b"]
    long = tmp_path / "long.csv"
    cols = {OURS[c]: d[c] for c in d}
    pd.DataFrame({"g": groups} | cols).to_csv(long, index=False)
    args = ("--tau2", "REML", "--measure", measure)
    out = run("batch", str(long), "-g", "g", "--format", "csv", *args)
    assert out.exit_code == 0, out.stderr
    frame = pd.read_csv(io.StringIO(out.stdout)).set_index("g")
    for name in ("a", "b"):
        rows = [i for i, g in enumerate(groups) if g == name]
        own = tmp_path / f"{name}.csv"
        pd.DataFrame({c: [v[i] for i in rows] for c, v in cols.items()}).to_csv(own, index=False)
        ref = _pool_json(run, str(own), *args)["random"]
        assert frame.loc[name, "random_estimate"] == pytest.approx(ref["estimate"], rel=1e-12)
        assert frame.loc[name, "random_ci_low"] == pytest.approx(ref["ci_low"], rel=1e-12)
        assert frame.loc[name, "tau2"] == pytest.approx(ref["tau2"], rel=1e-12, abs=1e-15)
    whole = _aloe(tmp_path, "metafor", measure, group="all")
    out = run("batch", whole, "-g", "g", "--format", "csv", *args)
    assert out.exit_code == 0, out.stderr
    row = pd.read_csv(io.StringIO(out.stdout)).iloc[0]
    assert row["random_estimate"] == pytest.approx(BACK[measure]["pred"], rel=ITERATIVE)
    assert row["random_pi_high"] == pytest.approx(BACK[measure]["pi_ub"], rel=ITERATIVE)


def test_batch_fails_the_group_of_a_bad_row_with_pools_message(run, tmp_path):
    path = tmp_path / "long.csv"
    path.write_text(
        "g,study,t,n,predictors\nx,A,2.5,100,3\nx,B,1.2,4,3\ny,C,1.1,30,2\ny,D,3,20,1\n"
    )
    out = run("batch", str(path), "-g", "g", "--format", "csv")
    assert out.exit_code == 0, out.stderr
    frame = pd.read_csv(io.StringIO(out.stdout)).set_index("g")
    assert frame.loc["x", "status"] == "error"
    assert frame.loc["x", "reason"] == (
        f"{path}, row 3, column 'n': '4' is not allowed (a partial correlation needs "
        "n - predictors - 1 > 0, with 3 other predictors)"
    )
    assert frame.loc["y", "status"] == "ok" and frame.loc["y", "k"] == 2
