"""Every validation message of the input layer: exit status 1, one ``Error:`` line naming the
file, the 1-based row (header = row 1), the column, the value and what was expected.

docs/input.md lists these messages; each case here is one of them.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest

from ivigmeta.errors import DataError
from ivigmeta.io.studies import load_table, parse_table

H = "study,year,treat_events,treat_total,control_events,control_total\n"
OK = "A,2000,5,10,3,10\nB,2001,4,12,2,11\n"
EFF = "study,estimate,ci_low,ci_high\n"
YV = "study,yi,vi\n"

# (id, file content, extra args, fragments that must all appear in the one error line)
CASES = [
    ("empty", "", [], ["the file is empty", "expected a header row"]),
    ("blank lines only", "\n \n\n", [], ["the file is empty"]),
    ("header only", H, [], ["header but no study rows", "expected one row per study"]),
    ("header and blank lines", H + "\n,,,,,\n", [], ["header but no study rows"]),
    (
        "convention incomplete",
        "study,treat_events,treat_total,control_events\nA,1,2,3\n",
        [],
        [
            "row 1",
            "required column(s) missing: control_total",
            "columns found: study, treat_events",
        ],
    ),
    (
        "metafor incomplete",
        "study,ai,n1i,ci\nA,1,2,3\n",
        [],
        ["row 1", "missing: n2i", "metafor's ai/n1i/ci/n2i"],
    ),
    (
        "no recognisable columns",
        "name,a,b\nX,1,2\n",
        [],
        [
            "row 1",
            "required columns missing",
            "ai/n1i/ci/n2i",
            "estimate, ci_low, ci_high",
            "columns found: name, a, b",
        ],
    ),
    (
        "duplicate column",
        "study,treat_events,treat_total,control_events,control_total,study\nA,1,2,1,2,B\n",
        [],
        ["row 1", "column 6", "'study' appears more than once", "expected unique column names"],
    ),
    ("NUL byte", H + "A,2000,5,10\x00,3,10\n", [], ["line 2", "NUL byte"]),
    (
        "too many fields",
        H + "A,2000,5,10,3,10,7\n",
        [],
        ["row 2", "7 fields", "header has 6", "'7'"],
    ),
    (
        "missing count",
        H + "A,2000,5,,3,10\n",
        [],
        ["row 2", "column 'treat_total'", "missing value", "whole number"],
    ),
    (
        "not a number",
        H + "A,2000,x,10,3,10\n",
        [],
        ["row 2", "column 'treat_events'", "'x'", "not a number", "whole number"],
    ),
    (
        "nan",
        H + "A,2000,nan,10,3,10\n",
        [],
        # NaN, like NA, N/A and '.', is a missing value (docs/input.md, the reading contract).
        ["row 2", "column 'treat_events'", "missing value", "whole number"],
    ),
    (
        "inf",
        H + "A,2000,1,inf,3,10\n",
        [],
        ["row 2", "column 'treat_total'", "'inf'", "not a finite number"],
    ),
    (
        "non-integer",
        H + "A,2000,1.5,10,3,10\n",
        [],
        ["row 2", "column 'treat_events'", "'1.5'", "not a whole number"],
    ),
    (
        "negative",
        H + "A,2000,1,10,-3,10\n",
        [],
        ["row 2", "column 'control_events'", "'-3'", "negative", "cannot be negative"],
    ),
    (
        "too large",
        H + "A,2000,1,9007199254740993,3,10\n",
        [],
        ["row 2", "column 'treat_total'", "too large", "2^53"],
    ),
    (
        "events exceed total",
        H + OK + "C,2002,12,10,3,10\n",
        [],
        [
            "row 4",
            "column 'treat_events'",
            "12 events exceed treat_total 10",
            "expected events <= total",
        ],
    ),
    (
        "total zero",
        H + "A,2000,0,0,3,10\n",
        [],
        ["row 2", "column 'treat_total'", "'0' is zero", "at least one participant"],
    ),
    (
        "empty arm from non-events",
        "study,ai,bi,ci,di\nA,0,0,1,5\n",
        [],
        ["row 2", "column 'bi'", "leaves the arm empty", "at least one participant"],
    ),
    (
        "year",
        H + "A,20x0,5,10,3,10\n",
        [],
        ["row 2", "column 'year'", "'20x0'", "is not a year", "expected a whole number"],
    ),
    (
        "no counts no effect",
        H + "A,2000,,,,\n",
        [],
        ["row 2", "column 'treat_events'", "missing value", "expected event counts"],
    ),
    (
        "no counts, effect columns empty",
        "study,treat_events,treat_total,control_events,control_total,estimate,ci_low,ci_high\nA,,,,,,,\n",
        [],
        [
            "row 2",
            "column 'treat_events'",
            "missing value",
            "or an effect in estimate, ci_low, ci_high",
        ],
    ),
    (
        "partial effect header",
        "study,estimate,ci_low\nA,1,0.5\n",
        [],
        [
            "row 1",
            "column 'estimate' is read as estimate",
            "no column for ci_high",
            "columns found: study, estimate, ci_low",
        ],
    ),
    (
        "partial effect row",
        EFF + "A,1.2,,2\n",
        [],
        ["row 2", "column 'ci_low'", "missing value", "given together"],
    ),
    (
        "effect not a number",
        EFF + "A,big,0.5,2\n",
        [],
        ["row 2", "column 'estimate'", "'big'", "not a number", "reported scale"],
    ),
    (
        "effect not finite",
        YV + "A,inf,0.1\n",
        [],
        ["row 2", "column 'yi'", "'inf'", "not a finite number"],
    ),
    (
        "effect too large",
        YV + "A,1e200,0.1\n",
        [],
        ["row 2", "column 'yi'", "'1e200'", "too large", "at most 1e+10"],
    ),
    (
        "CI reversed",
        EFF + "A,1.2,2,0.5\n",
        [],
        ["row 2", "column 'ci_low'", "'2' is above ci_high '0.5'", "expected ci_low <= ci_high"],
    ),
    (
        "CI excludes estimate",
        EFF + "A,3,0.5,2\n",
        [],
        [
            "row 2",
            "column 'estimate'",
            "'3' is outside its CI [0.5, 2]",
            "expected ci_low <= estimate <= ci_high",
        ],
    ),
    (
        "CI of zero width",
        EFF + "A,1,1,1\n",
        [],
        ["row 2", "column 'ci_high'", "'1' equals ci_low", "positive width"],
    ),
    (
        "se not positive",
        "study,theta,se\nA,0.2,0\n",
        [],
        ["row 2", "column 'se'", "'0' is not positive", "standard error > 0"],
    ),
    (
        "vi not positive",
        YV + "A,0.2,-1\n",
        [],
        ["row 2", "column 'vi'", "'-1' is not positive", "sampling variance > 0"],
    ),
    (
        "vi out of range",
        YV + "A,0.2,1e-50\n",
        [],
        ["row 2", "column 'vi'", "'1e-50' is out of range", "[1e-40, 1e+40]"],
    ),
    (
        "unknown measure in column",
        "study,estimate,ci_low,ci_high,measure\nA,1.2,1,2,HR\n",
        [],
        ["row 2", "column 'measure'", "'HR' is not a measure", "expected one of RR, OR, RD"],
    ),
    (
        "measure mismatch",
        "study,estimate,ci_low,ci_high,measure\nA,1.2,1,2,RR\nB,1.3,1,2,RR\n",
        ["--measure", "RD"],
        [
            "row 2",
            "column 'measure'",
            "'RR' but the analysis measure is RD",
            "cannot be converted to RD",
        ],
    ),
    (
        "non-positive ratio",
        EFF + "A,-0.1,-0.3,0.2\nB,1,0.5,2\n",
        [],
        ["row 2", "column 'estimate'", "'-0.1' is not positive", "ratio RR", "> 0"],
    ),
    (
        "non-positive CI bound",
        EFF + "A,0.5,0,2\nB,1,0.5,2\n",
        ["--measure", "OR"],
        ["row 2", "column 'ci_low'", "'0' is not positive", "ratio OR"],
    ),
    (
        "risk difference out of range",
        EFF + "A,1.5,1.2,1.8\nB,0.1,0,0.2\n",
        ["--measure", "RD"],
        ["row 2", "column 'estimate'", "'1.5' is not a risk difference", "between -1 and 1"],
    ),
    (
        "--columns malformed",
        H + OK,
        ["--columns", "treat_events"],
        ["--columns", "'treat_events' is not ROLE=COLUMN"],
    ),
    (
        "--columns unknown role",
        H + OK,
        ["--columns", "evnts=treat_events"],
        ["--columns", "unknown role 'evnts'"],
    ),
    (
        "--columns absent column",
        H + OK,
        ["--columns", "study=Author"],
        ["row 1", "--columns study=Author", "no column 'Author'", "columns found: study, year"],
    ),
    (
        "--columns incomplete counts",
        H + OK,
        ["--columns", "treat_events=treat_events"],
        ["--columns", "treat_total, control_events, control_total not given"],
    ),
    (
        "--sep unknown",
        H + OK,
        ["--sep", "pipe"],
        ["unknown delimiter 'pipe'", "comma, semicolon or tab"],
    ),
    ("--sheet on a CSV", H + OK, ["--sheet", "Data"], ["--sheet applies to .xlsx workbooks only"]),
]


@pytest.mark.parametrize(
    "content, args, fragments", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_message(run, tmp_path, content, args, fragments):
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    result = run("pool", str(path), *args)
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.stderr.split("\n") if ln and not ln.startswith("note: ")]
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    file_level = fragments[0].startswith(("--columns", "unknown delimiter"))
    if not file_level:
        assert str(path) in lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_missing_file(run, tmp_path):
    result = run("pool", str(tmp_path / "nope.csv"))
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {tmp_path / 'nope.csv'}: file not found"


def test_directory(run, tmp_path):
    result = run("pool", str(tmp_path))
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {tmp_path}: is a directory, not a CSV file"


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix sockets here")
@pytest.mark.parametrize("command", ["pool", "batch"])
def test_unreadable_file(run, tmp_path, monkeypatch, command):
    """A path that exists and is not a directory but cannot be opened: a Unix socket (open()
    fails with ENXIO for every user, root included, unlike a file with mode 000)."""
    monkeypatch.chdir(tmp_path)  # a short relative path: socket paths are limited to ~100 bytes
    with socket.socket(socket.AF_UNIX) as server:
        server.bind("socket.csv")
        args = (
            ["batch", "socket.csv", "-g", "study"] if command == "batch" else ["pool", "socket.csv"]
        )
        result = run(*args)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: socket.csv: cannot be read (")
    assert result.stderr.count("\n") == 1


def test_duplicate_labels_are_a_warning(run, tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text(H + "A,2000,5,10,3,10\nA,2000,4,12,2,11\nB,2001,4,12,2,11\n")
    result = run("pool", str(path), "-f", "json")
    assert result.exit_code == 0
    assert f"note: {path}: warning: rows 2, 3 have the same study label 'A (2000)'" in result.stderr
    assert json.loads(result.stdout)["k"] == 3


def test_a_label_with_a_line_break_stays_on_one_line(run, tmp_path):
    path = tmp_path / "nl.csv"
    path.write_text(H + '"Smith\nJones",2000,x,10,3,10\n')
    result = run("pool", str(path))
    assert result.exit_code == 1 and result.stderr.count("\n") == 1


def test_fewer_than_two_usable_studies(run, tmp_path):
    """k = 1 after a double-zero exclusion: pool prints the study, loo refuses with the reason."""
    path = tmp_path / "one.csv"
    path.write_text(H + "A,2000,5,10,3,10\nB,2001,0,12,0,11\n")
    pooled = run("pool", str(path))
    assert pooled.exit_code == 0
    assert "A single study: no pooling was done." in pooled.stdout
    assert "Excluded: B (row 3): no events in either arm" in pooled.stdout
    loo = run("loo", str(path))
    assert loo.exit_code == 1
    line = loo.stderr.strip().split("\n")[-1]
    assert line.startswith("Error: leave-one-out needs at least 2 usable studies (have 1)")
    assert "B (row 3): no events in either arm" in line


def test_no_usable_study(run, tmp_path):
    path = tmp_path / "none.csv"
    path.write_text(H + "A,2000,0,10,0,10\n")
    result = run("pool", str(path))
    assert result.exit_code == 1
    # The file and the row of every excluded study are named (issue 14).
    assert f"Error: {path}: no usable studies (excluded: A (row 2): no events in either arm" in (
        result.stderr
    )


def test_xlsx_errors(run, tmp_path):
    pytest.importorskip("openpyxl")
    bad = tmp_path / "broken.xlsx"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    result = run("pool", str(bad))
    assert result.exit_code == 1 and f"Error: {bad}: not a readable .xlsx workbook" in result.stderr
    import openpyxl

    good = tmp_path / "book.xlsx"
    wb = openpyxl.Workbook()
    wb.active.title = "Counts"
    for row in (H + OK).splitlines():
        wb.active.append(row.split(","))
    wb.save(good)
    result = run("pool", str(good), "--sheet", "Other")
    assert result.exit_code == 1
    assert f"Error: {good}: no sheet 'Other' (sheets: Counts)" in result.stderr
    result = run("pool", str(good), "--sep", "tab")
    assert result.exit_code == 1
    assert f"Error: {good}: --sep applies to text files only" in result.stderr


def test_xlsx_without_openpyxl(run, tmp_path, monkeypatch):
    path = tmp_path / "book.xlsx"
    path.write_bytes(b"PK\x03\x04")
    monkeypatch.setitem(sys.modules, "openpyxl", None)  # import openpyxl now raises ImportError
    result = run("pool", str(path))
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: {path}: reading .xlsx files needs the optional extra: pip install 'ivigmeta[excel]'"
    )


def test_library_errors_are_data_errors():
    """The same checks apply to parse_table and load_table, without the CLI."""
    with pytest.raises(DataError, match=r"src, row 2, column 'treat_events': 'x' is not a number"):
        parse_table(H + "A,2000,x,10,3,10\n", "src")
    with pytest.raises(DataError, match="file not found"):
        load_table(str(Path("/nonexistent/x.csv")))
