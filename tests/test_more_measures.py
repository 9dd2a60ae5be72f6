"""More of escalc's measures at the CLI: one group's pre-post changes (MC, SMCC, SMCR, SMCRH,
ROMC), 2x2 counts as PHI, YUQ, YUY, OR2DN, OR2DL, PBIT, and one group's incidence rates (IRLN, IR,
IRS, IRFT): read in ivigmeta's, metafor's (and meta's) names, pooled as metafor pools them (tests/reference/metafor_outcomes.json, written by
make_reference_outcomes.R), shown back-transformed, bad rows one-line errors, undefined effects
excluded with the reason, batch = pool."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import assert_row_error
from conftest import pool_json as _pool_json
from conftest import write_columns as _write

from ivigmeta.io.outcome_columns import detect_outcome
from tests.tolerances import CLOSED_FORM, ITERATIVE

REF = json.loads((Path(__file__).parent / "reference" / "metafor_outcomes.json").read_text())
RECORDS = {(r["name"], r["measure"]): r for r in REF["records"]}
BACK = {r["measure"]: r for r in REF["backtransformed"]}

CHANGE_METAFOR = ("m1i", "m2i", "sd1i", "sd2i", "ni", "ri")
CHANGE_IVIGMETA = ("mean_post", "mean_pre", "sd_post", "sd_pre", "n", "r")


def _morris(tmp_path, group: str, naming: str) -> str:
    d = RECORDS[(f"morris2008_{group}", "MC")]["data"]
    names = CHANGE_METAFOR if naming == "metafor" else CHANGE_IVIGMETA
    cols = {new: d[old] for new, old in zip(names, CHANGE_METAFOR)}
    return _write(tmp_path, f"morris_{group}_{naming}.csv", cols)


# ------------------------------------------------------------------------------------------
# pre-post changes


@pytest.mark.parametrize("naming", ["metafor", "ivigmeta"])
@pytest.mark.parametrize("measure", ["MC", "SMCC", "SMCR", "SMCRH", "ROMC"])
@pytest.mark.parametrize("tau2", ["DL", "REML"])
def test_pool_of_changes_is_metafors_rma(run, tmp_path, naming, measure, tau2):
    rec = RECORDS[("morris2008_T", measure)]
    ref = next(f for f in rec["fits"] if f["method"] == tau2 and f["test"] == "z")
    args = () if measure == "MC" else ("--measure", measure)  # MC is the default
    got = _pool_json(run, _morris(tmp_path, "T", naming), "--tau2", tau2, *args)
    assert got["measure"] == measure and got["k"] == 5 and got["excluded"] == []
    tol = CLOSED_FORM if tau2 == "DL" else ITERATIVE
    random = got["random"]
    assert random["theta"] == pytest.approx(ref["estimate"], rel=tol)
    assert random["se"] == pytest.approx(ref["se"], rel=tol)
    assert random["tau2"] == pytest.approx(ref["tau2"], rel=tol, abs=1e-12)
    yi = [s["yi"] for s in got["studies"]]
    assert yi == pytest.approx(rec["yi"], rel=CLOSED_FORM)
    study = got["studies"][0]
    assert study["source"] == "change" and study["mean_post"] == 38.5 and study["r"] == 0.47


def test_romc_is_reported_as_a_ratio_as_predict_with_exp(run, tmp_path):
    got = _pool_json(run, _morris(tmp_path, "T", "ivigmeta"), "--tau2", "REML", "--measure", "ROMC")
    ref = BACK["ROMC"]
    for key, mine in {
        "pred": "estimate",
        "ci_lb": "ci_low",
        "ci_ub": "ci_high",
        "pi_lb": "pi_low",
        "pi_ub": "pi_high",
    }.items():
        assert got["random"][mine] == pytest.approx(ref[key], rel=ITERATIVE), key


def test_smcr_standardizes_by_the_pre_test_sd(run, tmp_path):
    """Swapping the two SDs changes SMCR (pre-test SD) but not SMCC (change-score SD)."""
    d = RECORDS[("morris2008_T", "MC")]["data"]
    swapped = {"mean_post": d["m1i"], "mean_pre": d["m2i"], "sd_post": d["sd2i"]}
    swapped |= {"sd_pre": d["sd1i"], "n": d["ni"], "r": d["ri"]}
    path = _write(tmp_path, "swapped.csv", swapped)
    smcr = _pool_json(run, path, "--measure", "SMCR")
    assert [s["yi"] for s in smcr["studies"]] != pytest.approx(
        RECORDS[("morris2008_T", "SMCR")]["yi"], rel=1e-6
    )
    smcc = _pool_json(run, path, "--measure", "SMCC")
    assert [s["yi"] for s in smcc["studies"]] == pytest.approx(
        RECORDS[("morris2008_T", "SMCC")]["yi"], rel=CLOSED_FORM
    )


def test_the_table_shows_the_pre_post_data(run, tmp_path):
    out = run("pool", _morris(tmp_path, "C", "metafor"), "--measure", "SMCC")
    assert out.exit_code == 0, out.stderr
    assert "Post-test: mean (SD)" in out.stdout and "Pre-test: mean (SD)" in out.stdout
    assert "metafor's pre-post means, SDs, sizes and correlations" in out.stderr
    ref = next(f for f in RECORDS[("morris2008_C", "SMCC")]["fits"] if f["method"] == "DL")
    line = next(x for x in out.stdout.splitlines() if x.startswith("Random effects"))
    assert f"{ref['estimate']:.2f} [{ref['ci_lb']:.2f}, {ref['ci_ub']:.2f}]" in line


def test_a_measure_that_does_not_fit_changes_names_both(run, tmp_path):
    out = run("pool", _morris(tmp_path, "T", "ivigmeta"), "--measure", "SMD")
    assert out.exit_code == 1
    assert "--measure SMD does not fit the columns" in out.stderr
    assert "change data" in out.stderr and "MC, SMCC, SMCR, SMCRH, ROMC" in out.stderr


CHANGE_OK = "10,8,2,2.5,20,0.5"


@pytest.mark.parametrize(
    ("header", "row", "message"),
    [
        (CHANGE_METAFOR, "10,8,0,2.5,20,0.5", r"column 'sd1i': '0' is not allowed"),
        (CHANGE_IVIGMETA, "10,8,2,-1,20,0.5", r"column 'sd_pre': '-1' is not allowed"),
        (CHANGE_IVIGMETA, "10,8,2,2.5,1,0.5", r"column 'n': '1' is not allowed"),
        (CHANGE_METAFOR, "10,8,2,2.5,20,1.3", r"column 'ri': '1.3' is not a correlation"),
        (CHANGE_IVIGMETA, "10,8,2,2.5,20,-1.5", r"column 'r': '-1.5' is not a correlation"),
        (CHANGE_IVIGMETA, "10,,2,2.5,20,0.5", r"column 'mean_pre': missing value"),
        (CHANGE_METAFOR, "10,8,2,2.5,x,0.5", r"column 'ni': 'x' is not a number"),
    ],
)
def test_bad_change_rows_are_one_line_errors(run, tmp_path, header, row, message):
    path = tmp_path / "bad.csv"
    path.write_text(f"study,{','.join(header)}\nA,{CHANGE_OK}\nB,{row}\nC,{CHANGE_OK}\n")
    out = run("pool", str(path))
    assert_row_error(out, path, 3, message)


def test_undefined_changes_are_excluded_with_the_reason(run, tmp_path):
    cols = dict(zip(CHANGE_IVIGMETA, zip(*[
        (10, 8, 2, 2.5, 20, 0.5),
        (10, 8, 2, 2, 20, 1),      # r = 1, equal SDs: the change scores have SD 0
        (5, -3, 1, 1, 12, 0.3),    # means of opposite signs: no ROMC
        (7, 6, 1, 1.5, 2, 0.2),    # n = 2: no small-sample correction
        (12, 9, 3, 2, 30, 0.6),
    ])))  # fmt: skip
    path = _write(tmp_path, "edge.csv", {k: list(v) for k, v in cols.items()})
    reasons = {}
    for measure in ("MC", "SMCC", "SMCR", "ROMC"):
        got = _pool_json(run, path, "--measure", measure)
        reasons[measure] = {e["row"]: e["reason"] for e in got["excluded"]}
        assert got["k"] == 5 - len(reasons[measure])
    assert set(reasons["MC"]) == {3} and "zero SD" in reasons["MC"][3]
    assert set(reasons["SMCC"]) == {3, 5} and "n > 2" in reasons["SMCC"][5]
    assert set(reasons["SMCR"]) == {5}
    assert set(reasons["ROMC"]) == {4} and "same sign" in reasons["ROMC"][4]


def test_columns_names_a_change_table(run, tmp_path):
    d = RECORDS[("morris2008_T", "MC")]["data"]
    own = ("After", "Before", "SDa", "SDb", "N", "R")
    path = _write(tmp_path, "own.csv", {o: d[m] for o, m in zip(own, CHANGE_METAFOR)})
    spec = ",".join(f"{role}={col}" for role, col in zip(CHANGE_IVIGMETA, own))
    got = _pool_json(run, path, "--columns", spec, "--measure", "SMCR")
    assert [s["yi"] for s in got["studies"]] == pytest.approx(
        RECORDS[("morris2008_T", "SMCR")]["yi"], rel=CLOSED_FORM
    )


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        (["study", *CHANGE_IVIGMETA], "change"),
        (["study", *CHANGE_METAFOR], "change"),
        # a two-group table stays continuous, whatever else it has
        (["study", "m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i", "ni", "ri"], "continuous"),
        # proportions and rates come first
        (["study", "xi", "ni", *CHANGE_METAFOR], "proportion"),
        # without all six, a table of ri and ni is still correlations
        (["study", "m1i", "m2i", "sd1i", "ni", "ri"], "correlation"),
        (["study", "mean_post", "mean_pre", "sd_post", "sd_pre", "n", "cor"], "correlation"),
    ],
)
def test_where_the_change_kind_comes_in_the_order(header, kind):
    found = detect_outcome(header)
    assert found is not None and found[0] == kind


def test_batch_pools_changes_as_pool(run, tmp_path):
    t = RECORDS[("morris2008_T", "MC")]["data"]
    c = RECORDS[("morris2008_C", "MC")]["data"]
    cols = {m: t[m] + c[m] for m in CHANGE_METAFOR}
    long = _write(tmp_path, "long.csv", {"g": ["T"] * 5 + ["C"] * 5, **cols})
    out = run("batch", long, "-g", "g", "--tau2", "REML", "--measure", "SMCR", "--format", "csv")
    assert out.exit_code == 0, out.stderr
    frame = pd.read_csv(io.StringIO(out.stdout)).set_index("g")
    for group in ("T", "C"):
        ref = next(
            f
            for f in RECORDS[(f"morris2008_{group}", "SMCR")]["fits"]
            if f["method"] == "REML" and f["test"] == "z"
        )
        own = _pool_json(
            run, _morris(tmp_path, group, "metafor"), "--tau2", "REML", "--measure", "SMCR"
        )
        assert frame.loc[group, "random_estimate"] == pytest.approx(
            own["random"]["estimate"], rel=1e-12
        )
        assert frame.loc[group, "tau2"] == pytest.approx(own["random"]["tau2"], rel=1e-12)
        assert frame.loc[group, "random_estimate"] == pytest.approx(ref["estimate"], rel=ITERATIVE)


def test_batch_fails_the_group_of_a_bad_change_row_with_pools_message(run, tmp_path):
    path = tmp_path / "long.csv"
    header = ",".join(CHANGE_IVIGMETA)
    path.write_text(
        f"g,study,{header}\nx,A,{CHANGE_OK}\nx,B,10,8,2,2.5,20,1.3\ny,C,{CHANGE_OK}\n"
        f"y,D,12,9,3,2,30,0.6\n"
    )
    out = run("batch", str(path), "-g", "g", "--format", "csv")
    assert out.exit_code == 0, out.stderr
    frame = pd.read_csv(io.StringIO(out.stdout)).set_index("g")
    assert frame.loc["x", "status"] == "error"
    assert frame.loc["x", "reason"] == (
        f"{path}, row 3, column 'r': '1.3' is not a correlation (expected a value between -1 and 1)"
    )
    assert frame.loc["y", "status"] == "ok" and frame.loc["y", "k"] == 2


# ------------------------------------------------------------------------------------------
# more measures of 2x2 counts

BCG = Path(__file__).parent.parent / "docs" / "examples" / "bcg.csv"


def _bcg_ivigmeta(tmp_path) -> str:
    d = RECORDS[("bcg", "PHI")]["data"]
    a, b, c, dd = (d[k] for k in ("ai", "bi", "ci", "di"))
    return _write(
        tmp_path,
        "bcg_ivigmeta.csv",
        {
            "treat_events": a,
            "treat_total": [x + y for x, y in zip(a, b)],
            "control_events": c,
            "control_total": [x + y for x, y in zip(c, dd)],
        },
    )


@pytest.mark.parametrize("naming", ["metafor", "ivigmeta"])
@pytest.mark.parametrize("measure", ["PHI", "YUQ", "YUY", "OR2DN", "OR2DL", "PBIT"])
@pytest.mark.parametrize("tau2", ["DL", "REML"])
def test_pool_of_counts_in_the_new_measures_is_metafors_rma(run, tmp_path, naming, measure, tau2):
    path = str(BCG) if naming == "metafor" else _bcg_ivigmeta(tmp_path)
    rec = RECORDS[("bcg", measure)]
    ref = next(f for f in rec["fits"] if f["method"] == tau2 and f["test"] == "z")
    got = _pool_json(run, path, "--measure", measure, "--tau2", tau2)
    assert got["measure"] == measure and got["k"] == 13 and got["excluded"] == []
    tol = CLOSED_FORM if tau2 == "DL" else ITERATIVE
    random = got["random"]
    # on their own scale: the reported estimate is the analysis' theta
    assert random["estimate"] == random["theta"]
    for key, mine in {
        "estimate": "theta",
        "se": "se",
        "ci_lb": "ci_low",
        "ci_ub": "ci_high",
    }.items():
        assert random[mine] == pytest.approx(ref[key], rel=tol), key
    assert random["tau2"] == pytest.approx(ref["tau2"], rel=tol, abs=1e-12)
    assert [s["yi"] for s in got["studies"]] == pytest.approx(rec["yi"], rel=CLOSED_FORM)


@pytest.mark.parametrize("measure", ["PHI", "YUQ", "YUY", "OR2DN", "OR2DL", "PBIT"])
def test_zero_cells_are_corrected_as_escalc(run, tmp_path, measure):
    """OR's correction (1/2 to every cell of a table with a zero) for YUQ, YUY, OR2DN and
    OR2DL; none for PHI."""
    d = RECORDS[("zeros", measure)]["data"]
    path = _write(tmp_path, "zeros.csv", d)
    got = _pool_json(run, path, "--measure", measure)
    assert [s["yi"] for s in got["studies"]] == pytest.approx(
        RECORDS[("zeros", measure)]["yi"], rel=CLOSED_FORM
    )
    added = {s["cc_added"] for s in got["studies"]}
    assert added == ({0.0} if measure == "PHI" else {0.0, 0.5})


def test_undefined_counts_effects_are_excluded_with_the_reason(run, tmp_path):
    path = tmp_path / "dz.csv"
    path.write_text(
        "study,treat_events,treat_total,control_events,control_total\n"
        "A,3,20,5,21\nB,0,15,0,14\nC,6,40,9,41\nD,4,30,8,29\n"
    )
    phi = _pool_json(run, str(path), "--measure", "PHI")
    assert [e["row"] for e in phi["excluded"]] == [3]
    assert "PHI undefined" in phi["excluded"][0]["reason"]
    yuq = _pool_json(run, str(path), "--measure", "YUQ")
    assert [e["row"] for e in yuq["excluded"]] == [3]
    assert "double zero" in yuq["excluded"][0]["reason"]
    kept = _pool_json(run, str(path), "--measure", "YUQ", "--keep-double-zero")
    assert kept["excluded"] == [] and kept["k"] == 4
    pbit = _pool_json(run, str(path), "--measure", "PBIT")
    assert [e["row"] for e in pbit["excluded"]] == [3]
    assert "double zero" in pbit["excluded"][0]["reason"]


def test_mantel_haenszel_does_not_pool_the_new_count_measures(run):
    out = run("pool", str(BCG), "--measure", "YUQ", "--common", "MH")
    assert out.exit_code == 1 and "Traceback" not in out.stderr
    assert "Mantel-Haenszel pools RR, OR and RD: YUQ is pooled by inverse variance" in out.stderr
    out = run("pool", str(BCG), "--measure", "PBIT", "--common", "MH")
    assert out.exit_code == 1 and "PBIT is pooled by inverse variance" in out.stderr


def test_batch_pools_the_new_count_measures_as_pool(run, tmp_path):
    d = RECORDS[("bcg", "PHI")]["data"]
    groups = ["a" if i < 7 else "b" for i in range(13)]
    long = _write(tmp_path, "long.csv", {"g": groups, **d})
    for measure in ("PHI", "OR2DL", "PBIT"):
        out = run("batch", long, "-g", "g", "--measure", measure, "--format", "csv")
        assert out.exit_code == 0, out.stderr
        frame = pd.read_csv(io.StringIO(out.stdout)).set_index("g")
        for name in ("a", "b"):
            rows = [i for i, g in enumerate(groups) if g == name]
            own = _write(tmp_path, f"{name}.csv", {k: [v[i] for i in rows] for k, v in d.items()})
            ref = _pool_json(run, own, "--measure", measure)["random"]
            assert frame.loc[name, "random_estimate"] == pytest.approx(ref["estimate"], rel=1e-12)
            assert frame.loc[name, "tau2"] == pytest.approx(ref["tau2"], rel=1e-12, abs=1e-15)


# ------------------------------------------------------------------------------------------
# one group's incidence rates


def _hart(tmp_path, naming: str) -> str:
    d = RECORDS[("hart1999_arm1", "IRLN")]["data"]
    x, t = {"metafor": ("xi", "ti"), "meta": ("event", "time")}.get(naming, ("events", "time"))
    return _write(tmp_path, f"hart_{naming}.csv", {x: d["xi"], t: d["ti"]})


@pytest.mark.parametrize("naming", ["metafor", "meta", "ivigmeta"])
@pytest.mark.parametrize("measure", ["IRLN", "IR", "IRS", "IRFT"])
def test_pool_of_one_groups_rates_is_metafors_predict(run, tmp_path, naming, measure):
    args = () if measure == "IRLN" else ("--measure", measure)  # IRLN is the default
    got = _pool_json(run, _hart(tmp_path, naming), "--tau2", "REML", *args)
    assert got["measure"] == measure and got["k"] == 6 and got["excluded"] == []
    ref = BACK[measure]
    for key, mine in {
        "pred": "estimate",
        "ci_lb": "ci_low",
        "ci_ub": "ci_high",
        "pi_lb": "pi_low",
        "pi_ub": "pi_high",
    }.items():
        assert got["random"][mine] == pytest.approx(ref[key], rel=ITERATIVE), key
    assert got["studies"][0]["source"] == "rate" and got["studies"][0]["events"] == 9


@pytest.mark.parametrize("measure", ["IRLN", "IR", "IRS", "IRFT"])
def test_a_zero_count_is_corrected_as_escalc(run, tmp_path, measure):
    rec = RECORDS[("zeros", measure)]
    path = _write(tmp_path, "zeros.csv", {"events": rec["data"]["xi"], "time": rec["data"]["ti"]})
    got = _pool_json(run, path, "--measure", measure)
    assert [s["yi"] for s in got["studies"]] == pytest.approx(rec["yi"], rel=CLOSED_FORM)
    assert [s["vi"] for s in got["studies"]] == pytest.approx(rec["vi"], rel=CLOSED_FORM)
    fit = next(f for f in rec["fits"] if f["method"] == "DL" and f["test"] == "z")
    assert got["random"]["theta"] == pytest.approx(fit["estimate"], rel=CLOSED_FORM)


def test_the_table_shows_the_pooled_rate(run, tmp_path):
    out = run("pool", _hart(tmp_path, "metafor"), "--tau2", "REML")
    assert out.exit_code == 0, out.stderr
    ref = BACK["IRLN"]
    assert "Rate (IRLN)" in out.stdout and "Events / person-time" in out.stdout
    line = next(x for x in out.stdout.splitlines() if x.startswith("Random effects"))
    assert f"{ref['pred']:.3f} [{ref['ci_lb']:.3f}, {ref['ci_ub']:.3f}]" in line
    assert "metafor's one group's events and person-time (xi, ti)" in out.stderr


@pytest.mark.parametrize(
    ("header", "row", "message"),
    [
        ("xi,ti", "3,0", r"column 'ti': '0' is not allowed \(person-time must be > 0\)"),
        ("events,time", "-1,100", r"column 'events': '-1' is not allowed"),
        ("event,time", "2,-5", r"column 'time': '-5' is not allowed"),
        ("events,time", "2,", r"column 'time': missing value"),
    ],
)
def test_bad_rate_rows_are_one_line_errors(run, tmp_path, header, row, message):
    path = tmp_path / "bad.csv"
    path.write_text(f"study,{header}\nA,4,120\nB,{row}\nC,6,300\n")
    out = run("pool", str(path))
    assert_row_error(out, path, 3, message)


def test_a_zero_count_without_correction_is_excluded_with_the_reason(run, tmp_path):
    path = _write(tmp_path, "z.csv", {"xi": [4, 0, 6], "ti": [120, 80, 300]})
    got = _pool_json(run, path, "--cc-policy", "none")
    assert [e["row"] for e in got["excluded"]] == [3] and got["k"] == 2
    assert "IRLN undefined: zero events" in got["excluded"][0]["reason"]
    irs = _pool_json(run, path, "--cc-policy", "none", "--measure", "IRS")
    assert irs["excluded"] == [] and irs["k"] == 3


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        (["study", "events", "time"], "rate"),
        (["study", "xi", "ti"], "rate"),
        (["study", "event", "time"], "rate"),
        # a total makes it a proportion, as before
        (["study", "events", "total", "time"], "proportion"),
        (["study", "xi", "ni", "ti"], "proportion"),
        (["study", "event", "n", "time"], "proportion"),
        # every kind before comes first
        (["study", "cor", "n", "events", "time"], "correlation"),
        (["study", "mean", "sd", "n", "events", "time"], "mean"),
    ],
)
def test_one_groups_rates_come_last(header, kind):
    found = detect_outcome(header)
    assert found is not None and found[0] == kind


def test_columns_names_a_rate_table(run, tmp_path):
    d = RECORDS[("hart1999_arm1", "IRLN")]["data"]
    path = _write(tmp_path, "own.csv", {"Strokes": d["xi"], "PY": d["ti"]})
    got = _pool_json(run, path, "--columns", "events=Strokes,time=PY", "--tau2", "REML")
    assert got["measure"] == "IRLN"
    assert got["random"]["estimate"] == pytest.approx(BACK["IRLN"]["pred"], rel=ITERATIVE)


def test_batch_pools_one_groups_rates_as_pool(run, tmp_path):
    d = RECORDS[("hart1999_arm1", "IRLN")]["data"]
    groups = ["a", "a", "a", "b", "b", "b"]
    long = _write(tmp_path, "long.csv", {"g": groups, "xi": d["xi"], "ti": d["ti"]})
    for measure in ("IRLN", "IRS"):
        out = run("batch", long, "-g", "g", "--measure", measure, "--format", "csv")
        assert out.exit_code == 0, out.stderr
        frame = pd.read_csv(io.StringIO(out.stdout)).set_index("g")
        for name in ("a", "b"):
            rows = [i for i, g in enumerate(groups) if g == name]
            own = _write(
                tmp_path,
                f"{name}.csv",
                {"xi": [d["xi"][i] for i in rows], "ti": [d["ti"][i] for i in rows]},
            )
            ref = _pool_json(run, own, "--measure", measure)["random"]
            assert frame.loc[name, "random_estimate"] == pytest.approx(ref["estimate"], rel=1e-12)
            assert frame.loc[name, "random_ci_low"] == pytest.approx(ref["ci_low"], rel=1e-12)
