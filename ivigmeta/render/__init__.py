"""Output: rich tables, JSON, CSV and Markdown from result objects.

``emit(result, view, fmt, stream)`` is the one entry point. Only ``render.table`` (and
``render.progress``, the batch progress bar) import rich, and only when a table or a bar is asked
for, so machine formats stay fast. ``render.batch`` writes batch results (CSV, JSON lines, Parquet).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from ivigmeta.render.text import csv_guard, md_escape

if TYPE_CHECKING:  # views defines every result's layout: imported by render(), not by render.batch
    from ivigmeta.render.views import Section

FORMATS = ("table", "json", "csv", "markdown")


def json_safe(value: Any) -> Any:
    """JSON has no NaN or infinity: write them as null (their meaning is in the docs)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def to_json(payload: dict[str, Any]) -> str:
    return json.dumps(json_safe(payload), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def to_csv(records: list[dict[str, Any]]) -> str:
    """Records as CSV: numbers at full precision, text cells guarded against formula injection."""
    columns: list[str] = []
    for rec in records:
        for key in rec:
            if key not in columns:
                columns.append(key)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    # Column names can come from the input too (a ROBINS-I domain, a subgroup column).
    writer.writerow([_csv_cell(c) for c in columns])
    for rec in records:
        writer.writerow([_csv_cell(rec.get(c)) for c in columns])
    return out.getvalue()


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    if isinstance(value, (list, tuple)):
        return csv_guard("; ".join(str(v) for v in value))
    if isinstance(value, str):
        return csv_guard(value)
    return value


def to_markdown(sections: list[Section]) -> str:
    """Sections as Markdown tables; every title, header, cell and note is literal text
    (:func:`ivigmeta.render.text.md_escape`), read back by ``render.report.parse_markdown``."""
    parts = []
    for sec in sections:
        lines = [f"### {md_escape(sec.title)}", ""]
        lines.append("| " + " | ".join(md_escape(c) for c in sec.columns) + " |")
        aligns = [
            "---" if i < sec.right_align_from or c in sec.text_columns else "---:"
            for i, c in enumerate(sec.columns)
        ]
        lines.append("| " + " | ".join(aligns) + " |")
        for i, row in enumerate(sec.rows):
            cells = [md_escape(c).strip() for c in row]
            if sec.summary_from is not None and i >= sec.summary_from and cells[0]:
                cells[0] = f"**{cells[0]}**"
            lines.append("| " + " | ".join(cells) + " |")
        if sec.notes:
            lines.append("")
            lines.extend(f"- {md_escape(n)}" for n in sec.notes)
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def render(
    result: Any,
    view: str,
    fmt: str = "table",
    ascii_only: bool = False,
    width: int | None = None,
    color: bool = False,
    dropped: Callable[[str], None] | None = None,
) -> str:
    """Render ``result`` through ``view`` as ``fmt``; returns the text for stdout.

    Tables are ``width`` characters wide (their natural width when None), styled when
    ``color``; ``dropped`` hears which columns a table left out to fit (render.table)."""
    from ivigmeta.render.views import VIEWS

    v = VIEWS[view]
    if fmt == "json":
        return to_json(v.payload(result))
    if fmt == "csv":
        return to_csv(v.records(result))
    if fmt == "markdown":
        return to_markdown(v.sections(result))
    if fmt == "table":
        from ivigmeta.render.table import to_table

        return to_table(
            v.sections(result), ascii_only=ascii_only, width=width, color=color, dropped=dropped
        )
    raise ValueError(f"unknown format {fmt!r}")


def emit(result: Any, view: str, fmt: str, stream: IO[str], ascii_only: bool = False) -> None:
    """Write ``result`` to ``stream`` at natural width, unstyled (a file, a pipe)."""
    stream.write(render(result, view, fmt, ascii_only=ascii_only))
