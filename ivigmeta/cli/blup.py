"""``ivigmeta blup``: per-study BLUPs, random effects, fitted values and residuals."""

from __future__ import annotations

import click

from ivigmeta.cli.commands import load_fit, show
from ivigmeta.cli.common import analysis_command, handle_errors, study_model_options


@click.command()
@analysis_command
@study_model_options(
    'inverse variance (metafor\'s method="FE", with or without --mod) or Mantel-Haenszel / '
    "Peto (metafor's residuals of rma.mh / rma.peto fits)."
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
