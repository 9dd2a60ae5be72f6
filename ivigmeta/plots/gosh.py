"""GOSH plot (Olkin, Dahabreh & Trikalinos 2012): each subset's pooled estimate against its I²,
one translucent point per subset. Drawn from a :class:`~ivigmeta.results.Gosh` result."""

from __future__ import annotations

from matplotlib.ticker import FixedLocator, NullLocator

from ivigmeta.plots import common as c
from ivigmeta.results import Gosh


def gosh_plot(res: Gosh):
    """The GOSH scatter of ``res``."""
    ratio = c.is_ratio(res.measure)
    alpha = max(0.03, min(0.6, 30.0 / max(res.n_subsets, 1) ** 0.5))
    with c.style():
        fig = c.new_figure(5.6, 4.4)
        ax = fig.add_axes((0.13, 0.12, 0.8, 0.76))
        ax.scatter(
            res.estimates,
            res.i2,
            s=6,
            color=c.INK,
            alpha=alpha,
            linewidths=0,
            gid="subsets",
            rasterized=res.n_subsets > 5000,
        )
        if ratio:
            ax.set_xscale("log")
            lo, hi = min(res.estimates), max(res.estimates)
            ticks = [t for t in c.nice_ratio_ticks(lo, hi, max_ticks=7) if lo <= t <= hi] or [
                lo,
                hi,
            ]
            ax.xaxis.set_major_locator(FixedLocator(ticks))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xticklabels([c.tick_label(t) for t in ticks])
        ax.axvline(c.null_value(res.measure), color=c.GREY, linewidth=0.6, zorder=0)
        ax.set_ylim(-2, 102)
        ax.set_xlabel(f"{c.MEASURE_NAMES[res.measure]}{' (log scale)' if ratio else ''}")
        ax.set_ylabel("I² (%)")
        how = f"{res.n_subsets} random subsets" if res.sampled else f"all {res.n_subsets} subsets"
        model = "common-effect" if res.model == "common" else "random-effects"
        ax.set_title(
            f"GOSH plot: {how} of {res.k} studies, {model} model",
            loc="left",
            fontsize=c.FONT_SIZE - 1,
            gid="gosh-title",
        )
        for side in ("right", "top"):
            ax.spines[side].set_visible(False)
    return fig
