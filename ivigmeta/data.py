"""Reading and validating the study table.

A study table is a CSV file (or ``-`` for standard input) with one row per study and the columns
``study, year, treat_events, treat_total, control_events, control_total``; any further column is
kept as a text field (subgroup labels, descriptive columns). Rows are numbered as a spreadsheet
numbers them: the header is row 1, the first study is row 2.

Every problem is a :class:`~ivigmeta.errors.DataError` whose message names the file, and the row
and the column where it applies. Nothing here does statistics or prints.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from ivigmeta.errors import DataError

COUNT_COLUMNS = ("treat_events", "treat_total", "control_events", "control_total")
LABEL_COLUMN = "study"
YEAR_COLUMN = "year"
STDIN_NAME = "<stdin>"


@dataclass(frozen=True)
class Study:
    """One row of the study table: its label, its 2x2 counts and its other fields as text."""

    row: int
    study: str
    year: int | None
    treat_events: int
    treat_total: int
    control_events: int
    control_total: int
    fields: Mapping[str, str] = field(default_factory=dict)

    @property
    def counts(self) -> tuple[int, int, int, int]:
        return (self.treat_events, self.treat_total, self.control_events, self.control_total)

    @property
    def n(self) -> int:
        return self.treat_total + self.control_total

    def label(self) -> str:
        """Display label: ``study (year)`` when the year is known."""
        return f"{self.study} ({self.year})" if self.year is not None else self.study


@dataclass(frozen=True)
class StudyTable:
    """A validated study table: where it came from, its header and its studies in file order."""

    source: str
    columns: tuple[str, ...]
    studies: tuple[Study, ...]

    def has_column(self, name: str) -> bool:
        return name in self.columns

    def require_label_column(self, name: str) -> None:
        """Raise a :class:`DataError` naming the file and the columns found if ``name`` is absent."""
        if name not in self.columns:
            raise DataError(
                f"{self.source}: no column '{name}' (columns found: {', '.join(self.columns)})"
            )

    def label_columns(self) -> tuple[str, ...]:
        """Columns other than the label, year and counts (candidates for subgrouping)."""
        fixed = {LABEL_COLUMN, YEAR_COLUMN, *COUNT_COLUMNS}
        return tuple(c for c in self.columns if c not in fixed)


def read_text(path: str) -> tuple[str, str]:
    """Return ``(display name, text)`` for a path, or for standard input when ``path`` is ``-``."""
    if path == "-":
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
        name = STDIN_NAME
    else:
        name = path
        if not os.path.exists(path):
            raise DataError(f"{path}: file not found")
        if os.path.isdir(path):
            raise DataError(f"{path}: is a directory, not a CSV file")
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    else:
        text = data
    return name, text


def load_table(path: str) -> StudyTable:
    """Read and validate the study table at ``path`` (``-`` for standard input)."""
    name, text = read_text(path)
    return parse_table(text, name)


def parse_table(text: str, source: str) -> StudyTable:
    """Parse CSV ``text`` into a :class:`StudyTable`; ``source`` names it in messages."""
    if not text.strip():
        raise DataError(f"{source}: the file is empty (expected a header row and one row per study)")
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise DataError(f"{source}: not a readable CSV file ({exc})") from None
    header = [h.strip() for h in rows[0]]
    _check_header(header, source)
    studies = []
    for offset, raw in enumerate(rows[1:]):
        row_number = offset + 2
        if not raw or all(not cell.strip() for cell in raw):
            continue  # blank lines (typically trailing) carry no study
        if len(raw) > len(header):
            raise DataError(
                f"{source}, row {row_number}: {len(raw)} fields but the header has {len(header)}"
            )
        values = {col: (raw[i].strip() if i < len(raw) else "") for i, col in enumerate(header)}
        studies.append(_parse_study(values, row_number, source))
    if not studies:
        raise DataError(f"{source}: the file has a header but no study rows")
    return StudyTable(source=source, columns=tuple(header), studies=tuple(studies))


def _check_header(header: Sequence[str], source: str) -> None:
    seen: set[str] = set()
    for col in header:
        if col in seen:
            raise DataError(f"{source}, row 1: column '{col}' appears more than once")
        seen.add(col)
    missing = [c for c in COUNT_COLUMNS if c not in seen]
    if missing:
        found = ", ".join(h for h in header if h) or "none"
        raise DataError(
            f"{source}, row 1: required column(s) missing: {', '.join(missing)} (columns found: {found})"
        )


def _parse_count(value: str, source: str, row: int, column: str) -> int:
    where = f"{source}, row {row}, column '{column}'"
    if value == "":
        raise DataError(f"{where}: missing value (expected a whole number of participants)")
    try:
        number = float(value)
    except ValueError:
        raise DataError(f"{where}: '{value}' is not a number (expected a whole number)") from None
    if not math.isfinite(number):
        raise DataError(f"{where}: '{value}' is not a finite number (expected a whole number)")
    if number != int(number):
        raise DataError(f"{where}: '{value}' is not a whole number (counts are numbers of people)")
    if number < 0:
        raise DataError(f"{where}: '{value}' is negative (counts cannot be negative)")
    return int(number)


def _parse_study(values: dict[str, str], row: int, source: str) -> Study:
    counts = {c: _parse_count(values[c], source, row, c) for c in COUNT_COLUMNS}
    for arm in ("treat", "control"):
        events, total = counts[f"{arm}_events"], counts[f"{arm}_total"]
        if total == 0:
            raise DataError(
                f"{source}, row {row}, column '{arm}_total': 0 (an arm needs at least one participant)"
            )
        if events > total:
            raise DataError(
                f"{source}, row {row}, column '{arm}_events': {events} events exceed "
                f"{arm}_total {total}"
            )
    year = None
    year_text = values.get(YEAR_COLUMN, "")
    if year_text:
        try:
            year = int(float(year_text))
        except ValueError:
            raise DataError(
                f"{source}, row {row}, column '{YEAR_COLUMN}': '{year_text}' is not a year"
            ) from None
    label = values.get(LABEL_COLUMN, "") or f"row {row}"
    return Study(
        row=row,
        study=label,
        year=year,
        treat_events=counts["treat_events"],
        treat_total=counts["treat_total"],
        control_events=counts["control_events"],
        control_total=counts["control_total"],
        fields=values,
    )
