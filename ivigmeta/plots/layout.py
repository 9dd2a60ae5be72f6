"""A forest-style figure: text columns either side of one plot column, one row per line.

The forest plot, the subgroup forest plot and the leave-one-out plot are all tables with a
plot column (metafor's ``forest()``, RevMan's layout). Widths are measured from the text they
hold, so long labels widen the figure instead of running into the plot, and the height grows
with the number of rows. Every row is one ``ROW_HEIGHT`` tall; the plot axes spans the rows, its
y data coordinate is the row index (0 at the top).

Drawn artists carry a gid naming what they are (``square-3``, ``ci-3``, ``diamond-random``,
``null-line`` ...) so tests can count them and SVG readers can find them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from matplotlib.lines import Line2D
from matplotlib.patches import Polygon, Rectangle
from matplotlib.ticker import FixedLocator, NullLocator
from matplotlib.transforms import blended_transform_factory

from ivigmeta.plots import common as c

GAP = 0.22  # inches between columns
MARGIN = 0.12  # inches around the figure
PLOT_WIDTH = 3.0  # inches of the plot column
AXIS_SPACE = 0.72  # inches below the rows: ticks, the "favours" captions and the axis title
HEADER_ROWS = 2
MAX_SQUARE = 10.0  # points: side of the square of the heaviest study
MIN_SQUARE = 3.0
DIAMOND_HALF = 0.34  # rows


@dataclass
class Column:
    """A text column: its key, header lines and alignment (``left``, ``center``, ``right``)."""

    key: str
    header: str
    subheader: str = ""
    align: str = "center"


@dataclass
class Row:
    """One line of the figure.

    kind: ``study`` (square and CI), ``diamond`` (pooled estimate), ``interval`` (prediction
    interval bar), ``point`` (a marker with its CI, as in leave-one-out), ``group`` (a bold
    heading), ``noestimate`` (a study's text cells without a glyph: "Not estimable"), ``text``
    (a note spanning the row from the left margin) or ``blank``.
    """

    kind: str
    cells: dict[str, str] = field(default_factory=dict)
    bold: bool = False
    est: float = math.nan
    lo: float = math.nan
    hi: float = math.nan
    size: float | None = None  # relative weight in (0, 1] for squares
    gid: str = ""
    text: str = ""


@dataclass
class Layout:
    """Where everything goes, in inches (computed from the text before anything is drawn)."""

    width: float
    height: float
    x: dict[str, float]  # anchor x of each text column (for its alignment)
    plot_left: float
    rows_bottom: float
    rows_height: float


def _anchor(left: float, width: float, align: str) -> float:
    return {"left": left, "center": left + width / 2, "right": left + width}[align]


def compute_layout(left: Sequence[Column], right: Sequence[Column], rows: Sequence[Row]) -> Layout:
    def width_of(col: Column) -> float:
        texts = [col.header, col.subheader] + [r.cells.get(col.key, "") for r in rows]
        bold = [r.cells.get(col.key, "") for r in rows if r.bold]
        return max(c.column_width(texts), c.column_width(bold, bold=True), 0.3)

    x: dict[str, float] = {}
    pos = MARGIN
    for col in left:
        w = width_of(col)
        x[col.key] = _anchor(pos, w, col.align)
        pos += w + GAP
    plot_left = pos
    pos += PLOT_WIDTH + GAP
    for col in right:
        w = width_of(col)
        x[col.key] = _anchor(pos, w, col.align)
        pos += w + GAP
    width = pos - GAP + MARGIN
    notes = [r.text for r in rows if r.kind == "text"]
    width = max(width, MARGIN + c.column_width(notes, size=c.FONT_SIZE - 1) + MARGIN)
    rows_height = len(rows) * c.ROW_HEIGHT
    height = MARGIN + (HEADER_ROWS + 0.4) * c.ROW_HEIGHT + rows_height + AXIS_SPACE + MARGIN
    return Layout(width, height, x, plot_left, AXIS_SPACE + MARGIN, rows_height)


def axis_limits(
    measure: str, core: Sequence[float], full: Sequence[float]
) -> tuple[float, float, list[float] | None]:
    """x limits (and ratio-scale ticks) covering the point estimates and pooled intervals.

    ``core`` must be visible (estimates, pooled intervals, the null); ``full`` (study intervals)
    is shown up to half the core range again beyond it, clipped with arrows past that.
    """
    null = c.null_value(measure)
    ratio = c.is_ratio(measure)
    tf = (lambda v: math.log(v)) if ratio else (lambda v: v)
    core_t = [tf(v) for v in core if v is not None and math.isfinite(v) and (v > 0 or not ratio)]
    core_t.append(tf(null))
    full_t = [tf(v) for v in full if v is not None and math.isfinite(v) and (v > 0 or not ratio)]
    lo_c, hi_c = min(core_t), max(core_t)
    span = hi_c - lo_c
    margin = max(0.5 * span, math.log(2.0) if ratio else 0.05 * max(abs(lo_c), abs(hi_c), 1e-9))
    lo = max(min(full_t + [lo_c]), lo_c - margin)
    hi = min(max(full_t + [hi_c]), hi_c + margin)
    if ratio:
        ticks = c.nice_ratio_ticks(math.exp(lo), math.exp(hi))
        return ticks[0], ticks[-1], ticks
    pad = 0.04 * (hi - lo or 1.0)
    return lo - pad, hi + pad, None


def draw(
    left: Sequence[Column],
    right: Sequence[Column],
    rows: Sequence[Row],
    measure: str,
    plot_header: tuple[str, str],
    captions: tuple[str, str] | None,
    xlim: tuple[float, float, list[float] | None],
    reference: float | None = None,
    reference_band: tuple[float, float] | None = None,
):
    """Draw ``rows`` into a new figure; returns the figure and its plot axes."""
    lay = compute_layout(left, right, rows)
    fig = c.new_figure(lay.width, lay.height)
    ax = fig.add_axes(
        (
            lay.plot_left / lay.width,
            lay.rows_bottom / lay.height,
            PLOT_WIDTH / lay.width,
            lay.rows_height / lay.height,
        )
    )
    n = len(rows)
    ax.set_ylim(n - 0.5, -0.5)
    ratio = c.is_ratio(measure)
    if ratio:
        ax.set_xscale("log")
    lo, hi, ticks = xlim
    ax.set_xlim(lo, hi)
    if ticks is not None:
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([c.tick_label(t) for t in ticks])
    else:
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(nbins=6))
    ax.yaxis.set_major_locator(NullLocator())
    ax.yaxis.set_minor_locator(NullLocator())
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.patch.set_alpha(0.0)
    ax.tick_params(axis="x", length=3, pad=2)

    text_tf = blended_transform_factory(fig.dpi_scale_trans, ax.transData)
    header_y = (-HEADER_ROWS - 0.3, -1.3)
    for col in [*left, *right]:
        ha = col.align
        ax.text(
            lay.x[col.key],
            header_y[0],
            col.header,
            transform=text_tf,
            ha=ha,
            va="center",
            fontweight="bold",
            clip_on=False,
            gid=f"header-{col.key}",
        )
        if col.subheader:
            ax.text(
                lay.x[col.key],
                header_y[1],
                col.subheader,
                transform=text_tf,
                ha=ha,
                va="center",
                fontweight="bold",
                clip_on=False,
            )
    plot_mid = lay.plot_left + PLOT_WIDTH / 2
    ax.text(
        plot_mid,
        header_y[0],
        plot_header[0],
        transform=text_tf,
        ha="center",
        va="center",
        fontweight="bold",
        clip_on=False,
        gid="header-plot",
    )
    ax.text(
        plot_mid,
        header_y[1],
        plot_header[1],
        transform=text_tf,
        ha="center",
        va="center",
        fontweight="bold",
        clip_on=False,
    )
    rule_y = -0.75
    fig.add_artist(
        Line2D(
            [MARGIN, lay.width - MARGIN],
            [rule_y, rule_y],
            transform=text_tf,
            color=c.INK,
            linewidth=0.6,
            gid="header-rule",
        )
    )

    for i, row in enumerate(rows):
        for col in [*left, *right]:
            val = row.cells.get(col.key, "")
            if val:
                ax.text(
                    lay.x[col.key],
                    i,
                    val,
                    transform=text_tf,
                    ha=col.align,
                    va="center",
                    fontweight="bold" if row.bold else "normal",
                    clip_on=False,
                )
        if row.kind == "text":
            ax.text(
                MARGIN,
                i,
                row.text,
                transform=text_tf,
                ha="left",
                va="center",
                fontsize=c.FONT_SIZE - 1,
                clip_on=False,
                gid=row.gid or None,
            )
        elif row.kind in ("study", "point"):
            _interval(ax, i, row, lo, hi)
        elif row.kind == "diamond":
            _diamond(ax, i, row)
        elif row.kind == "interval":
            ax.add_line(
                Line2D(
                    [row.lo, row.hi],
                    [i, i],
                    color=c.INK,
                    linewidth=1.0,
                    marker="|",
                    markersize=6,
                    gid=row.gid or "prediction-interval",
                )
            )

    last = max((i for i, r in enumerate(rows) if r.kind != "text"), default=n - 1) + 0.5
    if reference_band is not None:
        ax.add_patch(
            Rectangle(
                (reference_band[0], -0.5),
                reference_band[1] - reference_band[0],
                last + 0.5,
                facecolor=c.ACCENT,
                alpha=0.12,
                edgecolor="none",
                zorder=0,
                gid="reference-band",
            )
        )
    if reference is not None:
        ax.add_line(
            Line2D(
                [reference, reference],
                [-0.5, last],
                color=c.ACCENT,
                linestyle="--",
                linewidth=0.9,
                zorder=1,
                gid="reference-line",
            )
        )
    _null_line(ax, rows, c.null_value(measure))
    if captions:
        null = c.null_value(measure)
        ax.annotate(
            captions[0],
            xy=(null, 0),
            xycoords=("data", "axes fraction"),
            xytext=(-4, -17),
            textcoords="offset points",
            ha="right",
            va="top",
            fontsize=c.FONT_SIZE - 0.5,
            gid="caption-left",
        )
        ax.annotate(
            captions[1],
            xy=(null, 0),
            xycoords=("data", "axes fraction"),
            xytext=(4, -17),
            textcoords="offset points",
            ha="left",
            va="top",
            fontsize=c.FONT_SIZE - 0.5,
            gid="caption-right",
        )
    # An axis title under the effect axis (below the captions), as journals ask.
    ax.annotate(
        f"{c.MEASURE_NAMES.get(measure, measure)}{' (log scale)' if ratio else ''}",
        xy=(0.5, 0),
        xycoords="axes fraction",
        xytext=(0, -30 if captions else -17),
        textcoords="offset points",
        ha="center",
        va="top",
        fontsize=c.FONT_SIZE - 0.5,
        gid="axis-title",
    )
    return fig, ax


def _interval(ax, i: int, row: Row, xmin: float, xmax: float) -> None:
    """Square (or point) at the estimate with its CI; an arrow where the CI leaves the axis."""
    idx = row.gid
    lo, hi = row.lo, row.hi
    clipped_lo = lo < xmin
    clipped_hi = hi > xmax
    a, b = max(lo, xmin), min(hi, xmax)
    ax.add_line(Line2D([a, b], [i, i], color=c.INK, linewidth=1.0, gid=f"ci-{idx}", zorder=2))
    for end, flag, marker in ((xmin, clipped_lo, "<"), (xmax, clipped_hi, ">")):
        if flag:
            ax.add_line(
                Line2D(
                    [end],
                    [i],
                    marker=marker,
                    markersize=5,
                    color=c.INK,
                    linestyle="none",
                    gid=f"arrow-{idx}",
                    clip_on=False,
                    zorder=2,
                )
            )
    if row.kind == "study":
        # Area proportional to the weight (RevMan, metafor), with a floor so every study shows.
        side = max(MIN_SQUARE, MAX_SQUARE * math.sqrt(max(row.size or 0.0, 0.0)))
        ax.add_line(
            Line2D(
                [row.est],
                [i],
                marker="s",
                markersize=side,
                color=c.SQUARE,
                markeredgecolor=c.SQUARE,
                linestyle="none",
                gid=f"square-{idx}",
                zorder=3,
            )
        )
    else:
        ax.add_line(
            Line2D(
                [row.est],
                [i],
                marker="o",
                markersize=4.5,
                color=c.INK,
                linestyle="none",
                gid=f"point-{idx}",
                zorder=3,
            )
        )


def _diamond(ax, i: int, row: Row) -> None:
    h = DIAMOND_HALF
    ax.add_patch(
        Polygon(
            [(row.lo, i), (row.est, i - h), (row.hi, i), (row.est, i + h)],
            closed=True,
            facecolor=c.DIAMOND,
            edgecolor=c.DIAMOND,
            linewidth=0.8,
            gid=row.gid,
            zorder=3,
        )
    )


def _null_line(ax, rows: Sequence[Row], null: float) -> None:
    """The line of no effect through the study and pooled rows, broken where notes run across."""
    xs: list[float] = []
    ys: list[float] = []
    start = None
    for i, row in enumerate([*rows, Row("text")]):
        if row.kind != "text" and start is None:
            start = i
        elif row.kind == "text" and start is not None:
            xs += [null, null, math.nan]
            ys += [start - 0.5, i - 0.5, math.nan]
            start = None
    ax.add_line(Line2D(xs, ys, color=c.INK, linewidth=0.8, zorder=1, gid="null-line"))
