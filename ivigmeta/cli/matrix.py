"""``ivigmeta matrix``: the model's variance-covariance, hat and weight matrices."""

from __future__ import annotations

import click

from ivigmeta.cli.commands import load_fit, show
from ivigmeta.cli.common import analysis_command, handle_errors, study_model_options


@click.command()
@analysis_command
@click.option(
    "--type",
    "kind",
    type=click.Choice(("coef", "obs", "fitted", "resid", "hat", "weights"), case_sensitive=False),
    default="coef",
    show_default=True,
    help="coef: Var(beta) (metafor's vcov(fit)); obs, fitted, resid: the variance-covariance "
    'matrix of the observed effects, fitted values or residuals (vcov(fit, type = "obs"...)); '
    'hat: the hat matrix (hatvalues(fit, type = "matrix")); weights: the weight matrix '
    '(weights(fit, type = "matrix")).',
)
@study_model_options(
    "inverse variance (with or without --mod) or Mantel-Haenszel / Peto (coef, fitted and "
    "weights only)."
)
@handle_errors
def matrix(
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
    kind,
    mods,
    refs,
    categorical,
    model,
):
    """The model's matrices, on the analysis scale: Var(beta), the variance-covariance matrix
    of the observed effects, fitted values or residuals, the hat matrix or the weight matrix
    (metafor's vcov, hatvalues and weights with type = "matrix")."""
    fitted = load_fit(file, measure, cc, cc_policy, tau2_method, ci_method, common_method, level)
    show(
        fitted.matrix(kind, mods, refs=refs, categorical=categorical, model=model),
        "matrix",
        fmt,
        ascii_only,
    )
