"""Reading and validating the study table.

A study table is a CSV file (comma, semicolon or tab separated), an ``.xlsx`` workbook, or ``-``
for standard input, with one row per study. Its count columns follow one of the conventions in
:mod:`ivigmeta.io.columns` (ivigmeta's own ``treat_events, treat_total, control_events,
control_total``, metafor's, meta's, RevMan's); a row may instead give an effect (``estimate,
ci_low, ci_high``; ``theta, se``; ``yi, vi``). Every column is also kept as a text field
(subgroup labels, descriptive columns). Rows are numbered as a spreadsheet numbers them: the
header is row 1, the first study is row 2.

Every problem is a :class:`~ivigmeta.errors.DataError` whose message names the file, the row, the
column, the value and what was expected. Nothing here does statistics or prints: notes for the
user (the convention recognised, a Latin-1 fallback, duplicate labels) are returned in
:attr:`StudyTable.notes`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ivigmeta.errors import DataError, MissingValueError
from ivigmeta.io.columns import (
    COUNT_ROLES,
    EFFECT_ROLES,
    EFFECT_SETS,
    NONEVENT_ROLES,
    ColumnMap,
    did_you_mean,
    label_roles,
    parse_columns_option,
    resolve,
)
from ivigmeta.io.outcome_columns import OUTCOME_ROLES, detect_outcome, parse_outcome_row
from ivigmeta.io.readers import (
    STDIN_NAME,
    RawTable,
    decode,
    raw_from_bytes,
    read_bytes,
    split_text,
)

COUNT_COLUMNS = COUNT_ROLES
LABEL_COLUMN = "study"
YEAR_COLUMN = "year"
MEASURE_NAMES = ("RR", "OR", "RD")
# Counts above 2^53 cannot be held exactly in a double.
MAX_COUNT = 2**53
# Effects given directly: within these limits the squares of weighted residuals (w e)² and the
# cubes of weights that the estimators sum stay far from overflowing a double (about 1e308).
MAX_EFFECT = 1e10
MIN_VARIANCE = 1e-40
MAX_VARIANCE = 1e40
#: ``--missing``: a missing value in a cell a study's effect needs is an error (the default), or
#: the study is excluded and listed with the reason (metafor's ``na.action = na.omit``)
MISSING_CHOICES = ("error", "exclude")

__all__ = [
    "COUNT_COLUMNS",
    "MISSING_CHOICES",
    "MissingRow",
    "STDIN_NAME",
    "GivenEffect",
    "Study",
    "StudyTable",
    "load_table",
    "parse_rows",
    "parse_table",
    "read_text",
]


#: Study.effect_source of the rows of each outcome kind
OUTCOME_SOURCES = {
    "continuous": "means",
    "incidence": "rates",
    "proportion": "proportion",
    "change": "change",
    "correlation": "correlation",
    "mean": "mean",
    "rate": "rate",
    "partial_r2": "partial",
    "partial": "partial",
}


def _whole(x: float) -> int | None:
    return int(x) if float(x).is_integer() else None


@dataclass(frozen=True)
class GivenEffect:
    """An effect a row reports instead of counts.

    ``kind`` is ``ci`` (``values`` = estimate, ci_low, ci_high on the reported scale), ``se``
    (theta, se on the analysis scale) or ``vi`` (yi, vi). ``columns`` are the header names the
    values came from; ``measure`` is the row's ``measure`` cell, if the table has one.
    """

    kind: str
    values: tuple[float, ...]
    columns: tuple[str, ...]
    measure: str | None = None
    measure_column: str | None = None


@dataclass(frozen=True)
class Study:
    """One row of the study table: its label, its 2x2 counts (or a given effect), its fields.

    The counts are ``None`` for a row that reports only an effect (``given``).
    """

    row: int
    study: str
    year: int | None
    treat_events: int | None
    treat_total: int | None
    control_events: int | None
    control_total: int | None
    fields: Mapping[str, str] = field(default_factory=dict)
    given: GivenEffect | None = None
    file: str = ""
    #: ``continuous``, ``incidence``, ``proportion``, ``change``, ``correlation``, ``mean`` or
    #: ``rate`` for a row of such a table (then :attr:`outcome` holds its numbers by role, e.g. ``treat_mean``), else
    #: ``None``
    outcome_kind: str | None = None
    outcome: Mapping[str, float] | None = None

    @property
    def counts(self) -> tuple[int, int, int, int]:
        """``(treat_events, treat_total, control_events, control_total)``; check :attr:`has_counts`."""
        return (self.treat_events, self.treat_total, self.control_events, self.control_total)  # type: ignore[return-value]

    @property
    def has_counts(self) -> bool:
        return self.treat_events is not None

    @property
    def effect_source(self) -> str:
        """Where the effect comes from: ``counts``, ``means``, ``rates``, ``proportion``,
        ``change``, ``correlation``, ``mean``, ``rate``, or the kind of the given effect (``ci``, ``se``, ``vi``)."""
        if self.outcome_kind is not None:
            return OUTCOME_SOURCES[self.outcome_kind]
        if self.has_counts or self.given is None:
            return "counts"
        return self.given.kind

    @property
    def n(self) -> int | None:
        """Participants: both arms' totals, both groups' sizes, a proportion's total, or the
        size of a correlation's, a mean's or a pre-post change's sample."""
        if self.outcome is not None:
            if "treat_n" in self.outcome:
                return _whole(self.outcome["treat_n"] + self.outcome["control_n"])
            if "total" in self.outcome:
                return _whole(self.outcome["total"])
            if "n" in self.outcome:
                return _whole(self.outcome["n"])
            return None
        if not self.has_counts:
            return None
        return self.treat_total + self.control_total  # type: ignore[operator]

    def label(self) -> str:
        """Display label: ``study (year)`` when the year is known."""
        return f"{self.study} ({self.year})" if self.year is not None else self.study

    def where(self, column: str) -> str:
        """``file, row N, column 'C'`` for messages about this row."""
        return f"{self.file or 'input'}, row {self.row}, column '{column}'"


@dataclass(frozen=True)
class MissingRow:
    """A study row left out under ``--missing exclude``: a cell its effect needs is missing."""

    row: int
    study: str
    #: the header name of the (first) missing cell, as the "missing value" error names it
    column: str

    @property
    def reason(self) -> str:
        return f"missing value in column '{self.column}'"


def check_missing(missing: str) -> str:
    """``missing`` lower-cased; a :class:`DataError` naming the choices for another value."""
    value = str(missing).lower()
    if value not in MISSING_CHOICES:
        raise DataError(
            f"missing='{missing}' is not known (expected one of {', '.join(MISSING_CHOICES)})"
        )
    return value


@dataclass(frozen=True)
class StudyTable:
    """A validated study table: where it came from, its header and its studies in file order."""

    source: str
    columns: tuple[str, ...]
    studies: tuple[Study, ...]
    column_map: ColumnMap | None = None
    notes: tuple[str, ...] = ()
    #: settings that came with the table (a RevMan analysis: its measure, method, model, level)
    settings: Mapping[str, Any] = field(default_factory=dict)
    #: rows left out for a missing value under ``missing="exclude"``, in file order (the
    #: effects list them among the excluded studies)
    omitted: tuple[MissingRow, ...] = ()

    def has_column(self, name: str) -> bool:
        return name in self.columns

    def require_label_column(self, name: str) -> None:
        """Raise a :class:`DataError` naming the file and the columns found if ``name`` is absent."""
        if name not in self.columns:
            raise DataError(
                f"{self.source}: no column '{name}'{did_you_mean(name, self.columns)} "
                f"(columns found: {', '.join(self.columns)})"
            )

    def label_columns(self) -> tuple[str, ...]:
        """Columns other than the label, year, counts and effects (candidates for subgrouping)."""
        fixed = {LABEL_COLUMN, YEAR_COLUMN, *COUNT_COLUMNS}
        if self.column_map is not None:
            fixed |= self.column_map.used()
        return tuple(c for c in self.columns if c and c not in fixed)


def distinct_labels(studies: Sequence[Study]) -> list[str]:
    """Short labels for figures: the study name, with the year added where two names clash
    ("Smith (2001)", "Smith (2004)"), and the row where name and year clash too."""
    from collections import Counter

    names = Counter(s.study for s in studies)
    labels = [s.label() if names[s.study] > 1 else s.study for s in studies]
    again = Counter(labels)
    return [f"{lab} [row {s.row}]" if again[lab] > 1 else lab for lab, s in zip(labels, studies)]


def read_text(path: str) -> tuple[str, str]:
    """Return ``(display name, text)`` for a path, or for standard input when ``path`` is ``-``."""
    name, data = read_bytes(path)
    return name, decode(data, name)[0]


def load_table(
    path: str,
    sep: str | None = None,
    sheet: str | None = None,
    columns: str | Mapping[str, str] | None = None,
    analysis: str | None = None,
    missing: str = "error",
) -> StudyTable:
    """Read and validate the study table at ``path`` (``-`` for standard input).

    ``sep`` forces the delimiter (``comma``, ``semicolon``, ``tab``), ``sheet`` picks an .xlsx
    worksheet, ``columns`` maps roles to column names (``--columns``). A RevMan file (.rm5, or
    RevMan's CSV export of analyses) gives the table of its analysis numbered ``analysis``
    (``--analysis 1.2``), with that analysis's settings in :attr:`StudyTable.settings`.
    ``missing`` is ``--missing``: ``"exclude"`` leaves out a row whose effect needs a missing
    value (listed in :attr:`StudyTable.omitted`) instead of raising the error.
    """
    from ivigmeta.io.revman import is_revman_csv_head, is_rm5

    source, data = read_bytes(path)
    if is_rm5(path, data[:4096]) or is_revman_csv_head(data[:4096]):
        from ivigmeta.io.revman import revman_raw, table_settings

        if sep is not None or sheet is not None:
            raise DataError(f"{source}: --sep and --sheet do not apply to a RevMan file")
        raw, chosen = revman_raw(data, source, path, analysis)
        return replace(parse_rows(raw, columns, missing), settings=table_settings(chosen))
    if analysis is not None:
        raise DataError(
            f"{source}: --analysis {analysis} applies to RevMan files (.rm5 or RevMan's CSV "
            "export), not to a study table"
        )
    return parse_rows(raw_from_bytes(data, source, path, sep, sheet), columns, missing)


def parse_table(
    text: str,
    source: str,
    sep: str | None = None,
    columns: str | Mapping[str, str] | None = None,
    missing: str = "error",
) -> StudyTable:
    """Parse CSV ``text`` into a :class:`StudyTable`; ``source`` names it in messages."""
    return parse_rows(split_text(text, source, sep), columns, missing)


def parse_rows(
    raw: RawTable, columns: str | Mapping[str, str] | None = None, missing: str = "error"
) -> StudyTable:
    """Validate the cells of ``raw`` into a :class:`StudyTable`; with ``missing="exclude"`` a
    row whose effect needs a missing value is left out (:attr:`StudyTable.omitted`), the rest of
    the row still checked (:func:`check_present_cells`)."""
    exclude = check_missing(missing) == "exclude"
    source = raw.source
    explicit = (
        parse_columns_option(columns)
        if isinstance(columns, str) or columns is None
        else dict(columns)
    )
    rows = raw.rows
    first, header = find_header(rows, source)
    body = [(i + 1, r) for i, r in enumerate(rows) if i > first and any(c.strip() for c in r)]
    if not body:
        raise DataError(
            f"{source}: the file has a header but no study rows (expected one row per study "
            f"below the header, row {first + 1})"
        )
    blank = [i + 1 for i, r in enumerate(rows) if i > first and not any(c.strip() for c in r)]
    body, summary = split_summary_rows(body)
    if not body:
        raise DataError(
            f"{source}: the file has a header but no study rows (expected one row per study "
            f"below the header, row {first + 1})"
        )
    cmap = table_map(header, [r for _, r in body], source, explicit, raw.decimal)
    studies = []
    omitted: list[MissingRow] = []
    read_missing: dict[str, list[int]] = {}
    both: list[int] = []
    for row_number, cells in body:
        extra = [c for c in cells[len(header) :] if c.strip()]
        if extra:
            raise DataError(
                f"{source}, row {row_number}: {len(header) + len(extra)} fields but the header "
                f"has {len(header)} (value '{extra[0].strip()}' has no column)"
            )
        values = {
            col: (cells[i].strip() if i < len(cells) else "") for i, col in enumerate(header) if col
        }
        for col, v in values.items():
            if v and is_missing_token(v):
                values[col] = ""
                read_missing.setdefault(col, []).append(row_number)
        if raw.decimal == ",":
            check_thousands(values, row_number, source, cmap)
            # Text fields hold numbers with a decimal point whatever the file's locale, so that
            # numeric moderators and printed fields do not depend on it.
            values = {col: decimal_point(v) for col, v in values.items()}
        try:
            if cmap.outcome is not None:
                study = parse_outcome_study(values, row_number, source, cmap)
            else:
                study = parse_study(values, row_number, source, cmap, raw.decimal)
        except MissingValueError as exc:
            if not exclude:
                raise
            check_present_cells(values, row_number, source, cmap, raw.decimal)
            omitted.append(MissingRow(row_number, row_label(values, row_number, cmap), exc.column))
            continue
        if study.has_counts and _gives_effect(values, cmap):
            both.append(row_number)
        studies.append(study)
    notes = list(raw.notes) + [f"{source}: {n}" for n in cmap.notes]
    notes += [
        f"{source}: column '{col}': {_rows(r)} read as missing (NA, N/A, '.' and NaN mean no value)"
        for col, r in read_missing.items()
    ]
    if both:
        effect = ", ".join(cmap.roles[r] for k in cmap.effect_sets() for r in EFFECT_SETS[k])
        notes.append(
            f"{source}: {_rows(both)} {'gives' if len(both) == 1 else 'give'} both event counts and an effect ({effect}): the "
            "counts are analysed and the given effect is not used"
        )
    if blank:
        notes.append(
            f"{source}: {_rows(blank)} {'is' if len(blank) == 1 else 'are'} blank (skipped)"
        )
    notes += [
        f"{source}: row {r}: summary row '{label}' skipped (not a study)" for r, label in summary
    ]
    notes += _duplicate_notes(studies, source)
    return StudyTable(
        source=source,
        columns=tuple(h for h in header if h),
        studies=tuple(studies),
        column_map=cmap,
        notes=tuple(notes),
        omitted=tuple(omitted),
    )


#: Rows that RevMan's, meta's and CMA's exported or pasted tables add below the studies.
_SUMMARY = re.compile(
    r"(total|subtotal|sub-total|heterogeneity|test for (overall effect|subgroup differences)|"
    r"overall)\b",
    re.IGNORECASE,
)


def split_summary_rows(
    body: list[tuple[int, list[str]]],
) -> tuple[list[tuple[int, list[str]]], list[tuple[int, str]]]:
    """Study rows, and the summary rows ("Total (95% CI)", "Subtotal", "Heterogeneity: ...",
    "Test for overall effect: ...") of exported forest-plot tables, recognised by their first
    non-empty cell: ``(rows kept, [(row, label) skipped])``."""
    kept, skipped = [], []
    for row_number, cells in body:
        first = next((c.strip() for c in cells if c.strip()), "")
        if _SUMMARY.match(first):
            skipped.append((row_number, first))
        else:
            kept.append((row_number, cells))
    return kept, skipped


def _rows(numbers: Sequence[int]) -> str:
    shown = ", ".join(map(str, numbers[:20])) + (
        f" ... ({len(numbers)} rows)" if len(numbers) > 20 else ""
    )
    return f"row {shown}" if len(numbers) == 1 else f"rows {shown}"


def _gives_effect(values: Mapping[str, str], cmap: ColumnMap) -> bool:
    return any(values.get(cmap.roles[r], "") for k in cmap.effect_sets() for r in EFFECT_SETS[k])


def find_header(rows: Sequence[Sequence[str]], source: str) -> tuple[int, list[str]]:
    """The header of a table: ``(index of its row in rows, its stripped names)``.

    The first row that is not blank is the header; trailing empty names (spreadsheet exports)
    are dropped. Raises DataError for an empty table or a name that appears twice. Shared with
    the batch reader (:mod:`ivigmeta.io.chunks`).
    """
    first = next((i for i, r in enumerate(rows) if any(c.strip() for c in r)), None)
    if first is None:
        raise DataError(
            f"{source}: the file is empty (expected a header row and one row per study)"
        )
    header = [h.strip() for h in rows[first]]
    while header and not header[-1]:
        header.pop()
    check_header(header, source, first + 1)
    return first, header


def check_header(header: Sequence[str], source: str, row: int) -> None:
    """Raise DataError when a column name appears twice in ``header`` (row ``row`` of ``source``).

    Shared with the batch reader (:mod:`ivigmeta.io.chunks`), so both reject a header alike.
    """
    seen: dict[str, str] = {}
    for i, col in enumerate(header):
        if not col:
            continue
        key = col.strip().casefold()
        if key in seen:
            same = (
                "" if seen[key] == col else f" (as '{seen[key]}': names are compared ignoring case)"
            )
            raise DataError(
                f"{source}, row {row}, column {i + 1}: column name '{col}' appears more than once"
                f"{same} (expected unique column names)"
            )
        seen[key] = col


def _duplicate_notes(studies: Sequence[Study], source: str) -> list[str]:
    rows: dict[str, list[int]] = {}
    for s in studies:
        rows.setdefault(s.label(), []).append(s.row)
    return [
        f"{source}: warning: rows {', '.join(map(str, r))} have the same study label '{label}' "
        "(all are analysed)"
        for label, r in rows.items()
        if len(r) > 1
    ]


_INT = re.compile(r"[+-]?\d+")
_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+([eE][+-]?\d+)?")


def decimal_point(value: str) -> str:
    """A number written with a decimal comma (``1,93``) with a decimal point; other text as is."""
    return value.replace(",", ".") if _DECIMAL_COMMA.fullmatch(value) else value


#: The one number grammar of a study table (docs/input.md): optional sign, digits with one
#: decimal mark, optional exponent. No digit separators (``8_2``), no ``inf``, no thousands marks.
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
#: In a decimal-comma (semicolon-separated) file, a point followed by groups of three digits
#: (``1.000``, ``12.500``) may be a thousands separator or a decimal point: refused.
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(\.\d{3})+(,\d*)?")
#: Cells that mean "no value" everywhere (labels and numbers): R's write.csv ``NA``, SAS/Stata's
#: ``.``, ``N/A``, ``NaN``; compared case-insensitively after trimming.
MISSING_TOKENS = frozenset({"NA", "N/A", "NAN", "."})


def is_missing_token(value: str) -> bool:
    """Whether a cell is one of the missing-value spellings (``NA``, ``N/A``, ``.``, ``NaN``)."""
    return value.strip().upper() in MISSING_TOKENS


def ambiguous_thousands(value: str, decimal: str) -> bool:
    """Whether ``value`` in a decimal-comma file looks like a number with a thousands point."""
    return decimal == "," and bool(_THOUSANDS.fullmatch(value.strip()))


def _number(value: str, decimal: str) -> float | int | None:
    """The number in ``value`` (``None`` if it is not one); integers stay exact."""
    text = value.strip()
    if decimal == ",":
        if "," in text and "." in text:
            return None
        text = text.replace(",", ".")
    if not _NUMBER.fullmatch(text):
        return None
    if _INT.fullmatch(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return None


def _not_a_number(value: str, decimal: str, expected: str) -> str:
    """Why ``value`` is not read as a number."""
    if ambiguous_thousands(value, decimal):
        return (
            f"'{value}' is ambiguous in a semicolon-separated file, which uses a decimal comma: "
            f"'.' may be a thousands separator or a decimal point (write the number without "
            f"thousands separators, e.g. {value.replace('.', '')} or {value.replace('.', ',', 1)})"
        )
    if value.strip().lstrip("+-").lower() in ("inf", "infinity"):
        return f"'{value}' is not a finite number (expected {expected})"
    if "_" in value:
        return f"'{value}' is not a number (digit separators '_' are not read; expected {expected})"
    return f"'{value}' is not a number (expected {expected})"


def _thousands_checked(value: str, decimal: str) -> float | int | None:
    """:func:`_number`, refusing a decimal-comma file's ``1.000`` (ambiguous) as not a number."""
    if ambiguous_thousands(value, decimal):
        return None
    return _number(value, decimal)


def numeric_columns(cmap: ColumnMap) -> list[str]:
    """The columns read as numbers: counts, given effects and the year."""
    cols = list(cmap.count_columns())
    cols += [cmap.roles[r] for k in cmap.effect_sets() for r in EFFECT_SETS[k]]
    if cmap.outcome is not None:
        cols += [c for r, c in cmap.roles.items() if r in OUTCOME_ROLES[cmap.outcome]]
    year = cmap.get("year")
    return cols + ([year] if year else [])


def check_thousands(values: Mapping[str, str], row: int, source: str, cmap: ColumnMap) -> None:
    """In a decimal-comma table, refuse a number cell such as ``1.000`` (raw, before the decimal
    comma is turned into a point): it may mean 1 or 1000."""
    for col in numeric_columns(cmap):
        value = values.get(col, "")
        if ambiguous_thousands(value, ","):
            raise DataError(
                f"{source}, row {row}, column '{col}': {_not_a_number(value, ',', 'a number')}"
            )


def _parse_count(value: str, source: str, row: int, column: str, decimal: str) -> int:
    where = f"{source}, row {row}, column '{column}'"
    if value == "":
        raise MissingValueError(
            f"{where}: missing value (expected a whole number of participants)", column
        )
    number = _thousands_checked(value, decimal)
    if number is None:
        raise DataError(f"{where}: {_not_a_number(value, decimal, 'a whole number')}")
    if isinstance(number, float):
        if not math.isfinite(number):
            raise DataError(f"{where}: '{value}' is not a finite number (expected a whole number)")
        if number != int(number):
            raise DataError(
                f"{where}: '{value}' is not a whole number (counts are numbers of people)"
            )
        number = int(number)
    if number < 0:
        raise DataError(f"{where}: '{value}' is negative (counts cannot be negative)")
    if number > MAX_COUNT:
        raise DataError(f"{where}: '{value}' is too large (expected at most 2^53 = {MAX_COUNT})")
    return number


def _parse_real(value: str, source: str, row: int, column: str, decimal: str, what: str) -> float:
    where = f"{source}, row {row}, column '{column}'"
    number = _thousands_checked(value, decimal)
    if number is None:
        raise DataError(f"{where}: {_not_a_number(value, decimal, what)}")
    x = float(number) if abs(number) < 1e308 else math.inf
    if not math.isfinite(x):
        raise DataError(f"{where}: '{value}' is not a finite number (expected {what})")
    if abs(x) > MAX_EFFECT:
        raise DataError(
            f"{where}: '{value}' is too large (expected {what}, at most {MAX_EFFECT:g} in size)"
        )
    return x


def _parse_counts(
    values: Mapping[str, str], row: int, source: str, cmap: ColumnMap, decimal: str
) -> dict[str, int]:
    counts: dict[str, int] = {}
    if cmap.get("treat_total") is not None:
        for role in COUNT_ROLES:
            col = cmap.roles[role]
            counts[role] = _parse_count(values[col], source, row, col, decimal)
        for arm in ("treat", "control"):
            ev_col, tot_col = cmap.roles[f"{arm}_events"], cmap.roles[f"{arm}_total"]
            _check_total(
                values,
                row,
                source,
                ev_col,
                tot_col,
                counts[f"{arm}_events"],
                counts[f"{arm}_total"],
            )
        return counts
    # Events and non-events (metafor's ai, bi, ci, di): totals are their sums.
    for arm in ("treat", "control"):
        ev_col, non_col = cmap.roles[f"{arm}_events"], cmap.roles[f"{arm}_nonevents"]
        events = _parse_count(values[ev_col], source, row, ev_col, decimal)
        non = _parse_count(values[non_col], source, row, non_col, decimal)
        _check_nonevents(values, row, source, ev_col, non_col, events, non)
        counts[f"{arm}_events"], counts[f"{arm}_total"] = events, events + non
    return counts


def _check_total(
    values: Mapping[str, str],
    row: int,
    source: str,
    ev_col: str,
    tot_col: str,
    events: int | None,
    total: int | None,
) -> None:
    """An arm's total is at least one and its events do not exceed it (each checked when the
    cells it needs are there: ``None`` for a missing one)."""
    if total == 0:
        raise DataError(
            f"{source}, row {row}, column '{tot_col}': '{values[tot_col]}' is zero "
            "(expected at least one participant in each arm)"
        )
    if events is not None and total is not None and events > total:
        raise DataError(
            f"{source}, row {row}, column '{ev_col}': {events} events exceed "
            f"{tot_col} {total} (expected events <= total)"
        )


def _check_nonevents(
    values: Mapping[str, str],
    row: int,
    source: str,
    ev_col: str,
    non_col: str,
    events: int,
    non: int,
) -> None:
    """An arm given as events and non-events holds somebody, and not too many."""
    if events + non == 0:
        raise DataError(
            f"{source}, row {row}, column '{non_col}': '{values[non_col]}' with "
            f"{ev_col} '{values[ev_col]}' leaves the arm empty (expected at least one participant)"
        )
    if events + non > MAX_COUNT:
        raise DataError(
            f"{source}, row {row}, column '{non_col}': the arm total {events + non} is too "
            f"large (expected at most 2^53 = {MAX_COUNT})"
        )


def check_present_cells(
    values: Mapping[str, str], row: int, source: str, cmap: ColumnMap, decimal: str
) -> None:
    """For a row left out for a missing value (``--missing exclude``): every cell of it that
    the row parser reads and that is there is checked as the parser checks it (a number, a
    count not negative, events not above the total where both are given, a variance > 0, the
    measure, the year), so that only missing values, never a wrong one, exclude a study.
    Raises the parser's :class:`DataError`."""
    if cmap.outcome is not None:
        from ivigmeta.io.outcome_columns import parse_outcome_row

        kind = cmap.outcome
        present = {
            r: c
            for r, c in cmap.roles.items()
            if r in OUTCOME_ROLES[kind] and (values.get(c) or "").strip()
        }
        parse_outcome_row(dict(values), present, source, row, _strict_number, kind)
    else:
        counts: dict[str, int | None] = {}
        for col in cmap.count_columns():
            text = values.get(col, "")
            counts[col] = _parse_count(text, source, row, col, decimal) if text else None
        if cmap.has_counts:
            for arm in ("treat", "control"):
                ev_col = cmap.roles[f"{arm}_events"]
                if cmap.get("treat_total") is not None:
                    tot_col = cmap.roles[f"{arm}_total"]
                    _check_total(
                        values, row, source, ev_col, tot_col, counts[ev_col], counts[tot_col]
                    )
                    continue
                non_col = cmap.roles[f"{arm}_nonevents"]
                events, non = counts[ev_col], counts[non_col]
                if events is not None and non is not None:
                    _check_nonevents(values, row, source, ev_col, non_col, events, non)
        for kind in cmap.effect_sets():
            cols = [cmap.roles[r] for r in EFFECT_SETS[kind]]
            for col in cols:
                if values.get(col, ""):
                    number = _parse_real(values[col], source, row, col, decimal, _GIVEN_WHAT[kind])
                    if kind != "ci" and col == cols[1]:
                        _check_spread(kind, number, values, row, source, col)
        _given_measure(values, row, source, cmap)
    _parse_year(values, row, source, cmap, decimal)


def _effect_hint(cmap: ColumnMap) -> str:
    kinds = cmap.effect_sets()
    if not kinds:
        return ""
    return " or an effect in " + " / ".join(
        ", ".join(cmap.roles[r] for r in EFFECT_SETS[k]) for k in kinds
    )


def _parse_given(
    values: Mapping[str, str], row: int, source: str, cmap: ColumnMap, decimal: str
) -> GivenEffect | None:
    """The effect a row gives (first complete kind among ci, se, vi); ``None`` if none."""
    for kind in cmap.effect_sets():
        cols = [cmap.roles[r] for r in EFFECT_SETS[kind]]
        filled = [c for c in cols if values[c] != ""]
        if not filled:
            continue
        if len(filled) < len(cols):
            empty = next(c for c in cols if values[c] == "")
            raise MissingValueError(
                f"{source}, row {row}, column '{empty}': missing value (expected a number: "
                f"{', '.join(cols)} are given together)",
                empty,
            )
        what = _GIVEN_WHAT[kind]
        nums = [_parse_real(values[c], source, row, c, decimal, what) for c in cols]
        if kind == "ci":
            est, lo, hi = nums
            if not lo <= hi:
                raise DataError(
                    f"{source}, row {row}, column '{cols[1]}': '{values[cols[1]]}' is above "
                    f"{cols[2]} '{values[cols[2]]}' (expected ci_low <= ci_high)"
                )
            if not lo <= est <= hi:
                raise DataError(
                    f"{source}, row {row}, column '{cols[0]}': '{values[cols[0]]}' is outside its "
                    f"CI [{values[cols[1]]}, {values[cols[2]]}] (expected ci_low <= estimate <= ci_high)"
                )
            if lo == hi:
                raise DataError(
                    f"{source}, row {row}, column '{cols[2]}': '{values[cols[2]]}' equals "
                    f"{cols[1]} (expected a CI of positive width, from which the variance is derived)"
                )
        else:
            _check_spread(kind, nums[1], values, row, source, cols[1])
        measure = _given_measure(values, row, source, cmap)
        return GivenEffect(kind, tuple(nums), tuple(cols), measure, cmap.get("measure"))
    return None


#: what each kind of given effect's numbers are, for messages
_GIVEN_WHAT = {
    "ci": "a number on the reported scale",
    "se": "a number on the analysis scale",
    "vi": "a number on the analysis scale",
}


def _check_spread(
    kind: str, spread: float, values: Mapping[str, str], row: int, source: str, col: str
) -> None:
    """A given standard error (``se``) or sampling variance (``vi``) is positive and in range."""
    name = "standard error" if kind == "se" else "sampling variance"
    var = spread * spread if kind == "se" else spread
    if not spread > 0:
        raise DataError(
            f"{source}, row {row}, column '{col}': '{values[col]}' is not positive "
            f"(expected a {name} > 0)"
        )
    if not MIN_VARIANCE <= var <= MAX_VARIANCE:
        raise DataError(
            f"{source}, row {row}, column '{col}': '{values[col]}' is out of range "
            f"(expected a {name} whose variance lies in [{MIN_VARIANCE:g}, {MAX_VARIANCE:g}])"
        )


def _given_measure(values: Mapping[str, str], row: int, source: str, cmap: ColumnMap) -> str | None:
    """The row's ``measure`` cell upper-cased (None when the table has none or it is empty)."""
    mcol = cmap.get("measure")
    if mcol is None or not values.get(mcol, ""):
        return None
    measure = values[mcol].strip().upper()
    if measure not in MEASURE_NAMES:
        raise DataError(
            f"{source}, row {row}, column '{mcol}': '{values[mcol]}' is not a measure "
            f"ivigmeta pools (expected one of {', '.join(MEASURE_NAMES)})"
        )
    return measure


def table_map(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    source: str,
    explicit: Mapping[str, str] | None = None,
    decimal: str = ".",
    keys: Sequence[str] = (),
) -> ColumnMap:
    """Which column plays which role, for pool and batch alike: 2x2 counts or given effects
    (:func:`~ivigmeta.io.columns.resolve`), else means, rates or proportions
    (:func:`~ivigmeta.io.outcome_columns.detect_outcome`); the counts' error when neither fits."""
    from ivigmeta.io.columns import check_explicit
    from ivigmeta.io.outcome_columns import explicit_kind, explicit_outcome

    explicit = dict(explicit or {})
    kind = explicit_kind(explicit, header)
    if kind is not None:
        check_explicit(header, explicit, source)
        conv, roles = explicit_outcome(kind, header, explicit)
        return outcome_map((kind, conv, roles), header, rows, decimal, keys, explicit)
    try:
        return resolve(header, rows, source, explicit, decimal, keys=keys)
    except DataError:
        data_roles = COUNT_ROLES + NONEVENT_ROLES + EFFECT_ROLES
        found = None if any(r in explicit for r in data_roles) else detect_outcome(header)
        if found is None:
            raise
        return outcome_map(found, header, rows, decimal, keys, explicit)


def outcome_map(
    found: tuple[str, Any, dict[str, str]],
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    decimal: str,
    keys: Sequence[str] = (),
    explicit: Mapping[str, str] | None = None,
) -> ColumnMap:
    """The column map of a table of means, rates or proportions (``found`` from
    :func:`~ivigmeta.io.outcome_columns.detect_outcome`): its roles and its label and year
    (``--columns study=``/``year=`` in ``explicit``; ``keys``, batch's group columns, are never
    taken as the label)."""
    kind, conv, roles = found
    roles = dict(roles)
    named = "" if conv.name == "--columns" else f"{conv.name} "
    notes = [f"columns recognised as {named}{KIND_WORDS[kind]} ({', '.join(roles.values())})"]
    label_roles(header, rows, roles, dict(explicit or {}), decimal, keys, notes)
    return ColumnMap(roles=roles, convention=conv.name, notes=tuple(notes), outcome=kind)


#: how notes name each outcome kind
KIND_WORDS = {
    "continuous": "means, SDs and sizes",
    "incidence": "events and person-time",
    "proportion": "events and totals",
    "change": "pre-post means, SDs, sizes and correlations",
    "correlation": "correlations and sample sizes",
    "mean": "one group's means, SDs and sizes",
    "rate": "one group's events and person-time",
    "partial_r2": "t statistics, sample sizes, numbers of other predictors and R²",
    "partial": "t statistics, sample sizes and numbers of other predictors",
}


def parse_outcome_study(values: dict[str, str], row: int, source: str, cmap: ColumnMap) -> Study:
    """One row of a table of means, rates or proportions as a :class:`Study`."""
    kind = cmap.outcome
    roles = {r: c for r, c in cmap.roles.items() if r in OUTCOME_ROLES[kind]}  # type: ignore[index]
    numbers = parse_outcome_row(values, roles, source, row, _strict_number, kind)
    year = _parse_year(values, row, source, cmap, ".")
    label = row_label(values, row, cmap)
    return Study(
        row=row,
        study=label,
        year=year,
        treat_events=None,
        treat_total=None,
        control_events=None,
        control_total=None,
        fields=values,
        file=source,
        outcome_kind=kind,
        outcome=numbers,
    )


def row_label(values: Mapping[str, str], row: int, cmap: ColumnMap) -> str:
    """The study's label: its label column's cell, or ``row N`` for want of one."""
    lcol = cmap.get("study")
    return (values.get(lcol, "") if lcol else "") or f"row {row}"


def _strict_number(text: str) -> float | None:
    """A cell of an outcome table as a float, by the file's one number grammar."""
    number = _number(text, ".")
    return None if number is None else float(number)


def _parse_year(
    values: Mapping[str, str], row: int, source: str, cmap: ColumnMap, decimal: str
) -> int | None:
    ycol = cmap.get("year")
    year_text = values.get(ycol, "") if ycol else ""
    if not year_text:
        return None
    number = _number(year_text, decimal)
    if number is None or not math.isfinite(number) or number != int(number) or abs(number) > 9999:
        raise DataError(
            f"{source}, row {row}, column '{ycol}': '{year_text}' is not a year "
            "(expected a whole number such as 2008, or an empty cell)"
        )
    return int(number)


def parse_study(
    values: dict[str, str], row: int, source: str, cmap: ColumnMap, decimal: str
) -> Study:
    """One table row (``values``, column name -> cell text) as a :class:`Study`.

    ``cmap`` says which columns hold counts, the given effect and labels; ``decimal`` is the
    decimal mark. Raises DataError naming ``source``, the row and the column. The batch reader
    calls it to word its own row errors exactly as ``pool`` does.
    """
    count_cols = cmap.count_columns()
    given = None
    if count_cols and any(values[c] != "" for c in count_cols):
        counts: dict[str, int | None] = dict(_parse_counts(values, row, source, cmap, decimal))
    else:
        given = _parse_given(values, row, source, cmap, decimal)
        if given is None:
            col = (
                count_cols[0]
                if count_cols
                else next(cmap.roles[r] for k in cmap.effect_sets() for r in EFFECT_SETS[k])
            )
            raise MissingValueError(
                f"{source}, row {row}, column '{col}': missing value (expected event counts"
                f"{_effect_hint(cmap)})",
                col,
            )
        counts = dict.fromkeys(COUNT_ROLES)
    year = _parse_year(values, row, source, cmap, decimal)
    label = row_label(values, row, cmap)
    return Study(
        row=row,
        study=label,
        year=year,
        treat_events=counts["treat_events"],
        treat_total=counts["treat_total"],
        control_events=counts["control_events"],
        control_total=counts["control_total"],
        fields=values,
        given=given,
        file=source,
    )
