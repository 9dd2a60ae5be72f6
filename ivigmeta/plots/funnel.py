"""Funnel plot (the paper's Fig. S3): standard error (inverted) against the effect.

Pseudo 95% confidence limits around the pooled (random-effects) estimate; ``contour=True`` adds
the significance contours of Peters et al. (2008) around the line of no effect (p = 0.10, 0.05 and
0.01 regions). Studies imputed by trim-and-fill are drawn hollow when the bias analysis holds a
``trimfill`` result (``filled_yi``, ``filled_vi``, analysis scale). Drawn from a
:class:`~ivigmeta.results.BiasAnalysis`; nothing is refitted.
"""

from __future__ import annotations

import math
from typing import Any

from matplotlib.artist import Artist
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Polygon
from matplotlib.ticker import FixedLocator, NullLocator

from ivigmeta.core.distributions import z_crit
from ivigmeta.io.studies import distinct_labels
from ivigmeta.plots import common as c
from ivigmeta.render import formatting as f
from ivigmeta.results import BiasAnalysis, EggerTest

# Peters et al. (2008): two-sided p-value regions, from the line of no effect outwards.
CONTOURS = ((0.10, 0.05, "#8c8c8c"), (0.05, 0.01, "#bfbfbf"), (0.01, 0.0, "#e6e6e6"))


def _filled(ba: Any) -> tuple[tuple[float, ...], tuple[float, ...], Any]:
    tf = getattr(ba, "trimfill", None)
    yi = tuple(getattr(tf, "filled_yi", ()) or ())
    vi = tuple(getattr(tf, "filled_vi", ()) or ())
    return yi, vi, tf


def funnel_plot(
    ba: BiasAnalysis,
    contour: bool = False,
    level: float | None = None,
    triangle: bool = True,
    label_studies: bool = False,
):
    """Funnel plot of the studies of ``ba.full``; returns the figure. ``triangle=False`` leaves
    out the pseudo confidence limits; ``label_studies`` names each study beside its point."""
    ma = ba.full
    measure = ma.measure
    ratio = c.is_ratio(measure)
    back = math.exp if ratio else (lambda v: v)
    yi, vi = ma.effects.yi, ma.effects.vi
    se = [math.sqrt(v) for v in vi]
    fyi, fvi, tf = _filled(ba)
    fse = [math.sqrt(v) for v in fvi]
    pooled = ma.random or ma.study_estimates[0]
    centre = pooled.theta
    level = level or ma.options.level
    z = z_crit(level)
    se_max = max(se + fse) * 1.08 if (se or fse) else 1.0
    all_t = list(yi) + list(fyi) + [centre - z * se_max, centre + z * se_max]
    if contour:
        all_t += [-z_crit(0.99) * se_max, z_crit(0.99) * se_max]
    lo_t, hi_t = min(all_t), max(all_t)
    pad = 0.04 * (hi_t - lo_t or 1.0)
    lo_t, hi_t = lo_t - pad, hi_t + pad

    with c.style():
        # Inches: the plot, then the x label, then the legend below it (never over a study).
        plot_h, below, top = 3.5, 1.35, 0.35
        height = below + plot_h + top
        fig = c.new_figure(5.6, height)
        ax = fig.add_axes((0.13, below / height, 0.82, plot_h / height))
        if ratio:
            ax.set_xscale("log")
            ticks = c.nice_ratio_ticks(back(lo_t), back(hi_t), max_ticks=9)
            ticks = [t for t in ticks if back(lo_t) <= t <= back(hi_t)]
            ax.xaxis.set_major_locator(FixedLocator(ticks))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xticklabels([c.tick_label(t) for t in ticks])
            ax.set_xlim(back(lo_t), back(hi_t))
        else:
            ax.set_xlim(lo_t, hi_t)
        ax.set_ylim(se_max, 0.0)
        handles: list[Artist] = []
        if contour:
            null_t = 0.0
            xl_t = math.log(ax.get_xlim()[0]) if ratio else ax.get_xlim()[0]
            xr_t = math.log(ax.get_xlim()[1]) if ratio else ax.get_xlim()[1]
            for p_hi, p_lo, colour in CONTOURS:
                z_in = z_crit(1 - p_hi)
                for sign, edge in ((1, xr_t), (-1, xl_t)):
                    inner = null_t + sign * z_in * se_max
                    if p_lo > 0:
                        outer = null_t + sign * z_crit(1 - p_lo) * se_max
                        pts = [(null_t, 0.0), (inner, se_max), (outer, se_max)]
                    else:
                        pts = [(null_t, 0.0), (inner, se_max), (edge, se_max), (edge, 0.0)]
                    ax.add_patch(
                        Polygon(
                            [(back(x), y) for x, y in pts],
                            closed=True,
                            facecolor=colour,
                            edgecolor="none",
                            zorder=0,
                            gid=f"contour-{p_hi:g}-{'right' if sign > 0 else 'left'}",
                        )
                    )
                label = f"{p_lo:g} < p < {p_hi:g}" if p_lo > 0 else f"p < {p_hi:g}"
                handles.append(Patch(facecolor=colour, label=label))
            ax.add_line(
                Line2D(
                    [back(null_t)] * 2,
                    [0, se_max],
                    color=c.GREY,
                    linewidth=0.8,
                    zorder=1,
                    gid="null-line",
                )
            )
        # Pseudo confidence limits: centre ± z se, straight lines on the analysis scale.
        if triangle:
            ax.add_line(
                Line2D(
                    [back(centre - z * se_max), back(centre), back(centre + z * se_max)],
                    [se_max, 0.0, se_max],
                    color=c.INK,
                    linestyle="--",
                    linewidth=0.9,
                    zorder=2,
                    gid="funnel-limits",
                )
            )
        ax.add_line(
            Line2D(
                [back(centre)] * 2,
                [0, se_max],
                color=c.INK,
                linewidth=0.9,
                zorder=2,
                gid="pooled-line",
            )
        )
        ax.add_line(
            Line2D(
                [back(y) for y in yi],
                se,
                marker="o",
                markersize=5.5,
                linestyle="none",
                color=c.INK,
                markerfacecolor=c.INK,
                zorder=4,
                gid="studies",
            )
        )
        handles.append(Line2D([], [], marker="o", linestyle="none", color=c.INK, label="Studies"))
        if fyi:
            ax.add_line(
                Line2D(
                    [back(y) for y in fyi],
                    fse,
                    marker="o",
                    markersize=5.5,
                    linestyle="none",
                    color=c.INK,
                    markerfacecolor="white",
                    zorder=4,
                    gid="filled-studies",
                )
            )
            k0 = getattr(tf, "k0", len(fyi))
            handles.append(
                Line2D(
                    [],
                    [],
                    marker="o",
                    linestyle="none",
                    color=c.INK,
                    markerfacecolor="white",
                    label=f"Imputed by trim-and-fill (k0 = {k0})",
                )
            )
            adjusted = getattr(tf, "theta", None)
            if isinstance(adjusted, float) and math.isfinite(adjusted):
                ax.add_line(
                    Line2D(
                        [back(adjusted)] * 2,
                        [0, se_max],
                        color=c.INK,
                        linestyle=":",
                        linewidth=1.0,
                        zorder=2,
                        gid="trimfill-line",
                    )
                )
                handles.append(
                    Line2D(
                        [],
                        [],
                        color=c.INK,
                        linestyle=":",
                        label=f"Trim-and-fill estimate {f.num(back(adjusted), f.decimals_for(measure))}",
                    )
                )
        if triangle:
            handles.append(
                Line2D([], [], color=c.INK, linestyle="--", label=f"Pseudo {level * 100:g}% limits")
            )
        if label_studies:
            c.place_labels(ax, [back(y) for y in yi], se, distinct_labels(ma.effects.studies))
        ax.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.55 / plot_h * 1.0),
            bbox_transform=ax.transAxes,
            ncol=2,
            fontsize=c.FONT_SIZE - 1.5,
            frameon=False,
            columnspacing=1.5,
        )
        name = c.MEASURE_NAMES[measure]
        ax.set_xlabel(f"{name}{' (log scale)' if ratio else ''}")
        ax.set_ylabel("Standard error")
        model = "random-effects" if ma.random else "single-study"
        note = f"Line: {model} estimate {f.num(pooled.estimate, f.decimals_for(measure))}"
        if isinstance(ba.egger, EggerTest):
            note += f"; Egger's test {f.p_eq(ba.egger.p_value)}"
        ax.set_title(note, loc="left", fontsize=c.FONT_SIZE - 1, gid="funnel-note")
        for side in ("right", "top"):
            ax.spines[side].set_visible(False)
    return fig
