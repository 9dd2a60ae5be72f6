"""``ivigmeta sof``: a GRADE-style summary of findings of the pooled analysis."""

from __future__ import annotations

import click

from ivigmeta.cli.commands import load_fit, show
from ivigmeta.cli.common import analysis_command, handle_errors


@click.command()
@analysis_command
@click.option(
    "--control-risk",
    "control_risks",
    type=float,
    multiple=True,
    metavar="RISK",
    help="Assumed control risk, a proportion (0.25 for 250 per 1,000); repeat for several "
    "populations. Default: the pooled control-arm risk of the studies.",
)
@click.option(
    "--certainty",
    type=click.Choice(["high", "moderate", "low", "very-low"], case_sensitive=False),
    default=None,
    help="Your GRADE rating of the certainty of the evidence (shown as given; never computed).",
)
@click.option("--outcome", default="", metavar="NAME", help="The outcome's name in the table.")
@click.option("--comment", default="", metavar="TEXT", help="A comment shown with the row.")
@click.option(
    "--event-desirable/--event-undesirable",
    default=None,
    help="Whether the event is good (live birth) or bad (death): the NNT is then a benefit "
    "(NNTB) or harm (NNTH); unsaid, it is shown as more or fewer events.",
)
@click.option(
    "--model",
    "sof_model",
    type=click.Choice(["random", "common"]),
    default="random",
    show_default=True,
    help="Which pooled estimate the summary uses.",
)
@handle_errors
def sof(
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
    control_risks,
    certainty,
    outcome,
    comment,
    event_desirable,
    sof_model,
):
    """Summary of findings (GRADE style, as RevMan and GRADEpro print it).

    The pooled relative effect applied to the assumed control risk: the risk per 1,000 in the
    control and intervention groups with its CI, the absolute difference, the number needed to
    treat (benefit or harm), participants and studies, and your certainty rating. For MD and
    SMD analyses, the pooled difference.
    """
    fitted = load_fit(file, measure, cc, cc_policy, tau2_method, ci_method, common_method, level)
    result = fitted.sof(control_risks, certainty, outcome, sof_model, event_desirable, comment)
    show(result, "sof", fmt, ascii_only)
