"""The ``ivigmeta`` command line: click lives here and nowhere else.

Commands load a table, call one core function, and hand the result to ``render``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

import click

from ivigmeta import __version__

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

# Each command's module, imported only when the command runs (or when a listing such as --help
# needs every command): `ivigmeta batch` never pays for the result classes of `pool`, nor `pool`
# for the report's templates.
COMMAND_MODULES = {
    "pool": "ivigmeta.cli.commands",
    "heterogeneity": "ivigmeta.cli.commands",
    "loo": "ivigmeta.cli.commands",
    "subgroup": "ivigmeta.cli.commands",
    "bias": "ivigmeta.cli.commands",
    "metareg": "ivigmeta.cli.metareg",
    "blup": "ivigmeta.cli.blup",
    "matrix": "ivigmeta.cli.matrix",
    "combine": "ivigmeta.cli.combine",
    "cumulative": "ivigmeta.cli.cumulative",
    "influence": "ivigmeta.cli.influence",
    "batch": "ivigmeta.cli.batch",
    "rob": "ivigmeta.cli.rob",
    "reproduce": "ivigmeta.cli.reproduce",
    "revman": "ivigmeta.cli.revman",
    "sof": "ivigmeta.cli.sof",
    "gosh": "ivigmeta.cli.gosh",
    "report": "ivigmeta.cli.report",
    "config": "ivigmeta.cli.config",
    "aggregate": "ivigmeta.cli.aggregate",
    "selmodel": "ivigmeta.cli.selmodel",
    "rve": "ivigmeta.cli.rve",
    "transf": "ivigmeta.cli.transf",
}


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use (``COMMAND_MODULES``).

    ``commands`` (click's name -> command mapping) still lists every command: reading it imports
    the ones not loaded yet.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMAND_MODULES, *self._loaded})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self._loaded and cmd_name in COMMAND_MODULES:
            import importlib

            module = importlib.import_module(COMMAND_MODULES[cmd_name])
            self.add_command(getattr(module, cmd_name))
        return self._loaded.get(cmd_name)

    @property
    def commands(self) -> MutableMapping[str, click.Command]:
        for name in COMMAND_MODULES:
            self.get_command(None, name)  # type: ignore[arg-type]
        return self._loaded

    @commands.setter
    def commands(self, value: MutableMapping[str, click.Command]) -> None:
        self._loaded = dict(value)

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        name = name or cmd.name
        if name is None:
            raise TypeError("Command has no name.")
        self._loaded[name] = cmd  # click's own add_command reads self.commands: load nothing


@click.group(cls=LazyGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="ivigmeta")
@click.option(
    "--config",
    "config_file",
    metavar="FILE",
    default=None,
    help="Settings file of option defaults [default: ./ivigmeta.toml, else [tool.ivigmeta] in "
    "./pyproject.toml]; IVIGMETA_<OPTION> environment variables override it, the command line "
    "overrides both. 'ivigmeta config' shows what is in force.",
)
@click.pass_context
def cli(ctx: click.Context, config_file: str | None) -> None:
    """Recompute meta-analyses from a CSV of study results.

    FILE is a CSV with the columns study, year, treat_events, treat_total, control_events,
    control_total and any label columns; it defaults to ./studies.csv, and - reads standard input.
    Means and SDs per arm (treat_mean, treat_sd, treat_n, ...), events and person-time
    (treat_events, treat_time, ...), one group's events and totals (events, total), correlations
    (cor, n), one group's means (mean, sd, n) or rates (events, time), pre-post changes,
    partial correlations, semicolon- and tab-separated files, .xlsx workbooks,
    metafor/meta/RevMan column names and rows giving an effect (estimate, ci_low, ci_high; or
    yi, vi) instead of counts are recognised: docs/input.md.
    """
    if ctx.invoked_subcommand is not None:
        _apply_settings(ctx, ctx.invoked_subcommand, config_file)


def _apply_settings(ctx: click.Context, name: str, config_file: str | None) -> None:
    """Defaults for the command's options from the settings file and IVIGMETA_* variables."""
    from ivigmeta.cli import config
    from ivigmeta.errors import DataError

    command = ctx.command.get_command(ctx, name)  # type: ignore[attr-defined]
    if command is None:
        return
    try:
        _, found = config.in_force(ctx, name, command, config_file)
    except DataError as exc:
        click.echo(f"Error: {exc}", err=True)
        ctx.exit(1)
    if found:
        ctx.default_map = {name: {p: s.value for p, s in found.items()}}


def main() -> None:
    """Console-script entry point: bugs become one line on stderr, never a traceback."""
    from ivigmeta.cli.common import debug_enabled, internal_error

    # The engine is numpy on small arrays: OpenBLAS's thread pool (a thread per core, spinning
    # after start-up) only costs CPU and start-up time here. A user's own setting is kept.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        cli.main(prog_name="ivigmeta", standalone_mode=True)
    except SystemExit:
        _before_exit()
        raise
    except Exception as exc:  # noqa: BLE001 - the last line of defence for users
        if debug_enabled():
            raise
        internal_error(exc)
    _before_exit()
    sys.exit(0)


def _before_exit() -> None:
    """The process is about to end: freeze every object, so that the interpreter's last garbage
    collections do not walk them all (20-30 ms once numpy is loaded, a tenth of a batch of
    10,000 meta-analyses); what they would have freed goes with the process anyway."""
    import gc

    gc.freeze()
