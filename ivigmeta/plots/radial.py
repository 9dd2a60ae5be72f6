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
        ax = fig.add_axes((0.13, 0.12, 0.8, 0.77))
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
