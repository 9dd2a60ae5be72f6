"""Forest plots: one row per study, diamonds for the pooled estimates.

Layout as in RevMan 5 and metafor's ``forest()``: study label, events/total per arm, the plot
column (squares sized by weight, horizontal CIs with arrows when clipped, line of no effect,
log axis for ratio measures), the effect [95% CI] and the weights as text; under the studies the
pooled diamond(s), the prediction interval, the heterogeneity line and the test for the overall
effect. Drawn from a fitted :class:`~ivigmeta.results.MetaAnalysis`; nothing is refitted.
"""

from __future__ import annotations

from collections.abc import Sequence

from ivigmeta.errors import ModelError
from ivigmeta.plots import common as c
from ivigmeta.plots.layout import Column, Row, axis_limits, draw
from ivigmeta.render import formatting as f
from ivigmeta.render.views import NOT_REPORTED, marked_label, source_notes, subgroup_test_text
from ivigmeta.results import CommonFit, MetaAnalysis, RandomFit, SubgroupAnalysis, SubgroupResult

MODELS = ("random", "common", "both")
DEFAULT_LABELS = ("Favours control", "Favours treatment")
MODEL_NAMES = {"common": "Common effect model", "random": "Random effects model"}
#: columns that name the arms (ivigmeta's, and meta's ``label.e``/``label.c``): (treated, control)
ARM_COLUMNS = (("treat_label", "control_label"), ("label.e", "label.c"))


def arm_captions(ma: MetaAnalysis) -> tuple[str, str] | None:
    """ "Favours CONTROL", "Favours TREATED" when the table names its arms (one value per arm
    column, the same in every row); None otherwise."""
    studies = ma.effects.studies
    for treat_col, control_col in ARM_COLUMNS:
        names = []
        for col in (treat_col, control_col):
            values = {
                v.strip()
                for s in studies
                for k, v in s.fields.items()
                if k.strip().lower() == col and v.strip()
            }
            if len(values) != 1:
                break
            names.append(values.pop())
        if len(names) == 2:
            return f"Favours {names[1]}", f"Favours {names[0]}"
    return None


#: measures of one group's data (no side of the axis favours anything)
ONE_GROUP_MEASURES = (
    *("PR", "PLO", "PAS", "PFT", "PLN", "ZCOR", "COR", "UCOR", "MN", "MNLN"),
    *("MC", "SMCC", "SMCR", "SMCRH", "ROMC", "IR", "IRLN", "IRS", "IRFT", "CVLN", "SDLN"),
    *("PCOR", "ZPCOR", "SPCOR"),
)  # fmt: skip


def _captions(
    labels: Sequence[str] | None, measure: str = "", ma: MetaAnalysis | None = None
) -> tuple[str, str]:
    if labels is None:
        if measure in ONE_GROUP_MEASURES:
            return "", ""  # one group: no side favours anything
        found = arm_captions(ma) if ma is not None else None
        return found or DEFAULT_LABELS
    if len(labels) != 2:
        raise ModelError(f"the forest plot takes two captions (left, right), not {len(labels)}")
    return labels[0], labels[1]


def _models(model: str) -> tuple[str, ...]:
    key = model.lower()
    if key not in MODELS:
        raise ModelError(f"unknown model '{model}' (choose one of {', '.join(MODELS)})")
    return ("common", "random") if key == "both" else (key,)


def _columns(ma: MetaAnalysis, models: Sequence[str]) -> tuple[list[Column], list[Column]]:
    left = [Column("label", "Study", "", "left")]
    kinds = {s.outcome_kind for s in ma.effects.studies}
    if kinds == {"continuous"}:
        left += [
            Column("treat", "Intervention", "Mean (SD), n", "center"),
            Column("control", "Control", "Mean (SD), n", "center"),
        ]
    elif kinds == {"incidence"}:
        left += [
            Column("treat", "Intervention", "Events/Person-time", "center"),
            Column("control", "Control", "Events/Person-time", "center"),
        ]
    elif kinds == {"proportion"}:
        left += [Column("treat", "Events/Total", "", "center")]
    elif kinds == {"correlation"}:
        left += [Column("treat", "r, n", "", "center")]
    elif kinds == {"mean"}:
        left += [Column("treat", "Mean (SD), n", "", "center")]
    elif kinds == {"rate"}:
        left += [Column("treat", "Events/Person-time", "", "center")]
    elif kinds == {"partial"}:
        left += [Column("treat", "t, n, predictors", "", "center")]
    elif kinds == {"partial_r2"}:
        left += [Column("treat", "t, n, predictors, R²", "", "center")]
    elif kinds == {"change"}:
        left += [
            Column("treat", "Post-test", "Mean (SD)", "center"),
            Column("control", "Pre-test", "Mean (SD), n, r", "center"),
        ]
    # Rows may give an effect instead of counts; a table of effects alone has no events columns.
    elif any(s.has_counts for s in ma.effects.studies):
        left += [
            Column("treat", "Intervention", "Events/Total", "center"),
            Column("control", "Control", "Events/Total", "center"),
        ]
    right = [Column("estimate", ma.measure, f"[{ma.options.level * 100:g}% CI]", "right")]
    if ma.pooled:
        if len(models) == 1:
            right.append(Column(f"weight_{models[0]}", "Weight", f"({models[0]})", "right"))
        else:
            right += [Column(f"weight_{m}", "Weight", f"({m})", "right") for m in models]
    return left, right


def _arm_text(s, arm: str) -> str:
    """One arm's data as the forest plot shows it (a proportion's events/total under 'treat')."""
    o = s.outcome
    if o is not None:
        if s.outcome_kind == "continuous":
            return (
                f"{f.plain(o[arm + '_mean'])} ({f.plain(o[arm + '_sd'])}), {f.plain(o[arm + '_n'])}"
            )
        if s.outcome_kind == "incidence":
            return f"{f.plain(o[arm + '_events'])}/{f.plain(o[arm + '_time'])}"
        if s.outcome_kind == "change":
            if arm == "treat":
                return f"{f.plain(o['mean_post'])} ({f.plain(o['sd_post'])})"
            pre = f"{f.plain(o['mean_pre'])} ({f.plain(o['sd_pre'])})"
            return f"{pre}, {f.plain(o['n'])}, {f.plain(o['r'])}"
        if arm != "treat":
            return ""
        if s.outcome_kind == "correlation":
            return f"{f.plain(o['cor'])}, {f.plain(o['n'])}"
        if s.outcome_kind == "rate":
            return f"{f.plain(o['events'])}/{f.plain(o['time'])}"
        if s.outcome_kind in ("partial", "partial_r2"):
            text = f"{f.plain(o['t'])}, {f.plain(o['n'])}, {f.plain(o['predictors'])}"
            return text + (f", {f.plain(o['r2'])}" if s.outcome_kind == "partial_r2" else "")
        if s.outcome_kind == "mean":
            return f"{f.plain(o['mean'])} ({f.plain(o['sd'])}), {f.plain(o['n'])}"
        return f"{f.plain(o['events'])}/{f.plain(o['total'])}"
    if not s.has_counts:
        return NOT_REPORTED
    return f"{getattr(s, arm + '_events')}/{getattr(s, arm + '_total')}"


def _heterogeneity_text(ma: MetaAnalysis) -> str:
    het = ma.heterogeneity
    if het is None or het.q is None:
        return "Heterogeneity: not applicable (a single study)"
    if ma.glmm is not None:
        g = ma.glmm.fit
        return (
            f"Heterogeneity (GLMM {g.model}): Wald = {f.num(het.q)}, LRT = {f.num(g.qe_lrt)}, "
            f"df = {het.df} ({f.p_eq(g.qe_lrt_p)}, LRT); I² = {f.pct(het.i2)}; "
            f"τ² = {f.tau2(het.tau2)} (ML)"
        )
    return (
        f"Heterogeneity: Q = {f.num(het.q)}, df = {het.df} ({f.p_eq(het.p_value)}); "
        f"I² = {f.pct(het.i2)}; τ² = {f.tau2(het.tau2)} ({het.tau2_method})"
    )


def _fit(ma: MetaAnalysis, model: str) -> CommonFit | RandomFit:
    """The pooled estimate of ``model`` (``common`` or ``random``); only called when pooled."""
    fit = ma.random if model == "random" else ma.common
    if fit is None:
        raise ModelError("a single study: nothing is pooled")
    return fit


def _model_name(ma: MetaAnalysis, model: str) -> str:
    """The diamond's label; a GLMM names itself (the common diamond is its tau² = 0 fit)."""
    if ma.glmm is not None:
        name = ma.glmm.fit.model
        return f"GLMM {name}, random effects" if model == "random" else f"GLMM {name}, tau² = 0"
    return MODEL_NAMES[model]


def _overall_text(ma: MetaAnalysis, model: str) -> str:
    fit = _fit(ma, model)
    stat = "t" if isinstance(fit, RandomFit) and fit.ci_method in ("hk", "adhoc", "t") else "z"
    what = "random effects" if model == "random" else "common effect"
    return (
        f"Test for overall effect ({what}): {stat} = {f.num(fit.statistic)} ({f.p_eq(fit.p_value)})"
    )


#: --sort: the order of the study rows (file: as in the table)
SORTS = ("file", "estimate", "weight", "year", "label")


def study_order(ma: MetaAnalysis, sort: str, models: Sequence[str]) -> list[int]:
    """The studies' indices in ``sort`` order: estimate ascending, weight descending (the
    weights of the last model drawn), year ascending (no year last), label alphabetically;
    ties keep the table's order."""
    k = ma.effects.k
    index = list(range(k))
    if sort == "file":
        return index
    if sort == "estimate":
        return sorted(index, key=lambda i: ma.study_estimates[i].theta)
    if sort == "weight":
        w = _fit(ma, models[-1]).weights if ma.pooled else None
        return sorted(index, key=lambda i: -w[i]) if w else index
    if sort == "year":
        years = [s.year for s in ma.effects.studies]
        return sorted(index, key=lambda i: (years[i] is None, years[i] or 0))
    if sort == "label":
        return sorted(index, key=lambda i: ma.effects.studies[i].label().casefold())
    raise ModelError(f"unknown --sort '{sort}' (choose one of {', '.join(SORTS)})")


def study_rows(
    ma: MetaAnalysis,
    models: Sequence[str],
    first_index: int = 0,
    sort: str = "file",
    overall: dict[str, dict[int, float]] | None = None,
) -> list[Row]:
    """One row per study: label, events/total, square sized by weight, CI, estimate text.

    ``overall`` (model -> table row -> percent) gives each study's weight in the overall
    analysis instead of its own analysis's (a subgroup forest plot, as RevMan shows it)."""
    d = f.decimals_for(ma.measure)
    size_model = models[-1]
    weights = _fit(ma, size_model).weights if ma.pooled else None
    top = max(weights) if weights else 1.0
    if overall and overall.get(size_model):
        # squares on one scale across the subgroups: their overall weights
        shares = overall[size_model]
        weights = tuple(shares.get(st.row, 0.0) for st in ma.effects.studies)
        top = max(shares.values()) or 1.0
    rows = []
    pairs = list(zip(ma.effects.studies, ma.study_estimates))
    for i in study_order(ma, sort, models):
        s, est = pairs[i]
        cells = {
            "label": marked_label(s),  # "[from CI]" etc. when the effect was given, as the table
            "treat": _arm_text(s, "treat"),
            "control": _arm_text(s, "control"),
            "estimate": f.est_ci(est.estimate, est.ci_low, est.ci_high, d),
        }
        if overall is not None:
            for m in models:
                share = overall.get(m, {}).get(s.row)
                cells[f"weight_{m}"] = f.pct(share) if share is not None else ""
        elif ma.pooled:
            for m in models:
                w = _fit(ma, m).weights  # a GLMM gives no study weights: equal squares
                cells[f"weight_{m}"] = f.pct(w[i]) if w else ""
        rows.append(
            Row(
                "study",
                cells,
                est=est.estimate,
                lo=est.ci_low,
                hi=est.ci_high,
                size=(weights[i] / top) if weights else 1.0,
                gid=str(first_index + i),
            )
        )
    return rows


def not_estimable_rows(ma: MetaAnalysis) -> list[tuple[int, Row]]:
    """The studies whose effect is undefined (double zeros ...) as RevMan and meta show them:
    their data, and "Not estimable" where the estimate would be; no square, no weight. Each
    with its table row number."""
    rows: list[tuple[int, Row]] = []
    for j, e in enumerate(ma.effects.excluded):
        s = e.source
        if s is None or not s.has_counts:
            continue
        cells = {
            "label": s.label(),
            "treat": _arm_text(s, "treat"),
            "control": _arm_text(s, "control"),
            "estimate": "Not estimable",
        }
        rows.append((s.row, Row("noestimate", cells, gid=f"not-estimable-{j}")))
    return rows


def pooled_rows(
    ma: MetaAnalysis,
    models: Sequence[str],
    tag: str = "",
    subtotal: bool = False,
    overall: dict[str, dict[int, float]] | None = None,
) -> list[Row]:
    """Diamond row(s), prediction interval, heterogeneity and overall-effect lines.

    ``tag`` is appended to the gids (``diamond-random-yes``) when a figure holds several blocks;
    ``subtotal`` labels the diamonds as a subgroup's ("Subtotal (random)"); with ``overall``
    (see :func:`study_rows`) a subtotal's weight is its studies' share of the overall analysis.
    """
    d = f.decimals_for(ma.measure)
    suffix = f"-{tag}" if tag else ""
    rows: list[Row] = []
    if not ma.pooled:
        rows.append(Row("text", text="A single study: no pooling was done"))
        return rows
    counted = [s for s in ma.effects.studies if s.has_counts]
    # Totals only when every pooled study reports counts (as the pool table).
    totals = len(counted) == ma.k
    te = sum(s.treat_events or 0 for s in counted)
    tt = sum(s.treat_total or 0 for s in counted)
    ce = sum(s.control_events or 0 for s in counted)
    ct = sum(s.control_total or 0 for s in counted)
    for j, m in enumerate(models):
        fit = _fit(ma, m)
        cells = {
            "label": f"Subtotal ({m})" if subtotal else _model_name(ma, m),
            "estimate": f.est_ci(fit.estimate, fit.ci_low, fit.ci_high, d),
            f"weight_{m}": "100.0%",
        }
        if overall is not None:
            shares = [overall.get(m, {}).get(st.row) for st in ma.effects.studies]
            known = [w for w in shares if w is not None]
            cells[f"weight_{m}"] = f.pct(sum(known)) if known else ""
        if j == 0 and totals:
            cells["treat"] = f"{te}/{tt}"
            cells["control"] = f"{ce}/{ct}"
        rows.append(
            Row(
                "diamond",
                cells,
                bold=True,
                est=fit.estimate,
                lo=fit.ci_low,
                hi=fit.ci_high,
                gid=f"diamond-{m}{suffix}",
            )
        )
    r = ma.random
    if (
        "random" in models
        and r is not None
        and r.pi_low is not None
        and r.pi_high is not None
        and ma.k >= 3
    ):
        rows.append(
            Row(
                "interval",
                {"label": "Prediction interval", "estimate": f.ci(r.pi_low, r.pi_high, d)},
                lo=r.pi_low,
                hi=r.pi_high,
                gid=f"prediction-interval{suffix}",
            )
        )
    rows.append(Row("text", text=_heterogeneity_text(ma), gid=f"heterogeneity{suffix}"))
    for m in models:
        rows.append(Row("text", text=_overall_text(ma, m), gid=f"overall-{m}{suffix}"))
    return rows


def _limits(
    ma_list: Sequence[MetaAnalysis], rows: Sequence[Row], xlim: Sequence[float] | None = None
):
    """The x axis: covering the estimates and pooled intervals, or ``xlim`` (LOW, HIGH on the
    reported scale; intervals beyond it end in arrows)."""
    measure = ma_list[0].measure
    if xlim is not None:
        lo, hi = (float(x) for x in xlim)
        if not lo < hi or (c.is_ratio(measure) and not lo > 0):
            need = "0 < LOW < HIGH for a ratio" if c.is_ratio(measure) else "LOW < HIGH"
            raise ModelError(f"--xlim {lo:g},{hi:g}: expected {need}")
        _, _, ticks = axis_limits(measure, [lo, hi], [lo, hi])
        if ticks is not None:
            ticks = [t for t in ticks if lo <= t <= hi] or None
        return lo, hi, ticks
    core = [r.est for r in rows if r.kind == "study"]
    core += [v for r in rows if r.kind in ("diamond", "interval") for v in (r.lo, r.hi)]
    full = [v for r in rows if r.kind == "study" for v in (r.lo, r.hi)]
    return axis_limits(measure, core, full)


def _plot_header(ma: MetaAnalysis, models: Sequence[str]) -> tuple[str, str]:
    name = c.MEASURE_NAMES[ma.measure]
    scale = " (log scale)" if c.is_ratio(ma.measure) else ""
    if ma.common is None or ma.random is None:
        how = ""
    elif len(models) == 2:
        how = f"{ma.common.method} common, {ma.random.tau2_method} random, "
    elif models[0] == "random":
        how = f"{ma.random.tau2_method} random, "
    else:
        how = f"{ma.common.method} common, "
    return f"{name}{scale}", f"{how}{ma.options.level * 100:g}% CI"


def forest_plot(
    ma: MetaAnalysis,
    model: str = "random",
    labels: Sequence[str] | None = None,
    sort: str = "file",
    xlim: Sequence[float] | None = None,
):
    """The forest plot of a fitted meta-analysis; ``model`` is ``random``, ``common`` or
    ``both``; ``sort`` orders the studies (:data:`SORTS`); ``xlim`` fixes the axis."""
    models = _models(model)
    left, right = _columns(ma, models)
    rows = study_rows(ma, models, sort=sort)
    missing = not_estimable_rows(ma)
    if sort == "file" and missing:  # in the table's order, as RevMan lists them
        keyed = [(st.row, r) for st, r in zip(ma.effects.studies, rows)] + missing
        rows = [r for _, r in sorted(keyed, key=lambda pair: pair[0])]
    else:
        rows += [r for _, r in missing]
    rows.append(Row("blank"))
    rows += pooled_rows(ma, models)
    for note in source_notes(ma.effects.studies):
        rows.append(Row("text", text=note))
    for e in ma.effects.excluded:
        rows.append(Row("text", text=f"Excluded: {e.study} ({e.reason})"))
    with c.style():
        fig, _ = draw(
            left,
            right,
            rows,
            ma.measure,
            _plot_header(ma, models),
            _captions(labels, ma.measure, ma),
            _limits([ma], rows, xlim),
        )
    return fig


def subgroup_forest_plot(
    sg: SubgroupAnalysis | SubgroupResult,
    model: str = "random",
    labels: Sequence[str] | None = None,
    column: str | None = None,
    full: MetaAnalysis | None = None,
    sort: str = "file",
    xlim: Sequence[float] | None = None,
):
    """Forest plot with one block per subgroup level, each with its own diamond(s) and
    heterogeneity line; the overall estimate and the between-subgroup test at the bottom.

    ``sg`` is a :class:`SubgroupAnalysis` (``column`` picks one of its ``by`` results, default the
    first) or a single :class:`SubgroupResult` with ``full`` the overall fit.
    """
    models = _models(model)
    if isinstance(sg, SubgroupAnalysis):
        full = sg.full
        results = [r for r in sg.by if column is None or r.column == column]
        if not results:
            raise ModelError(f"no subgroup analysis by '{column}'")
        res = results[0]
    else:
        res = sg
        if full is None:
            raise ModelError("the subgroup forest plot needs the overall fit")
    left, right = _columns(full, models)
    rows: list[Row] = []
    index = 0
    # Weights as RevMan shows them: each study's share of the overall analysis; a subtotal's
    # weight is the sum of its studies'.
    overall: dict[str, dict[int, float]] = {}
    if full.pooled:
        for m in models:
            w = _fit(full, m).weights
            if w:
                overall[m] = {st.row: wi for st, wi in zip(full.effects.studies, w)}
    for lv in res.levels:
        a = lv.analysis
        rows.append(Row("group", {"label": f"{res.column} = {lv.level}"}, bold=True))
        rows += study_rows(a, models, first_index=index, sort=sort, overall=overall)
        index += a.k
        if a.pooled:
            rows += pooled_rows(a, models, tag=lv.level, subtotal=True, overall=overall)
        else:
            rows.append(Row("text", text=f"{res.column} = {lv.level}: a single study, not pooled"))
        rows.append(Row("blank"))
    rows += pooled_rows(full, models)
    t = res.test
    rows.append(
        Row(
            "text",
            gid="" if t.statistic is None else "subgroup-test",
            text=subgroup_test_text(t, p_sep=" (")
            + (f"; I² = {f.pct(t.i2)}" if t.i2 is not None else ""),
        )
    )
    if overall:
        rows.append(
            Row("text", text="Weights: each study's share of the overall analysis (all subgroups)")
        )
    for note in source_notes(full.effects.studies):
        rows.append(Row("text", text=note))
    for e in res.excluded:
        rows.append(Row("text", text=f"Not in any subgroup: {e.study} ({e.reason})"))
    # Weights within a block are the subgroup's own; widths come from the overall columns.
    with c.style():
        fig, _ = draw(
            left,
            right,
            rows,
            full.measure,
            _plot_header(full, models),
            _captions(labels, full.measure, full),
            _limits([full], rows, xlim),
        )
    return fig
