"""``ivigmeta metareg``: mixed-effects meta-regression on moderator columns."""

from __future__ import annotations

import click

from ivigmeta.cli.common import (
    check_plot_target,
    ci_option,
    cluster_estimator,
    cluster_options,
    effect_options,
    file_argument,
    glmm_option,
    handle_errors,
    input_options,
    level_option,
    moderator_coding_options,
    note,
    output_options,
    permutation_options,
    plot_option,
    save_plot,
    show_result,
    tau2_ci_option,
    tau2_option,
)


@click.command()
@file_argument
@click.option(
    "--mod",
    "mods",
    multiple=True,
    metavar="COL",
    help=(
        "Moderator column (repeat for several). Numeric columns are continuous, others are "
        "dummy-coded against a reference level. Required unless --scale is given."
    ),
)
@moderator_coding_options
@click.option(
    "--scale",
    "scale",
    multiple=True,
    metavar="COL",
    help="Scale moderator column (repeat for several; coded as --mod): the location-scale model "
    "(metafor's rma(..., scale = ~ ...)), tau² regressed on these. REML (or --tau2 ML); "
    "--mod is then optional.",
)
@click.option(
    "--scale-link",
    "scale_link",
    type=click.Choice(("log", "identity"), case_sensitive=False),
    default="log",
    show_default=True,
    help="Link of the scale model: log tau²_i = z_i'alpha, or tau²_i = z_i'alpha (>= 0).",
)
@click.option(
    "--att",
    "att",
    multiple=True,
    metavar="COL|COEF[,COEF...]",
    help="With --scale: also a Wald test that these scale coefficients are all zero, as "
    "metafor's anova(fit, att = ...); repeat for several tests.",
)
@click.option(
    "--predict-scale",
    "predict_scale",
    multiple=True,
    metavar="COL=VALUE[,COL=VALUE...]",
    help="With --scale: the scale model's prediction at these scale-moderator values (one for "
    "every scale moderator; repeat for several): z'alpha, SE, CI and tau², as metafor's "
    "predict(fit, newscale = ...).",
)
@click.option(
    "--scale-profile",
    "scale_profile",
    is_flag=True,
    help="With --scale: also the profile-likelihood CI of every scale coefficient "
    "(metafor's confint(fit, alpha = j)).",
)
@click.option(
    "--scale-lrt",
    "scale_lrt",
    is_flag=True,
    help="With --scale: also the likelihood-ratio test against the same location model with "
    "scale ~ 1 (metafor's anova(full, reduced)).",
)
@click.option(
    "--model",
    "model",
    type=click.Choice(("random", "common"), case_sensitive=False),
    default="random",
    show_default=True,
    help="Mixed-effects meta-regression (tau² by --tau2), or the fixed-effects (common-effect) "
    'meta-regression with tau² = 0 (metafor\'s method = "FE").',
)
@click.option(
    "--predict",
    "predict",
    multiple=True,
    metavar="COL=VALUE[,COL=VALUE...]",
    help="Predicted effect at these moderator values (one for every moderator; repeat for "
    "several): estimate, SE, CI and prediction interval, as metafor's predict(newmods = ...). "
    "With --scale the interval needs the scale moderators' values too (newscale).",
)
@click.option(
    "--weights",
    "weights",
    default=None,
    metavar="COLUMN",
    help="Column of user weights for the coefficients (metafor's weights=): (X'AX)^-1 X'Ay; "
    "tau², QE and I² stay the inverse-variance ones. --ci z or t.",
)
@click.option(
    "--tau2-weights",
    "tau2_weights",
    default=None,
    metavar="COLUMN",
    help="Column of study weights for --tau2 GENQ (the generalized Q estimator, metafor's "
    'method="GENQ" with weights=; add --weights COLUMN to weight the coefficients too, as '
    "metafor does).",
)
@click.option(
    "--unweighted",
    "unweighted",
    is_flag=True,
    default=False,
    help="Every study weighs the same in the coefficients (metafor's weighted=FALSE): "
    "(X'X)^-1 X'y with the sandwich Var(b); tau², QE and I² stay the inverse-variance ones. "
    "--ci z or t.",
)
@click.option(
    "--contrast",
    "contrast",
    multiple=True,
    metavar="COEF=W[,COEF=W...]",
    help="Also the linear combination of the coefficients with these weights (the others 0; "
    "names as the table prints them, e.g. 'intercept=1,ablat=30'): estimate, SE, test and CI, "
    "and with several their joint Wald test, as metafor's anova(fit, L = ...).",
)
@click.option(
    "--btt",
    "btt",
    multiple=True,
    metavar="COL|COEF[,COEF...]",
    help="Also a Wald test that these coefficients are all zero (a moderator column: all its "
    "coefficients), as metafor's anova(fit, btt = ...); repeat for several tests.",
)
@click.option(
    "--lrt",
    "lrt",
    multiple=True,
    metavar="COL",
    help="Also the likelihood-ratio test of the model against the same model without these "
    "moderators (repeat for several), as metafor's anova(full, reduced); use --tau2 ML for "
    "models that differ in their moderators.",
)
@permutation_options(
    "every coefficient and of QM (metafor's permutest): exact when there are at most N "
    "distinct permutations, else N random ones"
)
@cluster_options
@plot_option
@click.option(
    "--plot-mod",
    "plot_mod",
    default=None,
    metavar="COL",
    help="The continuous moderator on the bubble plot's x axis [default: the first one].",
)
@glmm_option
@input_options
@effect_options
@tau2_option
@tau2_ci_option
@ci_option
@level_option
@output_options
@handle_errors
def metareg(
    file,
    mods,
    refs,
    categorical,
    scale,
    scale_link,
    att,
    predict_scale,
    scale_profile,
    scale_lrt,
    model,
    predict,
    weights,
    unweighted,
    tau2_weights,
    contrast,
    btt,
    lrt,
    permutations,
    seed,
    cluster,
    cluster_adjust,
    cluster_type,
    plot,
    plot_mod,
    glmm,
    measure,
    cc,
    cc_policy,
    tau2_method,
    tau2_ci,
    ci_method,
    level,
    fmt,
    ascii_only,
):
    """Meta-regression (mixed-effects, or common-effect with --model common): coefficients, QM
    (F under --ci hk), QE, tau², I², R²; predictions at given moderator values, a permutation
    test, and with --plot the bubble plot (studies against a continuous moderator, circle areas
    by weight, the regression line and its confidence band). With --scale, the location-scale
    model: the location coefficients and QM, the scale coefficients and QS, the fitted tau²_i.
    With --glmm, the meta-regression of that GLMM on the raw counts (metafor's rma.glmm with
    mods): coefficients, QM, residual tau², the Wald and likelihood-ratio tests of residual
    heterogeneity, fit statistics.
    """
    from click.core import ParameterSource

    from ivigmeta.api import metareg_bubble, metareg_table
    from ivigmeta.cli.commands import load_effects
    from ivigmeta.cli.common import input_settings

    ctx = click.get_current_context()
    if scale and glmm:
        raise click.UsageError("--scale (a location-scale model) and --glmm exclude each other")
    if not scale:
        if not mods:
            raise click.MissingParameter(ctx=ctx, param=_param(ctx, "mods"))
        for name, option in (
            ("scale_link", "--scale-link"),
            ("att", "--att"),
            ("predict_scale", "--predict-scale"),
            ("scale_profile", "--scale-profile"),
            ("scale_lrt", "--scale-lrt"),
        ):
            if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE:
                raise click.UsageError(f"{option} goes with --scale COL (a location-scale model)")
    else:
        if plot is not None:
            raise click.UsageError("--plot (the bubble plot) is not offered with --scale")
        if ctx.get_parameter_source("tau2_method") is not ParameterSource.COMMANDLINE:
            tau2_method = "REML"
            note("location-scale model (--scale): fitted by REML, as metafor (--tau2 ML for ML)")
        elif tau2_method.upper() not in ("REML", "ML"):
            raise click.UsageError(
                f"--tau2 {tau2_method}: location-scale models (--scale) are fitted by REML or ML"
            )
        if ctx.get_parameter_source("tau2_ci") is ParameterSource.COMMANDLINE:
            raise click.UsageError("--tau2-ci does not apply to location-scale models (--scale)")
    if glmm and plot is not None:
        raise click.UsageError(
            "--plot draws the bubble plot of the normal-normal meta-regression, not --glmm"
        )
    check_plot_target(plot, file)
    if plot_mod is not None and plot is None:
        raise click.UsageError("--plot-mod chooses the bubble plot's moderator: add --plot PATH")
    if seed is not None and permutations is None:
        raise click.UsageError("--seed is the permutation test's: add --permutations N")
    adjust, cr2 = cluster_estimator(cluster, cluster_adjust, cluster_type)

    table, es = load_effects(file, measure, cc, cc_policy)
    reg = metareg_table(
        table,
        es,
        mods,
        refs=refs,
        categorical=categorical,
        tau2=tau2_method,
        ci=ci_method,
        level=level,
        on_note=note,
        model=model,
        predict=predict,
        permutations=permutations,
        seed=seed,
        tau2_ci=tau2_ci,
        btt=btt,
        lrt=lrt,
        weights=weights,
        unweighted=unweighted,
        cluster=cluster,
        adjust=adjust,
        cr2=cr2,
        scale=scale,
        scale_link=scale_link.lower(),
        att=att,
        predict_scale=predict_scale,
        scale_profile=scale_profile,
        scale_lrt=scale_lrt,
        glmm=glmm,
        keep_double_zero=input_settings()["keep_double_zero"],
        contrast=contrast,
        tau2_weights=tau2_weights,
    )
    for e in reg.excluded:
        if e.reason.startswith("no value for moderator"):
            note(f"{e.study} (row {e.row}) left out: {e.reason}")
    if plot:
        save_plot(plot, "bubble", metareg_bubble(reg, plot_mod))
    show_result(reg, "metareg", fmt, ascii_only)


def _param(ctx: click.Context, name: str) -> click.Parameter:
    """The command's parameter ``name`` (for click's own missing-option message)."""
    return next(p for p in ctx.command.params if p.name == name)
