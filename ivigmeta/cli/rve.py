"""``ivigmeta rve``: robust variance estimation for dependent effect sizes (robumeta's
``robu()``: the correlated and hierarchical effects models)."""

from __future__ import annotations

import click

from ivigmeta.cli.aggregate import clustered_notes
from ivigmeta.cli.commands import read_input, table_defaults
from ivigmeta.cli.common import (
    effect_options,
    file_argument,
    handle_errors,
    input_options,
    input_settings,
    level_option,
    moderator_coding_options,
    note,
    output_options,
    show_result,
)

#: ivigmeta.core.rve.MODELS, spelled out so that --help imports no engine module
MODEL_CHOICES = ("correlated", "hierarchical")


@click.command()
@file_argument
@click.option(
    "--cluster",
    "cluster",
    required=True,
    metavar="COL",
    help="Column whose values define the independent clusters (the study of several outcomes "
    "or time points; robumeta's studynum); every analysed row needs a value.",
)
@click.option(
    "--mod",
    "mods",
    multiple=True,
    metavar="COL",
    help="Moderator column (repeat for several), coded as metareg codes it; without one, the "
    "intercept alone (the mean effect).",
)
@moderator_coding_options
@click.option(
    "--model",
    "model",
    type=click.Choice(MODEL_CHOICES, case_sensitive=False),
    default="correlated",
    show_default=True,
    help="The working model behind the weights: correlated effects (a study's effects share "
    'its sample, correlation --rho; robumeta\'s modelweights = "CORR") or hierarchical effects '
    '(studies nested in clusters; "HIER", tau² between and omega² within clusters).',
)
@click.option(
    "--rho",
    "rho",
    type=float,
    default=0.8,
    show_default=True,
    help="--model correlated: the assumed correlation of a study's effects, in [0, 1] "
    "(robumeta's default 0.8); it enters tau² only.",
)
@click.option(
    "--small/--no-small",
    "small",
    default=True,
    show_default=True,
    help="Tipton's (2015) small-sample correction (CR2 sandwich, t on Satterthwaite df; "
    "robumeta's small = TRUE), or the Hedges, Tipton & Johnson (2010) sandwich on N - p df.",
)
@input_options
@effect_options
@level_option
@output_options
@handle_errors
def rve(
    file,
    cluster,
    mods,
    refs,
    categorical,
    model,
    rho,
    small,
    measure,
    cc,
    cc_policy,
    level,
    fmt,
    ascii_only,
):
    """Robust variance estimation for dependent effect sizes (robumeta's robu()): the mean
    effect or a meta-regression whose standard errors stay valid when a study contributes
    several correlated effects, with tau² (and omega²), I², and t tests on Satterthwaite df.
    """
    from click.core import ParameterSource

    from ivigmeta.api import effect_sizes, rve_table

    ctx = click.get_current_context()
    model = model.lower()
    if model == "hierarchical" and ctx.get_parameter_source("rho") is ParameterSource.COMMANDLINE:
        note("--rho is not used by --model hierarchical")
    table = read_input(file)
    measure = table_defaults(table, measure=measure)["measure"]
    keep = input_settings()["keep_double_zero"]
    es = effect_sizes(
        table, measure, cc, cc_policy, keep, on_note=clustered_notes(cluster, "clustered")
    )
    result = rve_table(
        table,
        es,
        cluster,
        mods,
        refs=refs,
        categorical=categorical,
        model=model,
        rho=rho,
        small=small,
        level=level,
        measure_given=measure is not None,
        on_note=note,
    )
    for e in result.excluded:
        if e.reason.startswith("no value for moderator"):
            note(f"{e.study} (row {e.row}) left out: {e.reason}")
    show_result(result, "rve", fmt, ascii_only)
