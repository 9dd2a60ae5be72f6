"""Reading the long table of ``ivigmeta batch`` without pandas: a table in, :class:`Rows` out.

:class:`Rows` is the batch core's input: one entry per study row, held as numpy arrays (group
keys, the four counts, file row numbers, study labels) plus, for every row ``pool`` would reject,
the message ``pool`` gives for it. :class:`ChunkReader` reads the files ``pool`` reads, with
``pool``'s options (:class:`TableOptions`: ``--sep``, ``--sheet``, ``--columns``), into Rows a
chunk at a time. The header is resolved by ``pool``'s own code (:func:`ivigmeta.io.columns.resolve`:
every column convention, the same header errors); the group columns are further columns of it.

Delimited text (comma, semicolon with decimal commas, or tab; UTF-8, or Latin-1 where a byte is
not UTF-8) is read a chunk at a time:

* lines without a double quote, the overwhelming case, are parsed by numpy's C reader
  (``np.loadtxt``) column by column: counts straight to float64, text columns as Python strings;
* a chunk with a double quote anywhere (quoted delimiters or line breaks) goes through the
  standard library's csv module from there on, record by record, as ``pool``'s reader does;
* every cell that is not a plain number, and every row that fails a check, is looked at again by
  ``pool``'s own row parser (:func:`ivigmeta.io.studies.parse_study`), so a row is accepted or
  rejected, with the same message, exactly as ``pool`` would.

An .xlsx workbook, or a UTF-16 text file, is read whole by ``pool``'s reader
(:func:`ivigmeta.io.readers.raw_from_bytes`) and its rows then checked as above.

Rows are numbered as in a spreadsheet (the header is row 1); blank rows are skipped as ``pool``
skips them and still counted.
"""

from __future__ import annotations

import codecs
import io
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import numpy as np

from ivigmeta.errors import DataError
from ivigmeta.io.columns import (
    ColumnMap,
    parse_columns_option,
)
from ivigmeta.io.readers import quote_error
from ivigmeta.io.studies import COUNT_COLUMNS, LABEL_COLUMN, MAX_COUNT, YEAR_COLUMN

ROW_COLUMN = "__row__"
"""Optional DataFrame column with the file's row numbers (the header is row 1), used in messages."""

ERROR_COLUMN = "__error__"
"""Optional DataFrame column: a message for rows already known to be bad."""

DEFAULT_CHUNK_ROWS = 1_000_000
"""Rows per chunk: about 0.5 GB of working memory at the peak (see docs/performance.md)."""

OUTPUT_NAMES = frozenset(
    (
        "k", "common_theta", "common_se", "common_estimate", "common_ci_low", "common_ci_high",
        "common_p_value", "random_theta", "random_se", "random_estimate", "random_ci_low",
        "random_ci_high", "random_p_value", "random_pi_low", "random_pi_high", "q", "df",
        "q_p_value", "i2", "tau2", "n_excluded", "status", "reason",
    )
)  # fmt: skip
"""The batch output columns (ivigmeta.batching.run.RESULT_COLUMNS): a group column may not take one."""


# ----------------------------------------------------------------------------------------------
# the batch core's input


@dataclass
class Rows:
    """Study rows for the batch core, as arrays of equal length n.

    ``keys`` maps each group column to an object array of its values; ``values`` is (n, m)
    float64, the data columns of the table's ``kind`` in
    :data:`ivigmeta.core.effects.DATA_ROLES` order (for 2x2 counts the four of
    :data:`ivigmeta.io.studies.COUNT_COLUMNS`; NaN where a cell is not a number); ``row`` the
    file row numbers; ``error`` the message ``pool`` gives for a bad row (None for good rows);
    ``label`` the study labels ("" when missing) or None when the table has no study column;
    ``given`` the effect a row reports instead of counts (pool's
    :class:`~ivigmeta.io.studies.GivenEffect`, its ``values`` row NaN), or None.
    """

    keys: dict[str, np.ndarray]
    values: np.ndarray
    row: np.ndarray
    error: np.ndarray
    label: np.ndarray | None = None
    last: bool = False
    """No rows follow these in their input (the reader met the end): the last group is whole."""
    kind: str = "counts"
    """``counts``, ``continuous``, ``incidence``, ``proportion``, ``change``, ``correlation``,
    ``mean``, ``rate``, ``partial_r2`` or ``partial`` (the keys of DATA_ROLES)."""
    given: np.ndarray | None = None
    effect: np.ndarray | None = None
    """For a table of effects only in one plain form (``yi, vi`` or ``theta, se``, no measure
    column): (n, 2) float64, the two numbers of each row that passed pool's checks as read
    (NaN for rows in ``given`` or ``error``); ``effect_form`` says which form."""
    effect_form: str | None = None
    omitted: np.ndarray | None = None
    """Under ``--missing exclude``: for each row left out for a missing value, pool's reason
    (``missing value in column 'ai'``), None for the others; None when no row is."""

    def __len__(self) -> int:
        return len(self.row)

    @property
    def bad(self) -> np.ndarray:
        """Rows ``pool`` would reject."""
        return np.not_equal(self.error, None)  # type: ignore[call-overload]  # numpy's stubs take no None

    def take(self, index: Any) -> Rows:
        """The rows at ``index`` (positions, a slice or a mask)."""
        return Rows(
            keys={g: col[index] for g, col in self.keys.items()},
            values=self.values[index],
            row=self.row[index],
            error=self.error[index],
            label=None if self.label is None else self.label[index],
            kind=self.kind,
            given=None if self.given is None else self.given[index],
            effect=None if self.effect is None else self.effect[index],
            effect_form=self.effect_form,
            omitted=None if self.omitted is None else self.omitted[index],
        )

    @staticmethod
    def concat(parts: Sequence[Rows]) -> Rows:
        parts = [p for p in parts if len(p)] or list(parts[:1])
        if len(parts) == 1:
            return parts[0]
        labels = [p.label for p in parts if p.label is not None]
        label = np.concatenate(labels) if len(labels) == len(parts) else None
        given = None
        if any(p.given is not None for p in parts):
            given = np.concatenate(
                [p.given if p.given is not None else np.full(len(p), None) for p in parts]
            )
        effect = None
        if parts[0].effect is not None:
            effect = np.concatenate([p.effect for p in parts])  # type: ignore[misc]
        omitted = None
        if any(p.omitted is not None for p in parts):
            omitted = np.concatenate(
                [p.omitted if p.omitted is not None else np.full(len(p), None) for p in parts]
            )
        return Rows(
            keys={g: np.concatenate([p.keys[g] for p in parts]) for g in parts[0].keys},
            values=np.concatenate([p.values for p in parts]),
            row=np.concatenate([p.row for p in parts]),
            error=np.concatenate([p.error for p in parts]),
            label=label,
            kind=parts[0].kind,
            given=given,
            effect=effect,
            effect_form=parts[0].effect_form,
            omitted=omitted,
        )

    def to_frame(self) -> Any:
        """A pandas DataFrame of these rows (``batch_pool`` takes it; ``__row__``/``__error__`` kept)."""
        import pandas as pd

        data: dict[str, Any] = {g: col for g, col in self.keys.items()}
        if self.label is not None:
            data[LABEL_COLUMN] = self.label
        from ivigmeta.core.effects import DATA_ROLES

        for j, col in enumerate(DATA_ROLES[self.kind]):
            data[col] = self.values[:, j]
        data[ROW_COLUMN] = self.row
        data[ERROR_COLUMN] = self.error
        return pd.DataFrame(data)


def frame_kind(columns: Iterable[str]) -> str | None:
    """The kind of data a DataFrame of study rows gives, by ivigmeta's own column names (the
    first kind of :data:`~ivigmeta.core.effects.DATA_ROLES` whose columns are all there)."""
    from ivigmeta.core.effects import DATA_ROLES

    cols = {str(c) for c in columns}
    return next((k for k, roles in DATA_ROLES.items() if set(roles) <= cols), None)


def check_columns(columns: Iterable[str], groups: Sequence[str], source: str) -> None:
    """The table has the data columns of one kind and every group column, and the names do not
    clash."""
    from ivigmeta.core.effects import DATA_ROLES

    cols = [str(c) for c in columns]
    shown = ", ".join(c for c in cols if c not in (ROW_COLUMN, ERROR_COLUMN))
    if not groups:
        raise DataError("batch needs at least one --group column")
    kind = frame_kind(cols)
    if kind is None:
        missing = [c for c in COUNT_COLUMNS if c not in cols]
        others = "; ".join(", ".join(r) for k, r in DATA_ROLES.items() if k != "counts")
        raise DataError(
            f"{source}, row 1: required column(s) missing: {', '.join(missing)} (or one of "
            f"the sets {others}; columns found: {shown})"
        )
    for g in groups:
        if g not in cols:
            raise DataError(f"{source}: no group column '{g}' (columns found: {shown})")
        if g in OUTPUT_NAMES:
            raise DataError(f"group column '{g}' has the name of an output column; rename it")
        if g in DATA_ROLES[kind]:
            what = "a count" if kind == "counts" else "a data"
            raise DataError(f"'{g}' is {what} column and cannot be a group column")


# ----------------------------------------------------------------------------------------------
# pool's checks, vectorized; pool's messages, row by row


def study_check(
    values: dict[str, str],
    rownum: int,
    source: str,
    cmap: ColumnMap,
    decimal: str = ".",
    exclude_missing: bool = False,
) -> tuple[str | None, tuple[float, ...] | None, Any]:
    """What ``pool`` makes of one row: ``(its DataError message, None, None)`` for a row pool
    rejects, ``(None, the row's data, None)`` for a row of data (the four counts as events and
    totals, whatever the table's convention; means, rates or proportions in DATA_ROLES order),
    ``(None, None, the Study)`` for a row that reports an effect instead of counts, and with
    ``exclude_missing`` (``--missing exclude``) ``(None, None, MissingRow)`` for a row pool
    leaves out for a missing value (:class:`~ivigmeta.io.studies.MissingRow`).

    ``values`` maps header names to stripped cells; ``decimal`` is the table's decimal mark (pool
    reads a semicolon file's text fields with a decimal point, and so words its messages).
    """
    from ivigmeta.core.effects import DATA_ROLES
    from ivigmeta.errors import MissingValueError
    from ivigmeta.io.studies import (
        MissingRow,
        check_present_cells,
        check_thousands,
        decimal_point,
        is_missing_token,
        parse_outcome_study,
        parse_study,
        row_label,
    )

    values = {col: ("" if is_missing_token(v) else v) for col, v in values.items()}
    if decimal == ",":
        try:
            check_thousands(values, rownum, source, cmap)
        except DataError as exc:
            return str(exc), None, None
        values = {col: decimal_point(v) for col, v in values.items()}
    for c in cmap.count_columns():
        values.setdefault(c, "")
    try:
        if cmap.outcome is not None:
            for c in cmap.roles.values():
                values.setdefault(c, "")
            study = parse_outcome_study(values, rownum, source, cmap)
            outcome = study.outcome or {}
            return None, tuple(outcome[r] for r in DATA_ROLES[cmap.outcome]), None
        study = parse_study(values, rownum, source, cmap, decimal)
    except MissingValueError as exc:
        if not exclude_missing:
            return str(exc), None, None
        try:
            check_present_cells(values, rownum, source, cmap, decimal)
        except DataError as bad:
            return str(bad), None, None
        return None, None, MissingRow(rownum, row_label(values, rownum, cmap), exc.column)
    except DataError as exc:
        return str(exc), None, None
    if not study.has_counts:
        return None, None, study
    return None, study.counts, None


def row_error(values: dict[str, str], rownum: int, source: str, kind: str = "counts") -> str | None:
    """The DataError ``pool`` raises for one row with ivigmeta's column names (None when pool
    accepts it as a row of data)."""
    return row_check(values, rownum, source, kind)[0]


def row_check(
    values: dict[str, str],
    rownum: int,
    source: str,
    kind: str = "counts",
    exclude_missing: bool = False,
) -> tuple[str | None, str | None]:
    """``(the DataError pool raises for one row with ivigmeta's column names, the reason pool
    leaves it out under --missing exclude)``: both None when pool accepts it as a row of data."""
    from ivigmeta.core.effects import DATA_ROLES
    from ivigmeta.io.studies import MissingRow

    roles = {c: c for c in DATA_ROLES[kind]}
    for c in (LABEL_COLUMN, YEAR_COLUMN):
        if c in values:
            roles[c] = c
    outcome = None if kind == "counts" else kind
    cmap = ColumnMap(roles=roles, convention="ivigmeta", outcome=outcome)
    message, found, study = study_check(values, rownum, source, cmap, ".", exclude_missing)
    if isinstance(study, MissingRow):
        return None, study.reason
    if message is None and found is None:
        return f"{source}, row {rownum}: gives an effect instead of data (missing value)", None
    return message, None


def to_float(text: np.ndarray) -> np.ndarray:
    """Stripped text cells as float64; NaN where not a number by pool's grammar (Python's
    ``float`` also takes ``8_2``, ``inf`` and ``nan``: those are NaN here, for pool's parser to
    word the message)."""
    if not len(text):
        return np.empty(0)
    try:
        out = np.asarray(text, dtype=np.float64)
    except (ValueError, TypeError):
        out = np.empty(len(text))
        for i, s in enumerate(text.tolist()):
            try:
                out[i] = float(s)
            except (ValueError, TypeError):
                out[i] = math.nan
    odd = np.fromiter((("_" in s or "n" in s.lower()) for s in text.tolist()), bool, len(text))
    out[odd] = math.nan
    return out


def _odd_cells(cells: np.ndarray) -> np.ndarray:
    """Rows with a cell that is not a whole number in [0, 2^53)."""
    with np.errstate(invalid="ignore"):
        return (
            ~np.isfinite(cells) | (cells < 0) | (cells != np.floor(cells)) | (cells >= MAX_COUNT)
        ).any(axis=1)


def suspect_rows(
    values: np.ndarray, year: np.ndarray | None = None, kind: str = "counts"
) -> np.ndarray:
    """Rows that may fail pool's checks for a table of ``kind``: for counts, cells not whole,
    negative or too large, zero totals, events > totals; for means, rates, proportions and
    correlations a cell that is not a finite number, SD <= 0, n < 2, time <= 0, negative
    events, events > total, |r| > 1, a correlation's n <= 3; any kind, an unreadable year. Conservative (2^53 itself is looked at again): the row
    parser decides."""
    with np.errstate(invalid="ignore"):
        if kind == "counts":
            bad = _odd_cells(values)
            bad |= (values[:, 1] == 0) | (values[:, 3] == 0)
            bad |= (values[:, 0] > values[:, 1]) | (values[:, 2] > values[:, 3])
        else:
            bad = ~np.isfinite(values).all(axis=1)
            if kind == "continuous":
                bad |= (values[:, [1, 4]] <= 0).any(axis=1) | (values[:, [2, 5]] < 2).any(axis=1)
            elif kind == "incidence":
                bad |= (values[:, [0, 2]] < 0).any(axis=1) | (values[:, [1, 3]] <= 0).any(axis=1)
            elif kind == "correlation":
                bad |= (np.abs(values[:, 0]) > 1) | (values[:, 1] <= 3)
            elif kind == "mean":
                bad |= (values[:, 1] <= 0) | (values[:, 2] < 2)
            elif kind == "rate":
                bad |= (values[:, 0] < 0) | (values[:, 1] <= 0)
            elif kind in ("partial", "partial_r2"):
                bad |= (values[:, 1] <= 0) | (values[:, 2] < 0)
                bad |= values[:, 1] - values[:, 2] - 1 <= 0
                if kind == "partial_r2":
                    bad |= (values[:, 3] < 0) | (values[:, 3] > 1)
            elif kind == "change":
                bad |= (values[:, [2, 3]] <= 0).any(axis=1) | (values[:, 4] < 2)
                bad |= np.abs(values[:, 5]) > 1
            else:
                bad |= (values[:, 0] < 0) | (values[:, 1] < 1) | (values[:, 0] > values[:, 1])
        if year is not None:
            bad |= bad_years(year)
    return bad


def bad_years(year: np.ndarray) -> np.ndarray:
    """Rows whose year cell is not empty and not a whole number within 4 digits."""
    bad = np.zeros(len(year), bool)
    present = year != ""
    if present.any():
        y = to_float(year[present])
        with np.errstate(invalid="ignore"):
            not_year = ~np.isfinite(y) | (y != np.floor(y)) | (np.abs(y) > 9999)
        bad[np.flatnonzero(present)[not_year]] = True
    return bad


# ----------------------------------------------------------------------------------------------
# the header: pool's column resolution, and the group columns

SAMPLE_ROWS = 1000
"""Rows after the header that pool's column resolution sees (it looks for the first text column
when no column is named as a study label; pool sees the whole table)."""


@dataclass(frozen=True)
class TableOptions:
    """How the table is read, with the meanings of ``pool``'s options: ``sep`` the delimiter
    (``comma``, ``semicolon``, ``tab``; None sniffs it), ``sheet`` an .xlsx worksheet,
    ``columns`` roles mapped to column names (``--columns ROLE=COL,...`` or a mapping),
    ``missing`` ``--missing`` (``exclude``: a row whose effect needs a missing value is left out
    of its group and counted in ``n_excluded``, :attr:`Rows.omitted`)."""

    sep: str | None = None
    sheet: str | None = None
    columns: str | Mapping[str, str] | None = None
    missing: str = "error"

    def explicit(self) -> dict[str, str]:
        """``columns`` as a role -> column mapping (DataError for a malformed ``--columns``)."""
        if isinstance(self.columns, str) or self.columns is None:
            return parse_columns_option(self.columns)
        return dict(self.columns)

    def delimiter(self) -> str | None:
        from ivigmeta.io.readers import normalize_sep

        return normalize_sep(self.sep)

    @property
    def exclude_missing(self) -> bool:
        from ivigmeta.io.studies import check_missing

        return check_missing(self.missing) == "exclude"

    def check(self) -> TableOptions:
        """Raise pool's DataError for an unknown ``sep``, a malformed ``columns`` or an
        unknown ``missing``."""
        self.delimiter()
        self.explicit()
        _ = self.exclude_missing
        return self


_NONEVENT_ORDER = ("treat_events", "treat_nonevents", "control_events", "control_nonevents")


class _Layout:
    """Where the columns batch needs sit in the header, and how its text is split."""

    def __init__(
        self,
        header: list[str],
        groups: Sequence[str],
        cmap: ColumnMap,
        nraw: int,
        delim: str = ",",
        decimal: str = ".",
    ) -> None:
        self.header = header
        self.nfields = len(header)
        self.nraw = nraw  # fields of the header line (trailing empty names included)
        self.delim, self.decimal, self.cmap = delim, decimal, cmap
        #: ``--missing exclude``: rows whose effect needs a missing value are left out
        self.exclude_missing = False
        from ivigmeta.core.effects import DATA_ROLES

        pos = {name: i for i, name in enumerate(header) if name}
        self.groups = list(groups)
        self.key_idx = [pos[g] for g in self.groups]
        self.kind = cmap.outcome or "counts"
        self.width = len(DATA_ROLES[self.kind])
        #: a table of effects only (yi/vi, theta/se, estimate/CI): every row goes to pool's parser
        self.effects_only = self.kind == "counts" and not cmap.has_counts
        self.nonevents = self.kind == "counts" and cmap.get("treat_nonevents") is not None
        #: ``vi`` or ``se`` for a table of effects in that one form without a measure column:
        #: its two columns are read as numbers, like counts (other effect tables row by row)
        self.effect_form: str | None = None
        sets = cmap.effect_sets() if self.effects_only else []
        if sets in (["vi"], ["se"]) and cmap.get("measure") is None:
            self.effect_form = sets[0]
        if self.effect_form is not None:
            from ivigmeta.io.columns import EFFECT_SETS

            roles: Sequence[str] = EFFECT_SETS[self.effect_form]
        elif self.effects_only:
            roles = ()
        elif self.nonevents:
            roles = _NONEVENT_ORDER
        else:
            roles = DATA_ROLES[self.kind]
        self.count_idx = [pos[cmap.roles[r]] for r in roles]
        self.label_idx = pos.get(cmap.get("study") or "")
        self.year_idx = pos.get(cmap.get("year") or "")


def _layout(
    header: list[str],
    sample: Sequence[Sequence[str]],
    groups: Sequence[str],
    source: str,
    options: TableOptions,
    nraw: int,
    delim: str = ",",
    decimal: str = ".",
) -> _Layout:
    """Resolve the header as ``pool`` resolves it, then check the group columns."""
    from ivigmeta.io.studies import table_map

    if not groups:
        raise DataError("batch needs at least one --group column")
    cmap = table_map(header, sample, source, options.explicit(), decimal, keys=groups)
    shown = ", ".join(h for h in header if h) or "none"
    data = set(cmap.count_columns())
    if cmap.outcome is not None:
        data = {c for r, c in cmap.roles.items() if r not in ("study", "year", "measure")}
    for g in groups:
        if g not in header:
            raise DataError(f"{source}: no group column '{g}' (columns found: {shown})")
        if g in OUTPUT_NAMES:
            raise DataError(f"group column '{g}' has the name of an output column; rename it")
        if g in data or (cmap.outcome is None and g in COUNT_COLUMNS):
            what = "a count" if cmap.outcome is None else "a data"
            raise DataError(f"'{g}' is {what} column and cannot be a group column")
    layout = _Layout(header, groups, cmap, nraw, delim, decimal)
    layout.exclude_missing = options.exclude_missing
    return layout


# Bytes that are not UTF-8 are read as Latin-1, as pool reads such a file; the calls are counted
# so that the reader can say so.
_LATIN1 = "ivigmeta-latin1"
_latin1_calls = [0]


def _latin1(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    _latin1_calls[0] += 1
    return exc.object[exc.start : exc.end].decode("latin-1"), exc.end


codecs.register_error(_LATIN1, _latin1)


def _cells(line: str, delim: str) -> list[str]:
    import csv

    try:
        return next(csv.reader([line], delimiter=delim), [])
    except csv.Error:
        return line.rstrip("\r\n").split(delim)


# ----------------------------------------------------------------------------------------------
# the reader


@dataclass
class ChunkReader:
    """Read a long table into :class:`Rows`, ``chunk_rows`` rows at a time.

    ``progress(done_bytes, total_bytes)`` is called after each chunk; ``note(message)`` for each
    note ``pool`` would give about the file (delimiter, encoding, column convention), also kept
    in ``notes``.
    """

    path: str
    groups: Sequence[str]
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    progress: Callable[[int, int | None], None] | None = None
    name: str | None = None
    """How messages name the input (default: the path, or <stdin>)."""
    span: Span | None = None
    """Read only these lines of the file (:func:`split_spans`); the header is read as usual.
    ``progress`` then counts the span's bytes."""
    options: TableOptions = field(default_factory=TableOptions)
    """``pool``'s --sep, --sheet and --columns."""
    note: Callable[[str], None] | None = None
    notes: list[str] = field(default_factory=list, init=False)

    @property
    def source(self) -> str:
        from ivigmeta.io.studies import STDIN_NAME

        if self.name is not None:
            return self.name
        return STDIN_NAME if self.path == "-" else self.path

    def total_bytes(self) -> int | None:
        import os

        if self.path == "-":
            return None
        try:
            return os.path.getsize(self.path)
        except OSError:
            return None

    def _note(self, message: str) -> None:
        self.notes.append(message)
        if self.note is not None:
            self.note(message)

    def __iter__(self) -> Iterator[Rows]:
        import os
        import sys

        if self.chunk_rows < 1:
            raise DataError(f"--chunk-rows must be at least 1, not {self.chunk_rows}")
        self.options.check()
        if self.path == "-":
            handle = sys.stdin.buffer
            close = False
        else:
            if not os.path.exists(self.path):
                raise DataError(f"{self.path}: file not found")
            if os.path.isdir(self.path):
                raise DataError(f"{self.path}: is a directory, not a CSV file")
            try:
                handle = open(self.path, "rb")
            except OSError as exc:
                raise DataError(f"{self.path}: cannot be read ({exc.strerror or exc})") from None
            close = True
        try:
            yield from self._chunks(handle)
        finally:
            if close:
                handle.close()

    def _chunks(self, handle: Any) -> Iterator[Rows]:
        """Rows from a binary handle: a workbook or UTF-16 text whole, other text in chunks."""
        from ivigmeta.io.readers import check_format_options, is_workbook

        if not hasattr(handle, "peek"):
            handle = io.BufferedReader(handle)
        head = handle.peek(4)[:4]
        workbook = is_workbook(self.path, head)
        check_format_options(self.source, workbook, self.options.sep, self.options.sheet)
        if workbook or head[:2] in (b"\xff\xfe", b"\xfe\xff"):
            yield from self._whole(handle.read())
        else:
            yield from self._text(handle)

    def _whole(self, data: bytes) -> Iterator[Rows]:
        """Rows of a table read whole by pool's reader (a workbook, UTF-16 text)."""
        from ivigmeta.io.readers import raw_from_bytes
        from ivigmeta.io.studies import find_header

        source = self.source
        raw = raw_from_bytes(data, source, self.path, self.options.sep, self.options.sheet)
        for message in raw.notes:
            self._note(message)
        first, header = find_header(raw.rows, source)
        body = raw.rows[first + 1 :]
        sample = [r for r in body if any(c.strip() for c in r)]
        if not sample:
            raise _no_rows(source, first + 1)
        delim = "," if raw.decimal == "." else ";"
        layout = _layout(
            header, sample, self.groups, source, self.options, len(raw.rows[first]), delim,
            raw.decimal,
        )  # fmt: skip
        self._convention_notes(layout)
        for start in range(0, len(body), self.chunk_rows):
            records = [list(r) for r in body[start : start + self.chunk_rows]]
            rownums = first + 2 + start + np.arange(len(records), dtype=np.int64)
            rows = _from_cells(records, rownums, layout, source)
            rows.last = start + self.chunk_rows >= len(body)
            if len(rows):
                yield rows
            if self.progress is not None:
                self.progress(0, None)

    def _convention_notes(self, layout: _Layout) -> None:
        for message in layout.cmap.notes:
            # batch prints no study labels: that they are missing is no news to its user
            if not message.startswith("no study-label column"):
                self._note(f"{self.source}: {message}")

    def _header(self, text: Any) -> tuple[list[str], int, int, str]:
        """Read up to the header line of delimited text: ``(header, its row number, its number
        of fields, the delimiter)``, as pool's reader finds them."""
        import re

        from ivigmeta.io.readers import DELIMITERS, sniff_delimiter
        from ivigmeta.io.studies import find_header

        source = self.source
        delim = self.options.delimiter()
        line = text.readline()
        # Excel's first line "sep=;" names the delimiter; it is not a row of the table.
        hint = re.fullmatch(r"sep=(.)\r?\n", line)
        if hint:
            delim = delim or hint.group(1)
            self._note(
                f"{source}: delimiter {DELIMITERS.get(hint.group(1), repr(hint.group(1)))} "
                "from the 'sep=' line (not a row of the table)"
            )
            line = text.readline()
        skipped = 0
        while line and not line.strip():
            line, skipped = text.readline(), skipped + 1
        if not line:
            raise DataError(
                f"{source}: the file is empty (expected a header row and one row per study)"
            )
        if delim is None:
            delim = sniff_delimiter(line)
            if delim != ",":
                self._note(f"{source}: {DELIMITERS[delim]}-separated")
        cells = _cells(line, delim)
        while not any(c.strip() for c in cells):  # a row of empty cells is blank too
            line, skipped = text.readline(), skipped + 1
            if not line:
                raise DataError(
                    f"{source}: the file is empty (expected a header row and one row per study)"
                )
            cells = _cells(line, delim)
        _, header = find_header([[]] * skipped + [cells], source)
        return header, skipped + 1, len(cells), delim

    def _text(self, handle: Any) -> Iterator[Rows]:
        """Rows of delimited text, decoded as UTF-8 (a byte-order mark skipped), bytes that are
        not UTF-8 as Latin-1."""
        import csv
        from itertools import chain, islice

        text = io.TextIOWrapper(handle, encoding="utf-8-sig", errors=_LATIN1, newline="")
        handle_tell = handle.tell
        source = self.source
        latin1: int | None = _latin1_calls[0]  # None once the note is given
        header, header_row, nraw, delim = self._header(text)
        sample_lines = list(islice(text, SAMPLE_ROWS))
        try:
            sample = list(csv.reader(sample_lines, delimiter=delim))
        except csv.Error:
            sample = []
        if len(sample_lines) < SAMPLE_ROWS and not any(any(c.strip() for c in r) for r in sample):
            raise _no_rows(source, header_row)
        decimal = "," if delim == ";" else "."
        layout = _layout(header, sample, self.groups, source, self.options, nraw, delim, decimal)
        if self.span is None or self.span.start == 0:
            self._convention_notes(layout)
        total = self.total_bytes()

        next_row = header_row + 1
        body: Iterator[str] = chain(sample_lines, text)
        if self.span is not None:
            span = self.span
            handle = text.detach()
            handle.seek(span.start)
            part = io.BufferedReader(_Bounded(handle, span.end - span.start), 1 << 20)
            body = io.TextIOWrapper(part, encoding="utf-8", errors=_LATIN1, newline="")
            total = span.end - span.start
            next_row = span.first_row

            def handle_tell() -> int:
                return handle.tell() - span.start

        studies = 0
        records = None  # the csv module's reader, once a quote has been seen
        while True:
            if records is None:
                lines = list(islice(body, self.chunk_rows))
                if not lines:
                    break
                if '"' in "".join(lines):
                    records = csv.reader(chain(lines, body), delimiter=delim, strict=True)
                    continue
                rows = _parse_lines(lines, next_row, layout, source)
                rows.last = len(lines) < self.chunk_rows  # islice stops short only at the end
                next_row += len(lines)
            else:
                cells: list[list[str]] = []
                try:
                    cells.extend(islice(records, self.chunk_rows))
                except csv.Error as exc:
                    raise DataError(quote_error(source, next_row + len(cells), str(exc))) from None
                if not cells:
                    break
                rows = _parse_records(cells, next_row, layout, source)
                rows.last = len(cells) < self.chunk_rows
                next_row += len(cells)
            if latin1 is not None and _latin1_calls[0] != latin1:
                self._note(f"{source}: not valid UTF-8; read as Latin-1")
                latin1 = None
            studies += len(rows)
            if len(rows):
                yield rows
            if self.progress is not None:
                try:
                    done = handle_tell()
                except (OSError, ValueError):
                    done = 0
                self.progress(done, total)
        if studies == 0 and self.span is None:
            raise _no_rows(source, header_row)


def _no_rows(source: str, header_row: int) -> DataError:
    return DataError(
        f"{source}: the file has a header but no study rows (expected one row per study "
        f"below the header, row {header_row})"
    )


@dataclass(frozen=True)
class Span:
    """Whole lines of a CSV file: bytes ``start`` to ``end`` (exclusive); its first line is file
    row ``first_row`` (the header is row 1)."""

    start: int
    end: int
    first_row: int


class _Bounded(io.RawIOBase):
    """At most ``length`` bytes of a binary file, from where it stands."""

    def __init__(self, handle: Any, length: int) -> None:
        self._handle = handle
        self._left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self._left)
        if want <= 0:
            return 0
        data = self._handle.read(want)
        buffer[: len(data)] = data
        self._left -= len(data)
        return len(data)


SPLIT_BLOCK = 1 << 20
"""Bytes read at a time when :func:`split_spans` scans a file."""


def split_spans(
    path: str, groups: Sequence[str], pieces: int, options: TableOptions | None = None
) -> list[Span]:
    """Cut a delimited text file into at most ``pieces`` spans of whole groups, for separate processes.

    Each cut is at the first line, at or after an even share of the bytes, whose group key
    differs from the line before it, so a group whose rows are contiguous never straddles two
    spans (one that is not contiguous is the caller's to find, as for any grouped input). Row
    numbers come from counting line ends, so a file with a double quote anywhere (a quoted cell
    may hold a line break) or a bare carriage return is not cut; neither is a workbook, a UTF-16
    file, one whose header is not its first line, or one whose header the reader would refuse.
    An empty list means: read the file whole.
    """
    import os

    if pieces < 2:
        return []
    try:
        size = os.path.getsize(path)
        handle = open(path, "rb")
    except OSError:
        return []
    with handle:
        first = handle.readline()
        if (
            b'"' in first
            or b"\r" in first.rstrip(b"\r\n")
            or not first.strip()
            or first.startswith((b"sep=", b"\xff\xfe", b"\xfe\xff"))
        ):
            return []
        try:
            from ivigmeta.io.readers import is_workbook, sniff_delimiter
            from ivigmeta.io.studies import find_header

            if is_workbook(path, first):
                return []
            options = options or TableOptions()
            text = first.decode("utf-8-sig", _LATIN1).rstrip("\r\n")
            delim = options.delimiter() or sniff_delimiter(text)
            cells = text.split(delim)
            _, header = find_header([cells], path)
            decimal = "," if delim == ";" else "."
            layout = _layout(header, [], groups, path, options, len(cells), delim, decimal)
        except (DataError, KeyError):
            return []
        body = len(first)
        targets = [body + (size - body) * j // pieces for j in range(1, pieces)] + [size]
        cuts = [body]
        for target, limit in zip(targets[:-1], targets[1:]):
            cut = _next_group_start(handle, layout, max(target, cuts[-1] + 1), limit, size)
            if cut is not None:
                cuts.append(cut)
        if len(cuts) < 2:
            return []
        # Row numbers: line ends counted up to each cut, in a file with no quote and no bare CR
        # before the last cut (what lies after it is read by its span's reader as by any other).
        rows = [2]
        for a, b in zip(cuts[:-1], cuts[1:]):
            handle.seek(a)
            count, left, last = 0, b - a, b""
            while left > 0:
                block = handle.read(min(SPLIT_BLOCK, left))
                if not block:
                    return []
                if b'"' in block or ((b"\r" in block or last == b"\r") and _bare_cr(last + block)):
                    return []
                count += block.count(b"\n")
                left -= len(block)
                last = block[-1:]
            rows.append(rows[-1] + count)
        return [Span(a, b, row) for a, b, row in zip(cuts, [*cuts[1:], size], rows)]


def _bare_cr(data: bytes) -> bool:
    """A carriage return not followed by a line feed (a line end of its own to the reader),
    except one at the very end (its line feed may begin the next block)."""
    return data.count(b"\r") - data.count(b"\r\n") - data.endswith(b"\r") > 0


def _key_cell(cells: Sequence[str], i: int) -> str:
    from ivigmeta.io.studies import is_missing_token

    value = cells[i].strip() if i < len(cells) else ""
    return "" if is_missing_token(value) else value


def _next_group_start(
    handle: Any, layout: _Layout, offset: int, limit: int, size: int
) -> int | None:
    """The byte offset of the first line starting at or after ``offset`` whose group key differs
    from the key of the non-blank line before it; None when no such line starts before
    ``limit`` (the next cut's share, or the end of the file, ``size``)."""
    window = 1 << 16
    while True:
        start = max(offset - 1, 0)
        handle.seek(start)
        data = handle.read(window)
        at_end = start + len(data) >= size
        first = data.find(b"\n") + 1  # lines start after a line end (start - 1 may be one)
        pos = start + first
        previous = None
        for line in data[first:].splitlines(keepends=True) if first else ():
            if pos >= limit:
                return None
            if not line.endswith(b"\n") and not at_end:
                break  # cut off by the window: read a larger one
            cells = line.decode("utf-8", "replace").rstrip("\r\n").split(layout.delim)
            if any(c.strip() for c in cells):  # blank lines belong to no group
                key = tuple(_key_cell(cells, i) for i in layout.key_idx)
                if previous is not None and key != previous:
                    return pos
                previous = key
            pos += len(line)
        if at_end:
            return None
        window *= 4


def _parse_lines(lines: list[str], first_row: int, layout: _Layout, source: str) -> Rows:
    """Rows from lines without quotes: numpy's reader when every line has the header's number
    of fields, else the regular lines through numpy and the others (blank, short or long lines)
    cell by cell. A line with a non-ASCII character is read cell by cell too: numpy 2.4's
    integer parser can crash the interpreter (a segmentation fault, no exception) on some
    characters beyond the Basic Multilingual Plane, such as U+DE12B."""
    n = len(lines)
    rownums = first_row + np.arange(n, dtype=np.int64)
    delim = layout.delim
    joined = "".join(lines)
    if layout.nraw != layout.nfields or (layout.decimal == "," and "." in joined):
        # Trailing unnamed header fields, or a point in a decimal-comma table (``1.000`` is
        # ambiguous): pool's checks, per row.
        return _from_cells(_split(lines, delim), rownums, layout, source)
    spaces = _edge_spaces(joined, delim)
    tried = False
    ascii_only = joined.isascii()
    if ascii_only and joined.count(delim) == n * (layout.nfields - 1):
        # As many delimiters as n regular lines: regular unless a short line hides a long one;
        # the last column is read, so numpy's reader rejects a short line, and a blank one
        # (which it skips) shows as a row missing.
        rows = _parse_regular(lines, rownums, layout, source, spaces)
        if rows is not None:
            return rows
        tried = True
    found = np.array(list(map(str.count, lines, repeat(delim))), dtype=np.int64)
    regular = found == layout.nfields - 1
    if not ascii_only:  # numpy's reader may crash on some non-ASCII cells: read those lines here
        regular &= np.fromiter(map(str.isascii, lines), dtype=bool, count=n)
    if regular.all() and tried:  # numpy's reader refused a cell: every line cell by cell
        return _from_cells(_split(lines, delim), rownums, layout, source)
    parts = []
    pos = np.flatnonzero(regular)
    if len(pos):
        some = [lines[i] for i in pos]
        got = _parse_regular(some, rownums[pos], layout, source, spaces)
        parts.append(
            got
            if got is not None
            else _from_cells(_split(some, delim), rownums[pos], layout, source)
        )
    odd = np.flatnonzero(~regular)
    parts.append(_from_cells(_split([lines[i] for i in odd], delim), rownums[odd], layout, source))
    merged = Rows.concat(parts)
    return merged.take(np.argsort(merged.row, kind="stable"))


_RARE_SPACE = "\x0b\x0c\x1c\x1d\x1e\x1f"


def _edge_spaces(joined: str, delim: str = ",") -> bool:
    """Whether some cell of these unquoted lines may start or end with white space (str.strip's
    white space): a space or tab next to a delimiter or a line end, or any rarer space at all."""
    if not joined.isascii() or any(c in joined for c in _RARE_SPACE):
        return True
    for c in " \t":
        if c == delim:
            continue
        if c in joined and (
            joined[0] == c
            or f"{c}{delim}" in joined
            or f"{delim}{c}" in joined
            or f"{c}\n" in joined
            or f"{c}\r" in joined
            or f"\n{c}" in joined
            or f"\r{c}" in joined
            or joined[-1] == c
        ):
            return True
    return False


def _split(lines: list[str], delim: str = ",") -> list[list[str]]:
    return [line.rstrip("\r\n").split(delim) for line in lines]


def _parse_records(records: list[list[str]], first_row: int, layout: _Layout, source: str) -> Rows:
    return _from_cells(records, first_row + np.arange(len(records), dtype=np.int64), layout, source)


def _loadtxt(lines: list[str], columns: list[int], dtype: Any, delim: str) -> np.ndarray:
    return np.loadtxt(
        lines,
        delimiter=delim,
        usecols=columns,
        dtype=dtype,
        comments=None,
        quotechar=None,
        ndmin=1,
        encoding=None,
    )


def _read_table(
    lines: list[str], count_idx: list[int], text_idx: list[int], delim: str = ","
) -> np.ndarray:
    """One pass of numpy's reader: a record per line, fields ``c0..c3`` (the counts, float64) and
    ``t0..`` (the text columns, str). Whole numbers, the usual counts, parse about 5x faster as
    integers; anything else (1.5, 1e3, an empty cell, beyond int64) is read again as floats.
    Beyond 2^53 the conversion may round, but such rows are suspect and go to pool's parser.
    A decimal comma is no number to numpy: such a line is read cell by cell."""
    text_fields = [(f"t{j}", object) for j in range(len(text_idx))]
    width = len(count_idx)
    try:
        dtype = np.dtype([(f"c{j}", np.int64) for j in range(width)] + text_fields)
        return _loadtxt(lines, count_idx + text_idx, dtype, delim)
    except ValueError:
        dtype = np.dtype([(f"c{j}", np.float64) for j in range(width)] + text_fields)
        return _loadtxt(lines, count_idx + text_idx, dtype, delim)


def _strip(values: np.ndarray) -> np.ndarray:
    return np.array([v.strip() for v in values.tolist()], dtype=object)


def _decimal_points(values: np.ndarray) -> np.ndarray:
    """Text cells of a decimal-comma table as pool keeps them (``1,5`` -> ``1.5``)."""
    if not any("," in v for v in values.tolist()):
        return values
    from ivigmeta.io.studies import decimal_point

    return np.array([decimal_point(v) for v in values.tolist()], dtype=object)


def _case_variants(word: str) -> set[str]:
    out = {""}
    for ch in word:
        out = {w + c for w in out for c in {ch.lower(), ch.upper()}}
    return out


#: Every spelling of the missing-value tokens (ivigmeta.io.studies.MISSING_TOKENS) in any case.
_MISSING_SPELLINGS = frozenset(v for t in ("NA", "N/A", "NAN", ".") for v in _case_variants(t))


def _missing_to_empty(values: np.ndarray) -> np.ndarray:
    """Group keys spelled as missing (NA, N/A, NaN, '.') are the empty key, as in pool."""
    if not len(values):
        return values
    spellings = _MISSING_SPELLINGS
    mask = np.fromiter((v in spellings for v in values.tolist()), bool, len(values))
    if not mask.any():
        return values
    out = values.copy()
    out[mask] = ""
    return out


def _checked(
    cells: np.ndarray,
    keys: dict[str, np.ndarray],
    label: np.ndarray | None,
    year: np.ndarray | None,
    rownums: np.ndarray,
    row_values: Callable[[int], dict[str, str]],
    layout: _Layout,
    source: str,
    error: np.ndarray | None = None,
) -> Rows:
    """Rows from the data cells as numbers (NaN where not a plain number; events and
    non-events in a table that gives those), every suspect row checked by pool's parser:
    its message, the data pool reads in it (a decimal comma, say), or the effect it reports."""
    n = len(rownums)
    if error is None:
        error = np.full(n, None, dtype=object)
    kind = layout.kind
    effect = None
    if layout.effect_form is not None:
        from ivigmeta.io.studies import MAX_VARIANCE, MIN_VARIANCE

        effect = cells.copy()
        counts = np.full((n, layout.width), math.nan)
        spread = effect[:, 1] if n else np.empty(0)
        with np.errstate(invalid="ignore", over="ignore"):
            var = spread * spread if layout.effect_form == "se" else spread
            fine = np.isfinite(effect).all(axis=1) & (spread > 0)
            fine &= (var >= MIN_VARIANCE) & (var <= MAX_VARIANCE)
        suspect = ~fine
        if year is not None and n:
            suspect |= bad_years(year)
        effect[suspect] = math.nan
    elif layout.effects_only:
        counts = np.full((n, layout.width), math.nan)
        suspect = np.ones(n, bool)
    elif layout.nonevents:
        counts = cells.copy()
        counts[:, 1] += cells[:, 0]
        counts[:, 3] += cells[:, 2]
        suspect = suspect_rows(counts, year) | _odd_cells(cells) if n else np.zeros(0, bool)
    else:
        counts = cells
        suspect = suspect_rows(counts, year, kind) if n else np.zeros(0, bool)
    given = None
    omitted = None
    from ivigmeta.io.studies import MissingRow

    for i in np.flatnonzero(suspect).tolist():
        if error[i] is None:
            message, found, study = study_check(
                row_values(i),
                int(rownums[i]),
                source,
                layout.cmap,
                layout.decimal,
                layout.exclude_missing,
            )
            error[i] = message
            if found is not None:
                counts[i] = found
            elif isinstance(study, MissingRow):
                if omitted is None:
                    omitted = np.full(n, None, dtype=object)
                counts[i] = math.nan
                if effect is not None:
                    effect[i] = math.nan
                omitted[i] = study.reason
            elif study is not None:
                if given is None:
                    given = np.full(n, None, dtype=object)
                counts[i] = math.nan
                given[i] = study
    if layout.decimal == ",":
        keys = {g: _decimal_points(k) for g, k in keys.items()}
        label = None if label is None else _decimal_points(label)
    keys = {g: _missing_to_empty(k) for g, k in keys.items()}
    return Rows(
        keys=keys,
        values=counts,
        row=np.asarray(rownums, np.int64),
        error=error,
        label=label,
        kind=kind,
        given=given,
        effect=effect,
        effect_form=layout.effect_form,
        omitted=omitted,
    )


def _parse_regular(
    lines: list[str], rownums: np.ndarray, layout: _Layout, source: str, spaces: bool
) -> Rows | None:
    """Lines without quotes, through numpy's reader: None unless every line has at least the
    header's number of fields, none is blank and every count is a plain number."""
    n = len(lines)
    text_idx = sorted(
        {*layout.key_idx} | {i for i in (layout.label_idx, layout.year_idx) if i is not None}
    )
    if max(layout.count_idx + text_idx) < layout.nfields - 1:
        text_idx.append(layout.nfields - 1)  # read the last field: a short line is an error
    try:
        table = _read_table(lines, layout.count_idx, text_idx, layout.delim)
    except ValueError:  # a cell that is not a plain number, an empty one, a short line
        return None
    if table.shape != (n,):
        return None  # numpy's reader skipped blank lines
    width = len(layout.count_idx)
    counts = np.column_stack([table[f"c{j}"] for j in range(width)] or [np.empty(n)])
    counts = counts.astype(np.float64)

    def column(i: int) -> np.ndarray:
        col = table[f"t{text_idx.index(i)}"]
        return _strip(col) if spaces else col.copy()

    keys = {g: column(i) for g, i in zip(layout.groups, layout.key_idx)}
    delim = layout.delim

    def row_values(i: int) -> dict[str, str]:
        return _values(lines[i].rstrip("\r\n").split(delim), layout)

    return _checked(
        counts,
        keys,
        None if layout.label_idx is None else column(layout.label_idx),
        None if layout.year_idx is None else column(layout.year_idx),
        rownums,
        row_values,
        layout,
        source,
    )


def _values(cells: list[str], layout: _Layout) -> dict[str, str]:
    """A row as pool's parser sees it: header name -> stripped cell ("" when the row is short)."""
    return {
        col: (cells[i].strip() if i < len(cells) else "")
        for i, col in enumerate(layout.header)
        if col
    }


def _from_cells(
    records: list[list[str]], rownums: np.ndarray, layout: _Layout, source: str
) -> Rows:
    """Rows from split records (any number of fields), skipping blank ones as pool does."""
    keep = [i for i, cells in enumerate(records) if any(c.strip() for c in cells)]
    if len(keep) < len(records):
        records = [records[i] for i in keep]
        rownums = np.asarray(rownums)[keep]
    n = len(records)
    nf = layout.nfields

    def column(i: int) -> np.ndarray:
        return np.array([(r[i].strip() if i < len(r) else "") for r in records], dtype=object)

    keys = {g: column(i) for g, i in zip(layout.groups, layout.key_idx)}
    text = [column(i) for i in layout.count_idx]
    cells = np.column_stack([to_float(t) for t in text]) if n and text else np.empty((n, len(text)))
    if layout.decimal == "," and n and text:
        # A point in a decimal-comma table: pool's parser decides (it refuses ``1.000``).
        dotted = np.column_stack([np.char.find(t.astype(str), ".") >= 0 for t in text])
        cells[dotted] = math.nan
    # A row with more fields than the header is bad when a surplus cell is not empty.
    long_rows = [i for i, r in enumerate(records) if len(r) > nf and any(c.strip() for c in r[nf:])]
    error = np.full(n, None, dtype=object)
    for i in long_rows:
        extra = [c.strip() for c in records[i][nf:] if c.strip()]
        error[i] = (
            f"{source}, row {int(rownums[i])}: {nf + len(extra)} fields but the header has {nf} "
            f"(value '{extra[0]}' has no column)"
        )
    return _checked(
        cells,
        keys,
        None if layout.label_idx is None else column(layout.label_idx),
        None if layout.year_idx is None else column(layout.year_idx),
        rownums,
        lambda i: _values(records[i], layout),
        layout,
        source,
        error,
    )
