"""The model's matrices against metafor's vcov(fit, type = ...), hatvalues(fit, type = "matrix")
and weights(fit, type = "matrix") (tests/reference/metafor_matrices.json, written by
tests/reference/make_reference_matrices.R:

    fit <- rma(yi, vi, mods = MODS, method = METHOD, test = TEST, [weights = w], data = es,
               control = list(threshold = 1e-13, maxiter = 10000, stepadj = 0.5))
    vcov(fit); vcov(fit, type = "obs"); vcov(fit, type = "fitted"); vcov(fit, type = "resid")
    hatvalues(fit, type = "matrix"); weights(fit, type = "matrix")
    fit <- rma.mh(measure = M, ...); fit <- rma.peto(...); weights(fit, type = "matrix") ...

on dat.bcg (log RR; ~1, ~ablat, ~ablat + year; user weights 1:13) and dat.nielweise2008 (MH
IRR, IRD)), run through the CLI, and the command's formats and errors.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import counts_csv
from tolerances import CLOSED_FORM, ITERATIVE, close

from ivigmeta.cli import cli

REF = json.loads((Path(__file__).parent / "reference" / "metafor_matrices.json").read_text())
KINDS = ("coef", "obs", "fitted", "resid", "hat", "weights")
REF_KEY = {"coef": "vcov"}


def _run(*args: str):
    return CliRunner().invoke(cli, ["matrix", *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def bcg_csv(tmp_path_factory) -> str:
    base = tmp_path_factory.mktemp("matrices")
    return counts_csv(base / "bcg.csv", REF["datasets"]["bcg"], ("ablat", "w"))


@pytest.fixture(scope="module")
def rates_csv(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("matrices") / "niel.csv"
    lines = ["study,treat_events,treat_time,control_events,control_time"]
    for r in REF["datasets"]["nielweise2008"]:
        lines.append(f"{r['slab']},{r['x1i']},{r['t1i']},{r['x2i']},{r['t2i']}")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _options(rec: dict) -> list[str]:
    args = ["--measure", rec["measure"]]
    for col in rec["mods"].lstrip("~").split("+"):
        if col.strip() != "1":
            args += ["--mod", col.strip()]
    if rec["method"] == "FE":
        args += ["--model", "common"]
    else:
        args += ["--tau2", rec["method"]]
    args += ["--ci", "hk" if rec["test"] == "knha" else "z"]
    return args


def _cases(rec: dict) -> str:
    weights = "-w" if rec["user_weights"] else ""
    return f"{rec['mods']}-{rec['method']}-{rec['test']}{weights}"


UNI = REF["rma_uni"]


def _assert_matrix(ours: list[list[float]], ref: list[list[float]], rel: float) -> None:
    assert len(ours) == len(ref)
    scale = max(abs(x) for row in ref for x in row)
    bad = [
        (i, j, a, b)
        for i, (row_a, row_b) in enumerate(zip(ours, ref))
        for j, (a, b) in enumerate(zip(row_a, row_b, strict=True))
        # relative to the matrix's largest cell: cells near 0 (exactly 0 in exact arithmetic,
        # or small differences of large terms) carry the rounding of the large ones
        if not (close(a, b, rel) or abs(a - b) <= rel * scale)
    ]
    assert not bad, bad[:5]


@pytest.mark.parametrize("rec", UNI, ids=[_cases(r) for r in UNI])
@pytest.mark.parametrize("kind", KINDS)
def test_matrices_match_metafor(bcg_csv, rec, kind):
    if rec["user_weights"] and rec["test"] != "z":
        pytest.skip("user weights take --ci z")
    args = _options(rec) + (["--weights", "w"] if rec["user_weights"] else [])
    out = _run(bcg_csv, "--type", kind, "--format", "json", *args)
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout)
    rel = CLOSED_FORM if rec["method"] in ("DL", "FE") else ITERATIVE
    assert close(got["tau2"], rec["tau2"], rel, abs_floor=1e-12)
    assert got["type"] == kind and got["k"] == rec["k"]
    if kind != "coef":
        years = [r["year"] for r in REF["datasets"]["bcg"]]
        assert got["labels"] == [f"{s} ({y})" for s, y in zip(rec["slab"], years)]
        assert got["rows"] == list(range(2, rec["k"] + 2))
    _assert_matrix(got["matrix"], rec[REF_KEY.get(kind, kind)], rel)


def test_hat_and_weight_diagonals_match_metafor(bcg_csv):
    """The diagonals are metafor's hatvalues(fit) and (as percentages) weights(fit)."""
    for rec in UNI:
        args = _options(rec) + (["--weights", "w"] if rec["user_weights"] else [])
        hat = json.loads(_run(bcg_csv, "--type", "hat", "--format", "json", *args).stdout)
        w = json.loads(_run(bcg_csv, "--type", "weights", "--format", "json", *args).stdout)
        diag_h = [hat["matrix"][i][i] for i in range(rec["k"])]
        diag_w = [w["matrix"][i][i] for i in range(rec["k"])]
        pct = [100 * x / sum(diag_w) for x in diag_w]
        assert all(close(a, b, ITERATIVE) for a, b in zip(diag_h, rec["hat_diagonal"])), rec
        assert all(close(a, b, ITERATIVE) for a, b in zip(pct, rec["weights_percent"])), rec


COUNTS = REF["counts"]


@pytest.mark.parametrize("rec", COUNTS, ids=[f"{r['method']}-{r['measure']}" for r in COUNTS])
@pytest.mark.parametrize("kind", ("coef", "fitted", "weights"))
def test_counts_matrices_match_metafor(bcg_csv, rates_csv, rec, kind):
    path = rates_csv if rec["dataset"] == "nielweise2008" else bcg_csv
    measure = "OR" if rec["measure"] == "PETO" else rec["measure"]
    args = ["--measure", measure, "--model", "common", "--common", rec["method"]]
    out = _run(path, "--type", kind, "--format", "json", *args)
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout)
    assert got["common_method"] == rec["method"]
    _assert_matrix(got["matrix"], rec[REF_KEY.get(kind, kind)], CLOSED_FORM)


def test_counts_fit_has_no_residual_matrix(bcg_csv):
    out = _run(bcg_csv, "--type", "resid", "--model", "common", "--common", "MH")
    assert out.exit_code == 1
    assert out.stderr.strip() == (
        "Error: a Mantel-Haenszel fit has no 'resid' matrix (it has: coef, fitted, weights)"
    )


def test_table_and_csv(bcg_csv):
    out = _run(bcg_csv, "--type", "fitted", "--mod", "ablat", "--tau2", "REML")
    assert out.exit_code == 0, out.output
    assert "Variance-covariance matrix of the fitted values" in out.stdout
    assert "1 Aronson 1948 (1948)" in out.stdout
    assert "Columns are the studies in the order of the rows" in out.stdout
    rec = next(r for r in UNI if r["mods"] == "~ablat" and r["method"] == "REML")
    assert f"{rec['fitted'][0][0]:.4g}" in out.stdout
    csv_out = _run(bcg_csv, "--type", "coef", "--mod", "ablat", "--tau2", "REML", "--format", "csv")
    lines = csv_out.stdout.splitlines()
    assert lines[0] == "label,intercept,ablat"
    first = lines[1].split(",")
    assert first[0] == "intercept"
    assert close(float(first[2]), rec["vcov"][0][1], ITERATIVE)


def test_table_shows_rounding_noise_as_zero():
    """Studies of different subgroups have residuals that are uncorrelated in exact arithmetic
    (the hat matrix of one dummy moderator is block diagonal): the table prints those cells as
    0, where the computed ones are rounding noise of about 1e-18."""
    studies = str(Path(__file__).resolve().parent.parent / "studies.csv")
    out = _run(studies, "--type", "resid", "--mod", "nk_criterion")
    assert out.exit_code == 0
    got = json.loads(
        _run(studies, "--type", "resid", "--mod", "nk_criterion", "--format", "json").stdout
    )
    rows = [line for line in out.stdout.splitlines() if line[:2] in {f"{i} " for i in range(1, 9)}]
    assert len(rows) == 8
    cells = rows[0].split()[-8:]  # Ahmadi (2019): "yes"; Jafarzadeh, Mahmoud, ...: "no"
    groups = [
        row[0]
        for row in json.loads(
            _run(studies, "--type", "hat", "--mod", "nk_criterion", "--format", "json").stdout
        )["matrix"]
    ]
    for j, cell in enumerate(cells):
        if abs(got["matrix"][0][j]) < 1e-15:
            assert cell == "0" and groups[j] < 1e-15
        else:
            assert cell != "0"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--mod", "nosuch"), "no column 'nosuch'"),
        (("--mod", "ablat", "--mod", "ablat"), "a moderator is named more than once"),
    ],
)
def test_errors(bcg_csv, args, message):
    out = _run(bcg_csv, *args)
    assert out.exit_code == 1
    assert out.stderr.startswith("Error: ") and message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.output


def test_one_study_has_no_matrices(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("study,treat_events,treat_total,control_events,control_total\na,1,10,2,10\n")
    out = _run(str(path))
    assert out.exit_code == 1
    assert "Traceback" not in out.output and out.stderr.startswith("Error: ")


def test_bad_type_is_a_usage_error(bcg_csv):
    out = _run(bcg_csv, "--type", "nosuch")
    assert out.exit_code == 2
    assert "nosuch" in out.stderr
