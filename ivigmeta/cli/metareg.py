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
    moderator_coding_options,
    note,
    output_options,
    show_result,
    tau2_option,
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
@moderator_coding_options
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
    from ivigmeta.api import metareg_table
    from ivigmeta.cli.commands import load_effects

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
    )
    for e in reg.excluded:
        if e.reason.startswith("no value for moderator"):
            note(f"{e.study} (row {e.row}) left out: {e.reason}")
    show_result(reg, "metareg", fmt, ascii_only)
