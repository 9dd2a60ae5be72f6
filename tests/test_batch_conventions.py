"""batch reads the files pool reads, with one reader: every column convention, delimiter and
encoding of tests/test_conventions.py, .xlsx workbooks, --sep, --sheet and --columns.

The paper's studies.csv, written in each convention with a group column added (the paper's
eight studies as group "A", the first five again as group "Méta B"), must give the batch output
of the plain ivigmeta CSV byte for byte; header problems must be pool's errors word for word,
and a bad row its group's status error with the message pool gives for it.
"""

from __future__ import annotations

import csv
import io
import itertools
import json

import pytest
from test_conventions import CONVENTIONS, _decimal, convention_table, encode

from ivigmeta.batching import run as core

GROUP = "review"
B_STUDIES = 5


def grouped(table: list[list[str]]) -> list[list[str]]:
    """The table with a group column in front: every study in A, the first five again in B."""
    header, body = table[0], table[1:]
    return (
        [[GROUP, *header]]
        + [["A", *row] for row in body]
        + [["Méta B", *row] for row in body[:B_STUDIES]]
    )


def batch(run, path: str, *args: str, stdin: bytes | None = None) -> str:
    result = run("batch", path, "-g", GROUP, *args, input=stdin)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> str:
    from click.testing import CliRunner

    from ivigmeta.cli import cli

    path = tmp_path_factory.mktemp("plain") / "plain.csv"
    path.write_bytes(encode(grouped(convention_table("ivigmeta")), ",", "utf-8"))
    result = CliRunner().invoke(cli, ["batch", str(path), "-g", GROUP], catch_exceptions=False)
    assert result.exit_code == 0
    out = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r[GROUP] for r in out] == ["A", "Méta B"]
    assert all(r["status"] == "ok" for r in out)
    # The paper's random-effects risk ratio (Table 2: 1.98) for its eight studies.
    assert f"{float(out[0]['random_estimate']):.2f}" == "1.98"
    assert out[1]["k"] == str(B_STUDIES)
    return result.stdout


@pytest.mark.parametrize(
    "convention, delimiter, encoding",
    list(itertools.product(CONVENTIONS, [",", ";", "\t"], ["utf-8", "utf-8-sig", "latin-1"])),
)
def test_every_convention_gives_the_plain_output(
    run, tmp_path, plain, convention, delimiter, encoding
):
    path = tmp_path / "long.csv"
    path.write_bytes(encode(grouped(convention_table(convention)), delimiter, encoding))
    assert batch(run, str(path), *CONVENTIONS[convention][1]) == plain


@pytest.mark.parametrize("order", ["grouped", "unsorted"])
@pytest.mark.parametrize("chunk_rows", ["1", "4", "1000000"])
def test_chunks_and_orders_give_the_plain_output(run, tmp_path, plain, order, chunk_rows):
    path = tmp_path / "long.csv"
    path.write_bytes(encode(grouped(convention_table("metafor_bd")), ";", "latin-1"))
    got = batch(run, str(path), "--input-order", order, "--chunk-rows", chunk_rows)
    assert got == plain


def test_forced_separator_sep_line_utf16_and_stdin(run, tmp_path, plain):
    path = tmp_path / "long.txt"
    path.write_bytes(encode(grouped(convention_table("meta")), "\t", "utf-8"))
    assert batch(run, str(path), "--sep", "tab") == plain
    path.write_bytes(b"sep=;\r\n" + encode(grouped(convention_table("metafor_n")), ";", "latin-1"))
    assert batch(run, str(path)) == plain
    path.write_bytes(encode(grouped(convention_table("ivigmeta")), "\t", "utf-16"))
    assert batch(run, str(path)) == plain
    data = encode(grouped(convention_table("revman")), ";", "utf-8-sig")
    assert batch(run, "-", stdin=data) == plain
    assert batch(run, "-", "--input-order", "grouped", stdin=data) == plain


def test_notes_name_the_delimiter_encoding_and_convention(run, tmp_path):
    path = tmp_path / "long.csv"
    path.write_bytes(encode(grouped(convention_table("metafor_n")), ";", "latin-1"))
    err = run("batch", str(path), "-g", GROUP).stderr
    assert "not valid UTF-8" in err and "read as Latin-1" in err
    assert "semicolon-separated" in err and "metafor's ai/n1i/ci/n2i" in err


def workbook(tmp_path, table: list[list[str]]):
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    book.active.title = "Notes"
    sheet = book.create_sheet("Table 2")
    for row in table:
        sheet.append(
            [float(c) if _decimal(c) else int(c) if c.isdigit() else (c or None) for c in row]
        )
    path = tmp_path / "long.xlsx"
    book.save(path)
    return path


def test_xlsx(run, tmp_path, plain):
    path = workbook(tmp_path, grouped(convention_table("metafor_n")))
    assert batch(run, str(path), "--sheet", "Table 2") == plain
    assert batch(run, str(path), "--sheet", "Table 2", "--chunk-rows", "3") == plain
    # on standard input a workbook is recognised by its signature, in either input order
    for order in ("auto", "grouped"):
        got = batch(run, "-", "--sheet", "Table 2", "--input-order", order, stdin=path.read_bytes())
        assert got == plain
    for args in (["--sheet", "Nope"], ["--sep", "tab"]):
        b, p = run("batch", str(path), "-g", GROUP, *args), run("pool", str(path), *args)
        assert b.exit_code == p.exit_code == 1
        assert b.stderr == p.stderr


def test_a_bad_row_of_a_workbook_is_its_groups_error(run, tmp_path):
    table = grouped(convention_table("ivigmeta"))
    table[3][table[0].index("control_events")] = "many"
    path = workbook(tmp_path, table)
    out = list(csv.DictReader(io.StringIO(batch(run, str(path), "--sheet", "Table 2"))))
    assert [r["status"] for r in out] == ["error", "ok"]
    assert out[0]["reason"] == (
        f"{path}, row 4, column 'control_events': 'many' is not a number (expected a whole number)"
    )


# ------------------------------------------------------------------------------------------
# the same header errors as pool


def header_case(name: str) -> list[list[str]]:
    table = grouped(convention_table("ivigmeta"))
    header = table[0]
    if name == "missing total":
        header[header.index("control_total")] = "n_control"
    elif name == "metafor partial":
        table = grouped(convention_table("metafor_n"))
        table[0][table[0].index("n2i")] = "n2"
    elif name == "duplicate":
        header[header.index("timing")] = "year"
    elif name == "no counts":
        for c in ("treat_events", "treat_total", "control_events", "control_total"):
            header[header.index(c)] = c.upper().replace("_", " ") + "?"
    elif name == "lone se":
        table = [[GROUP, "study", "theta", "x"], ["A", "s1", "0.1", "1"]]
        table[0][2] = "se"
    return table


@pytest.mark.parametrize(
    "case, args",
    [
        ("missing total", []),
        ("metafor partial", []),
        ("duplicate", []),
        ("no counts", []),
        ("lone se", []),
        ("missing total", ["--columns", "treat_events=treat_events"]),
        ("missing total", ["--columns", "treat_events=EvT,treat_total=NT"]),
        ("missing total", ["--columns", "arm=x"]),
        ("missing total", ["--columns", "treat_events"]),
        ("missing total", ["--sep", "pipe"]),
        ("missing total", ["--sheet", "Table 2"]),
    ],
)
def test_header_errors_are_pools(run, tmp_path, case, args):
    path = tmp_path / "bad.csv"
    path.write_bytes(encode(header_case(case), ",", "utf-8"))
    b, p = run("batch", str(path), "-g", GROUP, *args), run("pool", str(path), *args)
    assert p.exit_code == b.exit_code == 1
    assert p.stderr.startswith("Error: ") and b.stderr == p.stderr


def test_a_table_of_effects_only_is_pooled_as_pool_pools_it(run, tmp_path):
    path = tmp_path / "effects.csv"
    path.write_text(f"{GROUP},study,yi,vi\nA,s1,0.1,0.02\nA,s2,0.3,0.05\n")
    pooled = run("pool", str(path), "--format", "json")
    assert pooled.exit_code == 0
    want = json.loads(pooled.stdout)["random"]
    result = run("batch", str(path), "-g", GROUP, "--format", "csv")
    assert result.exit_code == 0, result.stderr
    row = next(csv.DictReader(io.StringIO(result.stdout)))
    assert row["status"] == "ok" and row["k"] == "2"
    assert float(row["random_theta"]) == pytest.approx(want["theta"], rel=1e-12)
    assert float(row["random_ci_high"]) == pytest.approx(want["ci_high"], rel=1e-12)


@pytest.mark.parametrize(
    "convention, count",
    [("metafor_n", "n1i"), ("metafor_bd", "di"), ("revman", "Control events"), ("custom", "NC")],
)
def test_a_group_column_may_not_be_a_count_column(run, tmp_path, convention, count):
    table = grouped(convention_table(convention))
    path = tmp_path / "long.csv"
    path.write_bytes(encode(table, ";", "utf-8"))
    result = run("batch", str(path), "-g", count, *CONVENTIONS[convention][1])
    assert result.exit_code == 1
    assert f"'{count}' is a count column and cannot be a group column" in result.stderr


# ------------------------------------------------------------------------------------------
# bad rows: pool's message, pool's row numbers


@pytest.mark.parametrize(
    "convention, column, value",
    [
        ("ivigmeta", "treat_events", "1,5"),  # a decimal comma: not a whole number
        ("ivigmeta", "year", "20x"),
        ("metafor_n", "n2i", "0"),
        ("metafor_bd", "bi", "-2"),
        ("metafor_bd", "ai", "x"),
        ("meta", "event.e", "999"),  # events above the total
        ("revman", "Control total", ""),
    ],
)
@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_a_bad_row_gets_pools_message(run, tmp_path, convention, column, value, delimiter):
    table = grouped(convention_table(convention))
    bad = len(table) - 2  # a row of group "Méta B"
    table[bad][table[0].index(column)] = value
    if convention == "metafor_bd" and column == "ai":
        table[bad][table[0].index("bi")] = "0"
    path = tmp_path / "long.csv"
    data = encode(table, delimiter, "latin-1")
    if delimiter == "\t":
        data = data.replace(b"1,5", b"1.5")  # pool's message for the tab file
    path.write_bytes(b"\r\n" + data)  # a blank line first: the header is row 2
    pooled = run("pool", str(path), *CONVENTIONS[convention][1])
    assert pooled.exit_code == 1
    message = pooled.stderr.removeprefix("Error: ").rstrip("\n")
    assert f"row {bad + 2}" in message
    out = list(csv.DictReader(io.StringIO(batch(run, str(path), *CONVENTIONS[convention][1]))))
    assert [(r[GROUP], r["status"]) for r in out] == [("A", "ok"), ("Méta B", "error")]
    assert out[1]["reason"] == message


def test_decimal_comma_counts_are_read_as_pool_reads_them(run, tmp_path, plain):
    """ "12,0" in a semicolon file is the whole number 12 to pool; so to batch."""
    table = grouped(convention_table("ivigmeta"))
    col = table[0].index("treat_total")
    for row in table[1:]:
        row[col] = row[col] + ".0"  # written "NN,0" by encode()
    path = tmp_path / "long.csv"
    path.write_bytes(encode(table, ";", "utf-8"))
    assert b";100,0;" in path.read_bytes() or b",0;" in path.read_bytes()
    assert batch(run, str(path)) == plain


def test_decimal_comma_group_keys_read_with_a_decimal_point(run, tmp_path):
    table = grouped(convention_table("ivigmeta"))
    for row in table[1:]:
        row[0] = "1.5" if row[0] == "A" else "2.5"
    path = tmp_path / "long.csv"
    path.write_bytes(encode(table, ";", "utf-8"))
    assert b"\r\n1,5;" in path.read_bytes()
    out = list(csv.DictReader(io.StringIO(batch(run, str(path)))))
    assert [r[GROUP] for r in out] == ["1.5", "2.5"]
    # as pool keeps the text fields of a decimal-comma file (here what subgroup shows)
    sub = run("subgroup", str(path), "--by", GROUP, "-f", "json")
    assert sub.exit_code == 0, sub.output
    assert "1.5" in sub.stdout and "1,5" not in sub.stdout


def test_spans_of_a_semicolon_latin1_file(run, tmp_path):
    """A file of 1 MB or more is cut into spans pooled side by side: any delimiter, any names."""
    table = convention_table("metafor_bd")
    header, body = table[0], table[1:]
    rows = [[GROUP, *header]]
    for g in range(3000):
        rows += [[f"Méta {g}", *r] for r in body]
    path = tmp_path / "big.csv"
    path.write_bytes(encode(rows, ";", "latin-1"))
    assert path.stat().st_size > 1 << 20
    spans = core.split_spans(str(path), [GROUP], 2)
    assert len(spans) == 2
    one = batch(run, str(path), "-j", "1")
    assert batch(run, str(path), "-j", "2") == one
    assert one.count("\n") == 3001 and one.count(",ok,") == 3000


def test_library_reader_takes_pools_options(tmp_path, plain):
    path = tmp_path / "long.txt"
    path.write_bytes(encode(grouped(convention_table("custom")), "\t", "utf-8"))
    columns = dict(
        treat_events="EvT",
        treat_total="NT",
        control_events="EvC",
        control_total="NC",
        study="Trial",
    )
    reader = core.ChunkReader(str(path), [GROUP], options=core.TableOptions("tab", None, columns))
    result = core.pool_rows(core.Rows.concat(list(reader)), [GROUP])
    want = list(csv.DictReader(io.StringIO(plain)))
    assert result.keys[GROUP].tolist() == ["A", "Méta B"]
    for i, row in enumerate(want):
        assert json.dumps(float(result.values["random_theta"][i])) == row["random_theta"]
