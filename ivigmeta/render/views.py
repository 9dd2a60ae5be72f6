"""What each result looks like as a table: sections of formatted cells, and flat CSV records.

A view turns a result object into :class:`Section` objects (already rounded text, for the rich
table and Markdown writers) and into CSV records (raw values at full precision). No arithmetic
beyond picking fields, no rich, no statistics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ivigmeta.render import formatting as f
from ivigmeta.results import (
    RATIO_MEASURES,
    Aggregation,
    BeggTest,
    BetweenTest,
    BiasAnalysis,
    ChiSquareTest,
    CombinationTest,
    Cumulative,
    EggerTest,
    ExcessSignificance,
    FailSafeN,
    Heterogeneity,
    Influence,
    LeaveOneOut,
    MetaAnalysis,
    MetaRegression,
    ModelMatrix,
    ModeratorInfluence,
    NotApplicable,
    RegressionTest,
    RegTest,
    ReproduceResult,
    RobAssessment,
    RobustInference,
    RobustPooled,
    RobustVarianceModel,
    ScaleModel,
    StudyLevel,
    SubgroupAnalysis,
    Transformed,
    TrimFill,
    to_json_dict,
)

DURATION_COLUMNS = (
    "treat_duration_mean",
    "treat_duration_sd",
    "control_duration_mean",
    "control_duration_sd",
)


@dataclass
class Section:
    """One printed table: a title, column headers, rows of text cells and footnotes."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    # Indices of rows drawn as summary rows (pooled estimates): a rule above them, in bold.
    summary_from: int | None = None
    right_align_from: int = 1
    # Columns of free text drawn left-aligned and wrapped wherever they are (e.g. "Note").
    text_columns: tuple[str, ...] = ()


#: Columns a table drops, in this order, when it does not fit the terminal (docs/cli.md,
#: "Tables in a terminal"): descriptive columns first, then the study data, then weights, then
#: secondary statistics. The first column (the label) and the estimate with its CI never go.
DROP_ORDER: tuple[tuple[str, ...], ...] = (
    ("Duration, intervention", "Duration, control"),
    ("N",),
    ("No. of studies",),
    ("Studies",),
    ("Events, intervention", "Events, control"),
    ("Intervention: mean (SD), n", "Control: mean (SD), n"),
    ("Intervention: events / person-time", "Control: events / person-time"),
    ("Events / total",),
    ("year",),
    ("Weight (common)", "Weight (random)"),
    ("weight",),
    ("Baujat x", "Baujat y"),
    ("hat",),
    ("DFBETAS",),
    ("QE del", "tau² del"),
    ("COVRATIO",),
    ("DFFITS",),
    ("Heterogeneity p",),
    ("tau²",),
    ("Q",),
    ("I²",),
    ("Detail",),
    ("Permutation p",),
    ("p-value",),
)


def droppable(columns: list[str]) -> list[list[int]]:
    """Groups of indices of ``columns`` a narrow table may leave out (a pair of arm columns
    goes together), first to go first."""
    out = []
    for group in DROP_ORDER:
        idx = [i for i, c in enumerate(columns) if i > 0 and c in group]
        if idx:
            out.append(idx)
    return out


# Marks on effect-only rows in tables, by where their effect came from (docs/input.md).
SOURCE_MARKS = {"ci": "from CI", "se": "from SE", "vi": "from yi, vi"}
NOT_REPORTED = "NR"


def marked_label(study) -> str:
    """The study's label, marked (``[from CI]`` ...) when its effect was given, not computed."""
    mark = SOURCE_MARKS.get(study.effect_source)
    return f"{study.label()} [{mark}]" if mark else study.label()


def _events(study, arm: str) -> str:
    if not study.has_counts:
        return NOT_REPORTED
    return f"{getattr(study, arm + '_events')} ({getattr(study, arm + '_total')})"


def source_notes(studies) -> list[str]:
    """Footnote for rows whose effect was given rather than computed from counts."""
    given = [s for s in studies if s.given is not None and not s.has_counts]
    if not given:
        return []
    names = ", ".join(s.label() for s in given)
    note = (
        f"{NOT_REPORTED}: events not reported; the effect of {names} was derived from the "
        "reported effect (CI, SE or yi/vi) as marked"
    )
    return [note]


def _duration(study, arm: str) -> str:
    mean = study.fields.get(f"{arm}_duration_mean", "")
    sd = study.fields.get(f"{arm}_duration_sd", "")
    if not mean:
        return "Not reported"
    return f"{mean} ({sd})" if sd else mean


def _has_durations(ma: MetaAnalysis) -> bool:
    return any(
        s.fields.get("treat_duration_mean") or s.fields.get("control_duration_mean")
        for s in ma.effects.studies
    )


#: measures reported as a proportion after back-transformation
PROPORTION_SCALES = ("PR", "PLO", "PAS", "PFT", "PLN")


#: measures reported as a correlation (ZCOR after back-transformation)
CORRELATION_SCALES = ("ZCOR", "COR", "UCOR", "RPB", "RBIS")
#: measures reported as a mean (MNLN after back-transformation)
MEAN_SCALES = ("MN", "MNLN")
#: measures of one group's rate (IRLN and IRS reported as rates; IRFT on its own scale)
RATE_SCALES = ("IR", "IRLN", "IRS", "IRFT")
#: partial correlations (ZPCOR reported as a correlation after back-transformation)
PARTIAL_SCALES = ("PCOR", "ZPCOR", "SPCOR")
#: one group's variability, reported back-transformed (exp)
VARIABILITY_SCALES = {"CVLN": "Coefficient of variation", "SDLN": "SD"}


def _measure_header(measure: str, level_percent: float) -> str:
    if measure in PROPORTION_SCALES:
        return f"Proportion ({measure}) [{level_percent:g}% CI]"
    if measure in CORRELATION_SCALES:
        return f"Correlation ({measure}) [{level_percent:g}% CI]"
    if measure in MEAN_SCALES:
        return f"Mean ({measure}) [{level_percent:g}% CI]"
    if measure == "SPCOR":
        return f"Semi-partial correlation ({measure}) [{level_percent:g}% CI]"
    if measure in PARTIAL_SCALES:
        return f"Partial correlation ({measure}) [{level_percent:g}% CI]"
    if measure in RATE_SCALES:
        return f"Rate ({measure}) [{level_percent:g}% CI]"
    if measure in VARIABILITY_SCALES:
        return f"{VARIABILITY_SCALES[measure]} ({measure}) [{level_percent:g}% CI]"
    return f"{measure} [{level_percent:g}% CI]"


def se_header(measure: str) -> str:
    """The standard error's column: on the scale the measure is analysed on."""
    if measure in RATIO_MEASURES:
        return "SE (log scale)"
    if measure in ("PLO", "PAS", "PFT"):
        return f"SE ({'logit' if measure == 'PLO' else 'arcsine'} scale)"
    if measure in ("ZCOR", "ZPCOR"):
        return "SE (Fisher's z scale)"
    if measure in ("IRS", "IRFT"):
        return "SE (square-root scale)"
    return "SE"


def excluded_notes(excluded) -> list[str]:
    return [
        f"Excluded: {e.study}" + (f" (row {e.row})" if e.row else "") + f": {e.reason}"
        for e in excluded
    ]


def heterogeneity_line(het: Heterogeneity | None) -> str:
    if het is None:
        return "Heterogeneity: not applicable (a single study)"
    i2_q = (
        f" (Q-based {f.pct(het.i2_q)})" if het.i2_q is not None and het.tau2_method != "DL" else ""
    )
    tau2_ci = ""
    if het.ci is not None:
        tau2_ci = " " + _ci_text(het.ci, het.ci.tau2_low, het.ci.tau2_high, f.tau2)
    return (
        f"Heterogeneity: Q = {f.num(het.q)}, df = {het.df} ({f.p_eq(het.p_value)}); "
        f"I² = {f.pct(het.i2)}{i2_q}; tau² ({f.tau2_label(het.tau2_method, short=True)}) = {f.tau2(het.tau2)}{tau2_ci}"
    )


def _outcome_kind(ma: MetaAnalysis) -> str | None:
    kinds = {s.outcome_kind for s in ma.effects.studies}
    return kinds.pop() if len(kinds) == 1 else None


#: the data columns of the study table for each outcome kind (2x2 counts: N and events per arm)
DATA_COLUMNS = {
    "continuous": ["N", "Intervention: mean (SD), n", "Control: mean (SD), n"],
    "incidence": ["Intervention: events / person-time", "Control: events / person-time"],
    "proportion": ["Events / total"],
    "correlation": ["N", "Correlation"],
    "mean": ["N", "Mean (SD)"],
    "change": ["N", "Post-test: mean (SD)", "Pre-test: mean (SD)", "r"],
    "rate": ["Events / person-time"],
    "partial": ["N", "t", "Other predictors"],
    "partial_r2": ["N", "t", "Other predictors", "R²"],
    # a counts table read as matched pairs (MPRD, MPRR, MPOR, MPORC, MPPETO): escalc's ai/bi, ci/di
    "paired": ["Pairs", "Event in both / treated only", "Event in control only / neither"],
}
#: the matched-pairs measures (core.measures.PAIRED), whose counts are shown as the pairs' table
PAIRED_MEASURES = ("MPRD", "MPRR", "MPOR", "MPORC", "MPPETO")


def _data_cells(study, kind: str | None) -> list[str]:
    o = study.outcome
    if kind == "continuous" and o is not None:
        return [
            f.plain(o["treat_n"] + o["control_n"]),
            *(
                f"{f.plain(o[a + '_mean'])} ({f.plain(o[a + '_sd'])}), {f.plain(o[a + '_n'])}"
                for a in ("treat", "control")
            ),
        ]
    if kind == "incidence" and o is not None:
        return [
            f"{f.plain(o[a + '_events'])} / {f.plain(o[a + '_time'])}" for a in ("treat", "control")
        ]
    if kind == "proportion" and o is not None:
        return [f"{f.plain(o['events'])} / {f.plain(o['total'])}"]
    if kind == "rate" and o is not None:
        return [f"{f.plain(o['events'])} / {f.plain(o['time'])}"]
    if kind in ("partial", "partial_r2") and o is not None:
        cells = [f.plain(o["n"]), f.plain(o["t"]), f.plain(o["predictors"])]
        return cells + ([f.plain(o["r2"])] if kind == "partial_r2" else [])
    if kind == "paired":
        if not study.has_counts:
            return [NOT_REPORTED, "", ""]
        a, n1, c, n2 = study.counts
        return [str(n1 + n2), f"{a} / {n1 - a}", f"{c} / {n2 - c}"]
    if kind == "correlation" and o is not None:
        return [f.plain(o["n"]), f.plain(o["cor"])]
    if kind == "mean" and o is not None:
        return [f.plain(o["n"]), f"{f.plain(o['mean'])} ({f.plain(o['sd'])})"]
    if kind == "change" and o is not None:
        return [
            f.plain(o["n"]),
            f"{f.plain(o['mean_post'])} ({f.plain(o['sd_post'])})",
            f"{f.plain(o['mean_pre'])} ({f.plain(o['sd_pre'])})",
            f.plain(o["r"]),
        ]
    return [
        str(study.n) if study.has_counts else NOT_REPORTED,
        _events(study, "treat"),
        _events(study, "control"),
    ]


def _total_cells(ma: MetaAnalysis, kind: str | None) -> list[str]:
    if kind is None:
        tot = ma.totals  # None unless every pooled study reports counts
        if tot is None:
            return ["", "", ""]
        return [
            str(tot.n),
            f"{tot.treat_events} ({tot.treat_total})",
            f"{tot.control_events} ({tot.control_total})",
        ]
    cells = [""] * len(DATA_COLUMNS[kind])
    if kind == "paired":
        tot = ma.totals
        if tot is not None:
            cells[0] = str(tot.n)
        return cells
    if kind in ("continuous", "correlation", "mean", "change"):
        cells[0] = f.plain(sum(s.n or 0 for s in ma.effects.studies))
    return cells


def pool_sections(ma: MetaAnalysis) -> list[Section]:
    d = f.decimals_for(ma.measure)
    durations = _has_durations(ma)
    kind = _outcome_kind(ma)
    if kind is None and ma.measure in PAIRED_MEASURES:
        kind = "paired"
    data_cols = DATA_COLUMNS.get(kind, ["N", "Events, intervention", "Events, control"])  # type: ignore[arg-type]
    cols = ["Study", data_cols[0]]
    if durations:
        cols += ["Duration, intervention", "Duration, control"]
    cols += [
        *data_cols[1:],
        _measure_header(ma.measure, ma.options.level_percent),
        "p-value",
    ]
    if ma.pooled:
        cols += ["Weight (common)", "Weight (random)"]
    rows = []
    for i, (s, est) in enumerate(zip(ma.effects.studies, ma.study_estimates)):
        data = _data_cells(s, kind)
        row = [marked_label(s), data[0]]
        if durations:
            row += [_duration(s, "treat"), _duration(s, "control")]
        row += [
            *data[1:],
            f.est_ci(est.estimate, est.ci_low, est.ci_high, d),
            f.pval(est.p_value),
        ]
        if ma.pooled:
            assert ma.common is not None and ma.random is not None
            row += [_weight(ma.common.weights, i), _weight(ma.random.weights, i)]
        rows.append(row)
    notes = []
    summary_from = None
    if ma.pooled:
        assert ma.common is not None and ma.random is not None
        totals = _total_cells(ma, kind)
        summary_from = len(rows)
        names = (
            f"Common effect ({ma.common.method}"
            + (", hk" if ma.common.ci_method == "hk" else "")
            + ")",
            f"Random effects ({f.tau2_label(ma.random.tau2_method)}, {ma.random.ci_method})",
        )
        if ma.glmm is not None:
            names = (
                f"Fixed effects (GLMM {ma.glmm.fit.model}, tau² = 0)",
                f"Random effects (GLMM {ma.glmm.fit.model}, ML, z)",
            )
        for name, fit in zip(names, (ma.common, ma.random)):
            row = [name, totals[0]]
            if durations:
                row += ["", ""]
            row += [
                *totals[1:],
                f.est_ci(fit.estimate, fit.ci_low, fit.ci_high, d),
                f.pval(fit.p_value),
                "100.0%" if fit is ma.common else "",
                "100.0%" if fit is ma.random else "",
            ]
            rows.append(row)
        r = ma.random
        if ma.glmm is not None:
            notes += glmm_lines(ma)
        else:
            notes.append(heterogeneity_line(ma.heterogeneity))
        c = ma.common
        if c.method != "IV" and c.q is not None:
            notes.append(
                f"Heterogeneity ({c.method}, {metafor_fn(c.method)}): Q = {f.num(c.q)}, df = {c.q_df} "
                f"({f.p_eq(c.q_p_value)}); I² = {f.pct(c.i2)}"
            )
        notes += mh_test_lines(c)
        stat = "t" if r.ci_method in ("hk", "adhoc", "t") else "z"
        if r.ci_method == "hc":
            notes.append(
                "Henmi-Copas interval around the common-effect estimate (DL tau²); no test and "
                "no prediction interval (as metafor's hc())"
            )
        else:
            notes.append(
                f"Test for overall effect (random effects): {stat} = {f.num(r.statistic)}, "
                f"{f.p_eq(r.p_value)}"
            )
            perm = ma.permutation
            if perm is not None:
                how = (
                    f"exact, all {perm.iterations:,} sign flips"
                    if perm.exact
                    else f"{perm.iterations:,} random sign flips, seed {perm.seed}"
                )
                notes.append(f"Permutation test ({how}): {f.p_eq(perm.p_values[0])}")
            pi_df = ma.k - 2 if r.pi_method == "t" else r.df
            notes.append(
                f"Prediction interval (random effects): {f.ci(r.pi_low, r.pi_high, d)}"
                + (f" (t on {pi_df:g} df)" if pi_df is not None else "")
            )
        mean = ma.transf_int
        if mean is not None:
            notes.append(
                "Mean of the true effects (random effects, integral back-transform "
                f"{mean.metafor} over tau² = {f.tau2(mean.tau2)}): "
                f"{f.est_ci(mean.estimate, mean.ci_low, mean.ci_high, d)}"
            )
        if r.ci_method == "hk" and ma.k == 2:
            notes.append(
                "Hartung-Knapp with k = 2: t on 1 df (critical value 12.7), so the intervals are very wide."
            )
    else:
        notes.append("A single study: no pooling was done.")
    if ma.options.weights is not None and ma.random is not None:
        notes.append(
            f"Pooled with the user weights of column '{ma.options.weights}' (metafor's "
            "weights=); tau², Q and I² are the inverse-variance ones."
        )
    elif ma.options.unweighted and ma.random is not None:
        notes.append(
            "Pooled unweighted, every study weighing the same (metafor's weighted=FALSE); "
            "tau², Q and I² are the inverse-variance ones."
        )
    notes.append(_cc_note(ma))
    notes += source_notes(ma.effects.studies)
    notes += excluded_notes(ma.effects.excluded)
    title = f"Outcomes of the included studies ({ma.measure}, k = {ma.k})"
    sections = [Section(title, cols, rows, [n for n in notes if n], summary_from)]
    if ma.robust is not None:
        sections.append(_robust_pooled_section(ma, ma.robust))
    return sections


def _robust_title(rob: RobustInference) -> str:
    """'Cluster-robust inference (3 clusters by alloc, CR1, t on 2 df)'; CR2: '..., CR2, t on
    Satterthwaite df)'."""
    df = "Satterthwaite" if rob.cr2 else rob.df
    return (
        f"Cluster-robust inference ({rob.clusters} clusters by {rob.cluster}, {rob.vcov_type}, "
        f"t on {df} df)"
    )


def _cluster_sizes_note(rob: RobustInference) -> str:
    sizes = [n for _, n in rob.cluster_sizes]
    if rob.cr2:
        how = "clubSandwich's bias-reduced sandwich; metafor's robust(clubSandwich = TRUE)"
    else:
        factor = "small-sample factor n / (n - p)" if rob.adjust else "no small-sample factor"
        how = f"{factor}; metafor's robust()"
    return (
        f"{rob.k} studies in {rob.clusters} clusters of {min(sizes)} to {max(sizes)} studies "
        f"({how})."
    )


def _robust_pooled_section(ma: MetaAnalysis, rob: RobustPooled) -> Section:
    """pool --cluster: the random-effects and common-effect estimates with robust SEs."""
    d = f.decimals_for(ma.measure)
    pct = f"{ma.options.level_percent:g}%"
    cols = [
        "Model",
        _measure_header(ma.measure, ma.options.level_percent),
        se_header(ma.measure),
        "t",
        "p-value",
        f"{pct} prediction interval",
    ]
    cr2 = rob.random.cr2
    if cr2:
        cols.insert(4, "df")
    rows = []
    fits = [(f"Random effects ({f.tau2_label(rob.random.tau2_method)})", rob.random)]
    if rob.common is not None:
        fits.insert(0, ("Common effect (IV)", rob.common))
    for name, fit in fits:
        row = [
            name,
            f.est_ci(fit.estimate, fit.ci_low, fit.ci_high, d),
            f.num(fit.se, 4),
            f.num(fit.statistic),
            f.pval(fit.p_value),
            f.ci(fit.pi_low, fit.pi_high, d) if fit.pi_low_theta is not None else "",
        ]
        if cr2:
            row.insert(4, f.num(fit.test_df))
        rows.append(row)
    notes = [_cluster_sizes_note(rob.random)]
    pi_df = "the Satterthwaite df" if cr2 else "n - 1 df"
    notes.append(
        "Estimates and tau² are the models'; SEs, tests and intervals are cluster-robust "
        f"(the prediction interval: robust SE and tau², t on {pi_df})."
    )
    if ma.random is not None and ma.random.ci_method != "z":
        notes.append(f"The robust inference does not depend on --ci ({ma.random.ci_method}).")
    if rob.common_note:
        notes.append(rob.common_note[:1].upper() + rob.common_note[1:] + ".")
    return Section(_robust_title(rob.random), cols, rows, notes)


def _weight(weights: Sequence[float], i: int) -> str:
    """A study's weight in percent; a GLMM gives none."""
    return f.pct(weights[i]) if weights else ""


def model_name(options: Any) -> str:
    """The random-effects model in titles: its tau² estimator, or the GLMM."""
    return f"GLMM {options.glmm}" if options.glmm else options.tau2_method


def glmm_lines(ma: MetaAnalysis) -> list[str]:
    """What a GLMM fit reports under the table: the model, its heterogeneity tests, its fit."""
    assert ma.glmm is not None
    g = ma.glmm.fit
    conv = g.convergence
    nodes = (
        "Laplace approximation"
        if conv.integration == "Laplace"
        else (f"{conv.integration} quadrature, {conv.nodes} nodes")
    )
    lines = [
        f"Model: GLMM {g.model}, {g.title} (metafor's rma.glmm, ML; {nodes}); "
        f"log-likelihood {f.num(g.loglik)}; "
        + ("converged" if conv.converged else "NOT converged")
        + f" in {conv.iterations} Newton iterations",
    ]
    het = ma.heterogeneity
    assert het is not None
    wald = "n/a" if g.qe_wald is None else f"{f.num(g.qe_wald)} ({f.p_eq(g.qe_wald_p)})"
    lines.append(
        f"Heterogeneity (saturated model, df = {g.qe_df}): Wald = {wald}; LRT = "
        f"{f.num(g.qe_lrt)} ({f.p_eq(g.qe_lrt_p)}); I² = {f.pct(het.i2)}; "
        f"tau² (ML) = {f.tau2(g.tau2)}"
        + (f"; sigma² (study effects) = {f.tau2(g.sigma2)}" if g.sigma2 is not None else "")
    )
    if g.boundary:
        lines.append(
            "tau² is at the boundary 0: the random-effects estimate is the fixed-effects one."
        )
    if ma.glmm.uninformative:
        lines.append(
            f"Without information on the effect under {g.model} (double zeros, kept): "
            + ", ".join(ma.glmm.uninformative)
        )
    lines.append("The GLMM uses the raw counts: no continuity correction, no study weights.")
    return lines


def _chi2_text(t: ChiSquareTest) -> str:
    if t.statistic is None:
        return "not computable"
    return f"chi² = {f.num(t.statistic)}, df = {t.df} ({f.p_eq(t.p_value)})"


def mh_test_lines(c: Any) -> list[str]:
    """The Mantel-Haenszel odds ratio's CMH and Tarone tests (metafor's rma.mh MH and TA); for a
    rate ratio the Mantel-Haenszel test of IRR = 1."""
    corrected = "continuity-corrected" if c.cmh_correct is not False else "no continuity correction"
    if c.cmh is not None and c.tarone is None and c.measure == "IRR":
        return [f"Mantel-Haenszel test (IRR = 1, {corrected}): {_chi2_text(c.cmh)}"]
    if c.cmh is None or c.tarone is None:
        return []
    tarone = (
        _chi2_text(c.tarone)
        if c.tarone.p_value is not None or c.tarone.statistic is None
        else f"not applicable ({c.tarone.df + 1} informative tables)"
    )
    return [
        f"Cochran-Mantel-Haenszel test (OR = 1, {corrected}): {_chi2_text(c.cmh)}",
        f"Tarone's test for heterogeneity of the odds ratios: {tarone}",
    ]


def metafor_fn(method: str) -> str:
    return {"MH": "as metafor's rma.mh", "PETO": "as metafor's rma.peto"}.get(method, "")


def _cc_note(ma: MetaAnalysis) -> str:
    corrected = [s.study for s, a in zip(ma.effects.studies, ma.effects.cc_added) if a]
    if not corrected:
        return ""
    return f"Continuity correction {ma.effects.cc:g} added to all cells of: {', '.join(corrected)}"


def _ci_text(ci, low: float, high: float, fmt, unit: str = "") -> str:
    if ci is None:
        return ""
    lo = ("<" if ci.lb_sign == "<" else ">" if ci.lb_sign == ">" else "") + fmt(low)
    hi = (">" if ci.ub_sign == ">" else "") + fmt(high)
    return f"[{lo}{unit}, {hi}{unit}]"


#: what the heterogeneity table says under a Wald-type interval (--tau2-ci)
WALD_NOTES = {
    "wald": "Wald interval: tau² ± z se(tau²) with the lower bound truncated at 0",
    "wald-log": "Wald interval on the log scale: tau² exp(± z se(tau²) / tau²)",
    "wald-sqrt": "Wald interval on the square-root scale of tau², squared back",
}


def heterogeneity_sections(ma: MetaAnalysis) -> list[Section]:
    het = ma.heterogeneity
    if het is None:
        return [
            Section(
                "Heterogeneity",
                ["Statistic", "Value"],
                [["k", "1"]],
                ["Not applicable: a single study."],
            )
        ]
    ci = het.ci
    level = f"{ma.options.level_percent:g}% CI ({ci.method if ci is not None else 'Q-profile'})"
    rows = [
        ["k", str(ma.k), ""],
        ["Q", f.num(het.q), ""],
        ["df", str(het.df), ""],
        ["p-value", f.pval(het.p_value), ""],
        [
            f"I² ({f.tau2_label(het.tau2_method)})",
            f.pct(het.i2),
            _ci_text(
                ci, *(ci.i2_low, ci.i2_high) if ci else (0.0, 0.0), lambda x: f.num(x, 1), "%"
            ),
        ],
        ["I² (Q-based)", f.pct(het.i2_q), ""],
        ["H²", f.num(het.h2), _ci_text(ci, *(ci.h2_low, ci.h2_high) if ci else (0.0, 0.0), f.num)],
        [
            f"tau² ({f.tau2_label(het.tau2_method, short=True)})",
            f.tau2(het.tau2),
            _ci_text(ci, *(ci.tau2_low, ci.tau2_high) if ci else (0.0, 0.0), f.tau2),
        ],
        [
            "tau",
            f.tau2(het.tau),
            _ci_text(ci, *(ci.tau_low, ci.tau_high) if ci else (0.0, 0.0), f.tau2),
        ],
    ]
    notes = []
    if ci is not None and ci.ci_null:
        notes.append(
            "The Q-profile interval is the single point 0 (Q is below its lower quantile)."
        )
    if ci is not None and ci.ub_sign == ">":
        notes.append(
            "The upper bound lies beyond the search limit max(100, 10 tau²) (few studies)."
        )
    if ci is not None and ci.code in WALD_NOTES:
        notes.append(WALD_NOTES[ci.code] + "; I² and H² bounds from the tau² bounds.")
    if ma.k == 2:
        notes.append("k = 2: heterogeneity rests on a single degree of freedom.")
    notes += excluded_notes(ma.effects.excluded)
    if ci is None and f.tau2_label(het.tau2_method) == "tau² fixed":
        # a fixed tau² has no interval (metafor's confint() refuses such a fit)
        notes.append("tau² is fixed (--tau2 VALUE): no confidence intervals.")
        return [Section("Heterogeneity", ["Statistic", "Value"], [r[:2] for r in rows], notes)]
    return [Section("Heterogeneity", ["Statistic", "Value", level], rows, notes)]


def _model_title(full: MetaAnalysis, common: bool) -> str:
    """The refitted model in a title: ``random effects, DL`` or ``common effect, MH``."""
    if common:
        return f"common effect, {full.options.common_method}"
    return f"random effects, {model_name(full.options)}"


def loo_sections(loo: LeaveOneOut) -> list[Section]:
    d = f.decimals_for(loo.full.measure)
    common = loo.common_model
    cols = [
        "Omitted study",
        "k",
        _measure_header(loo.full.measure, loo.full.options.level_percent),
        "p-value",
        "Q",
        "I²",
    ]
    if not common:
        cols.append("tau²")
    rows = []
    for row in loo.rows:
        out = row.to_dict()
        cells = [
            marked_label(row.omitted),
            str(out["k"]),
            f.est_ci(out["estimate"], out["ci_low"], out["ci_high"], d),
            f.pval(out["p_value"]),
            f.num(out["q"]),
            f.pct(out["i2"]),
        ]
        if not common:
            cells.append(f.tau2(out["tau2"]))
        rows.append(cells)
    summary_from = len(rows)
    if common:
        c = loo.full.common
        assert c is not None
        rows.append(
            [
                "None (all studies)",
                str(loo.full.k),
                f.est_ci(c.estimate, c.ci_low, c.ci_high, d),
                f.pval(c.p_value),
                f.num(loo.full.common_q),
                f.pct(loo.full.common_i2),
            ]
        )
    else:
        full = loo.full.random
        assert full is not None and loo.full.heterogeneity is not None
        rows.append(
            [
                "None (all studies)",
                str(loo.full.k),
                f.est_ci(full.estimate, full.ci_low, full.ci_high, d),
                f.pval(full.p_value),
                f.num(loo.full.heterogeneity.q),
                f.pct(loo.full.heterogeneity.i2),
                f.tau2(loo.full.heterogeneity.tau2),
            ]
        )
    lo, hi = loo.smallest.to_dict(), loo.largest.to_dict()
    notes = [
        f"Pooled {loo.full.measure} ranged from {f.est_ci(lo['estimate'], lo['ci_low'], lo['ci_high'], d)} "
        f"without {loo.smallest.omitted.study} to {f.est_ci(hi['estimate'], hi['ci_low'], hi['ci_high'], d)} "
        f"without {loo.largest.omitted.study}."
    ]
    notes += excluded_notes(loo.full.effects.excluded)
    title = f"Leave-one-out sensitivity analysis ({_model_title(loo.full, common)})"
    return [Section(title, cols, rows, notes, summary_from)]


def subgroup_sections(sg: SubgroupAnalysis) -> list[Section]:
    d = f.decimals_for(sg.full.measure)
    cols = [
        "Subgroup",
        "No. of studies",
        "Studies",
        _measure_header(sg.full.measure, sg.full.options.level_percent),
        "p-value",
        "I²",
        "Heterogeneity p",
    ]
    sections = []
    for res in sg.by:
        rows = []
        for lv in res.levels:
            out = lv.to_dict()
            names = ", ".join(s.label() for s in lv.analysis.effects.studies)
            rows.append(
                [
                    f"{res.column} = {lv.level}",
                    str(out["k"]),
                    names,
                    f.est_ci(out["estimate"], out["ci_low"], out["ci_high"], d),
                    f.pval(out["p_value"]),
                    f.pct(out["i2"]) if out["i2"] is not None else f.NA,
                    f.pval(out["q_p_value"]),
                ]
            )
        notes = [subgroup_test_text(res.test)]
        notes += excluded_notes(res.excluded)
        sections.append(Section(f"Subgroup analysis by {res.column}", cols, rows, notes))
    return sections


def subgroup_test_statistic(t: BetweenTest) -> str:
    """'QM = 1.24, df = 1' (meta-regression), 'F = ..., df = (m, n)' (hk) or 'Q = ...' (separate)."""
    if t.df2 is not None:
        return f"F = {f.num(t.statistic)}, df = ({t.df}, {t.df2})"
    if t.method.startswith("separate-"):
        return f"Q = {f.num(t.statistic)}, df = {t.df}"
    return f"QM = {f.num(t.statistic)}, df = {t.df}"


def subgroup_test_text(t: BetweenTest, p_sep: str = ", ") -> str:
    """The between-subgroup test line shared by the tables and the subgroup forest plot."""
    if t.statistic is None:
        return f"Test for subgroup differences: not applicable ({t.note})"
    p = f.p_eq(t.p_value)
    p_text = f" ({p})" if p_sep == " (" else f"{p_sep}{p}"
    return f"Test for subgroup differences ({_between_name(t.method)}): {subgroup_test_statistic(t)}{p_text}"


def _between_name(method: str) -> str:
    if method.startswith("metareg-"):
        return f"mixed-effects meta-regression, {f.tau2_label(method.split('-', 1)[1])}"
    if method.startswith("separate-"):
        return f"Q between subgroups, separate {method.split('-', 1)[1]} tau²"
    return method


def metareg_sections(reg: MetaRegression) -> list[Section]:
    stat = "t" if reg.ci_method in ("hk", "adhoc", "t") else "z"
    ci_head = f"{reg.level_percent:g}% CI"
    cols = ["Coefficient", "Estimate", "SE", stat, "p-value", ci_head]
    perm = reg.permutation
    if perm is not None:
        cols.insert(5, "Permutation p")
    rows = []
    for j, c in enumerate(reg.coefficients):
        row = [
            c.name,
            f.num(c.estimate, 4),
            f.num(c.se, 4),
            f.num(c.statistic),
            f.pval(c.p_value),
            f.ci(c.ci_low, c.ci_high, 4),
        ]
        if perm is not None:
            row.insert(5, f.pval(perm.p_values[j]))
        rows.append(row)
    if reg.qm is None:
        omnibus = "Test of moderators: not applicable (intercept only)"
    elif reg.qm_df2 is not None:
        omnibus = f"Test of moderators: F = {f.num(reg.qm)}, df = ({reg.qm_df}, {reg.qm_df2}), {f.p_eq(reg.qm_p_value)}"
    else:
        omnibus = (
            f"Test of moderators: QM = {f.num(reg.qm)}, df = {reg.qm_df}, {f.p_eq(reg.qm_p_value)}"
        )
    if perm is not None and perm.qm_p_value is not None and reg.qm is not None:
        omnibus += f"; permutation {f.p_eq(perm.qm_p_value)}"
    gm = reg.glmm
    if reg.scale is not None:
        sm = reg.scale
        residual = (
            f"Residual heterogeneity: QE = {f.num(reg.qe)}, df = {reg.qe_df}, "
            f"{f.p_eq(reg.qe_p_value)}; tau² by study (scale model) from "
            f"{f.tau2(sm.tau2_min)} to {f.tau2(sm.tau2_max)}"
        )
    elif gm is not None:
        g = gm.fit
        wald = (
            "Wald not available"
            if g.qe_wald is None
            else f"Wald QE = {f.num(g.qe_wald)}, {f.p_eq(g.qe_wald_p)}"
        )
        sigma = "" if g.sigma2 is None else f"; sigma² (study effects) = {f.tau2(g.sigma2)}"
        residual = (
            f"Residual heterogeneity (df = {g.qe_df}): {wald}; LRT = {f.num(g.qe_lrt)}, "
            f"{f.p_eq(g.qe_lrt_p)}; tau² = {f.tau2(reg.tau2)}; I² = {f.pct(reg.i2)}{sigma}"
        )
    elif reg.model == "common":
        residual = (
            f"Residual heterogeneity: QE = {f.num(reg.qe)}, df = {reg.qe_df}, "
            f"{f.p_eq(reg.qe_p_value)}; I² = {f.pct(reg.i2)} (from QE)"
        )
    else:
        residual = (
            f"Residual heterogeneity: QE = {f.num(reg.qe)}, df = {reg.qe_df}, "
            f"{f.p_eq(reg.qe_p_value)}; tau² = {f.tau2(reg.tau2)}; I² = {f.pct(reg.i2)}; "
            f"R² = {f.pct(reg.r2)}"
        )
    notes = [omnibus, residual]
    for con in reg.contrasts:
        test = "t" if con.df is not None else "z"
        notes.append(
            f"Contrast {con.spec}: {f.num(con.estimate, 4)} (SE {f.num(con.se, 4)}), {test} = "
            f"{f.num(con.statistic)}, {f.p_eq(con.p_value)}, "
            f"{reg.level * 100:g}% CI {f.ci(con.ci_low, con.ci_high, 4)}"
        )
    if reg.contrast_test is not None:
        t = reg.contrast_test
        stat = (
            f"F = {f.num(t.statistic)}, df = ({t.df}, {t.df2})"
            if t.df2 is not None
            else f"QM = {f.num(t.statistic)}, df = {t.df}"
        )
        notes.append(f"Joint test of the contrasts: {stat}, {f.p_eq(t.p_value)}")
    for t in reg.coefficient_tests:
        stat = (
            f"F = {f.num(t.statistic)}, df = ({t.df}, {t.df2})"
            if t.df2 is not None
            else f"QM = {f.num(t.statistic)}, df = {t.df}"
        )
        notes.append(f"Test of {', '.join(t.coefficients)}: {stat}, {f.p_eq(t.p_value)}")
    cmp = reg.comparison
    if cmp is not None:
        r2 = "" if cmp.r2 is None else f"; R² = {f.pct(cmp.r2)}"
        notes.append(
            f"Likelihood-ratio test without {', '.join(cmp.dropped)} ({cmp.likelihood}): "
            f"LRT = {f.num(cmp.lrt)}, df = {cmp.df}, {f.p_eq(cmp.p_value)}; AIC "
            f"{f.num(cmp.full.aic)} (full) vs {f.num(cmp.reduced.aic)} (reduced){r2}"
        )
        if cmp.note:
            notes.append(f"Note: {cmp.note}.")
    if len(reg.coefficients) > 2 and reg.gvif:
        notes.append(
            "Variance inflation (generalized VIF per moderator): "
            + ", ".join(f"{v.name} {f.num(v.vif)}" for v in reg.gvif)
        )
    ti = reg.tau2_interval
    if ti is not None:
        notes.append(
            f"Residual tau² {reg.level_percent:g}% CI ({ti.method}): "
            f"[{ti.lb_sign}{f.tau2(ti.tau2_low)}, {ti.ub_sign}{f.tau2(ti.tau2_high)}]; "
            f"I² [{f.pct(ti.i2_low)}, {f.pct(ti.i2_high)}]"
        )
    if reg.fit_statistics is not None:
        fs = reg.fit_statistics
        v = fs.values
        notes.append(
            f"Fit ({fs.reported}): log-likelihood {f.num(v['loglik'])}, deviance "
            f"{f.num(v['deviance'])}, AIC {f.num(v['aic'])}, BIC {f.num(v['bic'])}, "
            f"AICc {f.num(v['aicc'])}"
        )
    if perm is not None:
        how = (
            f"exact, all {perm.iterations:,} distinct permutations"
            if perm.exact
            else f"{perm.iterations:,} random permutations, seed {perm.seed}"
        )
        failed = f"; {perm.failed} refits failed and are left out" if perm.failed else ""
        notes.append(f"Permutation test ({how}{failed}).")
    if reg.measure in RATIO_MEASURES:
        notes.append(f"Coefficients are on the log {reg.measure} scale.")
    for col, level in reg.references:
        notes.append(f"Reference level of {col}: {level}")
    notes += excluded_notes(reg.excluded)
    ci_name = {"hk": "Hartung-Knapp", "adhoc": "Hartung-Knapp, factor >= 1", "t": "t"}.get(
        reg.ci_method, "z"
    )
    measure = reg.measure + ", " if reg.measure else ""
    if reg.scale is not None:
        title = (
            f"Location-scale meta-regression: location ({measure}{reg.tau2_method}, "
            f"{reg.scale.link} link, k = {reg.k})"
        )
    elif gm is not None:
        title = (
            f"GLMM meta-regression ({measure}{gm.fit.model}: {gm.fit.title}, ML, {ci_name}, "
            f"k = {reg.k})"
        )
        notes += list(gm.fit.notes)
    elif reg.model == "common":
        title = f"Fixed-effects (common-effect) meta-regression ({measure}{ci_name}, k = {reg.k})"
    else:
        title = f"Mixed-effects meta-regression ({measure}{f.tau2_label(reg.tau2_method)}, {ci_name}, k = {reg.k})"
    sections = [Section(title, cols, rows, notes)]
    if reg.scale is not None:
        sections += _scale_sections(reg, reg.scale)
    if reg.predictions:
        sections.append(_prediction_section(reg))
    if reg.robust is not None:
        sections += _robust_metareg_sections(reg, reg.robust)
    return sections


def _scale_sections(reg: MetaRegression, sm: ScaleModel) -> list[Section]:
    """metareg --scale: the scale coefficients (with profile CIs under --scale-profile), QS,
    the --att tests, the LRT against scale ~ 1, and the --predict-scale rows."""
    ci_head = f"{reg.level_percent:g}% CI"
    cols = ["Coefficient", "Estimate", "SE", "z", "p-value", ci_head]
    profile = {pi.name: pi for pi in sm.profile}
    if profile:
        cols.append("Profile CI")
    rows = []
    for c in sm.coefficients:
        row = [
            c.name,
            f.num(c.estimate, 4),
            f.num(c.se, 4),
            f.num(c.statistic),
            f.pval(c.p_value),
            f.ci(c.ci_low, c.ci_high, 4),
        ]
        if profile:
            row.append(f.ci(profile[c.name].ci_low, profile[c.name].ci_high, 4))
        rows.append(row)
    if sm.qs is None:
        notes = ["Test of scale moderators: not applicable (intercept only)"]
    else:
        notes = [
            f"Test of scale moderators: QS = {f.num(sm.qs)}, df = {sm.qs_df}, "
            f"{f.p_eq(sm.qs_p_value)}"
        ]
    for t in sm.coefficient_tests:
        notes.append(
            f"Test of scale coefficients {', '.join(t.coefficients)}: QS = {f.num(t.statistic)}, "
            f"df = {t.df}, {f.p_eq(t.p_value)}"
        )
    cmp = sm.comparison
    if cmp is not None:
        notes.append(
            f"Likelihood-ratio test against scale ~ 1 ({cmp.likelihood}): LRT = {f.num(cmp.lrt)}, "
            f"df = {cmp.df}, {f.p_eq(cmp.p_value)}; AIC {f.num(cmp.full.aic)} (full) vs "
            f"{f.num(cmp.reduced.aic)} (scale ~ 1)"
        )
    if len(sm.vif) > 1:
        notes.append(
            "Variance inflation of the scale coefficients: "
            + ", ".join(f"{v.name} {f.num(v.vif)}" for v in sm.vif)
        )
    if sm.link == "log":
        notes.append("Scale coefficients are on the log tau² scale: log tau²_i = z_i'alpha.")
    else:
        notes.append(
            "Scale coefficients are on the tau² scale: tau²_i = z_i'alpha (identity link)."
        )
    if sm.note:
        notes.append(f"Note: {sm.note}.")
    if profile and any(math.isnan(p.ci_low) or math.isnan(p.ci_high) for p in sm.profile):
        notes.append(
            "n/a in a profile CI: the profile likelihood does not fall far enough on that side."
        )
    for col, level in sm.references:
        notes.append(f"Reference level of {col} (scale): {level}")
    sections = [Section(f"Scale model ({sm.link} link)", cols, rows, notes)]
    if sm.predictions:
        pct = f"{reg.level_percent:g}%"
        pred_rows = [
            [
                p.label,
                f"{f.num(p.estimate, 4)} {f.ci(p.ci_low, p.ci_high, 4)}",
                f.num(p.se, 4),
                f"{f.tau2(p.tau2)} {f.ci(p.tau2_ci_low, p.tau2_ci_high, 4)}",
            ]
            for p in sm.predictions
        ]
        pred_cols = ["Scale values", f"z'alpha [{pct} CI]", "SE", f"tau² [{pct} CI]"]
        pred_notes = []
        if sm.link == "identity":
            pred_notes.append("Negative tau² values and bounds are set to 0 (as metafor).")
        sections.append(
            Section("Predicted heterogeneity (scale model)", pred_cols, pred_rows, pred_notes)
        )
    return sections


def _robust_metareg_sections(reg: MetaRegression, rob: RobustInference) -> list[Section]:
    """metareg --cluster: the coefficients with robust SEs, the robust F test, and the
    --predict rows with the robust variance."""
    cols = ["Coefficient", "Estimate", "SE", "t", "p-value", f"{reg.level_percent:g}% CI"]
    rows = [
        [
            c.name,
            f.num(c.estimate, 4),
            f.num(c.se, 4),
            f.num(c.statistic),
            f.pval(c.p_value),
            f.ci(c.ci_low, c.ci_high, 4),
        ]
        for c in rob.coefficients
    ]
    if rob.cr2:
        cols.insert(4, "df")
        for row, df in zip(rows, rob.test_dfs):
            row.insert(4, f.num(df))
    test = "cluster-robust, HTZ" if rob.cr2 else "cluster-robust"
    df2 = f.num(rob.qm_df2) if rob.cr2 else str(rob.qm_df2)
    notes = [
        f"Test of moderators ({test}): F = {f.num(rob.qm)}, df = ({rob.qm_df}, "
        f"{df2}), {f.p_eq(rob.qm_p_value)}",
        _cluster_sizes_note(rob),
        "Coefficients and tau² are the model's; SEs, tests and intervals are cluster-robust.",
    ]
    if reg.ci_method != "z":
        notes.append(f"The robust inference does not depend on --ci ({reg.ci_method}).")
    sections = [Section(_robust_title(rob), cols, rows, notes)]
    if rob.predictions:
        pred = _prediction_section(replace(reg, predictions=rob.predictions))
        pred.title = "Predicted effects (cluster-robust)"
        if rob.cr2:  # each prediction on the Satterthwaite df of its moderator values
            pred.columns.append("df")
            for row, p in zip(pred.rows, rob.predictions):
                row.append(f.num(p.df))
        sections.append(pred)
    return sections


def _prediction_section(reg: MetaRegression) -> Section:
    """The --predict table: each prediction on the reported scale, with its CI and PI."""
    d = f.decimals_for(reg.measure)
    name = reg.measure or "Estimate"
    pct = f"{reg.level_percent:g}%"
    cols = ["Moderator values", f"{name} [{pct} CI]", f"{pct} prediction interval", "SE"]
    rows = [
        [
            p.label,
            f.est_ci(p.reported[0], p.reported[1], p.reported[2], d),
            f.ci(p.reported[3], p.reported[4], d),
            f.num(p.se, 4),
        ]
        for p in reg.predictions
    ]
    notes = []
    if reg.measure in RATIO_MEASURES:
        notes.append("SE on the log scale.")
    if reg.model == "common":
        notes.append("A common-effect model has no prediction interval beyond the CI.")
    if reg.scale is not None and any(math.isnan(p.pi_low) for p in reg.predictions):
        notes.append(
            "n/a prediction interval: in a location-scale model tau² depends on the scale "
            "moderators; give a value for each of them too."
        )
    return Section("Predicted effects", cols, rows, notes)


def bias_sections(ba: BiasAnalysis) -> list[Section]:
    cols = ["Test", "Statistic", "df", "p-value", "Detail"]
    rows = [_bias_row(name, res, ba) for name, res in ba.results()]
    notes = []
    tf = ba.trimfill
    sections = []
    if isinstance(tf, TrimFill):
        notes.append(_trimfill_note(tf))
    if ba.full.k < 10:
        notes.append(
            f"With {ba.full.k} {'study' if ba.full.k == 1 else 'studies'} these tests have low power: a non-significant result does not "
            "rule out small-study effects (fewer than 10 studies; Cochrane Handbook 13.3.5)."
        )
    notes += excluded_notes(ba.full.effects.excluded)
    sections.append(
        Section(
            f"Small-study effects (k = {ba.full.k})", cols, rows, notes, text_columns=("Detail",)
        )
    )
    if isinstance(tf, TrimFill) and tf.k0 > 0:
        sections.append(_filled_section(tf))
    return sections


_BIAS_NAMES = {
    "egger": "Egger's regression",
    "regtest": "Regression test (regtest)",
    "begg": "Begg's rank correlation",
    "peters": "Peters' regression",
    "harbord": "Harbord's score test",
    "trimfill": "Trim-and-fill",
    "failsafe": "Fail-safe N",
    "tes": "Excess significance",
}


def _bias_row(name: str, res: Any, ba: BiasAnalysis) -> list[str]:
    label = _BIAS_NAMES[name]
    if isinstance(res, NotApplicable):
        return [label, f.NA, "", f.NA, f"not applicable: {res.reason}"]
    d = f.decimals_for(ba.full.measure)
    if isinstance(res, EggerTest):
        return [
            label,
            f"t = {f.num(res.t)}",
            str(res.df),
            f.pval(res.p_value),
            f"intercept {f.num(res.intercept)} (SE {f.num(res.se)})",
        ]
    if isinstance(res, RegTest):
        detail = f"{res.model}, slope on {res.predictor} {f.num(res.slope, 4)} (SE {f.num(res.slope_se, 4)})"
        if res.limit_theta is not None:
            detail += (
                f"; limit estimate {ba.full.measure} "
                f"{f.est_ci(res.limit_estimate, res.limit_ci_low, res.limit_ci_high, d)}"
            )
        return [
            label,
            f"{res.distribution} = {f.num(res.statistic)}",
            "" if res.df is None else str(res.df),
            f.pval(res.p_value),
            detail,
        ]
    if isinstance(res, ExcessSignificance):
        detail = (
            f"{res.observed} significant of {res.k}, {f.num(res.expected)} expected at the "
            f"common-effect estimate ({res.test} test)"
        )
        if res.theta_lim is not None:
            detail += f"; limit estimate {ba.full.measure} {f.num(res.limit_estimate, d)}"
        return [
            label,
            f"O/E = {f.num(res.ratio)}" if math.isfinite(res.ratio) else "O/E = inf",
            "",
            f.pval(res.p_value),
            detail,
        ]
    if isinstance(res, BeggTest):
        how = "exact" if res.exact else "normal approximation"
        return [
            label,
            f"tau = {f.num(res.tau, 3)}",
            "",
            f.pval(res.p_value),
            f"Kendall's tau, {how} p",
        ]
    if isinstance(res, RegressionTest):
        extra = f"; {len(res.excluded)} studies left out" if res.excluded else ""
        return [
            label,
            f"t = {f.num(res.t)}",
            str(res.df),
            f.pval(res.p_value),
            f"slope on {res.predictor} {f.num(res.bias)} (SE {f.num(res.se)}){extra}",
        ]
    if isinstance(res, TrimFill):
        se = f" (SE {f.num(res.se_k0)})" if res.se_k0 is not None else ""
        return [
            label,
            f"k0 = {res.k0}{se}",
            "",
            f.pval(res.p_k0) if res.p_k0 is not None else "",
            f"{res.estimator}, {res.side} side: {ba.full.measure} {f.est_ci(res.estimate, res.ci_low, res.ci_high, d)}",
        ]
    if isinstance(res, FailSafeN):
        n = "inf" if math.isinf(res.n) else f"{res.n:.0f}"
        detail = f"{res.method}{' (weighted)' if res.weighted else ''}, alpha {res.alpha:g}"
        if res.target_theta is not None:
            detail += f", target {ba.full.measure} {f.num(res.target, 3)}"
        return [
            label,
            f"N = {n}",
            "",
            f.pval(res.p_value) if res.p_value is not None else "",
            detail,
        ]
    raise TypeError(f"no table row for {type(res).__name__}")


def _trimfill_note(tf: TrimFill) -> str:
    how = (
        "chosen by the regression of y on sqrt(v)"
        if tf.side_chosen == "regression"
        else "as requested"
    )
    return (
        f"Trim-and-fill ({tf.estimator}): {tf.k0} studies imputed on the {tf.side} side ({how}); "
        f"adjusted random-effects estimate from {tf.analysis.k} studies."
    )


def _filled_section(tf: TrimFill) -> Section:
    measure = tf.analysis.measure
    d = f.decimals_for(measure)
    cols = ["Imputed study", "Mirror of", measure, se_header(measure)]
    rows = [[s.study, s.mirror_of, f.num(s.estimate, d), f.num(s.se, 3)] for s in tf.filled]
    return Section("Trim-and-fill: imputed studies", cols, rows, right_align_from=2)


# ---------------------------------------------------------------------------------------------
# CSV records: one flat dict per row, full precision.


def pool_records(ma: MetaAnalysis) -> list[dict[str, Any]]:
    data = ma.to_dict()
    records = [{"row_type": "study", **s} for s in data["studies"]]
    for key in ("common", "random"):
        if data[key] is not None:
            records.append({"row_type": key, "study": key, **data[key]})
    rob = data.get("robust")
    if rob is not None:
        shared = {k: v for k, v in rob.items() if k not in ("common", "random", "cluster_sizes")}
        for key in ("common", "random"):
            if rob[key] is not None:
                row_type = f"robust_{key}"
                records.append({"row_type": row_type, "study": row_type, **shared, **rob[key]})
    return records


def _flatten_intervals(record: dict[str, Any]) -> dict[str, Any]:
    """CSV cells hold one value: ``x_ci: [low, high]`` becomes ``x_ci_low`` and ``x_ci_high``."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key.endswith("_ci") and (value is None or isinstance(value, (list, tuple))):
            low, high = value if value is not None else (None, None)
            out[f"{key}_low"], out[f"{key}_high"] = low, high
        else:
            out[key] = value
    return out


def heterogeneity_records(ma: MetaAnalysis) -> list[dict[str, Any]]:
    het = ma.heterogeneity.to_dict() if ma.heterogeneity else {"q": None}
    return [_flatten_intervals({"k": ma.k, **het})]


def loo_records(loo: LeaveOneOut) -> list[dict[str, Any]]:
    return [r.to_dict() for r in loo.rows]


def subgroup_records(sg: SubgroupAnalysis) -> list[dict[str, Any]]:
    records = []
    for res in sg.by:
        test = res.test.to_dict()
        for lv in res.levels:
            out = lv.to_dict()
            out["studies"] = "; ".join(out["studies"])
            records.append(
                {
                    "column": res.column,
                    **out,
                    "test_method": test["method"],
                    "test_qm": test["qm"],
                    "test_df": test["df"],
                    "test_df2": test["df2"],
                    "test_p_value": test["p_value"],
                }
            )
    return records


def metareg_records(reg: MetaRegression) -> list[dict[str, Any]]:
    """One CSV record per coefficient (with its permutation p-value under --permutations),
    then one per --predict; with --scale then one per scale coefficient and per
    --predict-scale."""
    records = []
    for j, c in enumerate(reg.coefficients):
        record = c.to_dict()
        if reg.permutation is not None:
            record["permutation_p_value"] = reg.permutation.p_values[j]
        records.append(record | {"kind": "coefficient"})
    for p in reg.predictions:
        out = p.to_dict()
        out.pop("at")
        reported = out.pop("reported")
        records.append(
            {"name": out.pop("label"), **out}
            | {f"reported_{key}": value for key, value in reported.items()}
            | {"kind": "prediction"}
        )
    if reg.scale is not None:
        profile = {pi.name: pi for pi in reg.scale.profile}
        for c in reg.scale.coefficients:
            record = c.to_dict()
            if c.name in profile:
                record |= {
                    "profile_ci_low": profile[c.name].ci_low,
                    "profile_ci_high": profile[c.name].ci_high,
                }
            records.append(record | {"kind": "scale_coefficient"})
        for sp in reg.scale.predictions:
            out = sp.to_dict()
            out.pop("at")
            records.append({"name": out.pop("label"), **out} | {"kind": "scale_prediction"})
    if reg.robust is not None:
        for row in reg.robust.coefficient_rows:
            records.append(row | {"kind": "robust_coefficient"})
        for p in reg.robust.predictions:
            out = p.to_dict()
            out.pop("at")
            reported = out.pop("reported")
            records.append(
                {"name": out.pop("label"), **out}
                | {f"reported_{key}": value for key, value in reported.items()}
                | {"kind": "robust_prediction"}
            )
    return records


def bias_records(ba: BiasAnalysis) -> list[dict[str, Any]]:
    records = []
    for name, res in ba.results():
        out = res.to_dict()
        if name == "trimfill" and "filled" in out:
            out["filled"] = "; ".join(
                f"{r['study']} = {r['yi']!r} (vi {r['vi']!r})" for r in out["filled"]
            )
        if "excluded" in out:
            out["excluded"] = "; ".join(e["study"] for e in out["excluded"])
        records.append({"test": name, **out})
    return records


# ---------------------------------------------------------------------------------------------
# Risk of bias (ROBINS-I).


def _level_text(level: str | None) -> str:
    return "" if level is None else level[:1].upper() + level[1:]


def rob_sections(rob: RobAssessment) -> list[Section]:
    cols = ["Study", *[f"D{i + 1}" for i in range(len(rob.domains))], "Overall"]
    if rob.weighted:
        cols.append("Weight")
    rows = []
    for s in rob.studies:
        overall = _level_text(s.overall)
        if s.contradicts_rules:
            overall += f" (rules: {s.overall_rule})"
        elif s.overall_given is None:
            overall += " (by the rules)"
        row = [s.study, *[_level_text(j) for j in s.judgements], overall]
        if rob.weighted:
            row.append(f.num(s.weight))
        rows.append(row)
    notes = [f"D{i + 1}: {label}" for i, label in enumerate(rob.domain_labels)]
    for s in rob.contradictions:
        notes.append(
            f"{s.study} (row {s.row}): the overall judgement given ({s.overall_given}) "
            f"contradicts the ROBINS-I rules ({s.overall_rule})"
        )
    title = f"Risk of bias ({rob.tool}, {len(rob.studies)} studies)"
    summary_cols = ["Domain", *[_level_text(lv) for lv in rob.levels]]
    summary_rows = [[d.label, *[f.pct(p) for p in d.percent]] for d in rob.summary]
    how = f"weighted by {rob.weight_source}" if rob.weighted else "each study counted once"
    return [
        Section(
            title, cols, rows, notes, right_align_from=len(cols) - 1 if rob.weighted else len(cols)
        ),
        Section(f"Summary: share of studies at each level ({how})", summary_cols, summary_rows),
    ]


def rob_records(rob: RobAssessment) -> list[dict[str, Any]]:
    return [s.to_dict(rob.domains) for s in rob.studies]


@dataclass(frozen=True)
class View:
    """How one command's result is shown: table sections, CSV records and the JSON payload."""

    sections: Callable[[Any], list[Section]]
    records: Callable[[Any], list[dict[str, Any]]]
    payload: Callable[[Any], dict[str, Any]] = to_json_dict


VIEWS: dict[str, View] = {
    "pool": View(pool_sections, pool_records),
    "heterogeneity": View(
        heterogeneity_sections, heterogeneity_records, MetaAnalysis.heterogeneity_dict
    ),
    "loo": View(loo_sections, loo_records),
    "subgroup": View(subgroup_sections, subgroup_records),
    "metareg": View(metareg_sections, metareg_records),
    "bias": View(bias_sections, bias_records),
    "rob": View(rob_sections, rob_records),
}


# ---------------------------------------------------------------------------------------------
# Cumulative meta-analysis and influence diagnostics.


def cumulative_sections(cu: Cumulative) -> list[Section]:
    measure = cu.full.measure
    d = f.decimals_for(measure)
    cols = [
        "Study added",
        cu.order_by,
        "k",
        _measure_header(measure, cu.full.options.level_percent),
        "p-value",
        "I²",
    ]
    common = cu.common_model
    if not common:
        cols.append("tau²")
    rows = []
    for step in cu.steps:
        out = step.to_dict()
        value = out["order_value"]
        cells = [
            marked_label(step.added),
            "" if value is None else (f"{value:g}" if isinstance(value, float) else str(value)),
            str(out["k"]),
            f.est_ci(out["estimate"], out["ci_low"], out["ci_high"], d),
            f.pval(out["p_value"]),
            f.pct(out["i2"]),
        ]
        if not common:
            cells.append(f.tau2(out["tau2"]))
        rows.append(cells)
    direction = "descending" if cu.descending else "ascending"
    notes = [
        f"Studies added in {direction} order of '{cu.order_by}' (ties in file order); the first row is a single study."
    ]
    if cu.missing_order:
        notes.append(f"No '{cu.order_by}' value, added last: {', '.join(cu.missing_order)}")
    notes += [f"Step {s.k} (adding {s.added.study}): no fit: {s.note}" for s in cu.steps if s.note]
    notes += excluded_notes(cu.full.effects.excluded)
    title = f"Cumulative meta-analysis ({_model_title(cu.full, common)})"
    return [Section(title, cols, rows, notes, right_align_from=1)]


def cumulative_records(cu: Cumulative) -> list[dict[str, Any]]:
    return [s.to_dict() for s in cu.steps]


def influence_sections(inf: Influence) -> list[Section]:
    cols = [
        "Study",
        "rstudent",
        "DFFITS",
        "Cook's D",
        "COVRATIO",
        "tau² del",
        "QE del",
        "hat",
        "weight",
        "DFBETAS",
        "Influential",
        "Baujat x",
        "Baujat y",
    ]
    rows = []
    for r in inf.rows:
        rows.append(
            [
                marked_label(r.study),
                f.num(r.rstudent, 3),
                f.num(r.dffits, 3),
                f.num(r.cook_d, 3),
                f.num(r.cov_r, 3),
                f.tau2(r.tau2_del),
                f.num(r.qe_del),
                f.num(r.hat, 3),
                f.pct(r.weight),
                f.num(r.dfbetas, 3),
                ("* " + ", ".join(r.reasons)) if r.influential else "",
                f.num(r.baujat_x, 3),
                f.num(r.baujat_y, 3),
            ]
        )
    notes = [
        "Influential (*, as metafor): "
        f"|DFFITS| > {f.num(inf.dffits_cutoff, 3)}, Cook's D > {f.num(inf.cook_d_cutoff, 3)} "
        f"(median of chi² on 1 df), hat > {f.num(inf.hat_cutoff, 3)} or |DFBETAS| > {inf.dfbetas_cutoff:g}.",
        "Baujat x: squared Pearson residual (contribution to heterogeneity); "
        "y: influence on the pooled estimate.",
    ]
    notes += [f"{r.study.study}: no case-deletion values: {r.note}" for r in inf.rows if r.note]
    notes += excluded_notes(inf.full.effects.excluded)
    title = f"Influence diagnostics (random effects, {f.tau2_label(inf.full.options.tau2_method)}, k = {inf.full.k})"
    return [Section(title, cols, rows, notes)]


def influence_records(inf: Influence) -> list[dict[str, Any]]:
    return [r.to_dict() for r in inf.rows]


def influence_mods_sections(inf: ModeratorInfluence) -> list[Section]:
    names = [name for name, _ in inf.coefficients]
    cols = ["Study", "rstudent", "DFFITS", "Cook's D", "COVRATIO"]
    if inf.tau2_method != "FE":
        cols.append("tau² del")
    cols += ["QE del", "hat", "weight"]
    cols += [f"DFBETAS {name}" for name in names]
    cols += ["Influential", "Baujat x", "Baujat y"]
    rows = []
    for r in inf.rows:
        dfbs = r.dfbetas_by_coefficient or {}
        cells = [
            marked_label(r.study),
            f.num(r.rstudent, 3),
            f.num(r.dffits, 3),
            f.num(r.cook_d, 3),
            f.num(r.cov_r, 3),
        ]
        if inf.tau2_method != "FE":
            cells.append(f.tau2(r.tau2_del))
        cells += [f.num(r.qe_del), f.num(r.hat, 3), f.pct(r.weight)]
        cells += [f.num(dfbs.get(name), 3) for name in names]
        cells += [
            ("* " + ", ".join(r.reasons)) if r.influential else "",
            f.num(r.baujat_x, 3),
            f.num(r.baujat_y, 3),
        ]
        rows.append(cells)
    p = len(names)
    notes = [
        "Influential (*, as metafor): "
        f"|DFFITS| > {f.num(inf.dffits_cutoff, 3)}, Cook's D > {f.num(inf.cook_d_cutoff, 3)} "
        f"(median of chi² on {p} df), hat > {f.num(inf.hat_cutoff, 3)} or any "
        f"|DFBETAS| > {inf.dfbetas_cutoff:g}.",
        "Baujat x: squared Pearson residual; y: influence on the study's fitted value.",
    ]
    if inf.references:
        notes.append(
            "Reference levels: " + ", ".join(f"{c} = {lev}" for c, lev in inf.references) + "."
        )
    if inf.measure in RATIO_MEASURES:
        notes.append(f"Coefficients and DFBETAS are on the log {inf.measure} scale.")
    notes += [f"{r.study.study}: no case-deletion values: {r.note}" for r in inf.rows if r.note]
    notes += excluded_notes(inf.excluded)
    if inf.model == "metareg":
        what = "meta-regression on " + ", ".join(inf.moderators)
    else:
        what = "intercept only"
    model = (
        "common effect"
        if inf.tau2_method == "FE"
        else f"random effects, {f.tau2_label(inf.tau2_method)}"
    )
    title = f"Influence diagnostics ({what}, {model}, k = {inf.k})"
    return [Section(title, cols, rows, notes)]


def influence_mods_records(inf: ModeratorInfluence) -> list[dict[str, Any]]:
    out = []
    for r in inf.rows:
        d = r.to_dict()
        rec = {
            k: v for k, v in d.items() if k not in ("dfbetas_by_coefficient", "coefficients_del")
        }
        for group in ("dfbetas_by_coefficient", "coefficients_del"):
            prefix = "dfbetas" if group == "dfbetas_by_coefficient" else "coef_del"
            for name, value in (d[group] or {}).items():
                rec[f"{prefix}_{name}"] = value
        out.append(rec)
    return out


def blup_sections(sl: StudyLevel) -> list[Section]:
    pi = f"{sl.level * 100:g}% PI"
    cols = ["Study", "BLUP", "SE", pi, "Random effect", "SE", pi, "Fitted", "Residual"]
    cols += ["rstandard", "rstudent"]
    rows = []
    for r in sl.rows:
        rows.append(
            [
                marked_label(r.study),
                f.num(r.blup, 4),
                f.num(r.blup_se, 4),
                f.ci(r.blup_pi[0], r.blup_pi[1], 4),
                f.num(r.ranef, 4),
                f.num(r.ranef_se, 4),
                f.ci(r.ranef_pi[0], r.ranef_pi[1], 4),
                f.num(r.fitted, 4),
                f.num(r.residual, 4),
                f.num(r.rstandard.z, 3),
                f.num(r.rstudent.z if r.rstudent else None, 3),
            ]
        )
    notes = [
        "BLUP: predicted true effect; random effect: its deviation from the fitted value; "
        "rstandard / rstudent: standardized and studentized deleted residuals (z).",
    ]
    if sl.measure in RATIO_MEASURES:
        notes.append(f"Values are on the log {sl.measure} scale.")
    notes += [f"{r.study.study}: no rstudent: {r.note}" for r in sl.rows if r.note]
    notes += excluded_notes(sl.excluded)
    what = (
        "random effects"
        if sl.model == "random"
        else "meta-regression on " + ", ".join(sl.moderators)
    )
    title = (
        f"Study-level quantities ({sl.measure}, {what}, {f.tau2_label(sl.tau2_method)}, k = {sl.k})"
    )
    return [Section(title, cols, rows, notes)]


def blup_records(sl: StudyLevel) -> list[dict[str, Any]]:
    out = []
    for r in sl.rows:
        d = r.to_dict()
        rec: dict[str, Any] = {"study": d["study"], "row": d["row"]}
        for group in ("blup", "ranef", "rstandard", "rstudent"):
            for key, value in (d[group] or {"resid": None, "se": None, "z": None}).items():
                rec[f"{group}_{key}"] = value
        rec["fitted"] = d["fitted"]
        rec["residual"] = d["residual"]
        rec["note"] = d["note"]
        out.append(rec)
    return out


COMBINATION_NAMES = {"stouffer": "Stouffer's test", "fisher": "Fisher's test"}


def combination_sections(ct: CombinationTest) -> list[Section]:
    weighted = any(r.weight is not None for r in ct.rows)
    cols = ["Study", "z", "p (one-sided)"] + (["Weight"] if weighted else [])
    rows = []
    for r in ct.rows:
        row = [marked_label(r.study), f.num(r.z, 3), f.pval(r.p_one_sided)]
        if weighted:
            row.append(f.sig(r.weight))
        rows.append(row)
    if ct.method == "stouffer":
        stat = f"Z = {f.num(ct.statistic, 3)}"
    else:
        stat = f"X² = {f.num(ct.statistic, 2)}, df = {ct.df}"
    notes = [
        f"{COMBINATION_NAMES[ct.method]} ({ct.mode}): {stat}, {f.p_eq(ct.p_value)}"
        + (
            ""
            if ct.method == "stouffer" and ct.mode != "concordant"
            else f" (Z = {f.num(ct.z, 3)})"
        ),
        "z = effect / SE on the analysis scale; one-sided p-values test an effect above 0.",
    ]
    if ct.weights_column:
        notes.append(f"Stouffer weights from column '{ct.weights_column}'.")
    if ct.mode == "concordant":
        notes.append("Concordant: the directed test in both directions, p = 2 min(p_up, p_down).")
    elif ct.mode == "undirected":
        notes.append("Undirected: |z| of every study (a test of extremity, whatever the signs).")
    notes += excluded_notes(ct.excluded)
    title = f"{COMBINATION_NAMES[ct.method]} of the studies' evidence ({ct.measure}, k = {ct.k})"
    return [Section(title, cols, rows, notes)]


def combination_records(ct: CombinationTest) -> list[dict[str, Any]]:
    out = [r.to_dict() for r in ct.rows]
    out.append(
        {
            "study": f"{ct.method} ({ct.mode})",
            "row": None,
            "z": ct.z,
            "p_one_sided": None,
            "weight": None,
            "statistic": ct.statistic,
            "df": ct.df,
            "p_value": ct.p_value,
        }
    )
    return out


MATRIX_TITLES = {
    "coef": "Variance-covariance matrix of the coefficients",
    "obs": "Marginal variance-covariance matrix of the observed effects (v + tau²)",
    "fitted": "Variance-covariance matrix of the fitted values",
    "resid": "Variance-covariance matrix of the residuals",
    "hat": "Hat matrix",
    "weights": "Weight matrix",
}


def matrix_sections(mm: ModelMatrix) -> list[Section]:
    if mm.type == "coef":
        cols = ["Coefficient", *mm.labels]
        names = list(mm.labels)
        notes = []
    else:
        cols = ["Study", *(str(j + 1) for j in range(mm.k))]
        names = [f"{i + 1} {label}" for i, label in enumerate(mm.labels)]
        notes = ["Columns are the studies in the order of the rows (1 = the first)."]
    # Cells that are 0 in exact arithmetic come out as rounding noise (1e-18 next to 0.05):
    # shown as 0; JSON and CSV keep them as computed.
    scale = max((abs(x) for row in mm.values for x in row if math.isfinite(x)), default=0.0)
    rows = [
        [name, *(f.sig(0.0 if abs(x) <= 1e-12 * scale else x) for x in row)]
        for name, row in zip(names, mm.values)
    ]
    if mm.measure in RATIO_MEASURES and mm.type in ("coef", "obs", "fitted", "resid"):
        notes.append(f"Values are on the log {mm.measure} scale.")
    if mm.type == "weights" and mm.common_method:
        notes.append(
            "Raw weights of the "
            + ("Mantel-Haenszel" if mm.common_method == "MH" else "Peto")
            + " estimate (not percentages)."
        )
    elif mm.type == "weights":
        notes.append(
            "User weights (--weights; 1/k each under --unweighted)."
            if mm.user_weights
            else "Inverse-variance weights."
        )
    notes.append("Numbers to 4 significant digits; JSON and CSV carry full precision.")
    notes += excluded_notes(mm.excluded)
    if mm.common_method:
        what = "Mantel-Haenszel" if mm.common_method == "MH" else "Peto"
    elif mm.model == "metareg":
        what = "meta-regression on " + ", ".join(mm.moderators)
        what += ", common effect" if mm.tau2_method == "FE" else f", {f.tau2_label(mm.tau2_method)}"
    else:
        what = (
            "common effect"
            if mm.model == "common"
            else f"random effects, {f.tau2_label(mm.tau2_method)}"
        )
    title = f"{MATRIX_TITLES[mm.type]} ({mm.measure}, {what}, k = {mm.k})"
    return [Section(title, cols, rows, notes)]


def matrix_records(mm: ModelMatrix) -> list[dict[str, Any]]:
    out = []
    for i, (label, row) in enumerate(zip(mm.labels, mm.values)):
        rec: dict[str, Any] = {"label": label}
        if mm.type != "coef":
            rec["row"] = mm.rows[i]
        for j, x in enumerate(row):
            rec[mm.labels[j] if mm.type == "coef" else str(j + 1)] = x
        out.append(rec)
    return out


VIEWS["blup"] = View(blup_sections, blup_records)
VIEWS["matrix"] = View(matrix_sections, matrix_records)
VIEWS["combine"] = View(combination_sections, combination_records)
VIEWS["cumulative"] = View(cumulative_sections, cumulative_records)
VIEWS["influence"] = View(influence_sections, influence_records)
VIEWS["influence_mods"] = View(influence_mods_sections, influence_mods_records)


# ---------------------------------------------------------------------------------------------
# reproduce: the paper's printed numbers against the recomputed ones

VERDICT_TEXT = {
    "reproduced": "reproduced",
    "differs": "DIFFERS",
    "differs_expected": "differs (expected)",
    "error": "ERROR",
}


def _full(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, dict)):
        return f"({type(value).__name__})"
    return str(value)


def reproduce_sections(res: ReproduceResult) -> list[Section]:
    revman = res.paper.get("kind") == "revman"
    cols = [
        "#",
        "Number",
        "Stored" if revman else "Printed",
        "Recomputed",
        "Rounded",
        "Verdict",
        "Note",
    ]
    rows = []
    notes = []
    for i, n in enumerate(res.numbers, start=1):
        verdict = VERDICT_TEXT.get(n.verdict, n.verdict)
        if n.verdict == "reproduced" and n.expect == "differs":
            verdict = "reproduced (expected to differ)"
        note = n.error if n.verdict == "error" else n.note
        rows.append([str(i), n.label, n.printed, _full(n.recomputed), n.rounded, verdict, note])
        if n.explanation:
            notes.append(f"{i}. {n.label}: {n.explanation}")
    notes.append(res.summary.line)
    title = str(res.paper.get("title") or res.source)
    if revman:
        notes += [
            f"analysis {n}: RevMan stored no pooled results (saved without calculated data)"
            for n in res.paper.get("not_stored", [])
        ]
        notes += [
            f"analysis {n}: not read (unsupported outcome type)"
            for n in res.paper.get("unsupported", [])
        ]
    return [
        Section(
            f"{'Numbers RevMan stored in' if revman else 'Printed numbers of'}: {title}",
            cols,
            rows,
            notes,
            right_align_from=2,
            text_columns=("Verdict", "Note"),
        )
    ]


def reproduce_records(res: ReproduceResult) -> list[dict[str, Any]]:
    records = []
    for n in res.numbers:
        d = n.to_dict()
        d["args"] = " ".join(d["args"])
        d.pop("alternatives")
        records.append(d)
    return records


VIEWS["reproduce"] = View(reproduce_sections, reproduce_records)


def _revman_result(rv: dict[str, Any]) -> str:
    est, lo, hi = rv.get("estimate"), rv.get("ci_low"), rv.get("ci_high")
    if est is None:
        return "not stored"
    if lo is None or hi is None:
        return f.num(est)
    return f"{f.num(est)} [{f.num(lo)}, {f.num(hi)}]"


def revman_sections(review: Any) -> list[Section]:
    from ivigmeta.io.revman import review_summary

    d = review_summary(review)
    cols = ["Analysis", "Name", "Data", "Measure", "Method", "Model", "k", "RevMan result", "I²"]
    rows = []
    for a in d["analyses"]:
        rv = a["revman"]
        i2 = rv.get("i2")
        rows.append(
            [
                a["number"],
                a["name"],
                a["data_type"],
                a["revman_measure"] or a["measure"],
                a["method"],
                a["model"],
                str(a["k"]),
                _revman_result(rv),
                "" if i2 is None else f"{f.num(i2, 1)}%",
            ]
        )
    notes = [f"{n['number']}: not read: {n['reason']}" for n in d["unsupported"]]
    title = d["review"]["title"] or review.source
    doi = d["review"]["doi"]
    return [
        Section(
            f"Analyses of {title}" + (f" (doi {doi})" if doi else ""),
            cols,
            rows,
            notes,
            right_align_from=6,
            text_columns=("Name",),
        )
    ]


def revman_records(review: Any) -> list[dict[str, Any]]:
    from ivigmeta.io.revman import review_summary

    d = review_summary(review)
    out = []
    for a in d["analyses"]:
        rec = {k: v for k, v in a.items() if k not in ("revman", "subgroups")}
        rec["subgroups"] = " ".join(a["subgroups"])
        rec.update({f"revman_{k}": v for k, v in a["revman"].items()})
        out.append(rec)
    return out


def _revman_payload(review: Any) -> dict[str, Any]:
    from ivigmeta.io.revman import review_summary

    return review_summary(review)


VIEWS["revman"] = View(revman_sections, revman_records, _revman_payload)


def _per_1000(x: float) -> str:
    return f"{round(x * 1000):,d}"


def _signed_per_1000(x: float) -> str:
    n = round(x * 1000)
    return f"{abs(n):,} {'more' if n > 0 else 'fewer'}" if n else "0 more"


def sof_sections(res: Any) -> list[Section]:
    level = f"{res.level * 100:g}%"
    relative = f"{res.measure} {f.est_ci(res.effect, res.ci_low, res.ci_high, f.decimals_for(res.measure))}"
    people = f"{res.participants:,}" if res.participants else "n/a"
    size = f"{people} ({res.k} stud{'y' if res.k == 1 else 'ies'})"
    certainty = (res.certainty or "not rated").capitalize()
    notes = [
        f"{res.model.capitalize()}-effects estimate with its {level} CI."
        + (
            " Risks per 1,000; the intervention risk applies the relative effect (and its CI) "
            "to the assumed control risk."
            if res.rows
            else ""
        ),
        "Certainty of the evidence: the user's GRADE rating (--certainty); ivigmeta does not "
        "compute it.",
    ]
    if res.comment:
        notes.append(f"Comment: {res.comment}")
    if not res.rows:
        cols = ["Outcome", f"Effect ({level} CI)", "Participants (studies)", "Certainty"]
        rows = [[res.outcome, relative, size, certainty]]
        return [Section("Summary of findings", cols, rows, notes, right_align_from=1)]
    cols = [
        "Outcome",
        "Assumed risk, control",
        f"Corresponding risk, intervention ({level} CI)",
        f"Relative effect ({level} CI)",
        f"Absolute difference ({level} CI)",
        "NNT",
        "Participants (studies)",
        "Certainty",
    ]
    rows = []
    capped = False
    for r in res.rows:
        source = "" if r.assumed_source == "given" else " (pooled)"
        nnt = ""
        if r.nnt is not None:
            kind = {"benefit": "NNTB", "harm": "NNTH"}.get(r.nnt_kind, "NNT")
            if kind == "NNT":
                kind += " (more events)" if r.difference > 0 else " (fewer events)"
            nnt = f"{kind} {math.ceil(r.nnt)}"
            if r.nnt_ci:
                nnt += f" (CI: {r.nnt_ci})"
        if r.corresponding_ci_high >= 1.0 or r.corresponding_ci_low <= 0.0:
            capped = True
        rows.append(
            [
                res.outcome + (f", {r.label}" if r.label else ""),
                f"{_per_1000(r.assumed_risk)} per 1,000{source}",
                f"{_per_1000(r.corresponding_risk)} per 1,000 "
                f"({_per_1000(r.corresponding_ci_low)} to {_per_1000(r.corresponding_ci_high)})",
                relative,
                f"{_signed_per_1000(r.difference)} per 1,000 "
                f"({_signed_per_1000(r.difference_ci_low)} to "
                f"{_signed_per_1000(r.difference_ci_high)})",
                nnt,
                size,
                certainty,
            ]
        )
    if capped:
        notes.append(
            "A risk bound reached 0 or 1,000 per 1,000: the relative effect's bound applied to "
            "the control risk lies beyond a possible risk and is shown at the limit."
        )
    return [
        Section(
            "Summary of findings",
            cols,
            rows,
            notes,
            right_align_from=1,
            text_columns=("NNT",),
        )
    ]


def sof_records(res: Any) -> list[dict[str, Any]]:
    base = {k: v for k, v in res.to_dict().items() if k not in ("risks",)}
    if not res.rows:
        return [base]
    return [{**base, **to_json_dict(r)} for r in res.rows]


VIEWS["sof"] = View(sof_sections, sof_records)


def gosh_sections(res: Any) -> list[Section]:
    d = f.decimals_for(res.measure)
    rows = [
        [res.measure, *(f.num(x, d) for x in res.estimate_quartiles)],
        ["I²", *(f.pct(x) for x in res.i2_quartiles)],
    ]
    how = (
        f"{res.n_subsets} random subsets (seed {res.seed})"
        if res.sampled
        else f"all {res.n_subsets} non-empty subsets"
    )
    model = "common-effect (inverse variance)" if res.model == "common" else "random-effects"
    notes = [
        f"{how} of the {res.k} studies, each fitted with the {model} model; "
        "--plot draws the estimate against I² for every subset, --format csv lists them."
    ]
    return [
        Section(
            "GOSH: the pooled estimate and I² over subsets of the studies",
            ["", "Minimum", "25%", "Median", "75%", "Maximum"],
            rows,
            notes,
        )
    ]


def gosh_records(res: Any) -> list[dict[str, Any]]:
    return [
        {
            "subset": j + 1,
            "k": res.sizes[j],
            "studies": "; ".join(res.members_of(j)),
            "estimate": res.estimates[j],
            "theta": res.thetas[j],
            "i2": res.i2[j],
        }
        for j in range(res.n_subsets)
    ]


VIEWS["gosh"] = View(gosh_sections, gosh_records)


# ---------------------------------------------------------------------------------------------
# aggregate: one effect per cluster


def _field_text(value: Any) -> str:
    if value is None:
        return f.NA
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _structure_text(agg: Aggregation) -> str:
    parts = [agg.struct]
    if agg.rho_column is not None:
        parts.append(f"rho from {agg.rho_column}")
    elif agg.rho is not None:
        parts.append(f"rho = {agg.rho:g}")
    if agg.phi_column is not None:
        parts.append(f"phi from {agg.phi_column}")
    elif agg.phi is not None:
        parts.append(f"phi = {agg.phi:g}")
    if agg.time is not None:
        parts.append(f"time {agg.time}")
    return ", ".join(parts)


def aggregate_sections(agg: Aggregation) -> list[Section]:
    cols = [agg.cluster, "k", "yi", "vi", "SE", *agg.columns]
    rows = [
        [c.cluster, str(c.k), f.num(c.yi, 4), f.num(c.vi, 6), f.num(c.se, 4)]
        + [_field_text(v) for _, v in c.fields]
        for c in agg.clusters
    ]
    how = "mean of the effects" if not agg.weighted else "inverse-variance (GLS) combination"
    ratio = agg.measure_known and agg.measure in RATIO_MEASURES
    scale = f"the log {agg.measure} scale" if ratio else "the analysis scale"
    what = agg.measure if agg.measure_known else "effects of no stated measure"
    notes = [
        f"{how} of each cluster's effects under {_structure_text(agg)}; yi and vi on {scale}.",
        "Other columns: the mean of a numeric column, the most frequent value of a text one; "
        "--format csv writes a table 'ivigmeta pool' reads.",
    ]
    notes += excluded_notes(agg.excluded)
    title = (
        f"Aggregated effects ({what}, {agg.n_clusters} cluster"
        f"{'s' if agg.n_clusters != 1 else ''} of {agg.k} effects by {agg.cluster})"
    )
    return [Section(title, cols, rows, notes)]


def aggregate_records(agg: Aggregation) -> list[dict[str, Any]]:
    """The CSV: a table of given effects ``ivigmeta pool`` reads (the cluster as the study
    label; ``measure`` when the measure is known; metafor's ``ki``; the other columns)."""
    out = []
    for c in agg.clusters:
        rec: dict[str, Any] = {"study": c.cluster, "yi": c.yi, "vi": c.vi}
        if agg.measure_known:
            rec["measure"] = agg.measure
        rec["ki"] = c.k
        rec.update(c.fields)
        out.append(rec)
    return out


VIEWS["aggregate"] = View(aggregate_sections, aggregate_records)


# ---------------------------------------------------------------------------------------------
# selmodel: selection models for publication bias

_ALTERNATIVE_TEXT = {"greater": "greater", "less": "less", "two.sided": "two-sided"}


def _num_or_na(x: float | None, decimals: int) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return f.NA
    return f.num(x, decimals)


def selmodel_sections(res: Any) -> list[Section]:
    d = f.decimals_for(res.measure)
    lvl = f"{res.level_percent:g}% CI"
    profiled = res.tau2_pl_ci_low is not None or any(dl.pl_ci_low is not None for dl in res.deltas)
    cols = ["Parameter", "Estimate", "SE", "z", "p-value", lvl, "Studies"]
    ratio = res.measure in RATIO_MEASURES
    name = f"{res.measure} (adjusted)" if ratio else f"{res.measure} (adjusted, theta)"
    rows = [
        [
            name,
            f.num(res.estimate, d),
            _num_or_na(res.se, 4),
            _num_or_na(res.z, 2),
            f.pval(res.p_value),
            f.ci(res.ci_low, res.ci_high, d),
            "",
        ]
    ]
    if res.model == "random":
        rows.append(
            [
                "tau²",
                f.tau2(res.tau2),
                _num_or_na(res.tau2_se, 4),
                "",
                "",
                f.ci(res.tau2_ci_low, res.tau2_ci_high, 4) if math.isfinite(res.tau2_se) else f.NA,
                "",
            ]
        )
    for dl in res.deltas:
        label = dl.name.replace("delta", "delta ")
        if dl.lower is not None:
            label += f" ({dl.lower:g} < p <= {dl.upper:g})"
        if dl.fixed:
            label += " [fixed]"
        rows.append(
            [
                label,
                f.num(dl.estimate, 4),
                _num_or_na(dl.se, 4),
                _num_or_na(dl.z, 2),
                f.pval(dl.p_value),
                f.ci(dl.ci_low, dl.ci_high, 4) if not dl.fixed else "",
                "" if dl.k is None else str(dl.k),
            ]
        )
    if profiled:
        cols.insert(6, f"Profile {lvl}")
        pl = [""] + (
            [f.ci(res.tau2_pl_ci_low, res.tau2_pl_ci_high, 4)] if res.model == "random" else []
        )
        pl += [
            f.ci(dl.pl_ci_low, dl.pl_ci_high, 4) if dl.pl_ci_low is not None else ""
            for dl in res.deltas
        ]
        for row, cell in zip(rows, pl):
            row.insert(6, cell)
    what = "random-effects (tau² by ML)" if res.model == "random" else "common-effect"
    how = f"type {res.type}"
    if res.steps:
        how += f", steps {', '.join(f'{a:g}' for a in res.steps)}"
    if res.prec:
        how += f", precision {res.prec}" + ("" if res.scaleprec else " (unscaled)")
    notes = [
        f"Selection model ({how}) on one-sided p-values ({_ALTERNATIVE_TEXT[res.alternative]}) "
        f"of the {res.k} studies, {what} model by maximum likelihood (metafor's selmodel).",
        f"Unadjusted ML estimate {f.num(res.estimate_unadjusted, d)}"
        + (f", tau² {f.tau2(res.tau2_unadjusted)}" if res.model == "random" else "")
        + f"; log-likelihood {res.ll:.4f} (unadjusted {res.ll_unadjusted:.4f}).",
    ]
    if res.lrt_df > 0:
        notes.append(
            f"Test for selection: LRT = {res.lrt:.4f} on {res.lrt_df} df, {f.p_eq(res.lrt_p)}."
        )
    else:
        notes.append("Every weight is given: no test for selection.")
    if res.lrt_tau2 is not None:
        notes.append(
            f"Test for heterogeneity: LRT = {res.lrt_tau2:.4f} on 1 df, {f.p_eq(res.lrt_tau2_p)}."
        )
    notes.extend(f"Note: {n}." for n in res.notes)
    notes += excluded_notes(res.excluded)
    return [Section("Selection model for publication bias", cols, rows, notes)]


def selmodel_records(res: Any) -> list[dict[str, Any]]:
    base = {
        "type": res.type,
        "alternative": res.alternative,
        "model": res.model,
        "k": res.k,
        "ll": res.ll,
        "lrt": res.lrt,
        "lrt_df": res.lrt_df,
        "lrt_p": res.lrt_p,
    }
    rows: list[dict[str, Any]] = [
        {
            **base,
            "parameter": "theta",
            "estimate": res.theta,
            "se": res.se,
            "z": res.z,
            "p_value": res.p_value,
            "ci_low": res.ci_low_theta,
            "ci_high": res.ci_high_theta,
        }
    ]
    if res.model == "random":
        rows.append(
            {
                **base,
                "parameter": "tau2",
                "estimate": res.tau2,
                "se": res.tau2_se,
                "ci_low": res.tau2_ci_low,
                "ci_high": res.tau2_ci_high,
                "pl_ci_low": res.tau2_pl_ci_low,
                "pl_ci_high": res.tau2_pl_ci_high,
            }
        )
    for dl in res.deltas:
        rows.append(
            {
                **base,
                "parameter": dl.name,
                "estimate": dl.estimate,
                "se": dl.se,
                "z": dl.z,
                "p_value": dl.p_value,
                "ci_low": dl.ci_low,
                "ci_high": dl.ci_high,
                "pl_ci_low": dl.pl_ci_low,
                "pl_ci_high": dl.pl_ci_high,
                "fixed": dl.fixed,
                "p_lower": dl.lower,
                "p_upper": dl.upper,
                "studies": dl.k,
            }
        )
    return rows


VIEWS["selmodel"] = View(selmodel_sections, selmodel_records)
# rve: robust variance estimation for dependent effects (robumeta's robu())


def _rve_model_text(rv: RobustVarianceModel) -> str:
    if rv.model == "correlated":
        return f"correlated effects model, rho = {rv.rho:g}"
    return "hierarchical effects model"


def rve_sections(rv: RobustVarianceModel) -> list[Section]:
    cols = ["Coefficient", "Estimate", "SE", "t", "df", "p-value", f"{rv.level * 100:g}% CI"]
    rows = [
        [
            c.name,
            f.num(c.estimate, 4),
            f.num(c.se, 4),
            f.num(c.statistic),
            f.num(c.df),
            f.pval(c.p_value),
            f.ci(c.ci_low, c.ci_high, 4),
        ]
        for c in rv.coefficients
    ]
    sizes = rv.sizes
    if rv.model == "correlated":
        components = f"tau² = {f.tau2(rv.tau2)} (between studies), I² = {f.pct(rv.i2)}"
    else:
        components = (
            f"tau² = {f.tau2(rv.tau2)} (between clusters), omega² = {f.tau2(rv.omega2)} "
            "(between effects within a cluster)"
        )
    notes = [
        f"{components}; method of moments (Hedges, Tipton & Johnson 2010), QE = {f.num(rv.qe)} "
        "of the first-stage fit.",
        f"{rv.k} effects in {rv.n_clusters} clusters by {rv.cluster} (per cluster: min "
        f"{sizes['min']:g}, mean {sizes['mean']:.3g}, median {sizes['median']:g}, max "
        f"{sizes['max']:g}).",
    ]
    if rv.small:
        notes.append(
            "Small-sample correction (Tipton 2015): CR2 sandwich with the model's weights, t on "
            "Satterthwaite df; with df < 4 the tests are not to be trusted (robumeta's note)."
        )
    else:
        notes.append(
            "Sandwich of Hedges, Tipton & Johnson (2010) with the factor N / (N - p), t on "
            f"N - p = {rv.n_clusters - len(rv.coefficients)} df."
        )
    notes += excluded_notes(rv.excluded)
    title = f"Robust variance estimation ({_rve_model_text(rv)}; {rv.measure})"
    return [Section(title, cols, rows, notes)]


def rve_records(rv: RobustVarianceModel) -> list[dict[str, Any]]:
    """One CSV record per coefficient, then one per variance component and statistic of the
    model (``estimate`` its value)."""
    out = [c.to_dict() | {"kind": "coefficient"} for c in rv.coefficients]
    extra = {"tau2": rv.tau2, "omega2": rv.omega2, "i2": rv.i2, "qe": rv.qe}
    for name, value in extra.items():
        if value is not None:
            out.append({"name": name, "estimate": value, "kind": "model"})
    return out


VIEWS["rve"] = View(rve_sections, rve_records)


# ---------------------------------------------------------------------------------------------
# ivigmeta transf: values through one of metafor's transf.* functions.

#: how the arguments of a transformation are named in its table's title
TRANSF_ARGUMENTS = {
    "n": "n",
    "time": "time",
    "sd": "sd",
    "pc": "pc",
    "n1": "n1",
    "n2": "n2",
    "tau2": "tau²",
    "lower": "lower",
    "upper": "upper",
    "n_harmonic": "harmonic mean n",
}


def _transf_arg(value: Any) -> str:
    if isinstance(value, tuple):
        return ", ".join(f.sig(v, 7) for v in value)
    return f.sig(value, 7)


def transf_sections(tr: Transformed) -> list[Section]:
    given = "; ".join(f"{TRANSF_ARGUMENTS[k]} = {_transf_arg(v)}" for k, v in tr.arguments.items())
    rows = [[f.sig(x, 7), f.sig(v, 7)] for x, v in zip(tr.x, tr.value)]
    notes = [f"{tr.description[0].upper()}{tr.description[1:]}."]
    if given:
        notes.append(f"Arguments: {given}.")
    notes.append("Numbers to 7 significant digits; JSON and CSV carry full precision.")
    if tr.function.endswith(".int") and not tr.tau2:
        notes.insert(-1, "tau² = 0: no integral, the back-transform of x itself.")
    elif tr.function.endswith(".int"):
        notes.insert(-1, "Integrated over x -+ 10 sqrt(tau²) unless --lower / --upper are given.")
    return [Section(tr.metafor, ["x", f"{tr.metafor}(x)"], rows, notes, right_align_from=0)]


def transf_records(tr: Transformed) -> list[dict[str, Any]]:
    out = []
    for i, (x, v) in enumerate(zip(tr.x, tr.value)):
        rec: dict[str, Any] = {"function": tr.function, "x": x, "value": v}
        for k in tr.arguments:
            if not (k == "n" and tr.function == "ipft.hm"):  # the sizes: n_harmonic is used
                rec[k] = tr.per_value(k, i)
        out.append(rec)
    return out


VIEWS["transf"] = View(transf_sections, transf_records)
