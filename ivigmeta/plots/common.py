"""Styling, text measurement and atomic, deterministic saving shared by every figure.

Imported only when a figure is drawn. Every figure is a ``Figure`` on an explicit Agg canvas,
never created through pyplot: no GUI backend, no global figure registry, and no change to the
backend of a session (a notebook) that imports ivigmeta.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties

from ivigmeta.core.measures import MEASURE_TITLES
from ivigmeta.errors import DataError
from ivigmeta.plots.paths import check_target

DEFAULT_DPI = 300
FONT_SIZE = 9.0
ROW_HEIGHT = 0.2  # inches per row of a forest-style figure
INK = "#000000"
GREY = "#7f7f7f"
LIGHT = "#d9d9d9"
SQUARE = "#4d4d4d"
DIAMOND = "#1f1f1f"
ACCENT = "#2b6ca3"

STYLE: dict[str, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": FONT_SIZE,
    "axes.linewidth": 0.8,
    "xtick.labelsize": FONT_SIZE - 1,
    "ytick.labelsize": FONT_SIZE - 1,
    "xtick.major.width": 0.8,
    "ytick.major.width": 0.8,
    "lines.linewidth": 1.0,
    # Deterministic output: fixed ids in SVG, text as paths (no font needed to view it).
    "svg.hashsalt": "ivigmeta",
    "svg.fonttype": "path",
    "pdf.fonttype": 3,  # subsetting TrueType (42) with fontTools is several times slower
    "path.simplify": False,
}

METADATA = {
    "png": {"Software": "ivigmeta"},
    "svg": {"Date": None, "Creator": "ivigmeta"},
    "pdf": {"CreationDate": None, "ModDate": None, "Producer": "ivigmeta", "Creator": "ivigmeta"},
}

_RENDERER = RendererAgg(8, 8, 72)  # 72 dpi: widths come out in points


@contextlib.contextmanager
def style() -> Iterator[None]:
    """The rcParams every figure is drawn and saved with."""
    with matplotlib.rc_context(STYLE):  # type: ignore[arg-type]
        yield


@functools.lru_cache(maxsize=4096)
def text_width(text: str, size: float = FONT_SIZE, bold: bool = False) -> float:
    """Width in inches of ``text`` set in the figure font (the widest line for multi-line text).

    Measured as Agg renders it at 72 dpi (the widest of the usual resolutions: hinting makes
    rendered text slightly narrower at higher dpi), plus 4%, so columns never overlap.
    """
    prop = FontProperties(
        family=STYLE["font.family"], size=size, weight="bold" if bold else "normal"
    )
    widest = 0.0
    for line in str(text).split("\n"):
        if line:
            width, _, _ = _RENDERER.get_text_width_height_descent(line, prop, ismath=False)
            widest = max(widest, width)
    return 1.04 * widest / 72.0


def column_width(texts: Sequence[str], size: float = FONT_SIZE, bold: bool = False) -> float:
    return max((text_width(t, size, bold) for t in texts), default=0.0)


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` x ``height`` inches (white background) on an Agg canvas."""
    fig = Figure(figsize=(width, height), facecolor="white")
    FigureCanvasAgg(fig)
    return fig


def is_ratio(measure: str) -> bool:
    from ivigmeta.core.measures import LOG_SCALE

    return measure in LOG_SCALE


def null_value(measure: str) -> float:
    return 1.0 if is_ratio(measure) else 0.0


MEASURE_NAMES = MEASURE_TITLES


_MANTISSAS = ((1, 2, 5), (1, 1.5, 2, 3, 5, 7), (1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8))


def nice_ratio_ticks(low: float, high: float, max_ticks: int = 7) -> list[float]:
    """Ticks on the ratio scale covering [low, high]: a 1-2-5 series (finer for a narrow range),
    or powers of ten when the range is wide.

    The first tick is at or below ``low`` and the last at or above ``high``, so the axis limits
    can be set to the outer ticks (as RevMan does).
    """
    eps = 1e-9
    candidates = []
    for mantissas in _MANTISSAS:
        series = [m * 10.0**e for e in range(-8, 9) for m in mantissas]
        lo = max([t for t in series if t <= low * (1 + eps)], default=series[0])
        hi = min([t for t in series if t >= high * (1 - eps)], default=series[-1])
        ticks = [t for t in series if lo * (1 - eps) <= t <= hi * (1 + eps)]
        if len(ticks) <= max_ticks:
            candidates.append(ticks)
    for ticks in candidates:
        if len(ticks) >= 4:
            return ticks
    if candidates:
        return candidates[-1]
    e_lo = math.floor(math.log10(low) + eps)
    e_hi = math.ceil(math.log10(high) - eps)
    step = max(1, math.ceil((e_hi - e_lo) / (max_ticks - 1)))
    e_lo = step * math.floor(e_lo / step)  # keep 1 (10^0) among the ticks
    exps = list(range(e_lo, e_hi + 1, step))
    if exps[-1] < e_hi:
        exps.append(exps[-1] + step)
    return [10.0**e for e in exps]


def tick_label(value: float) -> str:
    """A ratio-scale tick label: 0.05, 0.5, 1, 2, 10, 100 (no trailing zeros)."""
    if value < 1e-3 or value >= 1e5:
        return f"{value:g}"
    if value >= 1:
        return f"{value:g}"
    return f"{value:.6f}".rstrip("0").rstrip(".")


def save_figure(fig: Figure, path: str, dpi: float | None = None) -> str:
    """Write ``fig`` to ``path`` atomically (a temporary file in the same directory, renamed).

    The format comes from the extension (``.png``, ``.svg``, ``.pdf``); PNG is rendered at
    ``dpi`` (default 300). Metadata that changes between runs (dates) is left out, so the same
    figure gives the same bytes. Any failure leaves no file behind and raises a :class:`DataError`.
    """
    fmt = check_target(path)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = ""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".ivigmeta-", suffix=f".{fmt}.part", dir=directory)
        os.close(fd)
        with style():
            fig.savefig(
                tmp,
                format=fmt,
                dpi=dpi or DEFAULT_DPI,
                metadata=METADATA[fmt],
                facecolor=fig.get_facecolor(),
            )
        _default_permissions(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise DataError(f"{path}: cannot write the figure ({exc.strerror or exc})") from None
    except BaseException:
        _remove(tmp)
        raise
    return path


def _remove(path: str) -> None:
    if not path:
        return
    with contextlib.suppress(OSError):
        os.unlink(path)


def _default_permissions(path: str) -> None:
    """mkstemp creates files readable by the owner only; give the figure the usual mode."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


#: Where a point's label may go, in points from the point: right, right-below, left, left-below,
#: above, below, then further out.
_LABEL_SLOTS = ((4, 3), (4, -10), (-4, 3), (-4, -10), (0, 7), (0, -14), (10, 12), (10, -19),
                (-10, 12), (-10, -19), (18, 3), (-18, 3))  # fmt: skip


def place_labels(
    ax: Any,
    xs: Sequence[float],
    ys: Sequence[float],
    texts: Sequence[str],
    size: float = FONT_SIZE - 2,
    color: str = GREY,
    gid: str = "labels",
    radii: Sequence[float] | None = None,
) -> list[Any]:
    """Label the points (data coordinates) without one label over another or over a point.

    Each label takes the first of a few slots around its point (right, below right, left ...)
    whose box overlaps no label placed before and no other point; when none is free it takes
    the least crowded slot. Call after the axis limits are final. Returns the text artists.
    """
    fig = ax.figure
    scale = fig.dpi / 72.0  # points -> pixels
    pts = ax.transData.transform(list(zip(xs, ys)))
    rad = [r * scale for r in radii] if radii is not None else [4.0 * scale] * len(texts)
    boxes: list[tuple[float, float, float, float]] = []
    artists = []
    order = sorted(range(len(texts)), key=lambda i: (-pts[i][1], pts[i][0]))
    frame = ax.get_window_extent()
    inside = (frame.x0, frame.y0, frame.x1, frame.y1)
    page = (fig.bbox.width, fig.bbox.height)
    for i in order:
        w = text_width(texts[i], size) * 72.0 * scale
        h = size * 1.15 * scale
        px, py = pts[i]
        best, best_hits = None, None
        r_pt = rad[i] / scale - 4.0  # beyond a marker larger than the default one
        for dx0, dy0 in _LABEL_SLOTS:
            dx = dx0 + (math.copysign(r_pt, dx0) if dx0 else 0.0)
            dy = dy0 + (math.copysign(r_pt, dy0) if dy0 else 0.0)
            x0 = px + dx * scale - (w if dx < 0 else (w / 2 if dx == 0 else 0))
            y0 = py + dy * scale
            box = (x0, y0, x0 + w, y0 + h)
            hits = sum(_overlap(box, b) for b in boxes) + sum(
                _overlap(box, (qx - rad[j], qy - rad[j], qx + rad[j], qy + rad[j]))
                for j, (qx, qy) in enumerate(pts)
                if j != i
            )
            if not (
                box[0] >= inside[0]
                and box[2] <= inside[2]
                and box[1] >= inside[1]
                and box[3] <= inside[3]
            ):
                hits += 1  # a label across the axes' frame or outside it
            if box[0] < 0 or box[1] < 0 or box[2] > page[0] or box[3] > page[1]:
                hits += 1000  # cut off by the edge of the figure: only when nothing else fits
            if best_hits is None or hits < best_hits:
                best, best_hits = (dx, dy, box), hits
            if hits == 0:
                break
        assert best is not None
        dx, dy, box = best
        boxes.append(box)
        ha = "right" if dx < 0 else ("center" if dx == 0 else "left")
        artists.append(
            ax.annotate(
                texts[i],
                (xs[i], ys[i]),
                xytext=(dx, dy),
                textcoords="offset points",
                ha=ha,
                va="bottom",
                fontsize=size,
                color=color,
                gid=f"{gid}-{i}",
            )
        )
    return artists


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
