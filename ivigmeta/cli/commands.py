"""The analysis subcommands: pool, heterogeneity, loo, subgroup, bias (cumulative and influence
live in their own modules).

Each command parses its options, calls the public API (:mod:`ivigmeta.api`: read the table, fit,
ask the fit) and renders the result; no arithmetic here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ivigmeta.cli.common import (
    analysis_command,
    check_plot_target,
    cluster_estimator,
    cluster_options,
    forest_options,
    glmm_option,
    handle_errors,
    input_settings,
    model_settings,
    note,
    permutation_options,
    plot_option,
    refit_model_option,
    save_plot,
    show_result,
    tau2_ci_option,
)
from ivigmeta.io.studies import StudyTable
from ivigmeta.results import EffectSizes, MetaAnalysis

if TYPE_CHECKING:
    from ivigmeta.api import MetaAnalysisFit


def read_input(file: str) -> StudyTable:
    """Read FILE with the input options (--sep, --sheet, --columns, --missing ...) of the
    running command."""
    from ivigmeta.api import read

    opts = input_settings()
    table = read(
        file,
        columns=opts["columns"],
        sep=opts["sep"],
        sheet=opts["sheet"],
        analysis=opts["analysis"],
        missing=opts["missing"],
    )
    if table.settings.get("software") == "revman":
        s = table.settings
        note(
            f"{table.source}: '{s['name']}': RevMan's settings are the defaults "
            f"({s['measure']}, {s['common_method']}, {s['model']} effect, {s['level']:g}% CI)"
        )
    return table


def table_defaults(table: StudyTable, **given: Any) -> dict[str, Any]:
    """The option values ``given``, with those the user left at their defaults taken from the
    table's own settings (a RevMan analysis's measure, method and level)."""
    from click.core import ParameterSource

    settings = table.settings
    if not settings:
        return given
    ctx = click.get_current_context(silent=True)
    out = dict(given)
    for name, value in given.items():
        if name not in settings:
            continue
        source = ctx.get_parameter_source(name) if ctx is not None else None
        if name == "measure" and value is None or source in (ParameterSource.DEFAULT, None):
            out[name] = settings[name]
    return out


def load_effects(
    file: str, measure: str, cc: float, cc_policy: str
) -> tuple[StudyTable, EffectSizes]:
    """Read the table with the input options (--sep, --sheet, --columns, --keep-double-zero),
    print its notes, and compute the effect sizes; returns (table, effects)."""
    from ivigmeta.api import effect_sizes

    table = read_input(file)
    keep = input_settings()["keep_double_zero"]
    measure = table_defaults(table, measure=measure)["measure"]
    return table, effect_sizes(table, measure, cc, cc_policy, keep, on_note=note)


def load_fit(
    file: str,
    measure: str,
    cc: float,
    cc_policy: str,
    tau2_method: str,
    ci_method: str,
    common_method: str,
    level: float,
    glmm: str | None = None,
) -> MetaAnalysisFit:
    """Read the table and fit the models with the command-line options, printing the notes as
    they arise (before an error too)."""
    from ivigmeta.api import fit_table

    table = read_input(file)
    chosen = table_defaults(table, measure=measure, common_method=common_method, level=level)
    measure, common_method, level = chosen["measure"], chosen["common_method"], chosen["level"]
    if glmm and tau2_method.upper() != "DL":
        note(f"--tau2 {tau2_method} is not used by --glmm: its tau² is the maximum likelihood one")
    return fit_table(
        table,
        measure=measure,
        tau2=tau2_method,
        ci=ci_method,
        common=common_method,
        level=level,
        cc=cc,
        cc_policy=cc_policy,
        keep_double_zero=input_settings()["keep_double_zero"],
        on_note=note,
        glmm=glmm,
        software=input_settings()["software"],
        **model_settings(),
    )


def load_and_fit(
    file: str,
    measure: str,
    cc: float,
    cc_policy: str,
    tau2_method: str,
    ci_method: str,
    common_method: str,
    level: float,
) -> tuple[StudyTable, MetaAnalysis]:
    """:func:`load_fit` as (table, MetaAnalysis); ``reproduce`` builds its fits through it."""
    fitted = load_fit(file, measure, cc, cc_policy, tau2_method, ci_method, common_method, level)
    return fitted.table, fitted.analysis


def show(result, view: str, fmt: str, ascii_only: bool) -> None:
    show_result(result, view, fmt, ascii_only)


@click.command()
@analysis_command
@glmm_option
@forest_options
@plot_option
@click.option(
    "--figure",
    "figure",
    type=click.Choice(("forest", "labbe")),
    default="forest",
    show_default=True,
    help="What --plot draws: the forest plot, or the L'Abbé plot (2x2 counts: treatment against "
    "control event risk, the pooled effect as a curve).",
)
@cluster_options
@permutation_options(
    "the random-effects estimate (metafor's permutest: the signs flipped, exact over all 2^k "
    "when N is at least that, else N random ones)"
)
@handle_errors
def pool(
    file,
    fmt,
    ascii_only,
    measure,
    cc,
    cc_policy,
    tau2_method,
    ci_method,
    common_method,
    level,
    glmm,
    plot,
    model,
    labels,
    sort,
    xlim,
    figure,
    cluster,
    cluster_adjust,
    cluster_type,
    permutations,
    seed,
):
    """Pool the studies: per-study effects, common and random-effects estimates.

    With --plot, also draw the forest plot (--figure labbe: the L'Abbé plot). With --glmm, the
    random-effects row is the GLMM and the common-effect row its fixed-effects counterpart
    (tau² = 0). With --cluster, also the cluster-robust inference for the pooled estimates.
    """
    check_plot_target(plot, file)
    adjust, cr2 = cluster_estimator(cluster, cluster_adjust, cluster_type)
    if seed is not None and permutations is None:
        raise click.UsageError("--seed is the permutation test's: add --permutations N")
    fitted = load_fit(
        file, measure, cc, cc_policy, tau2_method, ci_method, common_method, level, glmm
    )
    if cluster is not None:
        fitted = fitted.with_robust(cluster, adjust, cr2)
        if fitted.analysis.robust is not None and fitted.analysis.robust.common_note:
            note(fitted.analysis.robust.common_note)
    if permutations is not None:
        fitted = fitted.with_permutest(permutations, seed)
    if not fitted.pooled:
        note("a single study: no pooling was done")
    common = fitted.analysis.common
    if common is not None and common.method == "MH" and fitted.measure not in ("OR", "IRR"):
        note(
            "the Cochran-Mantel-Haenszel and Tarone tests are for odds ratios: not computed "
            f"for {fitted.measure} (use --measure OR)"
        )
    if figure == "labbe":
        save_plot(plot, "labbe", fitted.analysis, labels=labels)
    else:
        save_plot(plot, "forest", fitted.analysis, model=model, labels=labels, sort=sort, xlim=xlim)
    show(fitted.analysis, "pool", fmt, ascii_only)


@click.command()
@analysis_command
@tau2_ci_option
@plot_option
@handle_errors
def heterogeneity(
    file,
    fmt,
    ascii_only,
    measure,
    cc,
    cc_policy,
    tau2_method,
    ci_method,
    common_method,
    level,
    tau2_ci,
    plot,
):
    """Heterogeneity: Cochran's Q, df, p, I², H², tau² and tau.

    The confidence intervals for tau², tau, I² and H² are the Q-profile ones unless --tau2-ci
    says otherwise. With --plot, also draw the radial (Galbraith) plot.
    """
    check_plot_target(plot, file)
    fitted = load_fit(file, measure, cc, cc_policy, tau2_method, ci_method, common_method, level)
    if not fitted.pooled:
        note("a single study: heterogeneity is not applicable")
    fitted = fitted.with_tau2_ci(tau2_ci)
    save_plot(plot, "radial", fitted.analysis)
    show(fitted.analysis, "heterogeneity", fmt, ascii_only)


@click.command()
@analysis_command
@glmm_option
@refit_model_option
@plot_option
@handle_errors
def loo(
    file,
    fmt,
    ascii_only,
    measure,
    cc,
    cc_policy,
    tau2_method,
    ci_method,
    common_method,
    level,
    glmm,
    model,
    plot,
):
    """Leave-one-out sensitivity analysis: the random-effects fit without each study in turn
    (with --model common, the common-effect fit by the --common method).

    With --plot, also draw the leave-one-out plot. With --glmm, each refit is that GLMM.
    """
    check_plot_target(plot, file)
    fitted = load_fit(
        file, measure, cc, cc_policy, tau2_method, ci_method, common_method, level, glmm
    )
    result = fitted.loo(model)
    save_plot(plot, "loo", result)
    show(result, "loo", fmt, ascii_only)


@click.command()
@analysis_command
@click.option(
    "--by",
    "columns",
    multiple=True,
    metavar="COL",
    help="Label column to subgroup by (repeat for several analyses); required except for a "
    "RevMan outcome with subgroups, whose subgroups are the default (with --between separate).",
)
@click.option(
    "--between",
    type=click.Choice(["metareg", "separate"]),
    default="metareg",
    show_default=True,
    help=(
        "Test for subgroup differences: mixed-effects meta-regression with one tau² from --tau2 "
        "(the paper's, CMA), or Q between subgroup estimates with separate tau² (meta, CMA)."
    ),
)
@forest_options
@glmm_option
@plot_option
@handle_errors
def subgroup(
    file,
    columns,
    between,
    fmt,
    ascii_only,
    measure,
    cc,
    cc_policy,
    tau2_method,
    ci_method,
    common_method,
    level,
    plot,
    model,
    labels,
    sort,
    xlim,
    glmm,
):
    """Subgroup analysis by label columns, with the between-subgroup test.

    With --plot, also draw a forest plot with one block per subgroup; with several --by, one
    file per column, named PATH with _COL before the extension. With --glmm, each subgroup is
    that GLMM and the subgroups are compared by Q between their estimates (--between separate).
    """
    fitted = None
    if not columns:
        # a RevMan outcome with subgroups: its subgroups, compared as RevMan compares them
        fitted = load_fit(
            file, measure, cc, cc_policy, tau2_method, ci_method, common_method, level, glmm
        )
        by = fitted.table.settings.get("subgroups")
        if not by:
            raise click.UsageError("Missing option '--by'.")
        columns = (by,)
        source = click.get_current_context().get_parameter_source("between")
        if source is None or source.name == "DEFAULT":
            between = "separate"
    targets = per_column_paths(plot, columns)
    for target in targets.values():
        check_plot_target(target, file)
    if glmm:
        ctx = click.get_current_context()
        source = ctx.get_parameter_source("between")
        if between == "metareg" and source is not None and source.name == "COMMANDLINE":
            raise click.UsageError(
                "--glmm compares subgroups by Q between their GLMM estimates: use --between "
                "separate (the GLMM meta-regression is ivigmeta metareg --mod COL --glmm MODEL)"
            )
        if between == "metareg":
            note(
                "--glmm: subgroups compared by Q between their GLMM estimates (--between separate)"
            )
        between = "separate"
    if fitted is None:
        fitted = load_fit(
            file, measure, cc, cc_policy, tau2_method, ci_method, common_method, level, glmm
        )
    result = fitted.subgroup(columns, between)
    for res in result.by:
        for e in res.excluded:
            if e.reason.startswith("no '"):
                note(f"--by {res.column}: {e.study} (row {e.row}) left out: {e.reason}")
    for column, target in targets.items():
        save_plot(
            target, "subgroup-forest", result, column=column, model=model, labels=labels,
            sort=sort, xlim=xlim,
        )  # fmt: skip
    show(result, "subgroup", fmt, ascii_only)


def per_column_paths(plot: str | None, columns) -> dict[str, str]:
    """The figure path for each --by column: PATH itself for one column, PATH_COL.ext for several."""
    import os

    if not plot:
        return {}
    unique = list(dict.fromkeys(columns))
    if len(unique) == 1:
        return {unique[0]: plot}
    stem, ext = os.path.splitext(plot)
    safe = {c: "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in c) for c in unique}
    return {c: f"{stem}_{safe[c]}{ext}" for c in unique}


BIAS_TESTS = ("egger", "regtest", "begg", "peters", "harbord", "trimfill", "failsafe", "tes")


@click.command()
@analysis_command
@click.option(
    "--test",
    "tests",
    multiple=True,
    type=click.Choice(BIAS_TESTS, case_sensitive=False),
    help="Test to run (repeat for several); default: every test that applies to the measure "
    "(Peters: RR and OR; Harbord: OR), except regtest and tes (the test of excess "
    "significance, metafor's tes()).",
)
@click.option(
    "--predictor",
    type=click.Choice(("sei", "vi", "ni", "ninv", "sqrtni", "sqrtninv"), case_sensitive=False),
    default=None,
    help="regtest: the measure of study size the effects are regressed on (metafor's "
    "predictor; ni = n1 + n2); implies --test regtest. Default sei.",
)
@click.option(
    "--regtest-model",
    "regtest_model",
    type=click.Choice(("rma", "lm"), case_sensitive=False),
    default=None,
    help="regtest: mixed-effects meta-regression with the fit's --tau2 and --ci (rma, "
    "metafor's default) or weighted least squares (lm, Egger's classical test); implies "
    "--test regtest. Default rma.",
)
@click.option(
    "--side",
    type=click.Choice(("left", "right"), case_sensitive=False),
    default=None,
    help="Trim-and-fill: side where studies are missing; default chosen as metafor does.",
)
@click.option(
    "--estimator",
    type=click.Choice(("L0", "R0"), case_sensitive=False),
    default="L0",
    show_default=True,
    help="Trim-and-fill estimator of the number of missing studies.",
)
@click.option(
    "--failsafe",
    "failsafe_method",
    type=click.Choice(("rosenthal", "orwin", "orwin-weighted", "rosenberg"), case_sensitive=False),
    default="rosenthal",
    show_default=True,
    help="Fail-safe N method.",
)
@click.option(
    "--target",
    type=float,
    default=None,
    help="Orwin's fail-safe N: the trivial effect on the reported scale (e.g. 1.1 for RR); "
    "default half the mean effect, as metafor.",
)
@click.option(
    "--alpha",
    type=float,
    default=0.05,
    show_default=True,
    help="Fail-safe N (Rosenthal, Rosenberg): significance level.",
)
@plot_option
@click.option(
    "--contour",
    is_flag=True,
    help="Contour-enhanced funnel plot: shade the p = 0.10, 0.05 and 0.01 significance regions.",
)
@click.option(
    "--no-triangle",
    is_flag=True,
    help="Funnel plot without the pseudo confidence limits (the triangle).",
)
@click.option(
    "--label-studies", is_flag=True, help="Funnel plot: name each study beside its point."
)
@handle_errors
def bias(
    file,
    tests,
    predictor,
    regtest_model,
    side,
    estimator,
    failsafe_method,
    target,
    alpha,
    fmt,
    ascii_only,
    measure,
    cc,
    cc_policy,
    tau2_method,
    ci_method,
    common_method,
    level,
    plot,
    contour,
    no_triangle,
    label_studies,
):
    """Small-study effects: Egger, Begg, Peters and Harbord tests, trim-and-fill, fail-safe N;
    metafor's regtest with --test regtest, --predictor or --regtest-model.

    With --plot, also draw the funnel plot, with the studies trim-and-fill imputes drawn
    hollow.
    """
    check_plot_target(plot, file)
    fitted = load_fit(file, measure, cc, cc_policy, tau2_method, ci_method, common_method, level)
    result = fitted.bias(
        tests=tests,
        side=side,
        estimator=estimator,
        failsafe=failsafe_method,
        alpha=alpha,
        target=target,
        predictor=predictor,
        regtest_model=regtest_model,
    )
    for name, res in result.results():
        reason = getattr(res, "reason", None)
        if reason:
            note(f"{name}: not applicable: {reason}")
    save_plot(
        plot,
        "funnel",
        result,
        contour=contour,
        triangle=not no_triangle,
        label_studies=label_studies or None,
    )
    show(result, "bias", fmt, ascii_only)


COMMANDS = [pool, heterogeneity, loo, subgroup, bias]
