"""The reading contract (docs/input.md, "Reading contract"): every record of a study table is
analysed, excluded with a reason, or named in a note as blank or a summary row; malformed
quoting, ambiguous numbers and clashing columns are errors naming file, row and column.

Each behaviour is checked through ``pool`` and, where the batch reader has its own fast path,
through ``batch`` too; the row-accounting property is checked against an independent count of
the records the test itself wrote.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivigmeta.io.studies import parse_table

HEADER = ["study", "treat_events", "treat_total", "control_events", "control_total"]


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return str(path)


def error_line(result) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def notes(result) -> list[str]:
    return [ln[len("note: ") :] for ln in result.stderr.splitlines() if ln.startswith("note: ")]


# ---------------------------------------------------------------------------------------------
# Quoting
# ---------------------------------------------------------------------------------------------

PAPER_LIKE = (
    "study,treat_events,treat_total,control_events,control_total,timing\n"
    "A,33,38,18,40,after\n"
    "B,38,44,21,50,before\n"
    'C,20,30,12,30,"after\n'
    "D,15,20,10,22,after\n"
    "E,11,15,8,16,before\n"
)


def test_unterminated_quote_is_an_error_naming_the_row_it_began_in(run, tmp_path):
    path = write(tmp_path, "q.csv", PAPER_LIKE)
    result = run("pool", path)
    assert result.exit_code == 1
    line = error_line(result)
    assert "q.csv, row 4" in line and "never closed" in line


def test_unterminated_quote_in_batch_is_an_error_not_a_lost_group(run, tmp_path):
    body = PAPER_LIKE.splitlines()
    text = "meta," + body[0] + "\n"
    text += "".join(f"m1,{ln}\n" for ln in body[1:3])
    text += 'm1,C,20,30,12,30,"after\n'
    text += "".join(f"m2,{ln}\n" for ln in body[1:] if '"' not in ln)
    path = write(tmp_path, "bq.csv", text)
    result = run("batch", path, "-g", "meta")
    assert result.exit_code == 1
    line = error_line(result)
    assert "bq.csv, row 4" in line and "never closed" in line
    assert result.stdout == ""


def test_a_character_after_a_closing_quote_is_an_error(run, tmp_path):
    path = write(tmp_path, "q2.csv", PAPER_LIKE.replace('"after\n', '"after"x\n'))
    result = run("pool", path)
    assert result.exit_code == 1
    assert "q2.csv, row 4: a character follows the closing" in error_line(result)


def test_quoted_newline_rows_are_numbered_as_records_with_the_line(run, tmp_path):
    text = HEADER_LINE + '"Two\nlines",3,10,4,10\nB,5,10,3,10\nC,1,10,x,10\n'
    path = write(tmp_path, "nl.csv", text)
    result = run("pool", path)
    assert result.exit_code == 1
    line = error_line(result)
    # Rows are records: the quoted line break in record 2 does not start a new row.
    assert "nl.csv, row 4, column 'control_events'" in line


HEADER_LINE = ",".join(HEADER) + "\n"

# ---------------------------------------------------------------------------------------------
# Missing values
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["NA", "N/A", "NaN", ".", "na", " NA "])
def test_missing_tokens_in_a_label_column_are_missing_and_noted(run, tmp_path, token):
    rows = [
        ("A", 33, 38, 18, 40, "yes"),
        ("B", 38, 44, 21, 50, "no"),
        ("C", 20, 30, 12, 30, "yes"),
        ("D", 15, 20, 10, 22, "no"),
        ("E", 11, 15, 8, 16, token),
    ]
    text = HEADER_LINE.strip() + ",nk\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)
    path = write(tmp_path, "na.csv", text)
    result = run("subgroup", path, "--by", "nk", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    (by,) = data["by"]
    assert sorted(g["level"] for g in by["levels"]) == ["no", "yes"]
    assert any("row 6 read as missing" in n and "'nk'" in n for n in notes(result))
    assert by["excluded"] == [{"study": "E", "reason": "no 'nk' label", "row": 6}]


@pytest.mark.parametrize("token", ["NA", ".", "N/A"])
def test_missing_token_in_a_count_is_a_missing_value_error(run, tmp_path, token):
    path = write(tmp_path, "nac.csv", HEADER_LINE + f"A,3,{token},4,10\nB,5,10,3,10\n")
    result = run("pool", path)
    assert result.exit_code == 1
    line = error_line(result)
    assert "nac.csv, row 2, column 'treat_total': missing value" in line


def test_missing_group_keys_in_batch_are_one_empty_key(run, tmp_path):
    text = "meta," + HEADER_LINE
    for key in ("NA", "", "n/a"):
        text += f"{key},A{key},3,10,4,10\n"
    text += "m,B,5,10,3,10\nm,C,4,10,2,10\n"
    path = write(tmp_path, "gna.csv", text)
    result = run("batch", path, "-g", "meta")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["meta"]: r["k"] for r in rows} == {"": "3", "m": "2"}


# ---------------------------------------------------------------------------------------------
# Number grammar
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cell, message",
    [
        ("8_2", "digit separators '_' are not read"),
        ("inf", "not a finite number"),
        ("-inf", "not a finite number"),
        ("1e400", "not a finite number"),
    ],
)
def test_numbers_outside_the_grammar_are_refused(run, tmp_path, cell, message):
    path = write(tmp_path, "g.csv", HEADER_LINE + f"A,3,{cell},4,10\nB,5,10,3,10\n")
    result = run("pool", path)
    assert result.exit_code == 1
    line = error_line(result)
    assert "g.csv, row 2, column 'treat_total'" in line and message in line


DECIMAL_COMMA = "study;treat_events;treat_total;control_events;control_total\n"


def test_dotted_thousands_in_a_decimal_comma_file_are_refused(run, tmp_path):
    path = write(tmp_path, "dc.csv", DECIMAL_COMMA + "A;3;1.000;4;1000\nB;5;10;3;10\n")
    result = run("pool", path)
    assert result.exit_code == 1
    line = error_line(result)
    assert "dc.csv, row 2, column 'treat_total': '1.000' is ambiguous" in line


def test_dotted_thousands_in_a_decimal_comma_batch_file_are_refused(run, tmp_path):
    text = (
        "meta;"
        + DECIMAL_COMMA
        + "m;A;3;1.000;4;1000\nm;B;5;10;3;10\nn;A;3;10;4;10\nn;B;5;10;3;10\n"
    )
    path = write(tmp_path, "dcb.csv", text)
    result = run("batch", path, "-g", "meta")
    assert result.exit_code == 0, result.stderr
    rows = {r["meta"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert rows["m"]["status"] == "error"
    assert "'1.000' is ambiguous" in rows["m"]["reason"]
    assert rows["n"]["status"] == "ok"


def test_decimal_comma_effects_still_read(run, tmp_path):
    text = "study;yi;vi\nA;0,5;0,04\nB;0,25;0,09\n"
    path = write(tmp_path, "dce.csv", text)
    result = run("pool", path, "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert [s["yi"] for s in data["studies"]] == [0.5, 0.25]


# ---------------------------------------------------------------------------------------------
# Columns
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("second", ["TREAT_EVENTS", " treat_events ", "Treat_Events"])
def test_column_names_are_unique_ignoring_case_and_spaces(run, tmp_path, second):
    text = ",".join(HEADER + [second]) + "\nA,3,10,4,10,1\nB,5,10,3,10,2\n"
    path = write(tmp_path, "dup.csv", text)
    for command in (["pool", path], ["batch", path, "-g", "study"]):
        result = run(*command)
        assert result.exit_code == 1
        assert "appears more than once" in error_line(result)


def test_one_column_may_not_take_two_roles(run, studies_path):
    result = run(
        "pool",
        str(studies_path),
        "--columns",
        "treat_events=treat_events,control_events=treat_events,"
        "treat_total=treat_total,control_total=control_total",
    )
    assert result.exit_code == 1
    assert "given for both treat_events and control_events" in error_line(result)


def test_a_misspelt_column_gets_a_suggestion(run, studies_path):
    result = run("subgroup", str(studies_path), "--by", "nk_crit")
    assert result.exit_code == 1
    assert "did you mean 'nk_criterion'?" in error_line(result)


def test_counts_and_a_given_effect_in_one_row_is_a_note_naming_both(run, tmp_path):
    text = ",".join(HEADER + ["yi", "vi"]) + "\nA,3,10,4,10,2.5,0.1\nB,5,10,3,10,,\n"
    path = write(tmp_path, "both.csv", text)
    result = run("pool", path, "--format", "json")
    assert result.exit_code == 0, result.stderr
    found = [n for n in notes(result) if "both event counts and an effect" in n]
    assert len(found) == 1 and "row 2" in found[0] and "yi" in found[0]
    data = json.loads(result.stdout)
    assert data["studies"][0]["source"] == "counts"


# ---------------------------------------------------------------------------------------------
# Blank and summary rows
# ---------------------------------------------------------------------------------------------


def test_blank_and_summary_rows_are_named_in_notes(run, tmp_path):
    text = (
        HEADER_LINE
        + "A,3,10,4,10\n,,,,\nB,5,10,3,10\nC,4,10,2,10\n"
        + "Total (95% CI),12,30,9,30\nHeterogeneity: Tau2 = 0.00,,,,\n"
    )
    path = write(tmp_path, "sum.csv", text)
    result = run("pool", path, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["k"] == 3
    said = notes(result)
    assert any(n.endswith("row 3 is blank (skipped)") for n in said)
    assert any("row 6: summary row 'Total (95% CI)' skipped" in n for n in said)
    assert any("row 7: summary row 'Heterogeneity: Tau2 = 0.00' skipped" in n for n in said)


def test_notes_are_said_once_per_command(run, tmp_path):
    text = HEADER_LINE.strip() + ",g\nA,3,10,4,10,x\n,,,,,\nB,5,10,3,10,y\nC,4,10,2,10,x\n"
    path = write(tmp_path, "once.csv", text)
    result = run("subgroup", path, "--by", "g")
    assert result.exit_code == 0, result.stderr
    said = notes(result)
    assert len(said) == len(set(said))
    assert sum("blank" in n for n in said) == 1


def test_many_blank_rows_are_counted_in_the_note():
    text = HEADER_LINE + "A,3,10,4,10\n" + ",,,,\n" * 25 + "B,5,10,3,10\n"
    table = parse_table(text, "many.csv")
    (note,) = [n for n in table.notes if "blank" in n]
    assert "(25 rows)" in note


# ---------------------------------------------------------------------------------------------
# The row-accounting property
# ---------------------------------------------------------------------------------------------

LABEL_TEXT = st.text(
    alphabet=st.sampled_from(list('abcXYZ 09,;"\t\n-é')), min_size=0, max_size=8
).map(lambda s: "S" + s)


@st.composite
def records(draw):
    """A list of (kind, cells) records: study, excluded (double zero), blank or summary."""
    n = draw(st.integers(min_value=2, max_value=12))
    out = []
    for _ in range(n):
        kind = draw(st.sampled_from(["study", "study", "study", "excluded", "blank", "summary"]))
        if kind == "study":
            t = draw(st.integers(min_value=5, max_value=200))
            c = draw(st.integers(min_value=5, max_value=200))
            cells = [
                draw(LABEL_TEXT),
                str(draw(st.integers(min_value=1, max_value=t - 1))),
                str(t),
                str(draw(st.integers(min_value=1, max_value=c - 1))),
                str(c),
            ]
        elif kind == "excluded":
            cells = [draw(LABEL_TEXT), "0", "10", "0", "12"]
        elif kind == "blank":
            cells = draw(st.sampled_from([[], ["", "", "", "", ""], ["  ", "", "", "", ""]]))
        else:
            cells = [
                draw(
                    st.sampled_from(
                        ["Total (95% CI)", "Subtotal", "Heterogeneity: Chi2 = 1", "Overall"]
                    )
                ),
                "",
                "",
                "",
                "",
            ]
        out.append((kind, cells))
    studies = sum(k == "study" for k, _ in out)
    if studies < 2:
        out.append(("study", ["Sfinal", "3", "10", "4", "10"]))
        out.append(("study", ["Sother", "5", "12", "2", "9"]))
    return out


def render(recs, delimiter: str, quoting: int, newline: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, quoting=quoting, lineterminator=newline)
    writer.writerow(HEADER)
    for _, cells in recs:
        writer.writerow(cells)
    return buffer.getvalue()


def blank_count(said: list[str]) -> int:
    total = 0
    for n in said:
        m = re.search(r": rows? ([\d, .()rows]+) (?:is|are) blank \(skipped\)$", n)
        if m:
            counted = re.search(r"\((\d+) rows\)", m.group(1))
            total += int(counted.group(1)) if counted else len(m.group(1).split(","))
    return total


PROPERTY = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY
@given(
    recs=records(),
    delimiter=st.sampled_from([",", ";", "\t"]),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]),
    newline=st.sampled_from(["\n", "\r\n"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1"]),
)
def test_every_record_is_analysed_excluded_or_named(
    run, tmp_path, recs, delimiter, quoting, newline, encoding
):
    # QUOTE_NONNUMERIC quotes the counts (strings here), as some exports do.
    path = tmp_path / "acc.csv"
    path.write_bytes(render(recs, delimiter, quoting, newline).encode(encoding))
    path = str(path)
    result = run("pool", path, "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    said = notes(result)
    want = {
        kind: sum(k == kind for k, _ in recs) for kind in ("study", "excluded", "blank", "summary")
    }
    assert data["k"] == want["study"]
    assert len(data["excluded"]) == want["excluded"]
    assert blank_count(said) == want["blank"]
    assert sum("summary row" in n for n in said) == want["summary"]
    labels = [cells[0].strip() for k, cells in recs if k == "study"]
    assert [s["study"] for s in data["studies"]] == labels


@PROPERTY
@given(
    groups=st.lists(records(), min_size=1, max_size=3),
    delimiter=st.sampled_from([",", ";"]),
    jobs=st.sampled_from(["1", "2"]),
    order=st.sampled_from(["auto", "grouped", "unsorted"]),
)
def test_batch_accounts_for_every_study_row(run, tmp_path, groups, delimiter, jobs, order):
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(["meta", *HEADER])
    want = {}
    for g, recs in enumerate(groups):
        key = f"m{g}"
        for kind, cells in recs:
            if kind in ("blank", "summary"):
                continue  # batch tables are machine-written: no summary rows
            writer.writerow([key, *cells])
            k, x = want.get(key, (0, 0))
            want[key] = (k + (kind == "study"), x + (kind == "excluded"))
    path = write(tmp_path, "bacc.csv", buffer.getvalue())
    result = run("batch", path, "-g", "meta", "--jobs", jobs, "--input-order", order)
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    got = {r["meta"]: (int(r["k"]), int(r["n_excluded"])) for r in rows}
    assert got == want


# ---------------------------------------------------------------------------------------------
# Spreadsheets
# ---------------------------------------------------------------------------------------------


def test_xlsx_with_an_empty_first_sheet_names_the_sheets(run, tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    book.active.title = "Notes"
    data = book.create_sheet("Data")
    data.append(HEADER)
    data.append(["A", 3, 10, 4, 10])
    data.append(["B", 5, 10, 3, 10])
    path = tmp_path / "two.xlsx"
    book.save(path)
    result = run("pool", str(path))
    assert result.exit_code == 1
    line = error_line(result)
    assert "Notes" in line and "Data" in line and "--sheet" in line
    ok = run("pool", str(path), "--sheet", "Data", "--format", "json")
    assert ok.exit_code == 0, ok.stderr
    assert json.loads(ok.stdout)["k"] == 2
