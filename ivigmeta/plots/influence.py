"""Influence figures: the Baujat plot and the panel of case-deletion diagnostics.

* Baujat plot (Baujat et al. 2002): each study's contribution to the overall heterogeneity
  (x, its squared Pearson residual) against its influence on the pooled result (y); studies in the
  upper right drive both.
* Influence panels (metafor's ``plot(influence(fit))``; Viechtbauer & Cheung 2010): studentized
  residuals, DFFITS, Cook's distance, COVRATIO, leave-one-out tau² and Q, hat values and weights,
  one point per study, with the cut-offs used to flag a study; flagged studies in red.

Drawn from the influence result of ``ivigmeta influence`` (rows with ``study``, ``baujat_x``,
``baujat_y`` and the diagnostics, and the cut-offs), with or without moderators (``--mod``: the
Baujat axes are then the squared Pearson residual and the influence on the fitted value, as
metafor's ``baujat()`` of a meta-regression); nothing is refitted.
"""

from __future__ import annotations

import math
from typing import Any

from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator

from ivigmeta.errors import ModelError
from ivigmeta.io.studies import distinct_labels
from ivigmeta.plots import common as c

FLAG = "#c0392b"

# (attribute, panel title, reference lines as a function of the influence result)
PANELS: tuple[tuple[str, str, Any], ...] = (
    ("rstudent", "Studentized residual", lambda inf: (-1.959964, 1.959964)),
    ("dffits", "DFFITS", lambda inf: (getattr(inf, "dffits_cutoff", None),)),
    ("cook_d", "Cook's distance", lambda inf: (getattr(inf, "cook_d_cutoff", None),)),
    ("cov_r", "COVRATIO", lambda inf: (1.0,)),
    ("tau2_del", "tau² without the study", lambda inf: (_full_tau2(inf),)),
    ("qe_del", "Q without the study", lambda inf: ()),
    ("hat", "Hat value", lambda inf: (getattr(inf, "hat_cutoff", None),)),
    ("weight", "Weight (%)", lambda inf: ()),
)


def _full_tau2(inf: Any) -> float | None:
    """The fitted model's tau²: a meta-regression's own, else the pooled fit's heterogeneity."""
    if hasattr(inf, "tau2"):
        return inf.tau2
    full = getattr(inf, "full", None)
    het = getattr(full, "heterogeneity", None)
    return getattr(het, "tau2", None)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _number(value: Any) -> float | None:
    """A finite number as float; ``None`` for a missing or non-finite diagnostic."""
    return float(value) if _finite(value) else None


def baujat_plot(inf: Any):
    """The Baujat plot of an influence result; studies are named next to their points."""
    rows = [r for r in inf.rows if _finite(r.baujat_x) and _finite(r.baujat_y)]
    if not rows:
        raise ModelError("the Baujat plot needs the influence of at least one study")
    x = [r.baujat_x for r in rows]
    y = [r.baujat_y for r in rows]
    with c.style():
        fig = c.new_figure(5.6, 4.4)
        ax = fig.add_axes((0.13, 0.12, 0.8, 0.8))
        ax.add_line(
            Line2D(x, y, marker="o", linestyle="none", color=c.INK, markersize=5.5, gid="studies")
        )
        x_pad = 0.08 * (max(x) - min(min(x), 0.0) or 1.0)
        y_pad = 0.08 * (max(y) - min(min(y), 0.0) or 1.0)
        ax.set_xlim(min(min(x), 0.0) - x_pad, max(x) + 3 * x_pad)
        ax.set_ylim(min(min(y), 0.0) - y_pad, max(y) + 2 * y_pad)
        c.place_labels(ax, x, y, distinct_labels([r.study for r in rows]))
        if getattr(inf, "moderators", ()):  # a meta-regression (metafor's baujat labels)
            ax.set_xlabel("Squared Pearson residual")
            ax.set_ylabel("Influence on fitted value")
        else:
            ax.set_xlabel("Contribution to overall heterogeneity")
            ax.set_ylabel("Influence on overall result")
        skipped = len(inf.rows) - len(rows)
        title = "Baujat plot"
        if skipped:
            title += f" ({skipped} stud{'y' if skipped == 1 else 'ies'} without a leave-one-out fit not shown)"
        ax.set_title(title, loc="left", fontsize=c.FONT_SIZE - 1, gid="baujat-title")
        for side in ("right", "top"):
            ax.spines[side].set_visible(False)
    return fig


def influence_plot(inf: Any):
    """Eight panels of case-deletion diagnostics, one point per study, cut-offs dashed."""
    rows = list(inf.rows)
    k = len(rows)
    if k == 0:
        raise ModelError("no studies to show")
    names = [r.study.study for r in rows]
    index = list(range(1, k + 1))
    width = max(7.0, 0.22 * k * 2 + 1.5)
    named = k <= 30
    # Inches: title, four rows of panels with their titles, and room for the rotated names.
    bottom = (c.column_width(names, size=c.FONT_SIZE - 2) if named else 0.15) + 0.25
    panel, gap, top = 1.25, 0.6, 0.6
    height = top + 4 * panel + 3 * gap + bottom
    with c.style():
        fig = c.new_figure(width, height)
        for p, (attr, title, refs) in enumerate(PANELS):
            col, row = p % 2, p // 2
            y0 = bottom + (3 - row) * (panel + gap)
            ax = fig.add_axes((0.08 + col * 0.49, y0 / height, 0.41, panel / height))
            values = [_number(getattr(r, attr, None)) for r in rows]
            points = [(i, v) for i, v in zip(index, values) if v is not None]
            ys = [v for _, v in points]
            ax.add_line(
                Line2D([i for i, _ in points], ys, color=c.GREY, linewidth=0.8, gid=f"{attr}-line")
            )
            flagged = {i for i, r in zip(index, rows) if getattr(r, "influential", False)}
            for i, v in points:
                ax.add_line(
                    Line2D(
                        [i],
                        [v],
                        marker="o",
                        linestyle="none",
                        markersize=4.5,
                        color=FLAG if i in flagged else c.INK,
                        gid=f"{attr}-{i - 1}",
                    )
                )
            cutoffs = [v for v in (_number(ref) for ref in refs(inf)) if v is not None]
            for ref in cutoffs:
                ax.axhline(ref, color=c.INK, linestyle="--", linewidth=0.7, gid=f"{attr}-cutoff")
            ax.set_xlim(0.5, k + 0.5)
            lo = min(ys + cutoffs, default=0.0)
            hi = max(ys + cutoffs, default=1.0)
            pad = 0.12 * (hi - lo or 1.0)
            ax.set_ylim(lo - pad, hi + pad)
            ax.xaxis.set_major_locator(FixedLocator(index))
            if named:
                ax.set_xticklabels(
                    names if row == 3 else [""] * k, rotation=90, fontsize=c.FONT_SIZE - 2
                )
            else:
                ax.set_xticklabels([str(i) if row == 3 and i % 5 == 0 else "" for i in index])
            ax.set_title(title, loc="left", fontsize=c.FONT_SIZE - 0.5)
            for side in ("right", "top"):
                ax.spines[side].set_visible(False)
        fig.text(
            0.08,
            1 - 0.1 / height,
            "Influence diagnostics (red: flagged as influential)",
            ha="left",
            va="top",
            fontweight="bold",
            gid="influence-title",
        )
    return fig
