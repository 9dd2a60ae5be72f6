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
from dataclasses import dataclass, field

from ivigmeta.errors import DataError
from ivigmeta.io.columns import COUNT_ROLES, EFFECT_SETS, ColumnMap, parse_columns_option, resolve
from ivigmeta.io.readers import STDIN_NAME, RawTable, decode, read_bytes, read_raw, split_text

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

__all__ = [
    "COUNT_COLUMNS",
    "STDIN_NAME",
    "GivenEffect",
    "Study",
    "StudyTable",
    "load_table",
    "parse_rows",
    "parse_table",
    "read_text",
]


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

    @property
    def counts(self) -> tuple[int, int, int, int]:
        """``(treat_events, treat_total, control_events, control_total)``; check :attr:`has_counts`."""
        return (self.treat_events, self.treat_total, self.control_events, self.control_total)  # type: ignore[return-value]

    @property
    def has_counts(self) -> bool:
        return self.treat_events is not None

    @property
    def effect_source(self) -> str:
        """Where the effect comes from: ``counts``, or the kind of the given effect (``ci``, ``se``, ``vi``)."""
        if self.has_counts or self.given is None:
            return "counts"
        return self.given.kind

    @property
    def n(self) -> int | None:
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
class StudyTable:
    """A validated study table: where it came from, its header and its studies in file order."""

    source: str
    columns: tuple[str, ...]
    studies: tuple[Study, ...]
    column_map: ColumnMap | None = None
    notes: tuple[str, ...] = ()

    def has_column(self, name: str) -> bool:
        return name in self.columns

    def require_label_column(self, name: str) -> None:
        """Raise a :class:`DataError` naming the file and the columns found if ``name`` is absent."""
        if name not in self.columns:
            raise DataError(
                f"{self.source}: no column '{name}' (columns found: {', '.join(self.columns)})"
            )

    def label_columns(self) -> tuple[str, ...]:
        """Columns other than the label, year, counts and effects (candidates for subgrouping)."""
        fixed = {LABEL_COLUMN, YEAR_COLUMN, *COUNT_COLUMNS}
        if self.column_map is not None:
            fixed |= self.column_map.used()
        return tuple(c for c in self.columns if c and c not in fixed)


def read_text(path: str) -> tuple[str, str]:
    """Return ``(display name, text)`` for a path, or for standard input when ``path`` is ``-``."""
    name, data = read_bytes(path)
    return name, decode(data, name)[0]


def load_table(
    path: str,
    sep: str | None = None,
    sheet: str | None = None,
    columns: str | Mapping[str, str] | None = None,
) -> StudyTable:
    """Read and validate the study table at ``path`` (``-`` for standard input).

    ``sep`` forces the delimiter (``comma``, ``semicolon``, ``tab``), ``sheet`` picks an .xlsx
    worksheet, ``columns`` maps roles to column names (``--columns``).
    """
    return parse_rows(read_raw(path, sep=sep, sheet=sheet), columns)


def parse_table(
    text: str, source: str, sep: str | None = None, columns: str | Mapping[str, str] | None = None
) -> StudyTable:
    """Parse CSV ``text`` into a :class:`StudyTable`; ``source`` names it in messages."""
    return parse_rows(split_text(text, source, sep), columns)


def parse_rows(raw: RawTable, columns: str | Mapping[str, str] | None = None) -> StudyTable:
    """Validate the cells of ``raw`` into a :class:`StudyTable`."""
    source = raw.source
    explicit = (
        parse_columns_option(columns)
        if isinstance(columns, str) or columns is None
        else dict(columns)
    )
    rows = raw.rows
    first = next((i for i, r in enumerate(rows) if any(c.strip() for c in r)), None)
    if first is None:
        raise DataError(
            f"{source}: the file is empty (expected a header row and one row per study)"
        )
    header = [h.strip() for h in rows[first]]
    while header and not header[-1]:
        header.pop()  # trailing empty header cells (spreadsheet exports)
    check_header(header, source, first + 1)
    body = [(i + 1, r) for i, r in enumerate(rows) if i > first and any(c.strip() for c in r)]
    if not body:
        raise DataError(
            f"{source}: the file has a header but no study rows (expected one row per study "
            f"below the header, row {first + 1})"
        )
    cmap = resolve(header, [r for _, r in body], source, explicit, raw.decimal)
    studies = []
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
        if raw.decimal == ",":
            # Text fields hold numbers with a decimal point whatever the file's locale, so that
            # numeric moderators and printed fields do not depend on it.
            values = {col: _decimal_point(v) for col, v in values.items()}
        studies.append(parse_study(values, row_number, source, cmap, raw.decimal))
    notes = list(raw.notes) + [f"{source}: {n}" for n in cmap.notes]
    notes += _duplicate_notes(studies, source)
    return StudyTable(
        source=source,
        columns=tuple(h for h in header if h),
        studies=tuple(studies),
        column_map=cmap,
        notes=tuple(notes),
    )


def check_header(header: Sequence[str], source: str, row: int) -> None:
    """Raise DataError when a column name appears twice in ``header`` (row ``row`` of ``source``).

    Shared with the batch reader (:mod:`ivigmeta.io.chunks`), so both reject a header alike.
    """
    seen: set[str] = set()
    for i, col in enumerate(header):
        if not col:
            continue
        if col in seen:
            raise DataError(
                f"{source}, row {row}, column {i + 1}: column name '{col}' appears more than once "
                "(expected unique column names)"
            )
        seen.add(col)


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


def _decimal_point(value: str) -> str:
    return value.replace(",", ".") if _DECIMAL_COMMA.fullmatch(value) else value


def _number(value: str, decimal: str) -> float | int | None:
    """The number in ``value`` (``None`` if it is not one); integers stay exact."""
    text = value.strip()
    if decimal == ",":
        text = text.replace(",", ".")
    if _INT.fullmatch(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return None


def _parse_count(value: str, source: str, row: int, column: str, decimal: str) -> int:
    where = f"{source}, row {row}, column '{column}'"
    if value == "":
        raise DataError(f"{where}: missing value (expected a whole number of participants)")
    number = _number(value, decimal)
    if number is None:
        raise DataError(f"{where}: '{value}' is not a number (expected a whole number)")
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
    number = _number(value, decimal)
    if number is None:
        raise DataError(f"{where}: '{value}' is not a number (expected {what})")
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
            events, total = counts[f"{arm}_events"], counts[f"{arm}_total"]
            if total == 0:
                raise DataError(
                    f"{source}, row {row}, column '{tot_col}': '{values[tot_col]}' is zero "
                    "(expected at least one participant in each arm)"
                )
            if events > total:
                raise DataError(
                    f"{source}, row {row}, column '{ev_col}': {events} events exceed "
                    f"{tot_col} {total} (expected events <= total)"
                )
        return counts
    # Events and non-events (metafor's ai, bi, ci, di): totals are their sums.
    for arm in ("treat", "control"):
        ev_col, non_col = cmap.roles[f"{arm}_events"], cmap.roles[f"{arm}_nonevents"]
        events = _parse_count(values[ev_col], source, row, ev_col, decimal)
        non = _parse_count(values[non_col], source, row, non_col, decimal)
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
        counts[f"{arm}_events"], counts[f"{arm}_total"] = events, events + non
    return counts


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
            raise DataError(
                f"{source}, row {row}, column '{empty}': missing value (expected a number: "
                f"{', '.join(cols)} are given together)"
            )
        what = {
            "ci": "a number on the reported scale",
            "se": "a number on the analysis scale",
            "vi": "a number on the analysis scale",
        }[kind]
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
            spread, name = nums[1], ("standard error" if kind == "se" else "sampling variance")
            var = spread * spread if kind == "se" else spread
            if not spread > 0:
                raise DataError(
                    f"{source}, row {row}, column '{cols[1]}': '{values[cols[1]]}' is not positive "
                    f"(expected a {name} > 0)"
                )
            if not MIN_VARIANCE <= var <= MAX_VARIANCE:
                raise DataError(
                    f"{source}, row {row}, column '{cols[1]}': '{values[cols[1]]}' is out of range "
                    f"(expected a {name} whose variance lies in [{MIN_VARIANCE:g}, {MAX_VARIANCE:g}])"
                )
        measure = None
        mcol = cmap.get("measure")
        if mcol is not None and values.get(mcol, ""):
            measure = values[mcol].strip().upper()
            if measure not in MEASURE_NAMES:
                raise DataError(
                    f"{source}, row {row}, column '{mcol}': '{values[mcol]}' is not a measure "
                    f"ivigmeta pools (expected one of {', '.join(MEASURE_NAMES)})"
                )
        return GivenEffect(kind, tuple(nums), tuple(cols), measure, mcol)
    return None


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
            raise DataError(
                f"{source}, row {row}, column '{col}': missing value (expected event counts"
                f"{_effect_hint(cmap)})"
            )
        counts = dict.fromkeys(COUNT_ROLES)
    year = None
    ycol = cmap.get("year")
    year_text = values.get(ycol, "") if ycol else ""
    if year_text:
        number = _number(year_text, decimal)
        if (
            number is None
            or not math.isfinite(number)
            or number != int(number)
            or abs(number) > 9999
        ):
            raise DataError(
                f"{source}, row {row}, column '{ycol}': '{year_text}' is not a year "
                "(expected a whole number such as 2008, or an empty cell)"
            )
        year = int(number)
    lcol = cmap.get("study")
    label = (values.get(lcol, "") if lcol else "") or f"row {row}"
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
