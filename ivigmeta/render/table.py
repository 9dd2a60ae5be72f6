"""Rich tables for the terminal. The only module that imports rich.

A number on screen is never cut. Each column needs a width: a number column its longest cell
(its header may wrap between words), a label or prose column its longest word (it wraps). When
those widths do not fit the terminal, columns are left out in the order of
:data:`ivigmeta.render.views.DROP_ORDER` until they do, and the caller is told which (a note on
stderr: ``--wide`` or ``--format csv`` shows them). Without a width (output to a pipe or a file,
or ``--wide``) every table has its natural width.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ivigmeta.render.text import plain
from ivigmeta.render.views import Section, droppable

# A cell longer than this is prose (a reason, a list of studies), never a number: its column
# wraps, or rich would squeeze the other columns to nothing to keep it on one line.
PROSE = 30
#: characters between two columns: a space of padding, the (blank) rule, a space of padding
GAP = 3
#: the narrowest a wrapping column (labels, prose) is made, when its words allow
WRAP_MIN = 12
#: no console is narrower than this (a 20-column terminal still gets the estimate and its CI)
MIN_WIDTH = 20
#: the console width for natural-width output (nothing is ever wrapped to it)
NATURAL = 100_000


def make_console(file: io.StringIO, width: int | None, color: bool) -> Console:
    """One console for all tables: styles (bold summary rows) only when ``color``."""
    return Console(
        file=file,
        width=NATURAL if width is None else max(width, MIN_WIDTH),
        no_color=not color,
        force_terminal=color,
        color_system="standard" if color else None,
        legacy_windows=False,
        safe_box=True,
        emoji=False,
        highlight=False,
        soft_wrap=False,
    )


def _words(text: str) -> int:
    return max((len(w) for w in text.split()), default=0)


class _Column:
    def __init__(self, name: str, cells: list[str], left: bool) -> None:
        self.name = name
        self.left = left
        longest = max((len(c) for c in cells), default=0)
        self.wrap = left or name == "Studies" or longest > PROSE
        if self.wrap:
            word = max([_words(name)] + [_words(c) for c in cells])
            natural = max(longest, len(name))
            self.minimum = min(natural, max(word, min(WRAP_MIN, natural)))
        else:
            # a number is never wrapped; its header may wrap between words
            self.minimum = max(longest, _words(name))
        self.natural = max(longest, len(name))


def _columns(sec: Section) -> list[_Column]:
    rows = [[plain(c) for c in row] for row in sec.rows]
    return [
        _Column(
            plain(name), [r[i] for r in rows], i < sec.right_align_from or name in sec.text_columns
        )
        for i, name in enumerate(sec.columns)
    ]


def wrapping_columns(sec: Section) -> set[int]:
    """The columns of ``sec`` whose cells may wrap between words (labels, prose); numbers never."""
    return {i for i, c in enumerate(_columns(sec)) if c.wrap}


def fit_columns(sec: Section, width: int | None) -> tuple[list[int], list[int] | None]:
    """``(the indices of the columns of sec shown, their widths)`` at ``width``: every column
    at its natural width (widths None) without a width; else the fewest columns left out (in
    DROP_ORDER) for the rest to get at least their minimum, the room left shared out (number
    columns first, so that their headers need not wrap, then labels and prose)."""
    n = len(sec.columns)
    keep = list(range(n))
    if width is None:
        return keep, None
    cols = _columns(sec)

    def needed(idx: list[int]) -> int:
        return sum(cols[i].minimum for i in idx) + GAP * (len(idx) - 1)

    if sum(c.natural for c in cols) + GAP * (n - 1) <= width:
        return keep, None
    for group in droppable(sec.columns):
        if needed(keep) <= width:
            break
        keep = [i for i in keep if i not in group]
    # Last resort, for a very narrow terminal: the remaining secondary number columns, from the
    # right. The label, an estimate and an interval never go.
    for i in reversed(keep[1:]):
        if needed(keep) <= width:
            break
        name = cols[i].name
        if cols[i].wrap or "CI" in name or name.startswith("Estimate"):
            continue
        keep.remove(i)
    widths = {i: cols[i].minimum for i in keep}
    room = width - needed(keep)
    for i in sorted(keep, key=lambda i: (not cols[i].wrap, cols[i].natural - cols[i].minimum)):
        more = min(max(room, 0), cols[i].natural - widths[i])
        widths[i] += more
        room -= more
    return keep, [widths[i] for i in keep]


def to_table(
    sections: list[Section],
    ascii_only: bool = False,
    width: int | None = None,
    color: bool = False,
    dropped: Callable[[str], None] | None = None,
) -> str:
    """The sections as text tables ``width`` characters wide (natural width when None), in
    colour when ``color``. ``dropped`` is told, once per table, which columns were left out."""
    buf = io.StringIO()
    console = make_console(buf, width, color)
    style = box.ASCII2 if ascii_only else box.SIMPLE_HEAD
    for n, sec in enumerate(sections):
        keep, widths = fit_columns(sec, width)
        if dropped is not None and len(keep) < len(sec.columns):
            gone = [c for i, c in enumerate(sec.columns) if i not in keep]
            dropped(
                f"{plain(sec.title)}: column(s) {', '.join(gone)} left out to fit {width} "
                "columns (--wide shows every column; --format csv or json gives every number)"
            )
        # Text() everywhere: labels from the user's file ("Smith [a]") are not rich markup.
        # plain(): a label's escape sequences would recolour the terminal or move the cursor.
        rows = [[plain(row[i]) for i in keep] for row in sec.rows]
        table = Table(
            title=Text(plain(sec.title), style="bold" if color else ""),
            box=style,
            title_justify="left",
            show_edge=False,
            pad_edge=False,
            header_style="bold" if color else "",
        )
        specs = _columns(sec)
        for j, i in enumerate(keep):
            spec = specs[i]
            table.add_column(
                Text(spec.name),
                justify="left" if spec.left else "right",
                overflow="fold",
                no_wrap=widths is None and not spec.wrap,
                width=None if widths is None else widths[j],
            )
        for i, row in enumerate(rows):
            summary = sec.summary_from is not None and i >= sec.summary_from
            table.add_row(
                *(Text(c) for c in row),
                style="bold" if summary and color else None,
                end_section=summary is False and sec.summary_from == i + 1,
            )
        console.print(table)
        for note in sec.notes:
            console.print(Text(plain(note)))
        if n < len(sections) - 1:
            console.print()
    return buf.getvalue()
