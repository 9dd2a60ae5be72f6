"""``ivigmeta metareg``: mixed-effects meta-regression on moderator columns."""

from __future__ import annotations

import click

from ivigmeta.cli.common import (
    ci_option,
    effect_options,
    file_argument,
    handle_errors,
    input_options,
    level_option,
    note,
    output_options,
    tau2_option,
    write_output,
)


@click.command()
@file_argument
@click.option(
    "--mod",
    "mods",
    multiple=True,
    required=True,
    metavar="COL",
    help=(
        "Moderator column (repeat for several). Numeric columns are continuous, others are "
        "dummy-coded against a reference level."
    ),
)
@click.option(
    "--ref",
    "refs",
    multiple=True,
    metavar="[COL=]LEVEL",
    help="Reference level of a categorical moderator (default: its first level in file order).",
)
@click.option(
    "--categorical",
    "categorical",
    multiple=True,
    metavar="COL",
    help="Treat a numeric moderator column as categorical (dummy-coded).",
)
@input_options
@effect_options
@tau2_option
@ci_option
@level_option
@output_options
@handle_errors
def metareg(
    file,
    mods,
    refs,
    categorical,
    measure,
    cc,
    cc_policy,
    tau2_method,
    ci_method,
    level,
    fmt,
    ascii_only,
):
    """Mixed-effects meta-regression: coefficients, QM (F under --ci hk), QE, tau², I², R²."""
    from ivigmeta.cli.commands import load_effects
    from ivigmeta.errors import ModelError
    from ivigmeta.methods.metareg import metareg_analysis, resolve_refs
    from ivigmeta.render import render

    table, es = load_effects(file, measure, cc, cc_policy)
    for col in (*mods, *categorical):
        table.require_label_column(col)
    unknown = [c for c in categorical if c not in mods]
    if unknown:
        raise ModelError(f"--categorical {unknown[0]}: not one of the --mod columns")
    if not 0 < level < 100:
        raise ModelError(f"the confidence level must be between 0 and 100 percent, not {level:g}")
    for e in es.excluded:
        note(f"{table.source}, row {e.row}: {e.study} excluded: {e.reason}")
    reg = metareg_analysis(
        es,
        list(mods),
        tau2_method=tau2_method,
        ci_method=ci_method.lower(),
        level=level / 100.0,
        ref=resolve_refs(es, list(mods), refs),
        categorical=list(categorical),
    )
    for e in reg.excluded:
        if e.reason.startswith("no value for moderator"):
            note(f"{e.study} (row {e.row}) left out: {e.reason}")
    write_output(render(reg, "metareg", fmt, ascii_only=ascii_only))
