"""Bubble plot of a meta-regression (metafor's ``regplot``): each study's effect against a
continuous moderator, circle areas proportional to its weight 1 / (v + tau²), with the fitted
regression line, its confidence band (shaded) and prediction interval (dashed, random-effects
models). Ratio measures are drawn on a log axis labelled on the ratio scale. Drawn from a
:class:`~ivigmeta.results.Bubble`; nothing is refitted.
"""

from __future__ import annotations

import math

from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, NullLocator

from ivigmeta.plots import common as c
from ivigmeta.results import Bubble


def bubble_plot(b: Bubble):  # type: ignore[no-untyped-def]
    """The bubble plot of ``b``."""
    ratio = c.is_ratio(b.measure)

    def back(values):  # type: ignore[no-untyped-def]
        return [math.exp(v) for v in values] if ratio else list(values)

    top = max(b.weights) or 1.0
    sizes = [20 + 500 * w / top for w in b.weights]
    show_pi = b.model == "random" and any(
        hi - lo > ch - cl + 1e-12
        for lo, hi, cl, ch in zip(b.pi_low, b.pi_high, b.ci_low, b.ci_high)
    )
    with c.style():
        fig = c.new_figure(6.0, 4.6)
        ax = fig.add_axes((0.13, 0.2, 0.82, 0.68))
        ax.fill_between(
            b.grid, back(b.ci_low), back(b.ci_high), color=c.LIGHT, linewidth=0, gid="ci-band"
        )
        if show_pi:
            for values, gid in ((b.pi_low, "pi-low"), (b.pi_high, "pi-high")):
                ax.plot(b.grid, back(values), color=c.GREY, linestyle="--", linewidth=0.8, gid=gid)
        ax.plot(b.grid, back(b.line), color=c.ACCENT, linewidth=1.4, gid="regression-line")
        ax.axhline(c.null_value(b.measure), color=c.GREY, linewidth=0.6, zorder=0, gid="null")
        ax.scatter(
            b.x,
            back(b.y),
            s=sizes,
            facecolors="none",
            edgecolors=c.INK,
            linewidths=1.0,
            gid="studies",
            clip_on=False,
            zorder=3,
        )
        if ratio:
            ax.set_yscale("log")
            values = back([*b.y, *b.ci_low, *b.ci_high, *(b.pi_low + b.pi_high if show_pi else ())])
            lo, hi = min(values), max(values)
            ticks = c.nice_ratio_ticks(lo, hi, max_ticks=7)
            ax.set_ylim(ticks[0], ticks[-1])
            ax.yaxis.set_major_locator(FixedLocator(ticks))
            ax.yaxis.set_minor_locator(NullLocator())
            ax.set_yticklabels([c.tick_label(t) for t in ticks])
        span = max(b.grid) - min(b.grid)
        ax.set_xlim(min(b.grid) - 0.05 * span, max(b.grid) + 0.05 * span)
        if len(b.x) <= 30:
            radii = [math.sqrt(s) / 2 for s in sizes]
            c.place_labels(ax, list(b.x), back(b.y), list(b.labels), radii=radii)
        ax.set_xlabel(b.moderator)
        ax.set_ylabel(
            f"{c.MEASURE_NAMES.get(b.measure, b.measure)}{' (log scale)' if ratio else ''}"
        )
        model = (
            "common-effect (fixed-effects) meta-regression"
            if b.model == "common"
            else f"mixed-effects meta-regression ({b.tau2_method})"
        )
        held = f"; {', '.join(b.held)} at the mean" if b.held else ""
        ax.set_title(
            f"Bubble plot: {model}{held}\nCircle areas: weights",
            loc="left",
            fontsize=c.FONT_SIZE - 1,
            gid="bubble-note",
        )
        handles = [
            Line2D([], [], color=c.ACCENT, linewidth=1.4, label="Regression line"),
            Patch(facecolor=c.LIGHT, label=f"{b.level * 100:g}% confidence band"),
        ]
        if show_pi:
            handles.append(
                Line2D([], [], color=c.GREY, linestyle="--", label="Prediction interval")
            )
        ax.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.16),
            bbox_transform=ax.transAxes,
            ncol=3,
            fontsize=c.FONT_SIZE - 1.5,
            frameon=False,
        )
        for side in ("right", "top"):
            ax.spines[side].set_visible(False)
    return fig
