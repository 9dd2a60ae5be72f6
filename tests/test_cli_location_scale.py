"""``ivigmeta metareg --scale``: the location-scale model on the command line (plumbing, formats,
exit codes and messages; the numbers are tested against metafor in test_location_scale.py)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from conftest import write_columns
from test_location_scale import FITS, LS_ALPHA_ABS, bangert_columns


@pytest.fixture
def bangert_csv(tmp_path) -> str:
    columns = bangert_columns()
    columns["meta_label"] = [
        "" if m == "" else ("yes" if m == 1 else "no") for m in columns["meta"]
    ]
    return write_columns(tmp_path, "bangert.csv", columns)


def metareg_json(run, path: str, *args: str) -> tuple[dict, str]:
    out = run("metareg", path, "--measure", "RD", "--format", "json", *args)
    assert out.exit_code == 0, out.stderr
    return json.loads(out.stdout), out.stderr


def test_json_holds_the_scale_model(run, bangert_csv) -> None:
    data, err = metareg_json(run, bangert_csv, "--scale", "grade")
    rec = FITS["scale_grade_log"]
    assert "fitted by REML, as metafor" in err
    assert data["tau2_method"] == "REML" and data["tau2"] is None and data["i2"] is None
    sc = data["scale"]
    assert sc["link"] == "log" and [c["name"] for c in sc["coefficients"]] == ["intercept", "grade"]
    assert [c["estimate"] for c in sc["coefficients"]] == pytest.approx(
        rec["alpha"], abs=LS_ALPHA_ABS
    )
    assert sc["qs_df"] == 1 and sc["qs"] == pytest.approx(rec["QS"], rel=1e-4)
    assert sc["tau2_min"] == min(sc["tau2"]) and sc["tau2_max"] == max(sc["tau2"])
    assert len(sc["tau2"]) == data["k"] == 48
    assert sc["coefficient_tests"] == [] and sc["predictions"] == [] and sc["lrt"] is None
    assert [c["name"] for c in data["coefficients"]] == ["intercept"] and data["qm"] is None
    assert data["fit_statistics"]["reported"] == "REML"


def test_without_scale_the_json_says_null(run, studies_path) -> None:
    out = run("metareg", str(studies_path), "--mod", "nk_criterion", "--format", "json")
    assert out.exit_code == 0 and json.loads(out.stdout)["scale"] is None


def test_missing_moderators_are_listed_as_excluded(run, bangert_csv) -> None:
    data, err = metareg_json(run, bangert_csv, "--mod", "meta", "--scale", "meta", "--tau2", "REML")
    assert "fitted by REML" not in err  # asked for: no note
    assert data["k"] == 46
    rows = sorted(e["row"] for e in data["excluded"])
    assert rows == [19, 20] and "left out: no value for moderator(s) 'meta'" in err


def test_identity_link_and_ml(run, bangert_csv) -> None:
    data, _ = metareg_json(run, bangert_csv, "--scale", "grade", "--scale-link", "identity")
    rec = FITS["scale_grade_identity"]
    assert data["scale"]["link"] == "identity"
    assert [c["estimate"] for c in data["scale"]["coefficients"]] == pytest.approx(
        rec["alpha"], abs=LS_ALPHA_ABS
    )
    data, _ = metareg_json(run, bangert_csv, "--scale", "grade", "--tau2", "ml")
    assert data["tau2_method"] == "ML" and data["fit_statistics"]["reported"] == "ML"
    assert [c["estimate"] for c in data["scale"]["coefficients"]] == pytest.approx(
        FITS["scale_grade_ml"]["alpha"], abs=LS_ALPHA_ABS
    )


def test_a_non_numeric_scale_column_is_dummy_coded_as_mod_is(run, bangert_csv) -> None:
    numeric, _ = metareg_json(run, bangert_csv, "--scale", "meta")
    coded, err = metareg_json(run, bangert_csv, "--scale", "meta_label", "--ref", "meta_label=no")
    names = [c["name"] for c in coded["scale"]["coefficients"]]
    assert names == ["intercept", "meta_label=yes"]
    assert coded["scale"]["references"] == {"meta_label": "no"}
    assert [c["estimate"] for c in coded["scale"]["coefficients"]] == pytest.approx(
        [c["estimate"] for c in numeric["scale"]["coefficients"]], abs=1e-9
    )
    forced, _ = metareg_json(run, bangert_csv, "--scale", "grade", "--categorical", "grade")
    # levels in file order, the first (4) the reference
    assert [c["name"] for c in forced["scale"]["coefficients"]][1:] == [
        "grade=2",
        "grade=1",
        "grade=3",
    ]


def test_att_predict_scale_profile_and_lrt(run, bangert_csv) -> None:
    data, _ = metareg_json(
        run, bangert_csv, "--mod", "meta", "--scale", "meta", "--att", "meta",
        "--predict-scale", "meta=0", "--predict-scale", "meta=1", "--predict", "meta=1",
        "--scale-profile", "--scale-lrt", "--btt", "meta",
    )  # fmt: skip
    sc = data["scale"]
    (att,) = sc["coefficient_tests"]
    assert att["coefficients"] == ["meta"] and att["df"] == 1 and att["df2"] is None
    assert att["statistic"] == pytest.approx(sc["qs"])  # one coefficient: the same test
    assert [p["label"] for p in sc["predictions"]] == ["meta=0", "meta=1"]
    assert sc["predictions"][1]["at"] == {"meta": "1"}
    assert [p["name"] for p in sc["profile"]] == ["intercept", "meta"]
    assert sc["profile"][0]["ci_low"] is None  # flat profile: n/a (JSON null)
    assert sc["lrt"]["df"] == 1 and sc["lrt"]["likelihood"] == "REML"
    assert data["predictions"][0]["pi_low"] is not None  # meta=1 is also the scale value
    assert data["coefficient_tests"][0]["coefficients"] == ["meta"]


def test_table_and_csv_formats(run, bangert_csv) -> None:
    args = ["metareg", bangert_csv, "--measure", "RD", "--scale", "grade", "--scale", "meta"]
    out = run(*args, "--predict-scale", "grade=2,meta=1", "--scale-profile")
    assert out.exit_code == 0, out.stderr
    text = out.stdout
    assert "Location-scale meta-regression" in text and "Scale model (log link)" in text
    assert "Test of scale moderators: QS = " in text and "tau² by study (scale model) from" in text
    assert "Predicted heterogeneity (scale model)" in text and "Profile CI" in text
    out = run(*args, "--predict-scale", "grade=2,meta=1", "--scale-profile", "--format", "csv")
    assert out.exit_code == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    kinds = [r["kind"] for r in rows]
    assert kinds == ["coefficient"] + ["scale_coefficient"] * 3 + ["scale_prediction"]
    # the intercept's lower profile bound is n/a (an empty cell): its profile stays flat
    assert rows[1]["profile_ci_low"] == "" and rows[2]["profile_ci_low"] != ""
    assert rows[4]["name"] == "grade=2, meta=1"
    assert float(rows[4]["tau2"]) > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "Missing option '--mod'"),
        (("--mod", "grade", "--scale-link", "identity"), "--scale-link goes with --scale COL"),
        (("--mod", "grade", "--att", "grade"), "--att goes with --scale COL"),
        (("--mod", "grade", "--predict-scale", "grade=1"), "--predict-scale goes with --scale"),
        (("--mod", "grade", "--scale-profile"), "--scale-profile goes with --scale COL"),
        (("--scale", "grade", "--plot", "x.png"), "--plot (the bubble plot) is not offered"),
        (("--scale", "grade", "--tau2", "DL"), "--tau2 DL: location-scale models"),
        (("--scale", "grade", "--tau2", "0.1"), "--tau2 0.1: location-scale models"),
        (("--scale", "grade", "--tau2-ci", "pl"), "--tau2-ci does not apply"),
        (("--scale", "grade", "--glmm", "UM.FS"), "--scale (a location-scale model) and --glmm"),
    ],
)
def test_usage_errors(run, bangert_csv, args, message) -> None:
    out = run("metareg", bangert_csv, "--measure", "RD", *args)
    assert out.exit_code == 2 and message in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--weights", "ni"), "Error: --weights does not apply to location-scale models"),
        (("--unweighted",), "Error: --unweighted does not apply to location-scale models"),
        (("--model", "common"), "Error: --model common does not apply to location-scale"),
        (("--permutations", "10"), "Error: --permutations does not apply"),
        (("--cluster", "grade"), "Error: --cluster does not apply"),
        (("--mod", "meta", "--lrt", "meta"), "Error: --lrt does not apply"),
        (("--ci", "hk"), "Error: --ci hk does not apply to location-scale models"),
        (("--att", "nope"), "Error: --att 'nope': not a moderator or coefficient"),
        (("--predict-scale", "grade"), "Error: --predict-scale 'grade': expected COL=VALUE"),
        (("--predict-scale", "meta=1"), "Error: --predict-scale 'meta=1': 'meta' is not a"),
        (("--scale", "nothere"), "nothere"),
        (("--categorical", "ni"), "--categorical ni: not one of the --mod/--scale columns"),
    ],
)
def test_model_errors_are_one_line(run, bangert_csv, args, message) -> None:
    out = run("metareg", bangert_csv, "--measure", "RD", "--scale", "grade", *args)
    assert out.exit_code == 1, out.stderr
    errors = [x for x in out.stderr.splitlines() if x.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], out.stderr
    assert "Traceback" not in out.stderr


def test_too_few_studies_and_a_constant_scale_moderator(run, tmp_path) -> None:
    path = write_columns(
        tmp_path, "few.csv", {"yi": [0.1, 0.3, 0.2], "vi": [0.01, 0.02, 0.03], "x": [1, 2, 3],
                              "c": [1, 1, 1], "z": [0, 1, 2]}
    )  # fmt: skip
    out = run("metareg", path, "--measure", "RD", "--mod", "x", "--scale", "z")
    assert (
        out.exit_code == 1 and "has 4 coefficients (2 location, 2 scale) but only 3" in out.stderr
    )
    out = run("metareg", path, "--measure", "RD", "--scale", "c")
    assert out.exit_code == 1 and "Error: scale model: moderator 'c' is constant" in out.stderr


def test_a_boundary_optimum_is_noted(run, tmp_path) -> None:
    from test_location_scale import REF

    b = REF["boundary"]["data"]
    path = write_columns(tmp_path, "b.csv", {"yi": b["yi"], "vi": b["vi"], "g": b["g"]})
    data, _ = metareg_json(run, path, "--scale", "g", "--scale-link", "identity")
    sc = data["scale"]
    assert "constraint tau² >= 0 holds" in sc["note"]
    assert [c["se"] for c in sc["coefficients"]] == [None, None] and sc["qs"] is None
    out = run("metareg", path, "--measure", "RD", "--scale", "g")
    assert out.exit_code == 0 and "Note: some studies' fitted tau² is ~0" in out.stdout
    data, _ = metareg_json(run, bangert_csv_path(tmp_path), "--scale", "grade")
    assert data["scale"]["note"] == ""


def bangert_csv_path(tmp_path) -> str:
    return write_columns(tmp_path, "bangert2.csv", bangert_columns())


def test_level_sets_the_scale_intervals(run, bangert_csv) -> None:
    at95, _ = metareg_json(run, bangert_csv, "--scale", "grade")
    at90, _ = metareg_json(run, bangert_csv, "--scale", "grade", "--level", "90")
    for a, b in zip(at95["scale"]["coefficients"], at90["scale"]["coefficients"]):
        ratio = (b["ci_high"] - b["estimate"]) / (a["ci_high"] - a["estimate"])
        assert ratio == pytest.approx(1.6448536269514722 / 1.959963984540054, rel=1e-12)
