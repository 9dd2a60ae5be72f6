"""``ivigmeta rob``: a ROBINS-I risk-of-bias table, its overall judgements and its figure."""

from __future__ import annotations

import click

from ivigmeta.cli.common import (
    check_plot_target,
    handle_errors,
    note,
    output_options,
    plot_option,
    save_plot,
    show_result,
)

DEFAULT_ROB_FILE = "rob.csv"


@click.command()
@click.argument("robfile", required=False, default=DEFAULT_ROB_FILE, metavar="[ROBFILE]")
@click.option(
    "--weights",
    "weights_file",
    default=None,
    metavar="FILE",
    help="Weight the summary by each study's random-effects weight in the meta-analysis of the "
    "study table FILE (default options), matched on the study name.",
)
@output_options
@plot_option
@handle_errors
def rob(robfile, weights_file, fmt, ascii_only, plot):
    """Risk of bias (ROBINS-I): per-domain judgements and the overall judgement by the rules.

    ROBFILE (default ./rob.csv, - for standard input) has a study column, the seven domains
    confounding, selection, classification, deviations, missing_data, measurement,
    reported_result (or D1 to D7), and optionally overall and weight. Judgements: low, moderate,
    serious, critical, no information. A missing overall is computed by the rules; a given one
    that contradicts them is reported. The summary is weighted by the weight column, or with
    --weights by the meta-analysis weights. With --plot, also draw the traffic-light plot and
    the summary bar chart.
    """
    from ivigmeta.methods.rob import load_rob, weight_by_fit

    check_plot_target(plot, robfile, weights_file)
    result = load_rob(robfile)
    if weights_file is not None:
        from ivigmeta.core.effects import compute_effects
        from ivigmeta.core.pooling import fit
        from ivigmeta.io.studies import load_table

        table = load_table(weights_file)
        if result.weighted:
            note(
                f"{result.source}: the weight column is replaced by the weights from {table.source}"
            )
        result = weight_by_fit(result, fit(compute_effects(table.studies)), table.source)
    for s in result.contradictions:
        note(
            f"{result.source}, row {s.row}: {s.study}: the overall judgement given "
            f"({s.overall_given}) contradicts the ROBINS-I rules ({s.overall_rule})"
        )
    save_plot(plot, "rob", result)
    show_result(result, "rob", fmt, ascii_only)
