"""Radial (Galbraith) plot: standardized effect y / se against precision 1 / se.

Under the common-effect model a study lies within ±z_{α/2} of the line through the origin with
slope equal to the pooled estimate (Galbraith 1988); studies outside the band drive the
heterogeneity. Drawn from a fitted :class:`~ivigmeta.results.MetaAnalysis` (the common-effect
estimate), nothing is refitted.
"""

from __future__ import annotations

import math

from matplotlib.lines import Line2D

from ivigmeta.core.distributions import z_crit
from ivigmeta.errors import ModelError
from ivigmeta.io.studies import distinct_labels
from ivigmeta.plots import common as c
from ivigmeta.render import formatting as f
from ivigmeta.results import MetaAnalysis


def radial_plot(ma: MetaAnalysis):
    """The radial plot of ``ma`` (at least 2 studies)."""
    common, het = ma.common, ma.heterogeneity
    if common is None or het is None:
        raise ModelError(f"the radial plot needs at least 2 usable studies (have {ma.k})")
    x = [1.0 / math.sqrt(v) for v in ma.effects.vi]
    y = [yi / math.sqrt(v) for yi, v in zip(ma.effects.yi, ma.effects.vi)]
    theta = common.theta
    z = z_crit(ma.options.level)
    x_max = max(x) * 1.1
    with c.style():
        fig = c.new_figure(5.6, 4.4)
        ax = fig.add_axes((0.13, 0.12, 0.62, 0.77))
        ax.add_line(
            Line2D([0, x_max], [0, theta * x_max], color=c.INK, linewidth=1.0, gid="pooled-line")
        )
        for sign in (1, -1):
            ax.add_line(
                Line2D(
                    [0, x_max],
                    [sign * z, theta * x_max + sign * z],
                    color=c.INK,
                    linestyle="--",
                    linewidth=0.8,
                    gid=f"band-{'upper' if sign > 0 else 'lower'}",
                )
            )
        ax.axhline(0.0, color=c.GREY, linewidth=0.6, zorder=0)
        ax.add_line(
            Line2D(x, y, marker="o", linestyle="none", color=c.INK, markersize=5.5, gid="studies")
        )
        ys = y + [theta * x_max + z, theta * x_max - z, z, -z]
        pad = 0.08 * (max(ys) - min(ys))
        ax.set_xlim(0, x_max)
        ax.set_ylim(min(ys) - pad, max(ys) + pad)
        _arc_scale(ax, ma, x, y)  # (it may widen the limits: before the labels are placed)
        if ma.k <= 30:  # name the studies while that stays legible, never one over another
            c.place_labels(ax, x, y, distinct_labels(ma.effects.studies))
        ax.set_xlabel("Precision, 1 / SE")
        ax.set_ylabel("Standardized effect, y / SE")
        d = f.decimals_for(ma.measure)
        ax.set_title(
            f"Slope: common-effect {ma.measure} {f.num(common.estimate, d)}; dashed: ±{z:.2f}\n"
            f"Q = {f.num(het.q)}, df = {het.df} ({f.p_eq(het.p_value)}); I² = {f.pct(het.i2)}",
            loc="left",
            fontsize=c.FONT_SIZE - 1,
            gid="radial-note",
        )
        for side in ("right", "top"):
            ax.spines[side].set_visible(False)
    return fig


def _arc_scale(ax, ma: MetaAnalysis, x: list[float], y: list[float]) -> None:  # type: ignore[no-untyped-def]
    """Galbraith's arc scale on the right: the effect a line from the origin through a point
    stands for, read where the line meets the arc (values on the reported scale).

    The arc is a circle in the figure's own units around the origin, just beyond the farthest
    study, so every study's line from the origin crosses it; ticks mark round effect values."""
    ratio = c.is_ratio(ma.measure)
    effects = list(ma.effects.yi) + [ma.common.theta if ma.common else 0.0]
    lo, hi = min(effects), max(effects)
    if ratio:
        ticks = [math.log(t) for t in c.nice_ratio_ticks(math.exp(lo), math.exp(hi), max_ticks=7)]
    else:
        span = hi - lo or 1.0
        step = 10 ** math.floor(math.log10(span / 4))
        for m in (1, 2, 5, 10):
            if span / (m * step) <= 6:
                step *= m
                break
        first = math.ceil(lo / step) * step
        ticks = [first + i * step for i in range(int((hi - first) / step) + 1)]
    ticks = [t for t in ticks if lo - 1e-12 <= t <= hi + 1e-12] or [lo, hi]

    a, b = min(ticks + [lo]), max(ticks + [hi])
    # The arc is round on the page: the axes' limits grow until it fits inside them (each
    # growth changes the units' sizes on the page, so a few rounds).
    for _ in range(4):
        frame = _frame(ax)
        radius = 1.06 * max(math.hypot(xi * frame[3], yi * frame[4]) for xi, yi in zip(x, y))

        def on_arc(theta: float, r: float, frame: tuple = frame) -> tuple[float, float]:
            return _on_arc(frame, theta, r)

        arc = [on_arc(a + (b - a) * i / 100, radius) for i in range(101)]
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        ax_ = max(p[0] for p in arc)
        ay0, ay1 = min(p[1] for p in arc), max(p[1] for p in arc)
        if ax_ <= x1 and ay0 >= y0 and ay1 <= y1:
            break
        pad_y = 0.03 * (max(y1, ay1) - min(y0, ay0))
        ax.set_xlim(x0, max(x1, ax_ * 1.02))
        ax.set_ylim(min(y0, ay0 - pad_y), max(y1, ay1 + pad_y))
    ax.add_line(
        Line2D(
            [p[0] for p in arc],
            [p[1] for p in arc],
            color=c.INK,
            linewidth=0.8,
            clip_on=False,
            gid="arc-scale",
        )
    )
    for j, t in enumerate(ticks):
        p0, p1 = on_arc(t, radius), on_arc(t, radius + 5)
        ax.add_line(
            Line2D(
                [p0[0], p1[0]], [p0[1], p1[1]], color=c.INK, linewidth=0.8, clip_on=False,
                gid=f"arc-tick-{j}",
            )
        )  # fmt: skip
        lx, ly = on_arc(t, radius + 8)
        value = math.exp(t) if ratio else t
        ax.text(
            lx,
            ly,
            c.tick_label(value) if ratio else f"{value:g}",
            ha="left",
            va="center",
            fontsize=c.FONT_SIZE - 2,
            clip_on=False,
            gid=f"arc-label-{j}",
        )
    label_at = on_arc((a + b) / 2, radius + 42)
    ax.text(
        label_at[0],
        label_at[1],
        f"{ma.measure}{' (log scale)' if ratio else ''}",
        ha="left",
        va="center",
        rotation=-90,
        fontsize=c.FONT_SIZE - 1,
        clip_on=False,
        gid="arc-title",
    )


def _frame(ax):  # type: ignore[no-untyped-def]
    """The data -> page transform as (to_data, origin x, origin y, pixels per x, per y)."""
    to_disp = ax.transData.transform
    ox, oy = to_disp((0.0, 0.0))
    sx = to_disp((1.0, 0.0))[0] - ox
    sy = to_disp((0.0, 1.0))[1] - oy
    return ax.transData.inverted().transform, ox, oy, sx, sy


def _on_arc(frame: tuple, theta: float, r: float) -> tuple[float, float]:
    """The point ``r`` pixels from the origin on the line of slope ``theta`` (data units)."""
    to_data, ox, oy, sx, sy = frame
    dx, dy = sx, theta * sy
    n = math.hypot(dx, dy)
    px, py = to_data((ox + r * dx / n, oy + r * dy / n))
    return float(px), float(py)
