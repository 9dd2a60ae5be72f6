"""``ivigmeta influence``: case-deletion influence diagnostics and Baujat coordinates."""

from __future__ import annotations

import click

from ivigmeta.cli.commands import load_fit, show
from ivigmeta.cli.common import (
    analysis_command,
    check_plot_target,
    handle_errors,
    plot_option,
    save_plot,
)


@click.command()
@analysis_command
@plot_option
@click.option(
    "--figure",
    "figure",
    type=click.Choice(("baujat", "diagnostics")),
    default="baujat",
    show_default=True,
    help="What --plot draws: the Baujat plot, or one panel per diagnostic with its cut-off.",
)
@handle_errors
def influence(
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
    plot,
    figure,
):
    """Influence diagnostics (Viechtbauer & Cheung 2010, as metafor's influence()) and Baujat plot
    coordinates: studentized residuals, DFFITS, Cook's distance, COVRATIO, leave-one-out tau² and Q,
    hat values, weights and metafor's flag for influential studies.

    With --plot, also draw the Baujat plot (or, with --figure diagnostics, the diagnostics).
    """
    check_plot_target(plot, file)
    fitted = load_fit(file, measure, cc, cc_policy, tau2_method, ci_method, common_method, level)
    result = fitted.influence()
    save_plot(plot, "baujat" if figure == "baujat" else "influence", result)
    show(result, "influence", fmt, ascii_only)
