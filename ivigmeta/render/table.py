"""Rich tables for the terminal. The only module that imports rich."""

from __future__ import annotations

import io
import os
import shutil
import sys

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ivigmeta.render.text import plain
from ivigmeta.render.views import Section

# A cell longer than this is prose (a reason, a list of studies), never a number: its column
# wraps, or rich would squeeze the other columns to nothing to keep it on one line.
PROSE = 30


def make_console(file: io.StringIO, ascii_only: bool) -> Console:
    """One console for all tables: no colour under NO_COLOR, plain ASCII when asked or piped."""
    # Piped output is not wrapped to a terminal: wide enough for Table 2 on one line per study.
    width = shutil.get_terminal_size((200, 24)).columns if sys.stdout.isatty() else 200
    return Console(
        file=file,
        width=max(width, 100),
        no_color="NO_COLOR" in os.environ,
        force_terminal=False,
        legacy_windows=False,
        safe_box=True,
        emoji=False,
        highlight=False,
        soft_wrap=False,
    )


def to_table(sections: list[Section], ascii_only: bool = False) -> str:
    buf = io.StringIO()
    console = make_console(buf, ascii_only)
    style = box.ASCII2 if ascii_only else box.SIMPLE_HEAD
    for n, sec in enumerate(sections):
        # Text() everywhere: labels from the user's file ("Smith [a]") are not rich markup.
        # plain(): a label's escape sequences would recolour the terminal or move the cursor.
        rows = [[plain(c) for c in row] for row in sec.rows]
        table = Table(
            title=Text(plain(sec.title)),
            box=style,
            title_justify="left",
            show_edge=False,
            pad_edge=False,
        )
        for i, col in enumerate(sec.columns):
            left = i < sec.right_align_from or col in sec.text_columns
            # Numbers never wrap; long study lists, labels, reasons and notes do.
            longest = max([len(col)] + [len(row[i]) for row in rows])
            wrap = left or col == "Studies" or longest > PROSE
            table.add_column(
                Text(plain(col)),
                justify="left" if left else "right",
                overflow="fold",
                no_wrap=not wrap,
                min_width=min(longest, 24) if wrap else None,
            )
        for i, row in enumerate(rows):
            summary = sec.summary_from is not None and i >= sec.summary_from
            table.add_row(
                *(Text(c) for c in row),
                style="bold" if summary else None,
                end_section=summary is False and sec.summary_from == i + 1,
            )
        console.print(table)
        for note in sec.notes:
            console.print(Text(plain(note)))
        if n < len(sections) - 1:
            console.print()
    return buf.getvalue()
