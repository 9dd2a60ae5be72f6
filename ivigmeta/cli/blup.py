"""``ivigmeta blup``: per-study BLUPs, random effects, fitted values and residuals."""

from __future__ import annotations

import click

from ivigmeta.cli.commands import load_fit, show
from ivigmeta.cli.common import analysis_command, handle_errors, moderator_coding_options


@click.command()
@analysis_command
@click.option(
    "--mod",
    "mods",
    multiple=True,
    metavar="COL",
    help="Moderator column of a meta-regression model (repeat for several; as metareg). "
    "Without it: the intercept-only random-effects model.",
)
@moderator_coding_options
@click.option(
    "--model",
    "model",
    type=click.Choice(("random", "common"), case_sensitive=False),
    default="random",
    show_default=True,
    help="The random-effects model, or the common-effect one by --common: inverse variance "
    "(metafor's method=\"FE\", with or without --mod) or Mantel-Haenszel / Peto (metafor's "
    "residuals of rma.mh / rma.peto fits).",
)
@handle_errors
def blup(
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
    mods,
    refs,
    categorical,
    model,
):
    """Study-level quantities of the random-effects model (or, with --mod, the meta-regression):
    BLUP of each true effect, random effect, fitted value, residual, standardized and
    studentized deleted residual (metafor's blup, ranef, fitted, residuals, rstandard,
    rstudent)."""
    fitted = load_fit(file, measure, cc, cc_policy, tau2_method, ci_method, common_method, level)
    show(
        fitted.blup(mods, refs=refs, categorical=categorical, model=model), "blup", fmt, ascii_only
    )
