"""Text from the input file is shown as the literal text it is, in every output format.

A label like ``Smith & <b>Jones</b> | 2019 *x* [a](http://e)`` must stay that text in a Markdown
viewer (no HTML, link, emphasis or extra table cell), in a spreadsheet (no formula), and on a
terminal (no escape sequence); numbers are never altered.
"""

from __future__ import annotations

import csv
import html
import io
import re

import pytest
from markdown_it import MarkdownIt

import ivigmeta
from ivigmeta.render import render
from ivigmeta.render.report import parse_markdown
from ivigmeta.render.text import csv_guard, md_escape, md_unescape, plain

EVIL = "Smith & <b>Jones</b> | 2019 *x* [a](http://e) `code` _em_ ~~s~~ &lt; [r]: http://e"
FORMULA = '=HYPERLINK("http://e","x")'
ANSI = "Evil\x1b[31mRed\x1b]8;;http://e\x07link\x1b]8;;\x07"
NEWLINE = "Line\nbreak\r\tend"
LEVEL = "<i>a</i> | *b*"
MODERATOR = "-dose*<b>|"
ZERO = "=Zero <i>x</i> | *z*"
HEADER = f"study,year,treat_events,treat_total,control_events,control_total,grp,{MODERATOR}"


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


ROWS = [
    (EVIL, "2019,33,38,18,40", LEVEL, "1"),
    (FORMULA, "2018,38,44,21,50", LEVEL, "2"),
    (ANSI, "2004,5,7,6,8", "-lvl", "3"),
    (NEWLINE, "2012,19,20,2,4", "-lvl", "5"),
    ("+plus", "2015,10,30,12,31", "@at", "4"),
    (ZERO, "2016,0,10,0,12", "@at", "4"),  # excluded (double zero): named in the notes
]
LABELS = [EVIL, FORMULA, ANSI, NEWLINE, "+plus"]


@pytest.fixture(scope="module")
def evil(tmp_path_factory):
    path = tmp_path_factory.mktemp("evil") / "evil.csv"
    lines = [HEADER] + [f"{_quote(s)},{nums},{_quote(g)},{d}" for s, nums, g, d in ROWS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


COMMANDS = [
    ("pool",),
    ("heterogeneity",),
    ("loo",),
    ("cumulative",),
    ("influence",),
    ("subgroup", "--by", "grp"),
    ("metareg", "--mod", MODERATOR),
    ("bias",),
]


# ---------------------------------------------------------------------------------------------
# Markdown


def _unescaped(text: str, char: str) -> list[int]:
    """Positions of ``char`` in Markdown source not preceded by an escaping backslash."""
    found = []
    for m in re.finditer(re.escape(char), text):
        slashes = len(text[: m.start()]) - len(text[: m.start()].rstrip("\\"))
        if slashes % 2 == 0:
            found.append(m.start())
    return found


def _split_row(line: str) -> list[str]:
    cuts = _unescaped(line, "|")
    return [line[a + 1 : b] for a, b in zip(cuts, cuts[1:])]


def _lone(text: str, pos: int) -> bool:
    """An underscore that could be emphasis: not between two letters or digits."""
    before, after = text[pos - 1 : pos], text[pos + 1 : pos + 2]
    return not (before.isalnum() and after.isalnum())


def _check_markdown(text: str) -> None:
    """Tables keep their shape, and nothing in the text is markup."""
    block: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            block.append(line)
            continue
        if block:
            widths = {len(_split_row(row)) for row in block}
            assert len(widths) == 1, block  # a "|" in a label added a cell
            assert line == "", line  # a newline in a label split a row
            block = []
    # Our own markup: bold summary rows and notes ("**...**"), italic lines ("*...*").
    ours = re.sub(r"(?<!\\)\*\*", "", text)
    ours = re.sub(r"^\*(.*)\*$", r"\1", ours, flags=re.M)
    for char in ("*", "~", "_"):
        assert not [p for p in _unescaped(ours, char) if char != "_" or _lone(ours, p)], char
    for pos in _unescaped(text, "<"):
        assert not re.match(r"<[A-Za-z/!?]", text[pos:]), text[pos : pos + 20]
    for pos in _unescaped(text, "]"):
        assert text[pos + 1 : pos + 2] not in ("(", "[", ":"), text[pos - 10 : pos + 10]
    assert "\x1b" not in text and "\r" not in text and "\t" not in text


def _html_of(markdown: str) -> str:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)


def _check_rendered(markdown: str) -> None:
    """What a Markdown viewer shows: no tag from the data, and the labels as literal text."""
    # The report's own italics: a figure that is not available.
    page = re.sub(r"<p><em>[^<]*: not available \([^<]*\)\.</em></p>", "", _html_of(markdown))
    for tag in ("<b>", "<i>", "<a ", "<em>", "<s>", "<script", "<img"):
        assert tag not in page, tag
    rows = re.findall(r"<tr>(.*?)</tr>", page, re.S)
    for table in re.findall(r"<table>(.*?)</table>", page, re.S):
        trs = re.findall(r"<tr>(.*?)</tr>", table, re.S)
        widths = {len(re.findall(r"<t[hd][ >]", tr)) for tr in trs}
        assert len(widths) == 1, table
    assert rows


@pytest.mark.parametrize("args", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_markdown_output_is_literal_text(run, evil, args):
    result = run(args[0], str(evil), *args[1:], "--format", "markdown")
    assert result.exit_code == 0, result.output
    text = result.stdout
    _check_markdown(text)
    _check_rendered(text)


def test_markdown_labels_read_back_exactly(run, evil):
    result = run("pool", str(evil), "--format", "markdown")
    sections = parse_markdown(result.stdout)
    first = [row[0] for row in sections[0].rows]
    for label in LABELS:
        assert any(cell.startswith(plain(label)) for cell in first), (label, first)
    page = _html_of(result.stdout)
    cells = [html.unescape(c) for c in re.findall(r"<td>(.*?)</td>", page)]
    assert f"{EVIL} (2019)" in cells
    assert "Line break  end (2012)" in cells


def test_markdown_subgroup_level_and_heading(run, evil):
    result = run("subgroup", str(evil), "--by", "grp", "--format", "markdown")
    page = _html_of(result.stdout)
    cells = [html.unescape(c) for c in re.findall(r"<td>(.*?)</td>", page)]
    assert f"grp = {LEVEL}" in cells
    assert "grp = @at" in cells


def test_report_markdown_is_literal_and_html_stays_safe(run, evil, tmp_path):
    out = tmp_path / "out"
    result = run("report", str(evil), "-o", str(out), "--no-figures", "--by", "grp")
    assert result.exit_code == 0, result.output
    md = (out / "report.md").read_text(encoding="utf-8")
    _check_markdown(md)
    _check_rendered(md)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<b>" not in page and "<i>" not in page and "\x1b" not in page
    # The HTML comes from the Markdown read back: the label without a single backslash.
    assert html.escape(f"{EVIL} (2019)", quote=False) in page


@pytest.mark.parametrize(
    "text",
    [
        EVIL,
        FORMULA,
        ANSI,
        NEWLINE,
        LEVEL,
        "- item",
        "1. first",
        "# h",
        "Foo #",
        "> q",
        "[x] t",
        "a_b __c__",
        "C:\\dir\\",
        "***",
        "===",
        "-0.25",
        "< 0.001",
        "\u202eevil",
    ],
)
def test_md_escape_round_trip(text):
    escaped = md_escape(text)
    assert md_unescape(escaped) == plain(text)
    rendered = _html_of(f"| h |\n| --- |\n| {escaped} |\n")
    cells = re.findall(r"<td>(.*?)</td>", rendered, re.S)
    assert [html.unescape(c) for c in cells] == [plain(text).strip()], rendered


def test_plain_keeps_printable_unicode():
    assert plain("Müller 中文 🧑‍⚕️ I²") == "Müller 中文 🧑‍⚕️ I²"
    assert plain(ANSI) == "EvilRedlink"
    assert plain("a\x00b\x7fc\x9b") == "abc"


# ---------------------------------------------------------------------------------------------
# CSV


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("args", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_csv_text_cells_cannot_be_formulas(run, evil, args):
    result = run(args[0], str(evil), *args[1:], "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows
    for row in rows:
        for cell in row:
            if cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
                assert _is_number(cell), cell  # only numbers may start like a formula


def test_csv_guards_labels_and_keeps_numbers(run, evil):
    result = run("pool", str(evil), "--format", "csv")
    records = list(csv.DictReader(io.StringIO(result.stdout)))
    studies = [r["study"] for r in records if r["row_type"] == "study"]
    assert "'" + FORMULA in studies
    assert "'+plus" in studies
    # Negative numbers stay numbers at full precision (the Mahmoud-like row has log RR < 0).
    yi = [float(r["yi"]) for r in records if r["row_type"] == "study"]
    assert any(v < 0 for v in yi)
    assert all(not r["yi"].startswith("'") for r in records)
    sub = run("subgroup", str(evil), "--by", "grp", "--format", "csv").stdout
    levels = [r["level"] for r in csv.DictReader(io.StringIO(sub))]
    assert "'-lvl" in levels and "'@at" in levels


def test_csv_guard_rules():
    for number in ("-0.25", "-inf", "nan", "+1e-05", "-3", "-.5"):
        assert csv_guard(number) == number
    for text in ("=1+2", "+plus", "-lvl", "@SUM(A1)", "\tx", "\rx", "-2+3+cmd|' /C calc'!A0"):
        assert csv_guard(text) == "'" + text
    assert csv_guard("Smith") == "Smith"


def test_json_keeps_the_raw_text(run, evil):
    import json

    data = json.loads(run("pool", str(evil), "--format", "json").stdout)
    assert data["studies"][1]["study"] == FORMULA
    assert data["studies"][0]["study"] == EVIL


def test_batch_csv_guards_text_keys_only(run, tmp_path):
    path = tmp_path / "long.csv"
    path.write_text(
        "review,analysis,study,treat_events,treat_total,control_events,control_total\n"
        "=cmd,-5,s1,12,40,6,41\n=cmd,-5,s2,15,44,20,43\n"
        "@x,-5,s1,3,30,9,31\n@x,-5,s2,0,20,4,21\n"
    )
    result = run("batch", str(path), "-g", "review", "-g", "analysis")
    assert result.exit_code == 0, result.output
    records = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["review"] for r in records] == ["'=cmd", "'@x"]
    assert [r["analysis"] for r in records] == ["-5", "-5"]  # a number, as written
    for r in records:
        for key, cell in r.items():
            if key != "review" and cell[:1] in ("=", "+", "-", "@"):
                assert _is_number(cell), (key, cell)


# ---------------------------------------------------------------------------------------------
# Terminal tables


@pytest.fixture(scope="module")
def evil_fit(evil):
    return ivigmeta.pool(str(evil))


def _views(fit):
    ma = fit.analysis
    yield "pool", ma
    yield "heterogeneity", ma
    yield "loo", fit.loo()
    yield "cumulative", fit.cumulative()
    yield "influence", fit.influence()
    yield "subgroup", fit.subgroup("grp")
    yield "metareg", fit.metareg(MODERATOR)
    yield "bias", fit.bias()


def test_terminal_tables_strip_escape_sequences(evil_fit):
    for view, result in _views(evil_fit):
        for ascii_only in (False, True):
            out = render(result, view, "table", ascii_only=ascii_only)
            assert "\x1b" not in out and "\x07" not in out and "\r" not in out, view
            if view in ("pool", "loo", "influence", "cumulative"):
                assert "EvilRedlink" in out, view
            assert ZERO in out or view in ("subgroup",), view


@pytest.fixture
def two_studies(tmp_path):
    path = tmp_path / "k2.csv"
    path.write_text(
        "study,year,treat_events,treat_total,control_events,control_total\n"
        "A,2019,3,38,8,40\nB,2019,8,44,2,50\n"
    )
    return ivigmeta.pool(str(path))


@pytest.mark.parametrize("columns", [60, 80, 100])
def test_bias_table_cuts_no_cell(two_studies, columns):
    from ivigmeta.render.table import fit_columns
    from ivigmeta.render.views import VIEWS

    bias = two_studies.bias()
    out = render(bias, "bias", "table", width=columns)
    assert all(len(line.rstrip()) <= columns for line in out.splitlines())
    words = out.split()
    for sec in VIEWS["bias"].sections(bias):
        keep, _ = fit_columns(sec, columns)
        shown = [sec.columns[i] for i in keep] + [row[i] for row in sec.rows for i in keep]
        for cell in shown:
            for word in cell.split():
                assert word in words, (word, cell)
