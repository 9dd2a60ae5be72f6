"""L'Abbé plot (L'Abbé et al. 1987): each study's event risk in the treatment arm against the
control arm, with the line of no effect (y = x) and the pooled effect as a curve.

Circles have areas proportional to the studies' random-effects weights; the pooled curve is the
random-effects estimate applied to every control risk: y = RR x, y = OR x / (1 - x + OR x), or
y = x + RD. Risks are the raw counts (a / n1, c / n2). Drawn from a fitted
:class:`~ivigmeta.results.MetaAnalysis` of 2x2 counts; nothing is refitted.
"""

from __future__ import annotations

import math

from matplotlib.lines import Line2D

from ivigmeta.errors import ModelError
from ivigmeta.io.studies import distinct_labels
from ivigmeta.plots import common as c
from ivigmeta.render import formatting as f
from ivigmeta.results import MetaAnalysis


def labbe_plot(ma: MetaAnalysis, labels=None):  # type: ignore[no-untyped-def]
    """The L'Abbé plot of ``ma`` (2x2 counts; RR, OR or RD)."""
    if ma.measure not in ("RR", "OR", "RD"):
        raise ModelError(
            f"the L'Abbé plot is for RR, OR and RD analyses of 2x2 counts, not {ma.measure}"
        )
    fit = ma.random or ma.common
    weights_all = list(fit.weights) if fit is not None and fit.weights else [1.0] * ma.k
    rows = [(s, w) for s, w in zip(ma.effects.studies, weights_all) if s.has_counts]
    if not rows:
        raise ModelError("the L'Abbé plot needs studies with event counts")
    x = [s.counts[2] / s.counts[3] for s, _ in rows]
    y = [s.counts[0] / s.counts[1] for s, _ in rows]
    weights = [w if w is not None and math.isfinite(w) else 0.0 for _, w in rows]
    top = max(weights) or 1.0
    sizes = [30 + 400 * w / top for w in weights]
    pooled = ma.random or ma.common or ma.study_estimates[0]
    est = pooled.estimate

    def curve(p: float) -> float:
        if ma.measure == "RR":
            return est * p
        if ma.measure == "OR":
            return est * p / (1 - p + est * p)
        return p + est

    with c.style():
        fig = c.new_figure(5.0, 5.0)
        ax = fig.add_axes((0.14, 0.12, 0.8, 0.8))
        ax.plot([0, 1], [0, 1], color=c.GREY, linewidth=0.8, linestyle="--", gid="no-effect")
        grid = [i / 200 for i in range(201)]
        pts = [(p, curve(p)) for p in grid if 0.0 <= curve(p) <= 1.0]
        ax.add_line(
            Line2D(
                [p for p, _ in pts],
                [q for _, q in pts],
                color=c.ACCENT,
                linewidth=1.2,
                gid="pooled-curve",
            )
        )
        ax.scatter(
            x,
            y,
            s=sizes,
            facecolors="none",
            edgecolors=c.INK,
            linewidths=1.0,
            gid="studies",
            clip_on=False,
        )
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_aspect("equal")
        if len(rows) <= 30:
            radii = [math.sqrt(s) / 2 for s in sizes]
            c.place_labels(ax, x, y, distinct_labels([s for s, _ in rows]), radii=radii)
        treat, control = ("Treatment", "Control") if not labels else (labels[1], labels[0])
        ax.set_xlabel(f"Event risk, {control.lower() if not labels else control}")
        ax.set_ylabel(f"Event risk, {treat.lower() if not labels else treat}")
        d = f.decimals_for(ma.measure)
        model = (
            f"random effects ({ma.options.tau2_method})"
            if ma.random is not None
            else "common effect"
        )
        ax.set_title(
            f"Dashed: no effect; solid: pooled {ma.measure} {f.num(est, d)}, {model}\n"
            "Circle areas: weights",
            loc="left",
            fontsize=c.FONT_SIZE - 1,
            gid="labbe-note",
        )
        for side in ("right", "top"):
            ax.spines[side].set_visible(False)
    return fig
