"""``ivigmeta influence``: case-deletion influence diagnostics and Baujat coordinates, of the
random-effects model or (``--mod``) of a meta-regression."""

from __future__ import annotations

import click

from ivigmeta.cli.commands import load_fit, show
from ivigmeta.cli.common import (
    analysis_command,
    check_plot_target,
    handle_errors,
    moderator_coding_options,
    note,
    plot_option,
    save_plot,
)


@click.command()
@analysis_command
@click.option(
    "--mod",
    "mods",
    multiple=True,
    metavar="COL",
    help="Moderator column of a meta-regression model (repeat for several; coded as metareg "
    "codes them). Its diagnostics have one DFBETAS per coefficient and the leave-one-out "
    "coefficients; studies with an empty moderator are left out and listed.",
)
@moderator_coding_options
@click.option(
    "--model",
    "model",
    type=click.Choice(("random", "common"), case_sensitive=False),
    default="random",
    show_default=True,
    help="Diagnose the random-effects model (--tau2), or the common-effect inverse-variance "
    'one (metafor\'s method="FE"), with or without --mod.',
)
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
    mods,
    refs,
    categorical,
    model,
    plot,
    figure,
):
    """Influence diagnostics (Viechtbauer & Cheung 2010, as metafor's influence()) and Baujat plot
    coordinates: studentized residuals, DFFITS, Cook's distance, COVRATIO, leave-one-out tau² and Q,
    hat values, weights and metafor's flag for influential studies.

    With --mod, those of the meta-regression on the moderator columns (metafor's
    influence(rma(yi, vi, mods = ...))), with DFBETAS for every coefficient and the coefficients
    refitted without each study. With --plot, also draw the Baujat plot (or, with --figure
    diagnostics, the diagnostics).
    """
    check_plot_target(plot, file)
    fitted = load_fit(file, measure, cc, cc_policy, tau2_method, ci_method, common_method, level)
    result = fitted.influence(mods, refs=refs, categorical=categorical, model=model.lower())
    view = "influence"
    if mods or model.lower() == "common":
        view = "influence_mods"
        for e in result.excluded:
            if e.reason.startswith("no value for moderator"):
                note(f"{e.study} (row {e.row}) left out: {e.reason}")
    save_plot(plot, "baujat" if figure == "baujat" else "influence", result)
    show(result, view, fmt, ascii_only)
