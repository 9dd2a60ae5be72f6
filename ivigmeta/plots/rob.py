"""Risk-of-bias figures in the robvis style (McGuinness & Higgins 2021): a traffic-light plot of
every study's judgement per ROBINS-I domain and overall, and a summary bar chart of the share of
studies (weighted when the table has weights) at each level per domain.

Drawn from a :class:`~ivigmeta.results.RobAssessment`; the overall judgements and the summary
percentages come from the core (:mod:`ivigmeta.methods.rob`), not from here.
"""

from __future__ import annotations

from matplotlib.patches import Circle, Patch
from matplotlib.ticker import FixedLocator, NullLocator, PercentFormatter

from ivigmeta.plots import common as c
from ivigmeta.results import RobAssessment

# robvis' ROBINS-I palette and symbols.
COLOURS = {
    "low": "#02C100",
    "moderate": "#E2DF07",
    "serious": "#BF0000",
    "critical": "#820000",
    "no information": "#4EA1F7",
}
SYMBOLS = {"low": "+", "moderate": "−", "serious": "×", "critical": "!", "no information": "?"}
CELL = 0.3  # inches per traffic-light cell
BAR = 0.28  # inches per summary bar
MARGIN = 0.15


def _title(level: str) -> str:
    return level[:1].upper() + level[1:]


def rob_plot(rob: RobAssessment):
    """Traffic-light plot (top) and summary bar chart (bottom) in one figure."""
    k = len(rob.studies)
    n_dom = len(rob.domains)
    columns = [f"D{i + 1}" for i in range(n_dom)] + ["Overall"]
    bar_labels = [f"D{i + 1}: {d.label}" for i, d in enumerate(rob.summary[:-1])] + [
        rob.summary[-1].label
    ]
    with c.style():
        label_w = (
            max(
                c.column_width([s.study for s in rob.studies]),
                c.column_width(bar_labels, size=c.FONT_SIZE - 1),
            )
            + 0.15
        )
        tl_w = (len(columns) + 0.3) * CELL
        legend_w = c.column_width([_title(lv) for lv in rob.levels] + ["Judgement"]) + 0.45
        sum_w = 3.6
        width = MARGIN + label_w + max(tl_w + 0.3 + legend_w, sum_w) + MARGIN
        tl_h = k * CELL
        sum_h = len(bar_labels) * BAR
        # The judgement legend beside the traffic light is about 1.2 in tall: keep the summary
        # clear of it when there are only a few studies.
        gap = 0.7 + max(0.0, 1.2 - tl_h)
        notes = [
            f"{s.study}: overall given as {s.overall_given}, the ROBINS-I rules give {s.overall_rule}"
            for s in rob.contradictions
        ]
        top, bottom_space = 0.45, 0.62 + 0.17 * (len(notes) + (1 if notes else 0))
        height = top + tl_h + gap + sum_h + bottom_space
        fig = c.new_figure(width, height)
        x0 = MARGIN + label_w

        # Traffic light.
        ax = fig.add_axes((x0 / width, (height - top - tl_h) / height, tl_w / width, tl_h / height))
        # The overall column stands a little apart from the domains.
        xs = [float(j) for j in range(n_dom)] + [n_dom + 0.3]
        ax.set_xlim(-0.5, xs[-1] + 0.5)
        ax.set_ylim(k - 0.5, -0.5)
        for i, s in enumerate(rob.studies):
            for j, level in enumerate([*s.judgements, s.overall]):
                ax.add_patch(
                    Circle(
                        (xs[j], i),
                        0.38,
                        facecolor=COLOURS[level],
                        edgecolor="none",
                        gid=f"rob-{i}-{j}",
                    )
                )
                ax.text(
                    xs[j],
                    i,
                    SYMBOLS[level],
                    ha="center",
                    va="center",
                    color="white",
                    fontweight="bold",
                    fontsize=c.FONT_SIZE,
                )
            if s.contradicts_rules:
                ax.add_patch(
                    Circle(
                        (xs[-1], i),
                        0.47,
                        facecolor="none",
                        edgecolor=c.INK,
                        linewidth=1.0,
                        linestyle=":",
                        gid=f"contradiction-{i}",
                    )
                )
        ax.axvline(n_dom - 0.35, color=c.GREY, linewidth=0.8)
        ax.xaxis.set_major_locator(FixedLocator(xs))
        ax.set_xticklabels(columns)
        ax.xaxis.tick_top()
        ax.yaxis.set_major_locator(FixedLocator(range(k)))
        ax.set_yticklabels([s.study for s in rob.studies])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_minor_locator(NullLocator())
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_color(c.LIGHT)
        ax.set_facecolor("#f7f7f7")
        handles = [
            Patch(facecolor=COLOURS[lv], label=f"{SYMBOLS[lv]}  {_title(lv)}") for lv in rob.levels
        ]
        ax.legend(
            handles=handles,
            title="Judgement",
            loc="upper left",
            bbox_to_anchor=(1.0 + 0.3 / tl_w, 1.0),
            fontsize=c.FONT_SIZE - 1,
            title_fontsize=c.FONT_SIZE - 1,
            frameon=False,
            borderaxespad=0.0,
        )
        fig.text(
            MARGIN / width,
            1 - 0.12 / height,
            f"{rob.tool}: judgements per study",
            ha="left",
            va="top",
            fontweight="bold",
            gid="rob-title",
        )

        # Summary bars.
        axs = fig.add_axes((x0 / width, bottom_space / height, sum_w / width, sum_h / height))
        n = len(rob.summary)
        axs.set_ylim(n - 0.5, -0.5)
        axs.set_xlim(0, 100)
        for lv_i, level in enumerate(rob.levels):
            lefts = [sum(d.percent[:lv_i]) for d in rob.summary]
            widths = [d.percent[lv_i] for d in rob.summary]
            bars = axs.barh(
                range(n),
                widths,
                left=lefts,
                height=0.7,
                color=COLOURS[level],
                edgecolor="white",
                linewidth=0.5,
                label=_title(level),
            )
            for patch in bars.patches:
                patch.set_gid(f"summary-{level.replace(' ', '-')}")
        axs.yaxis.set_major_locator(FixedLocator(range(n)))
        axs.set_yticklabels(bar_labels, fontsize=c.FONT_SIZE - 1)
        axs.xaxis.set_major_locator(FixedLocator([0, 25, 50, 75, 100]))
        axs.xaxis.set_major_formatter(PercentFormatter(100, decimals=0))
        axs.tick_params(axis="y", length=0)
        for side in ("top", "right"):
            axs.spines[side].set_visible(False)
        how = (
            f"weighted by {rob.weight_source}"
            if rob.weighted
            else "unweighted: each study counts once"
        )
        fig.text(
            MARGIN / width,
            (bottom_space + sum_h + 0.15) / height,
            f"Share of studies at each level ({how})",
            ha="left",
            va="bottom",
            fontweight="bold",
            gid="summary-title",
        )
        axs.legend(
            loc="upper center",
            bbox_to_anchor=(0.5, -0.3 / sum_h),
            ncol=len(rob.levels),
            fontsize=c.FONT_SIZE - 1.5,
            frameon=False,
            handlelength=1.0,
            columnspacing=0.9,
        )
        if notes:
            lines = [
                "Dotted ring: the overall judgement given contradicts the ROBINS-I rules"
            ] + notes
            fig.text(
                MARGIN / width,
                0.1 / height,
                "\n".join(lines),
                ha="left",
                va="bottom",
                fontsize=c.FONT_SIZE - 1.5,
                linespacing=1.35,
                gid="rob-notes",
            )
    return fig
