"""Turning a file (or standard input) into rows of text cells: encodings, delimiters and .xlsx.

* Text files are decoded as UTF-8 (with or without a byte-order mark), or UTF-16 when they start
  with its byte-order mark; bytes that are not UTF-8 fall back to Latin-1, with a note.
* The delimiter is sniffed from the header row among comma, semicolon and tab (the one that
  splits the header into the most fields; ties go to the comma); ``sep`` forces it.
* With a semicolon delimiter numbers may use a decimal comma (``1,93``): :class:`RawTable`
  records ``decimal=","`` and the validator reads numbers accordingly.
* ``.xlsx`` workbooks (by extension, or by their zip signature on standard input) are read with
  openpyxl, an optional extra imported only here and only for such files.

Nothing here validates studies or does statistics; every problem is a :class:`DataError`
naming the file.
"""

from __future__ import annotations

import csv
import io
import os
import re
import sys
from dataclasses import dataclass, field

from ivigmeta.errors import DataError

STDIN_NAME = "<stdin>"
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}
SEP_NAMES = {
    "comma": ",",
    ",": ",",
    "semicolon": ";",
    ";": ";",
    "tab": "\t",
    "\\t": "\t",
    "\t": "\t",
}
XLSX_EXTENSIONS = (".xlsx", ".xlsm")
_ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class RawTable:
    """The cells of a table as text, before validation; row 1 is the header."""

    source: str
    rows: list[list[str]]
    decimal: str = "."
    notes: tuple[str, ...] = field(default_factory=tuple)


def normalize_sep(sep: str | None) -> str | None:
    """``comma``/``semicolon``/``tab`` (or the character itself) -> the delimiter; ``None`` sniffs."""
    if sep is None or sep == "":
        return None
    key = sep if sep in SEP_NAMES else sep.lower()
    if key not in SEP_NAMES:
        raise DataError(f"unknown delimiter '{sep}' for --sep (choose comma, semicolon or tab)")
    return SEP_NAMES[key]


def read_bytes(path: str) -> tuple[str, bytes]:
    """``(display name, bytes)`` for a path, or for standard input when ``path`` is ``-``."""
    if path == "-":
        stream = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else None
        if stream is not None:
            return STDIN_NAME, stream.read()
        return STDIN_NAME, sys.stdin.read().encode("utf-8")
    if not os.path.exists(path):
        raise DataError(f"{path}: file not found")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a directory, not a CSV file")
    try:
        with open(path, "rb") as handle:
            return path, handle.read()
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def decode(data: bytes, source: str) -> tuple[str, list[str]]:
    """Text of ``data`` and notes: UTF-8 (BOM or not), UTF-16 with a BOM (Excel's "Unicode
    text"), else Latin-1 with a note."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16"), [f"{source}: read as UTF-16"]
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        return data.decode("latin-1"), [
            f"{source}: not valid UTF-8 (byte {exc.start + 1}); read as Latin-1"
        ]


def sniff_delimiter(text: str) -> str:
    """The delimiter among comma, semicolon and tab that splits the header into most fields."""
    header = ""
    for line in io.StringIO(text):
        if line.strip():
            header = line
            break
    best, best_fields = ",", 0
    for delim in (",", ";", "\t"):
        try:
            fields = next(csv.reader([header], delimiter=delim), [])
        except csv.Error:
            continue
        if len(fields) > best_fields:
            best, best_fields = delim, len(fields)
    return best


def split_text(text: str, source: str, sep: str | None = None) -> RawTable:
    """Split CSV ``text`` into rows of cells (delimiter sniffed unless ``sep`` is given)."""
    notes = []
    # Excel writes a first line "sep=;" naming the delimiter; it is not a row of the table.
    hint = re.match(r"sep=(.)\r?\n", text)
    delim = normalize_sep(sep)
    if hint:
        text = text[hint.end() :]
        delim = delim or hint.group(1)
        notes.append(
            f"{source}: delimiter {DELIMITERS.get(hint.group(1), repr(hint.group(1)))} "
            "from the 'sep=' line (not a row of the table)"
        )
    delim = delim or sniff_delimiter(text)
    # NUL bytes make the csv module fail; they never belong in a study table.
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise DataError(f"{source}, line {line}: contains a NUL byte (is this a binary file?)")
    rows = csv_rows(text, source, delim)
    if delim != "," and sep is None and not hint:
        notes.append(f"{source}: {DELIMITERS.get(delim, repr(delim))}-separated")
    decimal = "," if delim == ";" else "."
    return RawTable(source, rows, decimal, tuple(notes))


def csv_rows(text: str, source: str, delim: str, first_row: int = 1) -> list[list[str]]:
    """The rows of CSV ``text``; malformed quoting is a :class:`DataError` naming the row.

    The csv module in its strict mode: a quoted cell that is never closed (which would swallow
    every line after it) or a character after a closing quote is an error naming the row where
    the quoted cell began (``first_row`` is the number of the first line of ``text``), so no row
    is silently lost.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim, strict=True)
    rows: list[list[str]] = []
    line = first_row
    try:
        for row in reader:
            rows.append(row)
            line = first_row + reader.line_num
    except csv.Error as exc:
        row_number = first_row + len(rows)
        where = str(row_number) if line == row_number else f"{row_number} (line {line})"
        raise DataError(quote_error(source, where, str(exc))) from None
    return rows


def quote_error(source: str, row: int | str, reason: str) -> str:
    """The message for malformed quoting in the row that begins at line ``row``."""
    if "end of data" in reason or "EOF" in reason:
        what = (
            "a quoted cell that begins in this row is never closed (a missing '\"'): "
            "the rest of the file would be read as one cell"
        )
    elif "expected after" in reason:
        what = "a character follows the closing '\"' of a quoted cell (expected a delimiter)"
    else:
        what = f"malformed quoting ({reason})"
    return f"{source}, row {row}: {what}"


def read_xlsx(data: bytes, source: str, sheet: str | None = None) -> RawTable:
    """Rows of one worksheet of an .xlsx workbook (the first, or ``sheet``) as text cells."""
    try:
        import openpyxl
    except ImportError:
        raise DataError(
            f"{source}: reading .xlsx files needs the optional extra: pip install 'ivigmeta[excel]'"
        ) from None
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a damaged file
        raise DataError(f"{source}: not a readable .xlsx workbook ({type(exc).__name__})") from None
    try:
        if sheet is not None:
            if sheet not in book.sheetnames:
                raise DataError(
                    f"{source}: no sheet '{sheet}' (sheets: {', '.join(book.sheetnames)})"
                )
            ws = book[sheet]
        else:
            ws = book.worksheets[0]
        rows = _sheet_rows(ws)
        if sheet is None and not _has_cells(rows) and len(book.sheetnames) > 1:
            filled = [name for name in book.sheetnames[1:] if _has_cells(_sheet_rows(book[name]))]
            if filled:
                raise DataError(
                    f"{source}: the first sheet '{ws.title}' is empty; the data may be on "
                    f"sheet {', '.join(repr(n) for n in filled)} (choose it with --sheet NAME)"
                )
    finally:
        book.close()
    notes = [f"{source}: read sheet '{ws.title}'"] if len(book.sheetnames) > 1 else []
    return RawTable(source, rows, ".", tuple(notes))


def _sheet_rows(ws: object) -> list[list[str]]:
    """A worksheet's cells as text. Some writers (R's openxlsx among them) store a wrong sheet
    dimension, which makes openpyxl's read-only mode see an empty sheet: it is recomputed."""
    reset = getattr(ws, "reset_dimensions", None)
    if reset is not None:
        reset()
    return [[_xlsx_cell(v) for v in row] for row in ws.iter_rows(values_only=True)]  # type: ignore[attr-defined]


def _has_cells(rows: list[list[str]]) -> bool:
    return any(c.strip() for r in rows for c in r)


def _xlsx_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return str(value)


def read_raw(path: str, sep: str | None = None, sheet: str | None = None) -> RawTable:
    """Read ``path`` (``-`` for standard input) into a :class:`RawTable`."""
    source, data = read_bytes(path)
    return raw_from_bytes(data, source, path, sep, sheet)


def is_workbook(path: str, head: bytes) -> bool:
    """Whether a file is an .xlsx workbook: by its name or, on standard input (or under any
    name), by the zip signature of its first bytes ``head``."""
    return path.lower().endswith(XLSX_EXTENSIONS) or head[:4] == _ZIP_MAGIC


def check_format_options(source: str, workbook: bool, sep: str | None, sheet: str | None) -> None:
    """--sep is for text files and --sheet for workbooks: a DataError otherwise."""
    if workbook and sep is not None:
        raise DataError(f"{source}: --sep applies to text files only, not to an .xlsx workbook")
    if not workbook and sheet is not None:
        raise DataError(f"{source}: --sheet applies to .xlsx workbooks only")


def raw_from_bytes(
    data: bytes, source: str, path: str, sep: str | None = None, sheet: str | None = None
) -> RawTable:
    """The cells of a whole file already read (``path`` tells a workbook by its name)."""
    is_xlsx = is_workbook(path, data)
    check_format_options(source, is_xlsx, sep, sheet)
    if is_xlsx:
        return read_xlsx(data, source, sheet)
    text, notes = decode(data, source)
    raw = split_text(text, source, sep)
    return RawTable(raw.source, raw.rows, raw.decimal, tuple(notes) + raw.notes)
