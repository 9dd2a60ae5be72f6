"""``ivigmeta influence``: case-deletion influence diagnostics and Baujat coordinates."""

from __future__ import annotations

import click

from ivigmeta.cli.commands import _require_pooled, load_and_fit, show
from ivigmeta.cli.common import analysis_command, handle_errors


@click.command()
@analysis_command
@handle_errors
def influence(
    file, fmt, ascii_only, measure, cc, cc_policy, tau2_method, ci_method, common_method, level
):
    """Influence diagnostics (Viechtbauer & Cheung 2010, as metafor's influence()) and Baujat plot
    coordinates: studentized residuals, DFFITS, Cook's distance, COVRATIO, leave-one-out tau² and Q,
    hat values, weights and metafor's flag for influential studies."""
    from ivigmeta.influence import influence as influence_analysis

    _, ma = load_and_fit(file, measure, cc, cc_policy, tau2_method, ci_method, common_method, level)
    _require_pooled(ma, "influence diagnostics")
    show(influence_analysis(ma), "influence", fmt, ascii_only)
