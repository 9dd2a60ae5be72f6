"""Leave-one-out plot: the pooled estimate with each study omitted in turn.

One point with its CI per omitted study, the full pooled estimate as a dashed reference line with
its CI as a shaded band, and the full estimate as a diamond at the bottom. Drawn from a
:class:`~ivigmeta.results.LeaveOneOut` result: its refits are the ones the table shows.
"""

from __future__ import annotations

from collections.abc import Sequence

from ivigmeta.errors import ModelError
from ivigmeta.plots import common as c
from ivigmeta.plots.layout import Column, Row, axis_limits, draw
from ivigmeta.render import formatting as f
from ivigmeta.results import Estimate, LeaveOneOut, LeaveOneOutRow


def _pooled(row: LeaveOneOutRow) -> Estimate:
    """The refit without one study (the remaining study itself when only one is left)."""
    return row.shown


def loo_plot(loo: LeaveOneOut, labels: Sequence[str] | None = None):
    """The leave-one-out plot; ``labels`` are optional axis captions (LEFT, RIGHT)."""
    full = loo.full
    full_fit: Estimate | None = full.common if loo.common_model else full.random
    if full_fit is None or full.heterogeneity is None:
        raise ModelError(f"leave-one-out needs at least 2 studies (have {full.k})")
    full_i2 = full.common_i2 if loo.common_model else full.heterogeneity.i2
    d = f.decimals_for(full.measure)
    left = [Column("label", "Omitted study", "", "left"), Column("k", "k", "", "right")]
    right = [
        Column("estimate", full.measure, f"[{full.options.level * 100:g}% CI]", "right"),
        Column("i2", "I²", "", "right"),
    ]
    rows = []
    for i, omitted in enumerate(loo.rows):
        fit = _pooled(omitted)
        het = omitted.analysis.heterogeneity
        i2 = omitted.analysis.common_i2 if loo.common_model else (het.i2 if het else None)
        cells = {
            "label": omitted.omitted.label(),
            "k": str(omitted.analysis.k),
            "estimate": f.est_ci(fit.estimate, fit.ci_low, fit.ci_high, d),
            "i2": f.pct(i2) if i2 is not None else f.NA,
        }
        rows.append(
            Row("point", cells, est=fit.estimate, lo=fit.ci_low, hi=fit.ci_high, gid=str(i))
        )
    rows.append(Row("blank"))
    cells = {
        "label": "None omitted (all studies)",
        "k": str(full.k),
        "estimate": f.est_ci(full_fit.estimate, full_fit.ci_low, full_fit.ci_high, d),
        "i2": f.pct(full_i2),
    }
    rows.append(
        Row(
            "diamond",
            cells,
            bold=True,
            est=full_fit.estimate,
            lo=full_fit.ci_low,
            hi=full_fit.ci_high,
            gid="diamond-random",
        )
    )
    low, high = loo.smallest, loo.largest
    rows.append(
        Row(
            "text",
            gid="range",
            text=(
                f"Pooled {full.measure} ranged from {f.num(_pooled(low).estimate, d)} (without "
                f"{low.omitted.study}) to {f.num(_pooled(high).estimate, d)} (without {high.omitted.study})"
            ),
        )
    )
    rows.append(
        Row(
            "text",
            text=(
                f"Random effects ({full.options.tau2_method}); dashed line and band: the estimate and "
                f"{full.options.level * 100:g}% CI with all studies"
            ),
        )
    )
    core = [
        v for row in rows if row.kind in ("point", "diamond") for v in (row.est, row.lo, row.hi)
    ]
    header = (
        f"{c.MEASURE_NAMES[full.measure]}{' (log scale)' if c.is_ratio(full.measure) else ''}",
        (
            f"{full.options.common_method} common"
            if loo.common_model
            else f"{full.options.tau2_method} random"
        )
        + f", {full.options.level * 100:g}% CI",
    )
    captions = (labels[0], labels[1]) if labels else None
    with c.style():
        fig, _ = draw(
            left,
            right,
            rows,
            full.measure,
            header,
            captions,
            axis_limits(full.measure, core, core),
            reference=full_fit.estimate,
            reference_band=(full_fit.ci_low, full_fit.ci_high),
        )
    return fig
