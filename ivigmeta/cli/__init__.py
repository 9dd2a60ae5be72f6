"""The ``ivigmeta`` command line: click lives here and nowhere else.

Commands load a table, call one core function, and hand the result to ``render``.
"""

from __future__ import annotations

import sys

import click

from ivigmeta import __version__
from ivigmeta.cli.batch import batch
from ivigmeta.cli.commands import COMMANDS
from ivigmeta.cli.metareg import metareg
from ivigmeta.cli.cumulative import cumulative
from ivigmeta.cli.influence import influence

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="ivigmeta")
def cli() -> None:
    """Recompute binary-outcome meta-analyses from a CSV of study event counts.

    FILE is a CSV with the columns study, year, treat_events, treat_total, control_events,
    control_total and any label columns; it defaults to ./studies.csv, and - reads standard input.
    Semicolon- and tab-separated files, .xlsx workbooks, metafor/meta/RevMan column names and rows
    giving an effect (estimate, ci_low, ci_high) instead of counts are recognised: docs/input.md.
    """


for _command in COMMANDS:
    cli.add_command(_command)
cli.add_command(metareg)
cli.add_command(cumulative)
cli.add_command(influence)
cli.add_command(batch)

from ivigmeta.cli.rob import rob  # noqa: E402

cli.add_command(rob)

from ivigmeta.cli.report import report as _report  # noqa: E402
from ivigmeta.cli.reproduce import reproduce as _reproduce  # noqa: E402

cli.add_command(_reproduce)
cli.add_command(_report)


def main() -> None:
    """Console-script entry point: bugs become one line on stderr, never a traceback."""
    from ivigmeta.cli.common import debug_enabled, internal_error

    try:
        cli.main(prog_name="ivigmeta", standalone_mode=True)
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - the last line of defence for users
        if debug_enabled():
            raise
        internal_error(exc)
    sys.exit(0)
