"""Cumulative forest plot: the pooled estimate as each study is added in turn (``cumulative
--plot``).

One row per step, labelled with the study added ("+ Smith (2001)"), its k, the pooled estimate
with its CI and I²; the final pooled estimate (all studies) as the dashed reference line with its
CI as a band. Drawn from a :class:`~ivigmeta.results.Cumulative` result: nothing is refitted.
"""

from __future__ import annotations

from collections.abc import Sequence

from ivigmeta.plots import common as c
from ivigmeta.plots.layout import Column, Row, axis_limits, draw
from ivigmeta.render import formatting as f
from ivigmeta.results import Cumulative, Estimate


def cumulative_plot(cum: Cumulative, labels: Sequence[str] | None = None):
    """The cumulative forest plot; ``labels`` are optional axis captions (LEFT, RIGHT)."""
    full = cum.full
    last: Estimate | None = None
    d = f.decimals_for(full.measure)
    left = [Column("label", "Study added", "", "left"), Column("k", "k", "", "right")]
    right = [
        Column("estimate", full.measure, f"[{full.options.level * 100:g}% CI]", "right"),
        Column("i2", "I²", "", "right"),
    ]
    rows = []
    for i, step in enumerate(cum.steps):
        ma = step.analysis
        fit: Estimate | None = None
        i2 = None
        if ma is not None:
            fit = (ma.common if cum.common_model else ma.random) or ma.study_estimates[0]
            if ma.heterogeneity is not None:
                i2 = ma.common_i2 if cum.common_model else ma.heterogeneity.i2
        cells = {
            "label": ("+ " if i else "") + step.added.label(),
            "k": str(step.k),
            "estimate": f.est_ci(fit.estimate, fit.ci_low, fit.ci_high, d) if fit else f.NA,
            "i2": f.pct(i2) if i2 is not None else "",
        }
        if fit is None:
            rows.append(Row("text", text=f"{cells['label']}: {step.note or 'no fit'}"))
            continue
        last = fit
        rows.append(
            Row("point", cells, est=fit.estimate, lo=fit.ci_low, hi=fit.ci_high, gid=str(i))
        )
    model = (
        f"{full.options.common_method} common"
        if cum.common_model
        else f"{full.options.tau2_method} random"
    )
    order = f"{cum.order_by}{', descending' if cum.descending else ''}"
    rows.append(Row("blank"))
    rows.append(
        Row(
            "text",
            text=(
                f"Studies added in order of {order}; {model} effects. Dashed line and band: the "
                f"estimate and {full.options.level * 100:g}% CI with all studies"
            ),
        )
    )
    core = [v for row in rows if row.kind == "point" for v in (row.est, row.lo, row.hi)]
    header = (
        f"{c.MEASURE_NAMES[full.measure]}{' (log scale)' if c.is_ratio(full.measure) else ''}",
        f"{model}, {full.options.level * 100:g}% CI",
    )
    captions = (labels[0], labels[1]) if labels else None
    reference = last.estimate if last is not None else None
    band = (last.ci_low, last.ci_high) if last is not None else None
    with c.style():
        fig, _ = draw(
            left,
            right,
            rows,
            full.measure,
            header,
            captions,
            axis_limits(full.measure, core, core),
            reference=reference,
            reference_band=band,
        )
    return fig
