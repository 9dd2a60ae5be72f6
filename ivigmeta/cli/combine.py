"""``ivigmeta combine``: Stouffer's and Fisher's tests combining the studies' z values."""

from __future__ import annotations

import click

from ivigmeta.cli.common import (
    effect_options,
    file_argument,
    handle_errors,
    input_options,
    output_options,
    show_result,
)


@click.command()
@file_argument
@click.option(
    "--method",
    "method",
    type=click.Choice(("stouffer", "fisher"), case_sensitive=False),
    default="stouffer",
    show_default=True,
    help="Stouffer's Z = sum(w z) / sqrt(sum w²), or Fisher's X² = -2 sum log p on 2k df.",
)
@click.option(
    "--mode",
    "mode",
    type=click.Choice(("directed", "undirected", "concordant"), case_sensitive=False),
    default="directed",
    show_default=True,
    help="directed: effects consistently above 0; concordant: consistently in one direction "
    "(both directed tests, p = 2 min); undirected: |z| of every study (PyMARE's modes).",
)
@click.option(
    "--weights",
    "weights",
    default=None,
    metavar="COLUMN",
    help="Column of Stouffer weights (e.g. the sample sizes); unweighted without it.",
)
@input_options
@effect_options
@output_options
@handle_errors
def combine(file, method, mode, weights, measure, cc, cc_policy, fmt, ascii_only):
    """Combine the studies' one-sided evidence: each study's z = effect / SE on the analysis
    scale (p = 1 - Phi(z), an effect above 0), by Stouffer's or Fisher's test (PyMARE's
    combination tests; R's metap sumz and sumlog)."""
    from ivigmeta.api import combine_table
    from ivigmeta.cli.commands import load_effects

    table, es = load_effects(file, measure, cc, cc_policy)
    show_result(combine_table(table, es, method, mode, weights), "combine", fmt, ascii_only)
