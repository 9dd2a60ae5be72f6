"""``ivigmeta gosh``: the model fitted to subsets of the studies (GOSH plot)."""

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
@click.option(
    "--subsets",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Random subsets to fit when there are more than 15 studies (up to 15, every one of the "
    "2^k - 1 subsets is fitted).",
)
@click.option("--seed", type=int, default=None, help="Seed of the random subsets.")
@click.option(
    "--model",
    "gosh_model",
    type=click.Choice(["common", "random"]),
    default="common",
    show_default=True,
    help="Fit each subset with the common-effect model (metafor's gosh on an equal-effects "
    "fit) or the random-effects model with --tau2.",
)
@plot_option
@handle_errors
def gosh(
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
    subsets,
    seed,
    gosh_model,
    plot,
):
    """GOSH: the pooled estimate and I² of every subset of the studies (Olkin, Dahabreh &
    Trikalinos 2012; metafor's gosh()), summarized; --plot draws the GOSH plot, --format csv
    lists every subset."""
    check_plot_target(plot, file)
    fitted = load_fit(file, measure, cc, cc_policy, tau2_method, ci_method, common_method, level)
    result = fitted.gosh(subsets=subsets, seed=seed, model=gosh_model)
    save_plot(plot, "gosh", result)
    show(result, "gosh", fmt, ascii_only)
