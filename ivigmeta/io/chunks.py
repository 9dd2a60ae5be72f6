"""Reading the long table of ``ivigmeta batch`` without pandas: CSV text in, :class:`Rows` out.

:class:`Rows` is the batch core's input: one entry per study row, held as numpy arrays (group
keys, the four counts, file row numbers, study labels) plus, for every row ``pool`` would reject,
the message ``pool`` gives for it. :class:`ChunkReader` reads a CSV file (or standard input) into
Rows a chunk at a time:

* lines without a double quote, the overwhelming case, are parsed by numpy's C reader
  (``np.loadtxt``) column by column: counts straight to float64, text columns as Python strings;
* a chunk with a double quote anywhere (quoted commas or line breaks) goes through the standard
  library's csv module from there on, record by record, as ``pool``'s reader does;
* every cell that is not a plain number, and every row that fails a check, is looked at again by
  ``pool``'s own row parser (:func:`ivigmeta.io.studies.parse_study`), so a row is accepted or rejected,
  with the same message, exactly as ``pool`` would.

Rows are numbered as in a spreadsheet (the header is row 1); blank rows are skipped as ``pool``
skips them and still counted.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np

from ivigmeta.errors import DataError
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

    ``keys`` maps each group column to an object array of its values; ``counts`` is (n, 4) float64
    in :data:`ivigmeta.io.studies.COUNT_COLUMNS` order (NaN where a cell is not a number); ``row`` the
    file row numbers; ``error`` the message ``pool`` gives for a bad row (None for good rows);
    ``label`` the study labels ("" when missing) or None when the table has no study column.
    """

    keys: dict[str, np.ndarray]
    counts: np.ndarray
    row: np.ndarray
    error: np.ndarray
    label: np.ndarray | None = None
    last: bool = False
    """No rows follow these in their input (the reader met the end): the last group is whole."""

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
            counts=self.counts[index],
            row=self.row[index],
            error=self.error[index],
            label=None if self.label is None else self.label[index],
        )

    @staticmethod
    def concat(parts: Sequence[Rows]) -> Rows:
        parts = [p for p in parts if len(p)] or list(parts[:1])
        if len(parts) == 1:
            return parts[0]
        labels = [p.label for p in parts if p.label is not None]
        label = np.concatenate(labels) if len(labels) == len(parts) else None
        return Rows(
            keys={g: np.concatenate([p.keys[g] for p in parts]) for g in parts[0].keys},
            counts=np.concatenate([p.counts for p in parts]),
            row=np.concatenate([p.row for p in parts]),
            error=np.concatenate([p.error for p in parts]),
            label=label,
        )

    def to_frame(self) -> Any:
        """A pandas DataFrame of these rows (``batch_pool`` takes it; ``__row__``/``__error__`` kept)."""
        import pandas as pd

        data: dict[str, Any] = {g: col for g, col in self.keys.items()}
        if self.label is not None:
            data[LABEL_COLUMN] = self.label
        for j, col in enumerate(COUNT_COLUMNS):
            data[col] = self.counts[:, j]
        data[ROW_COLUMN] = self.row
        data[ERROR_COLUMN] = self.error
        return pd.DataFrame(data)


def check_columns(columns: Iterable[str], groups: Sequence[str], source: str) -> None:
    """The table has the count columns and every group column, and the names do not clash."""
    cols = [str(c) for c in columns]
    shown = ", ".join(c for c in cols if c not in (ROW_COLUMN, ERROR_COLUMN))
    if not groups:
        raise DataError("batch needs at least one --group column")
    missing = [c for c in COUNT_COLUMNS if c not in cols]
    if missing:
        raise DataError(
            f"{source}, row 1: required column(s) missing: {', '.join(missing)} (columns found: {shown})"
        )
    for g in groups:
        if g not in cols:
            raise DataError(f"{source}: no group column '{g}' (columns found: {shown})")
        if g in OUTPUT_NAMES:
            raise DataError(f"group column '{g}' has the name of an output column; rename it")
        if g in COUNT_COLUMNS:
            raise DataError(f"'{g}' is a count column and cannot be a group column")


# ----------------------------------------------------------------------------------------------
# pool's checks, vectorized; pool's messages, row by row


def row_error(values: dict[str, str], rownum: int, source: str) -> str | None:
    """The DataError ``pool`` raises for one row (None when pool accepts it)."""
    from ivigmeta.io.columns import ColumnMap
    from ivigmeta.io.studies import parse_study

    roles = {c: c for c in COUNT_COLUMNS}
    for c in (LABEL_COLUMN, YEAR_COLUMN):
        if c in values:
            roles[c] = c
    for c in COUNT_COLUMNS:
        values.setdefault(c, "")
    try:
        parse_study(values, rownum, source, ColumnMap(roles=roles, convention="ivigmeta"), ".")
    except DataError as exc:
        return str(exc)
    return None


def to_float(text: np.ndarray) -> np.ndarray:
    """Stripped text cells as float64 with Python's ``float`` rules; NaN where not a number."""
    try:
        return np.asarray(text, dtype=np.float64) if len(text) else np.empty(0)
    except (ValueError, TypeError):
        pass
    out = np.empty(len(text))
    for i, s in enumerate(text.tolist()):
        try:
            out[i] = float(s)
        except (ValueError, TypeError):
            out[i] = math.nan
    return out


def suspect_rows(counts: np.ndarray, year: np.ndarray | None = None) -> np.ndarray:
    """Rows that may fail pool's checks: not whole, negative, too large, zero totals, events >
    totals, an unreadable year. Conservative (2^53 itself is looked at again): the row parser
    decides."""
    with np.errstate(invalid="ignore"):
        bad = (
            ~np.isfinite(counts)
            | (counts < 0)
            | (counts != np.floor(counts))
            | (counts >= MAX_COUNT)
        ).any(axis=1)
        bad |= (counts[:, 1] == 0) | (counts[:, 3] == 0)
        bad |= (counts[:, 0] > counts[:, 1]) | (counts[:, 2] > counts[:, 3])
        if year is not None:
            present = year != ""
            if present.any():
                y = to_float(year[present])
                not_year = ~np.isfinite(y) | (y != np.floor(y)) | (np.abs(y) > 9999)
                bad[np.flatnonzero(present)[not_year]] = True
    return bad


# ----------------------------------------------------------------------------------------------
# the reader


class _Layout:
    """Where the columns batch needs sit in the header."""

    def __init__(self, header: list[str], groups: Sequence[str]) -> None:
        self.header = header
        self.nfields = len(header)
        pos = {name: i for i, name in enumerate(header) if name}
        self.groups = list(groups)
        self.key_idx = [pos[g] for g in self.groups]
        self.count_idx = [pos[c] for c in COUNT_COLUMNS]
        self.label_idx = pos.get(LABEL_COLUMN)
        self.year_idx = pos.get(YEAR_COLUMN)


@dataclass
class ChunkReader:
    """Read a CSV long table into :class:`Rows`, ``chunk_rows`` rows at a time.

    ``progress(done_bytes, total_bytes)`` is called after each chunk.
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

    def __iter__(self) -> Iterator[Rows]:
        import os
        import sys

        if self.chunk_rows < 1:
            raise DataError(f"--chunk-rows must be at least 1, not {self.chunk_rows}")
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
        """Rows from a binary handle (UTF-8, a byte-order mark skipped, bad bytes replaced)."""
        import csv
        import io
        from itertools import chain, islice

        from ivigmeta.io.studies import check_header

        text = io.TextIOWrapper(handle, encoding="utf-8-sig", errors="replace", newline="")
        handle_tell = handle.tell
        source = self.source
        first = text.readline()
        if not first.strip():
            raise DataError(
                f"{source}: the file is empty (expected a header row and one row per study)"
            )
        try:
            header = [h.strip() for h in next(csv.reader([first]))]
        except (csv.Error, StopIteration) as exc:
            raise DataError(f"{source}: not a readable CSV file ({exc})") from None
        check_header(header, source, 1)
        check_columns(header, self.groups, source)
        layout = _Layout(header, self.groups)
        total = self.total_bytes()

        next_row = 2
        if self.span is not None:
            span = self.span
            handle = text.detach()
            handle.seek(span.start)
            body = io.BufferedReader(_Bounded(handle, span.end - span.start), 1 << 20)
            text = io.TextIOWrapper(body, encoding="utf-8", errors="replace", newline="")
            total = span.end - span.start
            next_row = span.first_row

            def handle_tell() -> int:
                return handle.tell() - span.start

        studies = 0
        records = None  # the csv module's reader, once a quote has been seen
        while True:
            if records is None:
                lines = list(islice(text, self.chunk_rows))
                if not lines:
                    break
                if '"' in "".join(lines):
                    records = csv.reader(chain(lines, text), skipinitialspace=False)
                    continue
                rows = _parse_lines(lines, next_row, layout, source)
                rows.last = len(lines) < self.chunk_rows  # islice stops short only at the end
                next_row += len(lines)
            else:
                try:
                    cells = list(islice(records, self.chunk_rows))
                except csv.Error as exc:
                    raise DataError(
                        f"{source}, row {next_row}: not a readable CSV row ({exc})"
                    ) from None
                if not cells:
                    break
                rows = _parse_records(cells, next_row, layout, source)
                rows.last = len(cells) < self.chunk_rows
                next_row += len(cells)
            studies += len(rows)
            if len(rows):
                yield rows
            if self.progress is not None:
                try:
                    done = handle_tell()
                except (OSError, ValueError):
                    done = 0
                self.progress(done, total)
        if studies == 0:
            raise DataError(f"{source}: the file has a header but no study rows")


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


def split_spans(path: str, groups: Sequence[str], pieces: int) -> list[Span]:
    """Cut a CSV file into at most ``pieces`` spans of whole groups, for separate processes.

    Each cut is at the first line, at or after an even share of the bytes, whose group key
    differs from the line before it, so a group whose rows are contiguous never straddles two
    spans (one that is not contiguous is the caller's to find, as for any grouped input). Row
    numbers come from counting line ends, so a file with a double quote anywhere (a quoted cell
    may hold a line break) or a bare carriage return is not cut; neither is a file whose header
    the reader would refuse. An empty list means: read the file whole.
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
        if b'"' in first or b"\r" in first.rstrip(b"\r\n"):
            return []
        try:
            text = first.decode("utf-8-sig", "replace").rstrip("\r\n")
            header = [h.strip() for h in text.split(",")]
            from ivigmeta.io.studies import check_header

            check_header(header, path, 1)
            check_columns(header, groups, path)
            layout = _Layout(header, groups)
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
            cells = line.decode("utf-8", "replace").rstrip("\r\n").split(",")
            if any(c.strip() for c in cells):  # blank lines belong to no group
                key = tuple(cells[i].strip() if i < len(cells) else "" for i in layout.key_idx)
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
    cell by cell."""
    n = len(lines)
    joined = "".join(lines)
    rownums = first_row + np.arange(n, dtype=np.int64)
    spaces = _edge_spaces(joined)
    tried = False
    if joined.count(",") == n * (layout.nfields - 1):
        # As many commas as n regular lines: regular unless a short line hides a long one; the
        # last column is read, so numpy's reader rejects a short line, and a blank one (which
        # it skips) shows as a row missing.
        rows = _parse_regular(lines, rownums, layout, source, spaces)
        if rows is not None:
            return rows
        tried = True
    commas = np.array(list(map(str.count, lines, repeat(","))), dtype=np.int64)
    regular = commas == layout.nfields - 1
    if regular.all() and tried:  # numpy's reader refused a cell: every line cell by cell
        return _from_cells(_split(lines), rownums, layout, source)
    parts = []
    pos = np.flatnonzero(regular)
    if len(pos):
        some = [lines[i] for i in pos]
        got = _parse_regular(some, rownums[pos], layout, source, spaces)
        parts.append(
            got if got is not None else _from_cells(_split(some), rownums[pos], layout, source)
        )
    odd = np.flatnonzero(~regular)
    parts.append(_from_cells(_split([lines[i] for i in odd]), rownums[odd], layout, source))
    merged = Rows.concat(parts)
    return merged.take(np.argsort(merged.row, kind="stable"))


_RARE_SPACE = "\x0b\x0c\x1c\x1d\x1e\x1f"


def _edge_spaces(joined: str) -> bool:
    """Whether some cell of these unquoted lines may start or end with white space (str.strip's
    white space): a space or tab next to a comma or a line end, or any rarer space at all."""
    if not joined.isascii() or any(c in joined for c in _RARE_SPACE):
        return True
    for c in " \t":
        if c in joined and (
            joined[0] == c
            or f"{c}," in joined
            or f",{c}" in joined
            or f"{c}\n" in joined
            or f"{c}\r" in joined
            or f"\n{c}" in joined
            or f"\r{c}" in joined
            or joined[-1] == c
        ):
            return True
    return False


def _split(lines: list[str]) -> list[list[str]]:
    return [line.rstrip("\r\n").split(",") for line in lines]


def _parse_records(records: list[list[str]], first_row: int, layout: _Layout, source: str) -> Rows:
    return _from_cells(records, first_row + np.arange(len(records), dtype=np.int64), layout, source)


def _loadtxt(lines: list[str], columns: list[int], dtype: Any) -> np.ndarray:
    return np.loadtxt(
        lines,
        delimiter=",",
        usecols=columns,
        dtype=dtype,
        comments=None,
        quotechar=None,
        ndmin=1,
        encoding=None,
    )


def _read_table(lines: list[str], count_idx: list[int], text_idx: list[int]) -> np.ndarray:
    """One pass of numpy's reader: a record per line, fields ``c0..c3`` (the counts, float64) and
    ``t0..`` (the text columns, str). Whole numbers, the usual counts, parse about 5x faster as
    integers; anything else (1.5, 1e3, an empty cell, beyond int64) is read again as floats.
    Beyond 2^53 the conversion may round, but such rows are suspect and go to pool's parser."""
    text_fields = [(f"t{j}", object) for j in range(len(text_idx))]
    try:
        dtype = np.dtype([(f"c{j}", np.int64) for j in range(4)] + text_fields)
        return _loadtxt(lines, count_idx + text_idx, dtype)
    except ValueError:
        dtype = np.dtype([(f"c{j}", np.float64) for j in range(4)] + text_fields)
        return _loadtxt(lines, count_idx + text_idx, dtype)


def _strip(values: np.ndarray) -> np.ndarray:
    return np.array([v.strip() for v in values.tolist()], dtype=object)


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
        table = _read_table(lines, layout.count_idx, text_idx)
    except ValueError:  # a cell that is not a plain number, an empty one, a short line
        return None
    if table.shape != (n,):
        return None  # numpy's reader skipped blank lines
    counts = np.column_stack([table[f"c{j}"] for j in range(4)]).astype(np.float64)

    def column(i: int) -> np.ndarray:
        col = table[f"t{text_idx.index(i)}"]
        return _strip(col) if spaces else col.copy()

    keys = {g: column(i) for g, i in zip(layout.groups, layout.key_idx)}
    label = None if layout.label_idx is None else column(layout.label_idx)
    year = None if layout.year_idx is None else column(layout.year_idx)
    suspect = suspect_rows(counts, year)
    error = np.full(n, None, dtype=object)
    for i in np.flatnonzero(suspect).tolist():
        cells = lines[i].rstrip("\r\n").split(",")
        error[i] = row_error(_values(cells, layout), int(rownums[i]), source)
    return Rows(
        keys=keys, counts=counts, row=np.asarray(rownums, np.int64), error=error, label=label
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
    counts = np.column_stack([to_float(t) for t in text]) if n else np.empty((0, 4))
    label = None if layout.label_idx is None else column(layout.label_idx)
    year = None if layout.year_idx is None else column(layout.year_idx)
    suspect = suspect_rows(counts, year) if n else np.zeros(0, bool)
    # A row with more fields than the header is bad when a surplus cell is not empty.
    long_rows = [i for i, r in enumerate(records) if len(r) > nf and any(c.strip() for c in r[nf:])]
    error = np.full(n, None, dtype=object)
    for i in long_rows:
        extra = [c.strip() for c in records[i][nf:] if c.strip()]
        error[i] = (
            f"{source}, row {int(rownums[i])}: {nf + len(extra)} fields but the header has {nf} "
            f"(value '{extra[0]}' has no column)"
        )
    for i in np.flatnonzero(suspect).tolist():
        if error[i] is None:
            error[i] = row_error(_values(records[i], layout), int(rownums[i]), source)
    return Rows(
        keys={g: k for g, k in keys.items() if k is not None},
        counts=counts,
        row=np.asarray(rownums, np.int64),
        error=error,
        label=label,
    )
