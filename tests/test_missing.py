"""--missing error|exclude: a study whose effect needs a missing value (empty, NA, NaN, '.') is
an error by default (today's message), or with ``exclude`` left out of every analysis and listed
in ``excluded`` with its row and the column, as metafor leaves out studies with NAs
(``na.action = na.omit``). References: tests/reference/metafor_missing.json, written by
tests/reference/make_reference_missing.R (metafor 3.8-1; metafor's own NA test data, dat.bcg and
dat.normand1999 with cells set to NA)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

import ivigmeta
from ivigmeta.errors import DataError, ModelError

REF = json.loads((Path(__file__).parent / "reference" / "metafor_missing.json").read_text())
#: the spellings of a missing cell (docs/input.md), used in turn
TOKENS = ("NA", "", "NaN", ".", " na ", "N/A")


def cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("IVIGMETA_")}
    environ["PYTHONPATH"] = str(ROOT)
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ivigmeta", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environ,
    )


def ok_json(result) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def csv_from_columns(columns: dict[str, list], keep=None) -> str:
    """The reference data as a CSV (None as each missing spelling in turn); ``keep``: the
    0-based rows to write (default all)."""
    names = list(columns)
    n = len(columns[names[0]])
    lines = [",".join(names)]
    t = 0
    for i in range(n):
        if keep is not None and i not in keep:
            continue
        cells = []
        for name in names:
            v = columns[name][i]
            if v is None:
                cells.append(TOKENS[t % len(TOKENS)])
                t += 1
            elif isinstance(v, float) and v.is_integer():
                cells.append(str(int(v)))
            else:
                cells.append(str(v))
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


CASES = [
    pytest.param(case, fit, id=f"{case['name']}-{case['measure']}-{fit['method']}")
    for case in REF["cases"]
    for fit in case["fits"]
]


def _measure(case) -> str | None:
    return None if case["measure"] == "given" else case["measure"]


def _tol(method: str) -> dict:
    # DL is closed-form; REML is iterated (metafor to threshold 1e-12)
    return {"rel": 1e-9, "abs": 1e-12} if method == "DL" else {"rel": 1e-6, "abs": 1e-9}


@pytest.mark.parametrize("case, ref", CASES)
def test_exclude_equals_metafor_na_omit(tmp_path, case, ref):
    path = tmp_path / "data.csv"
    path.write_text(csv_from_columns(case["columns"]))
    fit = ivigmeta.pool(path, measure=_measure(case), tau2=ref["method"], missing="exclude")
    tol = _tol(ref["method"])
    assert fit.k == ref["k"]
    assert fit.random.theta == pytest.approx(ref["beta"][0], **tol)
    assert fit.random.se == pytest.approx(ref["se"][0], **tol)
    assert fit.random.ci_low_theta == pytest.approx(ref["ci_lb"][0], **tol)
    assert fit.random.ci_high_theta == pytest.approx(ref["ci_ub"][0], **tol)
    assert fit.random.tau2 == pytest.approx(ref["tau2"], **tol)
    assert fit.heterogeneity.q == pytest.approx(ref["QE"], rel=1e-9)
    # the studies metafor omits are the ones listed, by their CSV row (position + 1)
    assert [e.row for e in fit.excluded] == [i + 1 for i in ref["omitted"]]
    assert all(e.reason.startswith("missing value in column '") for e in fit.excluded)


def test_exclude_names_the_missing_column_and_row(tmp_path):
    case = REF["cases"][0]  # metafor's NA test data: yi missing in study 1, vi in study 2
    path = tmp_path / "nas.csv"
    path.write_text(csv_from_columns(case["columns"]))
    fit = ivigmeta.pool(path, missing="exclude")
    assert [(e.study, e.row, e.reason) for e in fit.excluded] == [
        ("row 2", 2, "missing value in column 'yi'"),
        ("row 3", 3, "missing value in column 'vi'"),
    ]


def test_loo_blup_and_metareg_match_metafor():
    case = REF["cases"][0]
    text = csv_from_columns(case["columns"])
    fit = ivigmeta.pool({k: v for k, v in _columns_of(text).items()}, missing="exclude")
    loo = fit.loo()
    assert [r.shown.theta for r in loo.rows] == pytest.approx(
        case["leave1out_DL"]["estimate"], rel=1e-12
    )
    assert [r.shown.se for r in loo.rows] == pytest.approx(case["leave1out_DL"]["se"], rel=1e-12)
    blup = fit.blup()
    assert [r.blup for r in blup.rows] == pytest.approx(case["blup_DL"]["pred"], rel=1e-12)
    assert [r.blup_se for r in blup.rows] == pytest.approx(case["blup_DL"]["se"], rel=1e-12)
    assert [e.row for e in blup.excluded] == [2, 3]
    # the meta-regression also leaves out the study whose moderator is missing (row 4)
    ref = case["metareg_xi_DL"]
    reg = fit.metareg("xi")
    assert reg.k == ref["k"]
    assert [c.estimate for c in reg.coefficients] == pytest.approx(ref["beta"], rel=1e-10)
    assert [c.se for c in reg.coefficients] == pytest.approx(ref["se"], rel=1e-10)
    assert reg.tau2 == pytest.approx(ref["tau2"], rel=1e-10)
    assert reg.qe == pytest.approx(ref["QE"], rel=1e-10)


def _columns_of(text: str) -> dict[str, list[str]]:
    lines = [line.split(",") for line in text.splitlines()]
    return {name: [row[j] for row in lines[1:]] for j, name in enumerate(lines[0])}


# ----------------------------------------------------------------------------------------------
# the command line: the default is unchanged; exclude = the table without those rows

COUNTS = (
    "study,treat_events,treat_total,control_events,control_total,year,region\n"
    "A,4,123,11,139,1948,north\n"
    "B,NA,306,29,303,1949,south\n"
    "C,6,611,,618,1950,north\n"
    "D,62,13598,248,12867,1977,south\n"
    "E,33,5069,47,5808,1973,north\n"
    "F,180,1541,NaN,1451,1953,south\n"
    "G,8,2545,10,629,1973,north\n"
)
COUNTS_KEPT = [line for i, line in enumerate(COUNTS.splitlines()) if i not in (2, 3, 6)]


@pytest.mark.parametrize(
    "text, message",
    [
        (
            COUNTS,
            "Error: x.csv, row 3, column 'treat_events': missing value (expected a whole number "
            "of participants)",
        ),
        (
            "study,ai,bi,ci,di\nA,4,119,11,128\nB,6,NA,29,274\nC,3,200,5,300\n",
            "Error: x.csv, row 3, column 'bi': missing value (expected a whole number of "
            "participants)",
        ),
        (
            "study,yi,vi\nA,0.1,0.02\nB,0.3,NA\nC,-0.2,0.05\n",
            "Error: x.csv, row 3, column 'vi': missing value (expected a number: yi, vi are "
            "given together)",
        ),
        (
            "study,m1i,sd1i,n1i,m2i,sd2i,n2i\nA,10,2,20,9,2,21\nB,11,,22,9,2,20\nC,12,3,30,10,3,30\n",
            "Error: x.csv, row 3, column 'sd1i': missing value (expected a number for treat_sd)",
        ),
    ],
    ids=["counts", "nonevents", "yi-vi", "means"],
)
def test_default_is_still_the_error(tmp_path, text, message):
    (tmp_path / "x.csv").write_text(text)
    for extra in ((), ("--missing", "error")):
        result = cli("pool", "x.csv", *extra, cwd=tmp_path)
        assert result.returncode == 1
        assert result.stderr.strip().splitlines()[-1] == message
        assert "Traceback" not in result.stderr


def _pooled(payload: dict) -> dict:
    return {k: payload[k] for k in ("common", "random", "heterogeneity", "k")}


def test_exclude_pools_the_table_without_those_rows(tmp_path):
    (tmp_path / "x.csv").write_text(COUNTS)
    (tmp_path / "kept.csv").write_text("\n".join(COUNTS_KEPT) + "\n")
    got = ok_json(cli("pool", "x.csv", "--missing", "exclude", "-f", "json", cwd=tmp_path))
    want = ok_json(cli("pool", "kept.csv", "-f", "json", cwd=tmp_path))
    assert _pooled(got) == _pooled(want)
    assert want["excluded"] == []
    assert got["excluded"] == [
        {"study": "B", "reason": "missing value in column 'treat_events'", "row": 3},
        {"study": "C", "reason": "missing value in column 'control_events'", "row": 4},
        {"study": "F", "reason": "missing value in column 'control_events'", "row": 7},
    ]
    # the case of the option's value does not matter
    again = ok_json(cli("pool", "x.csv", "--missing", "EXCLUDE", "-f", "json", cwd=tmp_path))
    assert _pooled(again) == _pooled(got)


def test_exclusions_are_noted_and_footnoted(tmp_path):
    (tmp_path / "x.csv").write_text(COUNTS)
    result = cli("pool", "x.csv", "--missing", "exclude", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "note: x.csv, row 3: B excluded: missing value in column 'treat_events'" in (
        result.stderr
    )
    assert "Excluded: C (row 4): missing value in column 'control_events'" in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["pool"],
        ["heterogeneity"],
        ["subgroup", "--by", "region"],
        ["metareg", "--mod", "year"],
        ["loo"],
        ["cumulative"],
        ["influence"],
        ["bias"],
        ["blup"],
        ["gosh"],
        ["sof"],
        ["aggregate", "--cluster", "region", "--rho", "0.5"],
    ],
    ids=lambda c: c[0],
)
def test_every_command_lists_the_excluded_rows(tmp_path, command):
    (tmp_path / "x.csv").write_text(COUNTS)
    payload = ok_json(
        cli(command[0], "x.csv", *command[1:], "--missing", "exclude", "-f", "json", cwd=tmp_path)
    )
    assert [(e["row"], e["reason"]) for e in payload["excluded"]] == [
        (3, "missing value in column 'treat_events'"),
        (4, "missing value in column 'control_events'"),
        (7, "missing value in column 'control_events'"),
    ]
    # and without the option, each of them stops at the first missing value
    result = cli(command[0], "x.csv", *command[1:], "-f", "json", cwd=tmp_path)
    assert result.returncode == 1
    assert "row 3, column 'treat_events': missing value" in result.stderr


def test_report_passes_the_option_to_every_section(tmp_path):
    (tmp_path / "x.csv").write_text(COUNTS)
    result = cli(
        "report", "x.csv", "-o", "out", "--no-figures", "--missing", "exclude", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "out" / "report.md").read_text()
    assert "`ivigmeta pool x.csv --missing exclude`" in text
    assert "Excluded: B (row 3): missing value in column 'treat_events'" in text


def test_reproduce_accepts_the_option_in_args(tmp_path):
    (tmp_path / "x.csv").write_text(COUNTS)
    kept = ivigmeta.pool({k: v for k, v in _columns_of("\n".join(COUNTS_KEPT)).items()})
    printed = f"{kept.random.estimate:.2f}"
    (tmp_path / "published.toml").write_text(
        '[paper]\ntitle = "t"\ndata = "x.csv"\n\n[[number]]\nlabel = "pooled RR"\n'
        f'command = "pool"\nargs = ["--missing", "exclude"]\npath = "random.estimate"\n'
        f'printed = "{printed}"\n'
    )
    payload = ok_json(cli("reproduce", "-f", "json", cwd=tmp_path))
    assert payload["summary"]["ok"] is True


@pytest.mark.parametrize(
    "row, message",
    [
        ("B,NA,abc,29,303", "column 'treat_total': 'abc' is not a number"),
        ("B,NA,306,-2,303", "column 'control_events': '-2' is negative"),
        ("B,NA,306,40,30", "column 'control_events': 40 events exceed control_total 30"),
        ("B,,0,29,303", "column 'treat_total': '0' is zero"),
        ("B,3,1.5,,303", "column 'treat_total': '1.5' is not a whole number"),
    ],
)
def test_a_wrong_value_stays_an_error_beside_a_missing_one(tmp_path, row, message):
    head = "study,treat_events,treat_total,control_events,control_total\nA,4,123,11,139\n"
    (tmp_path / "x.csv").write_text(head + row + "\nC,6,611,20,618\n")
    result = cli("pool", "x.csv", "--missing", "exclude", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"Error: x.csv, row 3, {message}")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "text, message",
    [
        ("study,yi,vi\nA,0.1,0.02\nB,NA,-1\nC,0.2,0.03\n", "column 'vi': '-1' is not positive"),
        ("study,yi,vi\nA,0.1,0.02\nB,x,NA\nC,0.2,0.03\n", "column 'yi': 'x' is not a number"),
        (
            "study,m1i,sd1i,n1i,m2i,sd2i,n2i\nA,10,2,20,9,2,21\nB,NA,0,22,9,2,20\nC,1,2,9,1,2,9\n",
            "column 'sd1i': '0' is not allowed",
        ),
        (
            "study,xi,ni\nA,3,20\nB,NA,0\nC,5,30\n",
            "column 'ni': '0' is not allowed",
        ),
        (
            "study,year,ai,bi,ci,di\nA,2001,4,119,11,128\nB,20x1,NA,300,29,274\nC,2003,3,9,4,9\n",
            "column 'year': '20x1' is not a year",
        ),
        (
            "study,ai,bi,ci,di\nA,4,119,11,128\nB,NA,300,inf,274\nC,3,9,4,9\n",
            "column 'ci': 'inf' is not a finite number",
        ),
    ],
    ids=["vi", "yi", "sd", "proportion-n", "year", "inf"],
)
def test_other_kinds_keep_their_errors_beside_a_missing_value(tmp_path, text, message):
    (tmp_path / "x.csv").write_text(text)
    result = cli("pool", "x.csv", "--missing", "exclude", cwd=tmp_path)
    assert result.returncode == 1
    assert f"Error: x.csv, row 3, {message}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "text",
    [
        "study,ai,bi,ci,di\nA,4,119,11,128\nB,,300,29,274\nC,3,90,4,95\nD,9,80,12,70\n",
        "study,yi,vi\nA,0.1,0.02\nB,NA,0.01\nC,0.2,0.03\nD,-0.1,0.04\n",
        "study,theta,se\nA,0.1,0.2\nB,0.4,.\nC,0.2,0.3\nD,-0.1,0.15\n",
        "study,estimate,ci_low,ci_high\nA,1.1,0.8,1.5\nB,1.3,NA,1.9\nC,0.9,0.7,1.2\nD,1,0.6,1.6\n",
        "study,m1i,sd1i,n1i,m2i,sd2i,n2i\nA,10,2,20,9,2,21\nB,11,2,NA,9,2,20\n"
        "C,12,3,30,10,3,30\nD,8,2,15,9,3,16\n",
        "study,x1i,t1i,x2i,t2i\nA,4,100,8,110\nB,NA,90,5,95\nC,7,200,9,180\nD,2,50,6,60\n",
        "study,xi,ni\nA,3,20\nB,4,NaN\nC,5,30\nD,8,40\n",
        "study,ri,ni\nA,0.3,40\nB,NA,50\nC,0.5,60\nD,0.1,45\n",
        "study,mi,sdi,ni\nA,5,1,20\nB,6,,25\nC,4,1.5,30\nD,5.5,2,18\n",
        "study,xi,ti\nA,4,100\nB,5,NA\nC,7,200\nD,2,50\n",
    ],
    ids=[
        "nonevents", "yi-vi", "theta-se", "ci", "means", "rates", "proportions", "correlations",
        "mean", "rate",
    ],
)  # fmt: skip
def test_every_kind_of_row_is_excluded_as_the_table_without_it(text):
    lines = text.splitlines()
    without = "\n".join(lines[:2] + lines[3:]) + "\n"
    got = ivigmeta.pool(_columns_of(text), missing="exclude")
    want = ivigmeta.pool(_columns_of(without))
    assert got.k == want.k == 3
    assert got.random.theta == want.random.theta
    assert got.random.se == want.random.se
    assert [(e.study, e.row) for e in got.excluded] == [("B", 3)]
    assert got.excluded[0].reason.startswith("missing value in column '")
    with pytest.raises(DataError, match="row 3, column '.*': missing value"):
        ivigmeta.pool(_columns_of(text))


def test_every_study_excluded_is_no_usable_studies_naming_the_reasons(tmp_path):
    (tmp_path / "x.csv").write_text("study,ai,bi,ci,di\nA,NA,119,11,128\nB,6,300,,274\n")
    result = cli("pool", "x.csv", "--missing", "exclude", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: x.csv: no usable studies (excluded: A (row 2): missing value in column 'ai'; "
        "B (row 3): missing value in column 'ci')"
    )
    with pytest.raises(ModelError, match="no usable studies"):
        ivigmeta.pool(tmp_path / "x.csv", missing="exclude")


def test_missing_values_elsewhere_are_unaffected(tmp_path):
    # a missing label is "row N" and the study is analysed; a missing moderator, year or
    # subgroup label leaves the study in the pooled analysis, in both modes
    text = (
        "study,year,region,ablat,ai,bi,ci,di\n,NA,,NA,4,119,11,128\nB,1949,south,55,6,300,29,274\n"
        "C,1960,north,42,3,228,11,209\n"
    )
    (tmp_path / "x.csv").write_text(text)
    for extra in ((), ("--missing", "exclude")):
        payload = ok_json(cli("pool", "x.csv", *extra, "-f", "json", cwd=tmp_path))
        assert payload["k"] == 3 and payload["excluded"] == []
        assert payload["studies"][0]["study"] == "row 2"


def test_bad_option_values():
    result = cli("pool", "--missing", "maybe")
    assert result.returncode == 2
    assert "Invalid value for '--missing': 'maybe' is not one of 'error', 'exclude'" in (
        result.stderr
    )
    with pytest.raises(DataError, match="missing='maybe' is not known"):
        ivigmeta.pool({"yi": [1], "vi": [1]}, missing="maybe")
    with pytest.raises(DataError, match="missing='maybe' is not known"):
        ivigmeta.batch({"g": ["a"], "yi": [1], "vi": [1]}, "g", missing="maybe")


# ----------------------------------------------------------------------------------------------
# batch: the same exclusions, counted in n_excluded

BATCH = (
    "g,study,treat_events,treat_total,control_events,control_total\n"
    + "".join(f"x,{line}\n" for line in COUNTS.splitlines()[1:] if line)
    + "y,H,NA,10,1,10\ny,I,1,10,.,10\n"
    + "z,J,3,40,7,41\nz,K,0,30,0,31\nz,L,5,50,,50\nz,M,9,60,12,62\n"
)


def _batch_rows(result) -> dict[str, dict[str, str]]:
    assert result.returncode == 0, result.stderr
    return {row["g"]: row for row in csv.DictReader(io.StringIO(result.stdout))}


def _strip_extra_columns(text: str) -> str:
    out = []
    for line in text.splitlines():
        cells = line.split(",")
        out.append(",".join(cells[:6]))
    return "\n".join(out) + "\n"


def test_batch_equals_pool_with_exclude(tmp_path):
    text = _strip_extra_columns(BATCH)
    (tmp_path / "b.csv").write_text(text)
    rows = _batch_rows(cli("batch", "b.csv", "-g", "g", "--missing", "exclude", cwd=tmp_path))
    header, *body = text.splitlines()
    for group in ("x", "z"):
        part = [header] + [line for line in body if line.startswith(group + ",")]
        (tmp_path / f"{group}.csv").write_text("\n".join(part) + "\n")
        pooled = ok_json(
            cli("pool", f"{group}.csv", "--missing", "exclude", "-f", "json", cwd=tmp_path)
        )
        row = rows[group]
        assert row["status"] == "ok"
        assert int(row["k"]) == pooled["k"]
        assert int(row["n_excluded"]) == len(pooled["excluded"])
        assert float(row["random_theta"]) == pytest.approx(pooled["random"]["theta"], rel=1e-12)
        assert float(row["random_se"]) == pytest.approx(pooled["random"]["se"], rel=1e-12)
        assert float(row["tau2"]) == pytest.approx(pooled["random"]["tau2"], rel=1e-12, abs=1e-15)
    assert (rows["x"]["k"], rows["x"]["n_excluded"]) == ("4", "3")
    # z: one missing value and one double zero, both counted
    assert (rows["z"]["k"], rows["z"]["n_excluded"]) == ("2", "2")
    assert rows["y"]["status"] == "error"
    assert rows["y"]["reason"] == (
        "no usable studies (excluded: H (row 9): missing value in column 'treat_events'; "
        "I (row 10): missing value in column 'control_events')"
    )
    # the default: a group with a missing value fails with pool's message
    default = _batch_rows(cli("batch", "b.csv", "-g", "g", cwd=tmp_path))
    assert default["x"]["status"] == "error"
    assert default["x"]["reason"] == (
        "b.csv, row 3, column 'treat_events': missing value (expected a whole number of "
        "participants)"
    )
    assert default["z"]["reason"].startswith("b.csv, row 13, column 'control_events'")


def test_batch_quoted_input_and_a_wrong_value_beside_a_missing_one(tmp_path):
    # a double quote sends the reader through the csv module, row by row
    text = (
        'g,study,treat_events,treat_total,control_events,control_total\n"a",A,4,40,5,41\n'
        "a,B,NA,30,6,31\na,C,7,50,9,52\nb,D,NA,x,3,30\nb,E,3,30,4,30\n"
    )
    (tmp_path / "b.csv").write_text(text)
    rows = _batch_rows(cli("batch", "b.csv", "-g", "g", "--missing", "exclude", cwd=tmp_path))
    assert (rows["a"]["status"], rows["a"]["k"], rows["a"]["n_excluded"]) == ("ok", "2", "1")
    assert rows["b"]["status"] == "error"
    assert "row 5, column 'treat_total': 'x' is not a number" in rows["b"]["reason"]


def test_batch_of_given_effects_and_means(tmp_path):
    text = (
        "g,study,yi,vi\na,A,0.1,0.02\na,B,NA,0.01\na,C,0.3,0.05\na,D,-0.1,\nb,E,0.2,0.01\n"
        "b,F,0.4,0.02\n"
    )
    (tmp_path / "e.csv").write_text(text)
    rows = _batch_rows(cli("batch", "e.csv", "-g", "g", "--missing", "exclude", cwd=tmp_path))
    pooled = ivigmeta.pool(
        {"study": ["A", "B", "C", "D"], "yi": ["0.1", "NA", "0.3", "-0.1"],
         "vi": ["0.02", "0.01", "0.05", ""]},
        missing="exclude",
    )  # fmt: skip
    assert (rows["a"]["k"], rows["a"]["n_excluded"]) == ("2", "2")
    assert float(rows["a"]["random_theta"]) == pytest.approx(pooled.random.theta, rel=1e-12)
    means = "g,m1i,sd1i,n1i,m2i,sd2i,n2i\na,10,2,20,9,2,21\na,11,NA,22,9,2,20\na,12,3,30,10,3,30\n"
    (tmp_path / "m.csv").write_text(means)
    rows = _batch_rows(cli("batch", "m.csv", "-g", "g", "--missing", "exclude", cwd=tmp_path))
    assert (rows["a"]["k"], rows["a"]["n_excluded"]) == ("2", "1")


def test_batch_api_with_a_dataframe():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {
            "g": ["a", "a", "a", "b", "b"],
            "study": ["A", "B", "C", "D", "E"],
            "treat_events": [4, None, 7, 2, 3],
            "treat_total": [40, 30, 50, 20, 30],
            "control_events": [5, 6, 9, 3, 4],
            "control_total": [41, 31, 52, 20, 30],
        }
    )
    out = ivigmeta.batch(frame, "g", missing="exclude").set_index("g")
    assert (out.loc["a", "k"], out.loc["a", "n_excluded"]) == (2, 1)
    pooled = ivigmeta.pool(frame[frame.g == "a"].drop(columns="g"), missing="exclude")
    assert out.loc["a", "random_theta"] == pytest.approx(pooled.random.theta, rel=1e-12)
    default = ivigmeta.batch(frame, "g").set_index("g")
    assert default.loc["a", "status"] == "error"
    assert "missing value" in default.loc["a", "reason"]


# ----------------------------------------------------------------------------------------------
# settings: ivigmeta.toml, IVIGMETA_MISSING, ivigmeta config


def test_settings_file_and_environment(tmp_path):
    (tmp_path / "x.csv").write_text(COUNTS)
    (tmp_path / "b.csv").write_text(_strip_extra_columns(BATCH))
    assert cli("pool", "x.csv", cwd=tmp_path).returncode == 1
    env = ok_json(
        cli("pool", "x.csv", "-f", "json", cwd=tmp_path, env={"IVIGMETA_MISSING": "exclude"})
    )
    assert len(env["excluded"]) == 3
    (tmp_path / "ivigmeta.toml").write_text('missing = "exclude"\n')
    got = ok_json(cli("pool", "x.csv", "-f", "json", cwd=tmp_path))
    assert [e["row"] for e in got["excluded"]] == [3, 4, 7]
    rows = _batch_rows(cli("batch", "b.csv", "-g", "g", cwd=tmp_path))
    assert rows["x"]["n_excluded"] == "3"
    # the command line wins
    assert cli("pool", "x.csv", "--missing", "error", cwd=tmp_path).returncode == 1
    shown = ok_json(cli("config", "pool", "-f", "json", cwd=tmp_path))
    by = {s["option"]: s for s in shown["settings"]}
    assert (by["missing"]["value"], by["missing"]["source"]) == ("exclude", "ivigmeta.toml")
    (tmp_path / "ivigmeta.toml").write_text('missing = "maybe"\n')
    bad = cli("pool", "x.csv", cwd=tmp_path)
    assert bad.returncode == 1
    assert bad.stderr.startswith("Error: ivigmeta.toml: missing = 'maybe'")
