"""``ivigmeta revman``: the analyses of a RevMan 5 file (or of its CSV export), with the
numbers RevMan stored for each."""

from __future__ import annotations

import click

from ivigmeta.cli.common import handle_errors, note, output_options, show_result


@click.command()
@click.argument("file", metavar="FILE.rm5")
@output_options
@handle_errors
def revman(file, fmt, ascii_only):
    """List the analyses of a RevMan 5 review file (.rm5, or RevMan's CSV export of analyses).

    One row per outcome and per subgroup, numbered as RevMan numbers them (1.2, 1.2.3 for a
    subgroup), with its data type, effect measure, method, model, the number of estimable
    studies and the pooled result RevMan stored. Any command reads one of them with
    'FILE.rm5 --analysis 1.2'; 'ivigmeta reproduce FILE.rm5' checks every stored number.
    """
    from ivigmeta.api import read_revman

    review = read_revman(file)
    for message in review.notes:
        note(message)
    show_result(review, "revman", fmt, ascii_only)
