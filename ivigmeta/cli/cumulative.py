"""``ivigmeta cumulative``: cumulative meta-analysis (studies added in order of a column)."""

from __future__ import annotations

import click

from ivigmeta.cli.commands import load_fit, show
from ivigmeta.cli.common import (
    analysis_command,
    check_plot_target,
    glmm_option,
    handle_errors,
    note,
    plot_option,
    refit_model_option,
    save_plot,
)


@click.command()
@analysis_command
@click.option(
    "--order",
    "order_by",
    default="year",
    show_default=True,
    metavar="COL",
    help="Column to add the studies by (numbers if every value is one, else text); ties keep file order.",
)
@click.option(
    "--desc", is_flag=True, help="Add the studies in descending order (newest first for year)."
)
@glmm_option
@refit_model_option
@plot_option
@handle_errors
def cumulative(
    file,
    order_by,
    desc,
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
    """Cumulative meta-analysis: the random-effects fit as each study is added in turn (with
    --glmm, that GLMM; with --model common, the common-effect fit by the --common method).

    With --plot, also draw the cumulative forest plot.
    """
    check_plot_target(plot, file)
    fitted = load_fit(
        file, measure, cc, cc_policy, tau2_method, ci_method, common_method, level, glmm
    )
    result = fitted.cumulative(order_by, descending=desc, model=model)
    if result.missing_order:
        note(f"no '{order_by}' value for {', '.join(result.missing_order)}: added last")
    save_plot(plot, "cumulative", result)
    show(result, "cumulative", fmt, ascii_only)
