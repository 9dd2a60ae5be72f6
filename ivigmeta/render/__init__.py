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
from typing import IO, TYPE_CHECKING, Any

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
    columns: list[str] = []
    for rec in records:
        for key in rec:
            if key not in columns:
                columns.append(key)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for rec in records:
        writer.writerow({k: _csv_cell(v) for k, v in rec.items()})
    return out.getvalue()


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    if isinstance(value, (list, tuple)):
        return "; ".join(str(v) for v in value)
    return value


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(sections: list[Section]) -> str:
    parts = []
    for sec in sections:
        lines = [f"### {sec.title}", ""]
        lines.append("| " + " | ".join(_md_escape(c) for c in sec.columns) + " |")
        aligns = [
            "---" if i < sec.right_align_from or c in sec.text_columns else "---:"
            for i, c in enumerate(sec.columns)
        ]
        lines.append("| " + " | ".join(aligns) + " |")
        for i, row in enumerate(sec.rows):
            cells = [_md_escape(c) for c in row]
            if sec.summary_from is not None and i >= sec.summary_from and cells[0]:
                cells[0] = f"**{cells[0]}**"
            lines.append("| " + " | ".join(cells) + " |")
        if sec.notes:
            lines.append("")
            lines.extend(f"- {_md_escape(n)}" for n in sec.notes)
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def render(result: Any, view: str, fmt: str = "table", ascii_only: bool = False) -> str:
    """Render ``result`` through ``view`` as ``fmt``; returns the text for stdout."""
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

        return to_table(v.sections(result), ascii_only=ascii_only)
    raise ValueError(f"unknown format {fmt!r}")


def emit(result: Any, view: str, fmt: str, stream: IO[str], ascii_only: bool = False) -> None:
    stream.write(render(result, view, fmt, ascii_only=ascii_only))
