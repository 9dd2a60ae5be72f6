"""``ivigmeta aggregate`` against metafor's ``aggregate.escalc`` (tests/reference/
metafor_aggregate.json, written by tests/reference/make_reference_aggregate.R:

    agg <- aggregate(escalc(...), cluster = CLUSTER, struct = STRUCT, rho = RHO, phi = PHI,
                     time = TIME, weighted = WEIGHTED, addk = TRUE)
    rma(yi, vi, data = agg, method = "DL" / "REML")

on dat.assink2016 (given yi, vi; clusters study; CS, CAR with time = esid, CS+CAR, ID,
unweighted, a per-cluster rho, a negative rho), dat.konstantopoulos2011 (clusters district) and
the 2x2 counts of dat.bcg (RR, clusters alloc)), the pipeline ``aggregate -f csv | pool``, the
command line's formats and its errors.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from tolerances import CLOSED_FORM, ITERATIVE, close

import ivigmeta
from ivigmeta.errors import DataError, ModelError
from ivigmeta.methods.aggregate import combine

REF = json.loads((Path(__file__).parent / "reference" / "metafor_aggregate.json").read_text())
RECORDS = {r["name"]: r for r in REF["records"]}

# ivigmeta reads a column named year as the publication year, a whole number: dat.assink2016's
# centred year (4.5, -8.5 ...) is written under another name.
RENAMED = {"assink2016": {"year": "year_c"}}
# Columns of metafor's aggregated data frame that the aggregated table does not carry: the
# study label (each row is labelled by its cluster) and the counts (replaced by yi and vi).
NOT_CARRIED = {
    "konstantopoulos2011": {"study"},
    "bcg": {"author", "tpos", "tneg", "cpos", "cneg"},
}
# ... and those it carries under another name: a year that varies within a cluster is its mean.
CARRIED_AS = {
    "assink2016": {"year": "year_c"},
    "bcg": {"year": "year_mean"},
    "konstantopoulos2011": {"year": "year_mean"},
}


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def write_data(name: str, path: Path) -> Path:
    cols = REF["data"][name]
    header = [RENAMED.get(name, {}).get(c, c) for c in cols]
    n = len(next(iter(cols.values())))
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for i in range(n):
            w.writerow([_cell(cols[c][i]) for c in cols])
    return path


@pytest.fixture
def data_path(tmp_path):
    return lambda name: write_data(name, tmp_path / f"{name}.csv")


def options(rec: dict) -> dict:
    out = {"cluster": rec["cluster"], "struct": rec["struct"], "weighted": rec["weighted"]}
    if rec.get("rho_column"):
        out["rho"] = rec["rho_column"]
    elif rec.get("rho") is not None:
        out["rho"] = rec["rho"]
    if rec.get("phi") is not None:
        out["phi"] = rec["phi"]
    if rec.get("time"):
        out["time"] = rec["time"]
    return out


def cli_options(rec: dict) -> list[str]:
    args = ["--cluster", rec["cluster"], "--struct", rec["struct"]]
    if rec.get("rho_column"):
        args += ["--rho", rec["rho_column"]]
    elif rec.get("rho") is not None:
        args += ["--rho", repr(rec["rho"])]
    if rec.get("phi") is not None:
        args += ["--phi", repr(rec["phi"])]
    if rec.get("time"):
        args += ["--time", rec["time"]]
    if not rec["weighted"]:
        args.append("--unweighted")
    if rec["measure"] != "GEN":
        args += ["--measure", rec["measure"]]
    return args


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_aggregated_effects_are_metafors(name, data_path):
    rec = RECORDS[name]
    measure = None if rec["measure"] == "GEN" else rec["measure"]
    agg = ivigmeta.aggregate(data_path(rec["data"]), measure=measure, **options(rec))
    assert [c.cluster for c in agg.clusters] == rec["clusters"]
    assert [c.k for c in agg.clusters] == rec["ki"]
    assert agg.k == sum(rec["ki"]) and agg.excluded == ()
    for c, y, v in zip(agg.clusters, rec["yi"], rec["vi"]):
        assert close(c.yi, y, CLOSED_FORM), (c.cluster, c.yi, y)
        assert close(c.vi, v, CLOSED_FORM), (c.cluster, c.vi, v)
    # The other columns: metafor's mean of a number, most frequent value of a text.
    renamed = CARRIED_AS.get(rec["data"], {})
    expected = {
        renamed.get(col, col): values
        for col, values in rec["columns"].items()
        if col not in NOT_CARRIED.get(rec["data"], set())
    }
    assert set(agg.columns) == set(expected)
    for c, i in zip(agg.clusters, range(len(agg.clusters))):
        fields = c.fields_dict
        for col, values in expected.items():
            ref = values[i]
            if isinstance(ref, str):
                assert fields[col] == ref, (c.cluster, col)
            else:
                assert close(float(fields[col]), ref, CLOSED_FORM), (c.cluster, col)


def test_metafors_own_test_values(data_path):
    """metafor's tests/testthat/test_misc_aggregate.r, to its printed 6 decimals."""
    agg = ivigmeta.aggregate(data_path("assink2016"), cluster="study", rho=0.6)
    assert [round(c.yi, 6) for c in agg.clusters][:4] == [0.162877, 0.406036, 1.079003, -0.0447]
    assert [round(c.vi, 6) for c in agg.clusters][:3] == [0.019697, 0.005572, 0.083174]
    agg = ivigmeta.aggregate(data_path("konstantopoulos2011"), cluster="district", struct="ID")
    assert [round(c.yi, 6) for c in agg.clusters][:3] == [-0.125687, 0.06654, 0.350303]


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_pipeline_into_pool_gives_metafors_rma(name, data_path, run, tmp_path):
    """aggregate -f csv > agg.csv && pool agg.csv: rma(yi, vi, data = agg)."""
    rec = RECORDS[name]
    out = run("aggregate", str(data_path(rec["data"])), *cli_options(rec), "-f", "csv")
    assert out.exit_code == 0, out.output
    agg_csv = tmp_path / "agg.csv"
    agg_csv.write_text(out.stdout, encoding="utf-8")
    header = out.stdout.splitlines()[0].split(",")
    assert header[:3] == ["study", "yi", "vi"]
    assert ("measure" in header) == (rec["measure"] != "GEN")
    measure = [] if rec["measure"] == "GEN" else ["--measure", rec["measure"]]
    for fit in rec["fits"]:
        tol = CLOSED_FORM if fit["method"] == "DL" else ITERATIVE
        res = run("pool", str(agg_csv), *measure, "--tau2", fit["method"], "-f", "json")
        assert res.exit_code == 0, res.output
        d = json.loads(res.stdout)
        assert d["k"] == fit["k"] == len(rec["clusters"])
        assert close(d["random"]["theta"], fit["beta"], tol)
        assert close(d["random"]["se"], fit["se"], tol)
        assert close(d["random"]["tau2"], fit["tau2"], tol)
        assert close(d["heterogeneity"]["q"], fit["QE"], CLOSED_FORM)
        assert [s["study"] for s in d["studies"]] == rec["clusters"]


def test_json_table_and_markdown(data_path, run):
    path = str(data_path("assink2016"))
    res = run("aggregate", path, "--cluster", "study", "--rho", "0.6", "-f", "json")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["k"] + len(d["excluded"]) == 100 and d["n_clusters"] == 17
    assert d["struct"] == "CS" and d["rho"] == 0.6 and d["measure_known"] is False
    first = d["clusters"][0]
    assert first["cluster"] == "1" and first["k"] == 6 and first["rows"] == [2, 3, 4, 5, 6, 7]
    assert first["fields"]["deltype"] == "general" and first["fields"]["esid"] == 3.5
    assert "studies" not in d
    table = run("aggregate", path, "--cluster", "study", "--rho", "0.6")
    assert table.exit_code == 0 and "Aggregated effects" in table.stdout
    assert "0.1629" in table.stdout
    md = run("aggregate", path, "--cluster", "study", "--rho", "0.6", "-f", "markdown")
    assert md.exit_code == 0 and md.stdout.startswith("### Aggregated effects")
    # one line about the repeated study labels, not one per label
    assert table.stderr.count("share a study label") == 1
    assert "have the same study label" not in table.stderr


def test_excluded_studies_are_listed_before_aggregation(tmp_path, run):
    path = tmp_path / "zeros.csv"
    path.write_text(
        "study,outcome,treat_events,treat_total,control_events,control_total\n"
        "A,1,3,50,6,50\nA,2,0,50,0,50\nA,3,5,50,9,50\nB,1,2,40,4,40\n",
        encoding="utf-8",
    )
    res = run("aggregate", str(path), "--cluster", "study", "--rho", "0.5", "-f", "json")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert [(c["cluster"], c["k"], c["rows"]) for c in d["clusters"]] == [
        ("A", 2, [2, 4]),
        ("B", 1, [5]),
    ]
    assert [(e["row"], "double zero" in e["reason"]) for e in d["excluded"]] == [(3, True)]
    assert "row 3: A excluded" in res.stderr
    # the count columns are not carried (pool would recompute the effects from them)
    csv_out = run("aggregate", str(path), "--cluster", "study", "--rho", "0.5", "-f", "csv")
    assert csv_out.stdout.splitlines()[0] == "study,yi,vi,measure,ki,outcome"
    # a single-effect cluster keeps its effect
    assert d["clusters"][1]["vi"] == pytest.approx(1 / 2 - 1 / 40 + 1 / 4 - 1 / 40, rel=1e-12)


def test_unweighted_and_id_by_formula():
    """Unweighted: mean, 1'V1 / k²; ID weighted: the inverse-variance mean."""
    y, v = [0.1, 0.4, 0.3], [0.02, 0.05, 0.04]
    (m,), (var,) = combine(y, v, [[0, 1, 2]], "CS", rho=[0.5], weighted=False)
    s = [x**0.5 for x in v]
    cov = sum(v) + 2 * 0.5 * (s[0] * s[1] + s[0] * s[2] + s[1] * s[2])
    assert m == pytest.approx(sum(y) / 3, rel=1e-14) and var == pytest.approx(cov / 9, rel=1e-14)
    (m,), (var,) = combine(y, v, [[0, 1, 2]], "ID")
    w = [1 / x for x in v]
    assert var == pytest.approx(1 / sum(w), rel=1e-14)
    assert m == pytest.approx(sum(a * b for a, b in zip(w, y)) / sum(w), rel=1e-14)


# ---------------------------------------------------------------------------------------------
# Errors: one line, exit status 1 (click's usage errors: 2)


def _error(res) -> str:
    lines = [x for x in res.stderr.splitlines() if x and not x.startswith("note: ")]
    assert res.exit_code == 1, res.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    assert "Traceback" not in res.output
    return lines[0]


def test_unknown_column_says_did_you_mean(data_path, run):
    path = str(data_path("assink2016"))
    msg = _error(run("aggregate", path, "--cluster", "stdy", "--rho", "0.6"))
    assert "no column 'stdy' (did you mean 'study'?)" in msg
    msg = _error(run("aggregate", path, "--cluster", "study", "--struct", "CAR", "--phi", "0.5",
                     "--time", "esd"))  # fmt: skip
    assert "no column 'esd' (did you mean 'esid'?)" in msg


@pytest.mark.parametrize("value", ["1.5", "-1.01"])
def test_rho_outside_minus_one_one(data_path, run, value):
    msg = _error(
        run("aggregate", str(data_path("assink2016")), "--cluster", "study", "--rho", value)
    )
    assert f"--rho {float(value):g} is outside [-1, 1]" in msg
    assert RECORDS and REF["errors"][1]["error"] == "Value(s) of 'rho' must be in [-1,1]."


def test_phi_outside_zero_one(data_path, run):
    path = str(data_path("assink2016"))
    args = ["--cluster", "study", "--struct", "CAR", "--time", "esid", "--phi", "-0.2"]
    assert "--phi -0.2 is outside [0, 1]" in _error(run("aggregate", path, *args))


def test_car_needs_time_and_cs_needs_rho(data_path, run):
    path = str(data_path("assink2016"))
    msg = _error(run("aggregate", path, "--cluster", "study", "--struct", "CAR", "--phi", "0.5"))
    assert "--struct CAR needs --time COL" in msg
    assert REF["errors"][2]["error"].startswith("Must specify 'time'")
    assert "--struct CS needs --rho" in _error(run("aggregate", path, "--cluster", "study"))
    ok = run("aggregate", path, "--cluster", "study", "--struct", "ID", "--rho", "0.3")
    assert ok.exit_code == 0 and "--rho is not used by --struct ID" in ok.stderr


def test_not_positive_definite(data_path, run):
    """rho = -1: metafor refuses ("Cannot aggregate estimates with a non-positive-definite 'V'
    matrix."); so does ivigmeta, naming the first such cluster."""
    assert "non-positive-definite" in REF["errors"][0]["error"]
    path = str(data_path("assink2016"))
    msg = _error(run("aggregate", path, "--cluster", "study", "--rho", "-1"))
    assert "V of cluster '1' is not positive definite (CS with rho = -1)" in msg
    with pytest.raises(ModelError, match="not positive definite"):
        combine([0.1, 0.2], [0.01, 0.01], [[0, 1]], "CS", rho=[-1.0])


def test_empty_cluster_value_names_the_row(tmp_path, run):
    path = tmp_path / "e.csv"
    path.write_text("study,arm,yi,vi\nA,x,0.1,0.01\nB,,0.2,0.02\nC,y,0.3,0.03\n", encoding="utf-8")
    msg = _error(run("aggregate", str(path), "--cluster", "arm", "--rho", "0.5"))
    assert f"{path}, row 3, column 'arm': no cluster value" in msg
    with pytest.raises(DataError, match="row 3, column 'arm'"):
        ivigmeta.aggregate(str(path), cluster="arm", rho=0.5)


def test_bad_time_and_rho_columns_name_the_row(tmp_path, run):
    path = tmp_path / "t.csv"
    path.write_text(
        "study,t,r,yi,vi\nA,1,0.5,0.1,0.01\nA,two,0.5,0.2,0.02\nB,1,0.2,0.3,0.03\nB,2,0.3,0.1,0.02\n",
        encoding="utf-8",
    )
    args = ["--cluster", "study", "--struct", "CAR", "--phi", "0.5", "--time", "t"]
    msg = _error(run("aggregate", str(path), *args))
    assert "row 3, column 't': 'two' is not a number" in msg
    msg = _error(run("aggregate", str(path), "--cluster", "study", "--rho", "r"))
    assert "row 5, column 'r': 0.3 differs from 0.2 in row 4 of the same cluster 'B'" in msg


def test_unknown_struct_is_a_usage_error(data_path, run):
    res = run("aggregate", str(data_path("assink2016")), "--cluster", "study", "--struct", "AR")
    assert res.exit_code == 2 and "'AR' is not one of" in res.output
