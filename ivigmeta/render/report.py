"""Write the report as Markdown and as self-contained HTML, from Jinja2 templates.

The templates live in ``ivigmeta/templates`` (package data). Every table of the HTML comes from
the same :class:`~ivigmeta.render.views.Section` objects as the Markdown: the commands' Markdown
output is read back into sections (:func:`parse_markdown`, the inverse of
:func:`ivigmeta.render.to_markdown`). Figures are embedded in the HTML as base64 ``data:`` URIs,
so the page makes no network request; the Markdown links to the PNG files next to it.
jinja2 is imported only here, and only when a report is written.
"""

from __future__ import annotations

import base64
import os
import re
from typing import Any
from urllib.parse import quote

from ivigmeta.render import to_markdown
from ivigmeta.render.text import md_code, md_escape, md_unescape, plain
from ivigmeta.render.views import VIEWS, Section

# A cell boundary is a "|" not escaped: escapes are backslash pairs, read as one token each.
_TOKEN = re.compile(r"\\.|\||[^\\|]+|\\")


def _raw_cells(line: str) -> list[str]:
    cells: list[str] = []
    current: list[str] = []
    for token in _TOKEN.findall(line.strip()):
        if token == "|":
            cells.append("".join(current))
            current = []
        else:
            current.append(token)
    cells.append("".join(current))
    # The row starts and ends with "|": drop the empty text outside them.
    return [c.strip() for c in cells[1:-1]] if len(cells) > 2 else [c.strip() for c in cells]


def _cells(line: str) -> list[str]:
    return [md_unescape(c) for c in _raw_cells(line)]


def parse_markdown(text: str) -> list[Section]:
    """Read ``to_markdown`` output back into sections (title, columns, rows, notes, alignment)."""
    sections: list[Section] = []
    current: Section | None = None
    table_lines: list[str] = []

    def close_table() -> None:
        nonlocal table_lines
        if current is not None and len(table_lines) >= 2:
            current.columns = _cells(table_lines[0])
            aligns = _cells(table_lines[1])
            right = [i for i, a in enumerate(aligns) if a.endswith(":")]
            current.right_align_from = right[0] if right else len(aligns)
            current.text_columns = tuple(
                current.columns[i]
                for i, a in enumerate(aligns)
                if i > current.right_align_from and not a.endswith(":")
            )
            for line in table_lines[2:]:
                raw = _raw_cells(line)
                # Bold is markup only when unescaped: an escaped "\*\*" is part of the label.
                if raw and raw[0].startswith("**") and raw[0].endswith("**") and len(raw[0]) > 4:
                    raw[0] = raw[0][2:-2]
                    if current.summary_from is None:
                        current.summary_from = len(current.rows)
                current.rows.append([md_unescape(c) for c in raw])
        table_lines = []

    for line in text.splitlines():
        if line.startswith("### "):
            close_table()
            current = Section(md_unescape(line[4:].strip()), [], [], [])
            sections.append(current)
        elif line.startswith("|") and current is not None:
            table_lines.append(line)
        elif line.startswith("- ") and current is not None:
            close_table()
            current.notes.append(md_unescape(line[2:]))
        elif not line.strip():
            close_table()
    close_table()
    return sections


def data_sections(table: Any) -> list[Section]:
    """The study table as read (every column), one row per study, without control characters."""
    cols = list(table.columns)
    rows = [[plain(s.fields.get(c, "")) for c in cols] for s in table.studies]
    shown = [plain(c) for c in cols]
    counts = {"year", "treat_events", "treat_total", "control_events", "control_total"}
    first_number = next((i for i, c in enumerate(cols) if c in counts), len(cols))
    text = tuple(shown[i] for i, c in enumerate(cols) if i > first_number and c not in counts)
    return [
        Section(
            plain(f"Data: {table.source} ({len(table.studies)} studies)"),
            shown,
            rows,
            [],
            right_align_from=first_number,
            text_columns=text,
        )
    ]


def _figure_uri(path: str) -> str:
    with open(path, "rb") as handle:
        data = base64.b64encode(handle.read()).decode("ascii")
    return f"data:image/png;base64,{data}"


def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ivigmeta", "templates"),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "html.j2"), default_for_string=False
        ),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    # The Markdown template has no autoescape: its text goes through these (the HTML's does).
    env.filters["md"] = md_escape
    env.filters["code"] = md_code
    return env


def report_context(content: Any, out_dir: str) -> dict[str, Any]:
    """Plain data for both templates."""
    parts = []
    for p in content.parts:
        figures = [
            {
                "caption": caption,
                "uri": _figure_uri(path),
                # Percent-encoded: a column name with ")" or a space must not end the link.
                "rel": quote(os.path.relpath(path, out_dir).replace(os.sep, "/")),
            }
            for caption, path in p.figures
        ]
        parts.append(
            {
                "key": p.key,
                "title": p.title,
                "command_line": p.command_line,
                "markdown": p.markdown.strip(),
                "sections": parse_markdown(p.markdown) if p.markdown else [],
                "error": p.error,
                "figure_title": p.figure_title,
                "figures": figures,
                "figure_error": p.figure_error,
            }
        )
    data = data_sections(content.table)
    repro = content.reproduce
    repro_sections = VIEWS["reproduce"].sections(repro) if repro is not None else []
    return {
        "title": content.title,
        "prov": content.provenance,
        "data_sections": data,
        "data_md": to_markdown(data).strip(),
        "parts": parts,
        "not_available": content.not_available,
        "figures_note": content.figures_note,
        "methods": content.methods,
        "references": content.references,
        "reproduce": repro,
        "reproduce_sections": repro_sections,
        "reproduce_md": to_markdown(repro_sections).strip() if repro_sections else "",
    }


def write_report(content: Any, out_dir: str) -> tuple[str, str]:
    """Write ``report.md`` and ``report.html`` into ``out_dir``; returns their paths."""
    env = _environment()
    ctx = report_context(content, out_dir)
    os.makedirs(out_dir, exist_ok=True)
    md_path = os.path.join(out_dir, "report.md")
    html_path = os.path.join(out_dir, "report.html")
    md_text = env.get_template("report.md.j2").render(**ctx)
    html_text = env.get_template("report.html.j2").render(**ctx)
    _replace_with(md_path, md_text)
    _replace_with(html_path, html_text)
    return md_path, html_path


def _replace_with(path: str, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and rename it into place, so that a
    failure (a full disk) leaves the previous file or none, never a truncated one."""
    import tempfile

    fd, tmp = tempfile.mkstemp(
        prefix=".ivigmeta-", suffix=".part", dir=os.path.dirname(path) or "."
    )
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp's files are the owner's only
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
