"""Writers for batch results: CSV, JSON lines and Parquet, one :class:`BatchResult` at a time.

Full precision everywhere (floats as their shortest round-trip text); a non-finite number or a
missing count is an empty CSV cell and a JSON ``null``, as in the other machine formats. Parquet
needs pyarrow (the optional extra ``ivigmeta[parquet]``). No pandas on the CSV and JSON paths.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import IO, Any

from ivigmeta.render.text import FORMULA_START, csv_guard

BATCH_FORMATS = ("csv", "jsonl", "parquet")

_NEEDS_QUOTES = re.compile(r'[,"\r\n]|^\s|\s$')
_SPECIAL = re.compile(r'[,"\r\n]')
_SPACES = " \t\x0b\x0c\x1c\x1d\x1e\x1f"
# A text cell a spreadsheet would run as a formula (render.text.csv_guard): one search of the
# joined column finds whether any cell needs a look (about the cost of the join; "^|" in the
# pattern made it 10x slower, so the first cell is tested apart).
_FORMULA = re.compile("\x00[" + re.escape("".join(FORMULA_START)) + "]")


class BatchWriter:
    """Append results to ``stream`` (text, for csv/jsonl) or to the file ``path`` (parquet)."""

    def __init__(
        self,
        fmt: str,
        stream: IO[str] | None = None,
        path: str | None = None,
        header: bool = True,
        processes: int | None = None,
    ) -> None:
        """``header=False`` continues an output someone else began (no CSV header row);
        ``processes`` caps the processes formatting text (None: one per usable core)."""
        if fmt not in BATCH_FORMATS:
            raise ValueError(f"unknown batch format {fmt!r}")
        self.fmt = fmt
        self.stream = stream
        self.path = path
        self.processes = processes
        self.rows = 0
        self._header_done = not header
        self._parquet: Any = None  # a pyarrow.parquet.ParquetWriter once the first rows come

    def write(self, result: Any) -> None:
        """Write a :class:`ivigmeta.batching.run.BatchResult`."""
        if self.fmt == "parquet":
            self._write_parquet(result)
        elif self.fmt == "csv":
            self._write_csv(result)
        else:
            self._write_jsonl(result)
        self._header_done = True
        self.rows += len(result)

    def _write_csv(self, result: Any) -> None:
        assert self.stream is not None  # text formats are written to a stream
        if not self._header_done:
            header = (_csv_text(csv_guard(str(c))) for c in result.columns)
            self.stream.write(",".join(header) + "\n")
        text = in_parallel(len(result), lambda lo, hi: _csv_lines(result, lo, hi), self.processes)
        self.stream.write(text)

    def _write_jsonl(self, result: Any) -> None:
        assert self.stream is not None
        text = in_parallel(len(result), lambda lo, hi: _json_lines(result, lo, hi), self.processes)
        self.stream.write(text)

    def _write_parquet(self, result: Any) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            from ivigmeta.errors import DataError

            raise DataError(
                "Parquet output needs pyarrow: pip install 'ivigmeta[parquet]'"
            ) from None
        table = pa.Table.from_pandas(result.to_frame(), preserve_index=False)
        if self._parquet is None:
            self._schema = table.schema
            self._parquet = pq.ParquetWriter(self.path, self._schema)
        else:
            table = table.cast(self._schema)
        self._parquet.write_table(table)

    def close(self, empty: Any = None) -> None:
        """Finish the output; ``empty`` (an empty result) gives the columns when nothing was written."""
        if not self._header_done and empty is not None:
            self.write(empty)
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None


PARALLEL_MIN_ROWS = 2000
"""Results of at least twice this many groups are formatted by several processes."""


def worker_count(n: int, processes: int | None = None) -> int:
    """Processes to format n result rows with: ``processes`` (None: one per usable core), at
    most one per PARALLEL_MIN_ROWS rows; 1 where forking is not possible."""
    from ivigmeta.batching.forking import processes_for

    return processes_for(n // PARALLEL_MIN_ROWS, processes)


def in_parallel(n: int, text: Callable[[int, int], str], processes: int | None = None) -> str:
    """``text(0, n)``, computed in slices by forked processes when it pays.

    Formatting floats at full precision (about 0.5 us each) is the largest cost of text output;
    the slices are independent, so child processes format all but the first while this process
    formats the first (:func:`ivigmeta.batching.forking.fork_map`; a child's failure fails the call).
    """
    workers = worker_count(n, processes)
    if workers == 1:
        return text(0, n)
    from ivigmeta.batching.forking import fork_map

    bounds = [n * w // workers for w in range(workers + 1)]
    return "".join(fork_map(lambda span: text(*span), list(zip(bounds[:-1], bounds[1:]))))


def _cells(result: Any, lo: int, hi: int, json_cells: bool) -> list[list[str]]:
    """Every column of result rows lo to hi as text cells, column by column (one C-level pass
    per column; pandas' to_csv was ~10x slower): CSV cells, or JSON values when ``json_cells``."""
    missing = "null" if json_cells else ""
    text_cells = _json_text_cells if json_cells else _text_cells
    cells = [text_cells(result.keys[g][lo:hi]) for g in result.groups]
    done: list[tuple[Any, list[str]]] = []  # float columns formatted so far
    for name in result.columns[len(result.groups) :]:
        values = result.values[name][lo:hi]
        if name in result.missing:
            cells.append(_int_cells(values, result.missing[name][lo:hi], missing))
        elif values.dtype == object:
            cells.append(text_cells(values))
        else:
            col = _float_cells(values, missing, done)
            done.append((values, col))
            cells.append(col)
    return cells


def _csv_lines(result: Any, lo: int, hi: int) -> str:
    """CSV lines for result rows lo to hi."""
    if hi <= lo:
        return ""
    return "\n".join(map(",".join, zip(*_cells(result, lo, hi, False)))) + "\n"


def _json_lines(result: Any, lo: int, hi: int) -> str:
    """JSON lines for result rows lo to hi: one object per group, keys in column order, the
    layout of ``json.dumps`` (", " and ": "), non-finite numbers and missing counts null."""
    if hi <= lo:
        return ""
    template = (
        "{"
        + ", ".join(
            _line_safe(json.dumps(c, ensure_ascii=False)).replace("%", "%%") + ": %s"
            for c in result.columns
        )
        + "}\n"
    )
    return "".join(template % row for row in zip(*_cells(result, lo, hi, True)))


def _csv_text(text: str) -> str:
    if _NEEDS_QUOTES.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def _float_cells(values: Any, missing: str = "", done: Any = ()) -> list[str]:
    """Floats at full precision (shortest round-trip repr); non-finite as ``missing``.

    ``done`` lists (values, cells) of columns already formatted: where one of them holds the
    same doubles (random-effects columns equal the common-effect ones whenever tau² is 0, the
    prediction interval equals the confidence interval), its text is reused; repr costs about
    1 us a number, the largest cost of text output.
    """
    import numpy as np

    best, same = None, None
    for prev_values, prev_cells in done:
        eq = values == prev_values
        if same is None or eq.sum() > same.sum():
            best, same = prev_cells, eq
    if same is not None and same.sum() * 8 > len(values):
        out = np.array(best, dtype=object)
        todo = np.flatnonzero(~same)
        out[todo] = list(map(repr, values[todo].tolist()))
        cells = out.tolist()
    else:
        cells = list(map(repr, values.tolist()))
    for i in np.flatnonzero(~np.isfinite(values)).tolist():
        cells[i] = missing
    return cells


def _int_cells(values: Any, absent: Any, missing: str = "") -> list[str]:
    cells = list(map(str, values.tolist()))
    for i in absent.nonzero()[0].tolist():
        cells[i] = missing
    return cells


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or type(v).__name__ == "NAType"


def _text_cells(values: Any) -> list[str]:
    """Text cells; missing values as ''; guarded against formula injection and quoted only
    where needed (a regex test or two per column)."""
    cells = values.tolist()
    try:
        joined = "\x00".join(cells)
    except TypeError:  # not all text (keys of a DataFrame): missing values as ''
        cells = ["" if _is_missing(v) else str(v) for v in cells]
        joined = "\x00".join(cells)
    if joined.startswith(FORMULA_START) or _FORMULA.search(joined):
        cells = [csv_guard(c) for c in cells]
    if _SPECIAL.search(joined) or (
        (not joined.isascii() or any(c in joined for c in _SPACES))
        and any(c != c.strip() for c in cells)
    ):
        cells = [_csv_text(c) for c in cells]
    return cells


_LINE_BREAKS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _line_safe(encoded: str) -> str:
    """JSON text with the characters other than \\n that line splitters (Python's
    str.splitlines, JavaScript) take for line ends escaped, so one object stays one line."""
    if not encoded.isascii():
        for char, escape in _LINE_BREAKS.items():
            encoded = encoded.replace(char, escape)
    return encoded


def _json_text_cells(values: Any) -> list[str]:
    """JSON values of a text (or key) column, each distinct value encoded once."""
    encoded: dict[Any, str] = {}
    out = []
    for v in values.tolist():
        try:
            cell = encoded[v]
        except (KeyError, TypeError):
            cell = _line_safe(json.dumps(_json_value(v), ensure_ascii=False, allow_nan=False))
            try:
                encoded[v] = cell
            except TypeError:  # an unhashable key value
                pass
        out.append(cell)
    return out


def _json_value(value: Any) -> Any:
    if _is_missing(value):
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy scalars
        return _json_value(value.item())
    return value
