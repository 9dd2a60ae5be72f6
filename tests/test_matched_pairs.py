"""Matched pairs at the CLI: a counts table's four cells read as escalc's table of pairs (ai
both members with the event, bi the treated member only, ci the control member only, di
neither) under --measure MPRD, MPRR, MPOR, MPORC or MPPETO; pooled as metafor pools them
(tests/reference/metafor_outcomes.json, written by make_reference_outcomes.R), shown
back-transformed, corrected as escalc, never dropped as a double zero, bad rows one-line
errors, batch = pool."""

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
PAIRED = ("MPRD", "MPRR", "MPOR", "MPORC", "MPPETO")
CELLS = RECORDS[("pairs", "MPOR")]["data"]


def _pairs(tmp_path, naming: str, cells: dict[str, list] = CELLS) -> str:
    a, b, c, d = (cells[k] for k in ("ai", "bi", "ci", "di"))
    if naming == "metafor":
        return _write(tmp_path, "pairs_metafor.csv", {"ai": a, "bi": b, "ci": c, "di": d})
    # ivigmeta's names: treat_total = ai + bi, control_total = ci + di (escalc's n1i, n2i)
    return _write(
        tmp_path,
        "pairs_ivigmeta.csv",
        {
            "treat_events": a,
            "treat_total": [x + y for x, y in zip(a, b)],
            "control_events": c,
            "control_total": [x + y for x, y in zip(c, d)],
        },
    )


@pytest.mark.parametrize("naming", ["metafor", "ivigmeta"])
@pytest.mark.parametrize("measure", PAIRED)
@pytest.mark.parametrize("tau2", ["DL", "REML"])
def test_pool_of_matched_pairs_is_metafors_rma(run, tmp_path, naming, measure, tau2):
    rec = RECORDS[("pairs", measure)]
    ref = next(f for f in rec["fits"] if f["method"] == tau2 and f["test"] == "z")
    got = _pool_json(run, _pairs(tmp_path, naming), "--measure", measure, "--tau2", tau2)
    assert got["measure"] == measure and got["k"] == 6 and got["excluded"] == []
    tol = CLOSED_FORM if tau2 == "DL" else ITERATIVE
    random = got["random"]
    assert random["theta"] == pytest.approx(ref["estimate"], rel=tol)
    assert random["se"] == pytest.approx(ref["se"], rel=tol)
    assert random["p_value"] == pytest.approx(ref["pval"], rel=tol)
    assert random["tau2"] == pytest.approx(ref["tau2"], rel=tol, abs=1e-12)
    assert [s["yi"] for s in got["studies"]] == pytest.approx(rec["yi"], rel=CLOSED_FORM)
    assert [s["vi"] for s in got["studies"]] == pytest.approx(rec["vi"], rel=CLOSED_FORM)
    # escalc's to = "only0": 1/2 added to the four cells of the table with bi = 0 only
    assert [s["cc_added"] for s in got["studies"]] == [0, 0, 0, 0, 0, 0.5]


@pytest.mark.parametrize("measure", PAIRED)
def test_matched_pairs_are_reported_as_predict(run, tmp_path, measure):
    """MPRR, MPOR, MPORC and MPPETO as ratios (predict with exp), MPRD as it is."""
    got = _pool_json(run, _pairs(tmp_path, "metafor"), "--measure", measure, "--tau2", "REML")
    random = got["random"]
    for key, mine in {
        "pred": "estimate",
        "ci_lb": "ci_low",
        "ci_ub": "ci_high",
        "pi_lb": "pi_low",
        "pi_ub": "pi_high",
    }.items():
        assert random[mine] == pytest.approx(BACK[measure][key], rel=ITERATIVE), key


def test_the_table_shows_the_pairs(run, tmp_path):
    out = run("pool", _pairs(tmp_path, "ivigmeta"), "--measure", "MPOR", "--tau2", "REML")
    assert out.exit_code == 0, out.stderr
    flat = " ".join(out.stdout.split())
    assert "Pairs" in flat and "12 / 8" in flat and "3 / 40" in flat
    ref = BACK["MPOR"]
    line = next(x for x in out.stdout.splitlines() if x.startswith("Random effects"))
    assert f"{ref['pred']:.2f} [{ref['ci_lb']:.2f}, {ref['ci_ub']:.2f}]" in line


def test_without_a_measure_a_counts_table_is_still_independent_groups(run, tmp_path):
    got = _pool_json(run, _pairs(tmp_path, "metafor"))
    assert got["measure"] == "RR"
    assert [s["yi"] for s in got["studies"]] != pytest.approx(
        RECORDS[("pairs", "MPRR")]["yi"], rel=1e-6
    )


def test_no_table_of_pairs_is_a_double_zero(run, tmp_path):
    """No pair with an event in the control member (ai = ci = 0): RR drops the table as a
    double zero by default, the matched-pairs measures keep it (escalc's drop00 = FALSE),
    corrected."""
    cells = {"ai": [12, 0, 30], "bi": [8, 7, 15], "ci": [3, 0, 6], "di": [40, 20, 60]}
    path = _pairs(tmp_path, "metafor", cells)
    rr = _pool_json(run, path)
    assert [e["row"] for e in rr["excluded"]] == [3] and "double zero" in rr["excluded"][0][
        "reason"
    ]
    for measure in PAIRED:
        got = _pool_json(run, path, "--measure", measure)
        assert got["excluded"] == [] and got["k"] == 3, measure
        assert got["studies"][1]["cc_added"] == 0.5


def test_undefined_pairs_without_correction_are_excluded_with_the_reason(run, tmp_path):
    cells = {"ai": [12, 5, 30], "bi": [8, 0, 15], "ci": [3, 4, 6], "di": [40, 31, 60]}
    path = _pairs(tmp_path, "metafor", cells)
    for measure in ("MPORC", "MPPETO"):
        got = _pool_json(run, path, "--measure", measure, "--cc-policy", "none")
        if measure == "MPORC":  # log 0
            assert [e["row"] for e in got["excluded"]] == [3] and got["k"] == 2
            assert got["excluded"][0]["reason"].startswith("MPORC undefined: zero cell(s)")
        else:  # Peto's needs only b + c > 0
            assert got["excluded"] == [] and got["k"] == 3
    mprd = _pool_json(run, path, "--measure", "MPRD", "--cc-policy", "none")
    assert mprd["excluded"] == []


def test_mantel_haenszel_and_peto_do_not_pool_matched_pairs(run, tmp_path):
    path = _pairs(tmp_path, "metafor")
    out = run("pool", path, "--measure", "MPOR", "--common", "MH")
    assert out.exit_code == 1 and "Traceback" not in out.stderr
    assert "Mantel-Haenszel pools RR, OR and RD: MPOR is pooled by inverse variance" in out.stderr
    out = run("pool", path, "--measure", "MPPETO", "--common", "PETO")
    assert out.exit_code == 1 and "Traceback" not in out.stderr


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("5,-1,4,31", r"column 'bi': '-1' is negative"),
        ("5,x,4,31", r"column 'bi': 'x' is not"),
        ("5,10,,31", r"column 'ci': "),
    ],
)
def test_bad_pair_rows_are_one_line_errors(run, tmp_path, row, message):
    path = tmp_path / "bad.csv"
    path.write_text(f"study,ai,bi,ci,di\nA,12,8,3,40\nB,{row}\nC,30,15,6,60\n")
    out = run("pool", str(path), "--measure", "MPOR")
    assert_row_error(out, path, 3, message)


@pytest.mark.parametrize("measure", ["MPOR", "MPRD", "MPORC"])
def test_batch_pools_matched_pairs_as_pool(run, tmp_path, measure):
    groups = ["a", "a", "a", "b", "b", "b"]
    long = _write(tmp_path, "long.csv", {"g": groups, **CELLS})
    out = run("batch", long, "-g", "g", "--measure", measure, "--tau2", "REML", "--format", "csv")
    assert out.exit_code == 0, out.stderr
    frame = pd.read_csv(io.StringIO(out.stdout)).set_index("g")
    for name in ("a", "b"):
        rows = [i for i, g in enumerate(groups) if g == name]
        own = _write(tmp_path, f"{name}.csv", {k: [v[i] for i in rows] for k, v in CELLS.items()})
        ref = _pool_json(run, own, "--measure", measure, "--tau2", "REML")["random"]
        assert frame.loc[name, "random_estimate"] == pytest.approx(ref["estimate"], rel=1e-12)
        assert frame.loc[name, "random_ci_low"] == pytest.approx(ref["ci_low"], rel=1e-12)
        assert frame.loc[name, "tau2"] == pytest.approx(ref["tau2"], rel=1e-12, abs=1e-15)
