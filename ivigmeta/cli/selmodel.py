"""``ivigmeta selmodel``: selection models for publication bias (metafor's ``selmodel()``)."""

from __future__ import annotations

import math

import click

from ivigmeta.cli.commands import load_fit, show
from ivigmeta.cli.common import analysis_command, handle_errors, note

#: ivigmeta.core.selection.TYPES / PRECISIONS (spelled out so that --help does not import numpy)
SELMODEL_TYPES = ("stepfun", "beta", "halfnorm", "negexp", "logistic", "power", "negexppow")
SELMODEL_PRECISIONS = ("sei", "vi", "ninv", "sqrtninv")


def _numbers(what: str, allow_na: bool):
    def parse(ctx: click.Context, param: click.Parameter, value: str | None):
        if value is None:
            return None
        out = []
        for part in value.split(","):
            text = part.strip()
            if allow_na and text.upper() == "NA":
                out.append(math.nan)
                continue
            try:
                x = float(text)
            except ValueError:
                raise click.BadParameter(
                    f"expected {what} separated by commas, got '{value}'"
                ) from None
            if math.isnan(x):
                raise click.BadParameter(f"expected {what} separated by commas, got '{value}'")
            out.append(x)
        return tuple(out)

    return parse


@click.command()
@analysis_command
@click.option(
    "--type",
    "sel_type",
    type=click.Choice(SELMODEL_TYPES, case_sensitive=False),
    required=True,
    help="Weight function of the p-values: stepfun (constant between the --steps cut-offs), "
    "beta, halfnorm, negexp, logistic, power or negexppow (metafor's type=).",
)
@click.option(
    "--steps",
    callback=_numbers("p-values", allow_na=False),
    metavar="P1,P2,...",
    default=None,
    help="stepfun: the p-value cut-offs (sorted; 1 is appended when missing). The other "
    "types but beta: one p-value up to which the weight is 1.",
)
@click.option(
    "--alternative",
    type=click.Choice(("greater", "less", "two-sided"), case_sensitive=False),
    default="greater",
    show_default=True,
    help="The one-sided p-values the selection acts on: of H1 effect > 0 (greater), < 0 "
    "(less), or two-sided.",
)
@click.option(
    "--prec",
    type=click.Choice(SELMODEL_PRECISIONS, case_sensitive=False),
    default=None,
    help="halfnorm, negexp, logistic, power, negexppow: scale the weight function by each "
    "study's precision (sei, vi, 1/n, 1/sqrt(n); n from counts or means), divided by its "
    "maximum.",
)
@click.option(
    "--no-scaleprec",
    is_flag=True,
    help="--prec unscaled (metafor's scaleprec=FALSE).",
)
@click.option(
    "--delta",
    callback=_numbers("numbers or NA", allow_na=True),
    metavar="D1,D2,...",
    default=None,
    help="Weights fixed a priori (Vevea & Woods 2005), one per delta (one value: all); NA "
    "for a delta to estimate. stepfun's first delta is 1 unless given.",
)
@click.option(
    "--model",
    "sel_model",
    type=click.Choice(("random", "common"), case_sensitive=False),
    default="random",
    show_default=True,
    help="Random effects (tau² estimated by ML) or common effect (tau² = 0).",
)
@click.option(
    "--profile-ci",
    is_flag=True,
    help="Also the profile-likelihood intervals of tau² and each estimated delta (metafor's "
    "confint() of a selection model; one refit per step of the root search).",
)
@handle_errors
def selmodel(
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
    sel_type,
    steps,
    alternative,
    prec,
    no_scaleprec,
    delta,
    sel_model,
    profile_ci,
):
    """Selection models for publication bias (Vevea & Hedges 1995; Citkowicz & Vevea 2017;
    metafor's selmodel()): the model refitted by maximum likelihood with a weight function of
    the studies' one-sided p-values, the adjusted estimate, tau² and weights, and the
    likelihood-ratio test against the unadjusted model."""
    if tau2_method.upper() != "ML":
        note(f"selmodel fits by maximum likelihood: --tau2 {tau2_method} is not used")
    if ci_method.lower() != "z":
        note(f"selmodel's tests and intervals are Wald z: --ci {ci_method} is not used")
    fitted = load_fit(file, measure, cc, cc_policy, "ML", "z", common_method, level)
    result = fitted.selmodel(
        sel_type,
        steps=steps,
        alternative=alternative,
        prec=prec,
        scaleprec=not no_scaleprec,
        delta=delta,
        model=sel_model,
        profile=profile_ci,
    )
    for text in result.notes:
        note(text)
    show(result, "selmodel", fmt, ascii_only)


for _param in selmodel.params:
    if _param.name == "tau2_method":
        _param.default = "ML"  # metafor refits the model by ML
