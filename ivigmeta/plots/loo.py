"""Leave-one-out plot (the paper's Fig. 1B): the pooled estimate with each study omitted in turn.

One point with its CI per omitted study, the full pooled estimate as a dashed reference line with
its CI as a shaded band, and the full estimate as a diamond at the bottom. Drawn from a
:class:`~ivigmeta.results.LeaveOneOut` result: its refits are the ones the table shows.
"""

from __future__ import annotations

from ivigmeta.plots import common as c
from ivigmeta.plots.layout import Column, Row, axis_limits, draw
from ivigmeta.render import formatting as f
from ivigmeta.results import LeaveOneOut


def loo_plot(loo: LeaveOneOut, labels=None):
    """The leave-one-out plot; ``labels`` are optional axis captions (LEFT, RIGHT)."""
    full = loo.full
    d = f.decimals_for(full.measure)
    left = [Column("label", "Omitted study", "", "left"), Column("k", "k", "", "right")]
    right = [
        Column("estimate", full.measure, f"[{full.options.level * 100:g}% CI]", "right"),
        Column("i2", "I²", "", "right"),
    ]
    rows = []
    for i, r in enumerate(loo.rows):
        a = r.analysis
        fit = a.random or a.study_estimates[0]
        het = a.heterogeneity
        rows.append(
            Row(
                "point",
                {
                    "label": r.omitted.label(),
                    "k": str(a.k),
                    "estimate": f.est_ci(fit.estimate, fit.ci_low, fit.ci_high, d),
                    "i2": f.pct(het.i2) if het else f.NA,
                },
                est=fit.estimate, lo=fit.ci_low, hi=fit.ci_high, gid=str(i),
            )
        )
    rows.append(Row("blank"))
    r = full.random
    rows.append(
        Row(
            "diamond",
            {
                "label": "None omitted (all studies)",
                "k": str(full.k),
                "estimate": f.est_ci(r.estimate, r.ci_low, r.ci_high, d),
                "i2": f.pct(full.heterogeneity.i2),
            },
            bold=True, est=r.estimate, lo=r.ci_low, hi=r.ci_high, gid="diamond-random",
        )
    )
    lo, hi = loo.smallest, loo.largest
    lo_fit = lo.analysis.random or lo.analysis.study_estimates[0]
    hi_fit = hi.analysis.random or hi.analysis.study_estimates[0]
    rows.append(Row("text", text=(
        f"Pooled {full.measure} ranged from {f.num(lo_fit.estimate, d)} (without {lo.omitted.study}) "
        f"to {f.num(hi_fit.estimate, d)} (without {hi.omitted.study})"), gid="range"))
    rows.append(Row("text", text=(
        f"Random effects ({full.options.tau2_method}); dashed line and band: the estimate and "
        f"{full.options.level * 100:g}% CI with all studies")))
    core = [v for row in rows if row.kind in ("point", "diamond") for v in (row.est, row.lo, row.hi)]
    header = (f"{c.MEASURE_NAMES[full.measure]}{' (log scale)' if c.is_ratio(full.measure) else ''}",
              f"{full.options.tau2_method} random, {full.options.level * 100:g}% CI")
    with c.style():
        fig, _ = draw(left, right, rows, full.measure, header, tuple(labels) if labels else None,
                      axis_limits(full.measure, core, core),
                      reference=r.estimate, reference_band=(r.ci_low, r.ci_high))
    return fig
