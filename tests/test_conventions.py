"""The paper's studies.csv written in every supported convention, delimiter and encoding (and as
an .xlsx workbook, and on standard input) gives identical JSON results for every command.

One label is given a non-ASCII letter (Ramos-Médina) so that the encodings differ in bytes.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import STUDIES

COMMANDS = {
    "pool": [],
    "heterogeneity": [],
    "loo": [],
    "bias": [],
    "subgroup": ["--by", "nk_criterion", "--by", "timing"],
    # A numeric moderator written with decimal commas in the semicolon files.
    "metareg": ["--mod", "treat_duration_mean"],
}

COUNTS = ("treat_events", "treat_total", "control_events", "control_total")

# convention name -> (header renames, extra CLI args); ai/bi/ci/di is built separately.
CONVENTIONS = {
    "ivigmeta": ({}, []),
    "metafor_n": (dict(zip(COUNTS, ("ai", "n1i", "ci", "n2i"))), []),
    "metafor_bd": (None, []),
    "meta": (dict(zip(COUNTS, ("event.e", "n.e", "event.c", "n.c")), study="studlab"), []),
    "revman": (
        dict(
            zip(
                COUNTS,
                ("Experimental events", "Experimental total", "Control events", "Control total"),
            ),
            study="Study",
            year="Year",
        ),
        [],
    ),
    "custom": (
        dict(zip(COUNTS, ("EvT", "NT", "EvC", "NC")), study="Trial"),
        [
            "--columns",
            "treat_events=EvT,treat_total=NT,control_events=EvC,control_total=NC,study=Trial",
        ],
    ),
}


def paper_rows() -> list[dict[str, str]]:
    with open(STUDIES, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        if row["study"] == "Ramos-Medina":
            row["study"] = "Ramos-Médina"
    return rows


def convention_table(name: str) -> list[list[str]]:
    rows = paper_rows()
    renames, _ = CONVENTIONS[name]
    if renames is None:  # events and non-events
        header = [
            "study",
            "year",
            "ai",
            "bi",
            "ci",
            "di",
            "nk_criterion",
            "timing",
            "treat_duration_mean",
        ]
        body = [
            [
                r["study"],
                r["year"],
                r["treat_events"],
                str(int(r["treat_total"]) - int(r["treat_events"])),
                r["control_events"],
                str(int(r["control_total"]) - int(r["control_events"])),
                r["nk_criterion"],
                r["timing"],
                r["treat_duration_mean"],
            ]
            for r in rows
        ]
        return [header, *body]
    columns = list(rows[0])
    return [[renames.get(c, c) for c in columns]] + [[r[c] for c in columns] for r in rows]


def encode(table: list[list[str]], delimiter: str, encoding: str) -> bytes:
    if delimiter == ";":  # decimal commas, as a European spreadsheet writes them
        table = [table[0]] + [
            [c.replace(".", ",") if _decimal(c) else c for c in row] for row in table[1:]
        ]
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\r\n").writerows(table)
    buf.write("\r\n")  # a blank trailing line
    return buf.getvalue().encode(encoding)


def _decimal(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return "." in cell


def outputs(run, path: str, args: list[str], stdin: bytes | None = None) -> dict[str, str]:
    out = {}
    for command, extra in COMMANDS.items():
        result = run(command, path, *extra, *args, "-f", "json", input=stdin)
        assert result.exit_code == 0, (command, result.output)
        out[command] = result.stdout
    return out


@pytest.fixture(scope="module")
def reference():
    from ivigmeta.cli import cli

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ref.csv"
        path.write_bytes(encode(convention_table("ivigmeta"), ",", "utf-8"))
        runner = CliRunner()
        out = {}
        for command, extra in COMMANDS.items():
            result = runner.invoke(
                cli, [command, str(path), *extra, "-f", "json"], catch_exceptions=False
            )
            assert result.exit_code == 0
            out[command] = result.stdout
    assert "Ramos-Médina" in out["pool"]
    return out


@pytest.mark.parametrize(
    "convention, delimiter, encoding",
    list(itertools.product(CONVENTIONS, [",", ";", "\t"], ["utf-8", "utf-8-sig", "latin-1"])),
)
def test_identical_json(run, tmp_path, reference, convention, delimiter, encoding):
    path = tmp_path / "studies.csv"
    path.write_bytes(encode(convention_table(convention), delimiter, encoding))
    result = outputs(run, str(path), CONVENTIONS[convention][1])
    assert result == reference


def test_excel_sep_line(run, tmp_path, reference):
    """Excel's "sep=;" first line names the delimiter and is not a row."""
    path = tmp_path / "studies.csv"
    path.write_bytes(b"sep=;\r\n" + encode(convention_table("metafor_n"), ";", "latin-1"))
    assert outputs(run, str(path), []) == reference


def test_utf16_with_bom(run, tmp_path, reference):
    """Excel's "Unicode text" export: UTF-16 with a byte-order mark, tab-separated."""
    path = tmp_path / "studies.txt"
    path.write_bytes(encode(convention_table("ivigmeta"), "\t", "utf-16"))
    assert outputs(run, str(path), []) == reference


def test_latin1_and_delimiter_notes(run, tmp_path):
    path = tmp_path / "studies.csv"
    path.write_bytes(encode(convention_table("metafor_n"), ";", "latin-1"))
    err = run("pool", str(path), "-f", "json").stderr
    assert "not valid UTF-8" in err and "read as Latin-1" in err
    assert "semicolon-separated" in err and "metafor's ai/n1i/ci/n2i" in err


def test_forced_separator(run, tmp_path, reference):
    path = tmp_path / "studies.txt"
    path.write_bytes(encode(convention_table("meta"), "\t", "utf-8"))
    assert outputs(run, str(path), ["--sep", "tab"]) == reference


def test_stdin(run, reference):
    data = encode(convention_table("revman"), ";", "utf-8-sig")
    assert outputs(run, "-", [], stdin=data) == reference


def test_xlsx(run, tmp_path, reference):
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    book.active.title = "Notes"
    sheet = book.create_sheet("Table 2")
    for row in convention_table("metafor_n"):
        # Numbers as numbers, as a spreadsheet holds them.
        sheet.append(
            [float(c) if _decimal(c) else int(c) if c.isdigit() else (c or None) for c in row]
        )
    path = tmp_path / "studies.xlsx"
    book.save(path)
    assert outputs(run, str(path), ["--sheet", "Table 2"]) == reference
    # Workbooks on standard input are recognised by their signature.
    assert outputs(run, "-", ["--sheet", "Table 2"], stdin=path.read_bytes()) == reference


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_effect_only_table_with_decimal_commas(run, tmp_path, paper_fit, delimiter):
    """yi, vi at full precision: decimal commas with semicolons read exactly as decimal points."""
    table = [["study", "year", "yi", "vi", "nk_criterion", "timing", "treat_duration_mean"]]
    for s, y, v in zip(paper_fit.effects.studies, paper_fit.effects.yi, paper_fit.effects.vi):
        table.append(
            [
                s.study,
                str(s.year),
                repr(y),
                repr(v),
                s.fields["nk_criterion"],
                s.fields["timing"],
                s.fields["treat_duration_mean"],
            ]
        )
    path = tmp_path / "effects.csv"
    path.write_bytes(encode(table, delimiter, "utf-8"))
    if delimiter == ";":
        assert b"0,657429" in path.read_bytes()
    got = outputs(run, str(path), [])
    ref_path = tmp_path / "ref.csv"
    ref_path.write_bytes(encode(table, ",", "utf-8"))
    assert got == outputs(run, str(ref_path), [])
    pooled = json.loads(got["pool"])
    assert f"{pooled['random']['estimate']:.2f}" == "1.98"
    assert {s["source"] for s in pooled["studies"]} == {"vi"}


def test_reading_a_semicolon_latin1_csv_stays_light(tmp_path):
    """pool on a CSV imports neither pandas, scipy, matplotlib nor openpyxl (numpy is the engine's)."""
    path = tmp_path / "studies.csv"
    path.write_bytes(encode(convention_table("revman"), ";", "latin-1"))
    code = (
        "import sys\n"
        "from ivigmeta.cli import cli\n"
        f"cli.main(['pool', {str(path)!r}, '-f', 'json'], standalone_mode=False)\n"
        "heavy = ('pandas', 'scipy', 'matplotlib', 'openpyxl')\n"
        "print([m for m in heavy if m in sys.modules], file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout)["k"] == 8
    assert proc.stderr.strip().splitlines()[-1] == "[]"
