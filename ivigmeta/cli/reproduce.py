"""``ivigmeta reproduce``: check a paper's printed numbers against what the commands recompute.

The commands are run in-process (``cli.main(..., standalone_mode=False)`` with stdout captured),
each distinct command + options once (:mod:`ivigmeta.audit.runner`); the file is read by
:mod:`ivigmeta.audit.published`, the verdicts assembled by :mod:`ivigmeta.audit.reproduce`, the
alternatives tried by :mod:`ivigmeta.audit.explain`.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Sequence
from contextlib import redirect_stderr, redirect_stdout
from typing import TYPE_CHECKING, Any

import click

from ivigmeta.cli.common import handle_errors, output_options, show_result
from ivigmeta.errors import IvigmetaError

if TYPE_CHECKING:
    from ivigmeta.results import ReproduceResult

# Commands that do not print an analysis as JSON: never targets of a published number.
NOT_ANALYSES = ("reproduce", "report", "batch")


class InProcessRunner:
    """Runs ``ivigmeta COMMAND ARGS --format json`` in this process and returns the parsed JSON."""

    def __init__(self) -> None:
        from ivigmeta.cli import cli

        self.cli = cli
        self.commands: Sequence[str] = tuple(
            sorted(c for c in cli.commands if c not in NOT_ANALYSES)
        )

    def _invoke(self, command: str, args: Sequence[str], fmt: str) -> str:
        """``ivigmeta COMMAND ARGS --format FMT`` in this process; its stdout."""
        from ivigmeta.audit.runner import RunError

        if command not in self.commands:
            raise RunError(f"unknown command '{command}'")
        out, err = io.StringIO(), io.StringIO()
        try:
            with redirect_stdout(out), redirect_stderr(err):
                status = self.cli.main(
                    args=[command, *args, "--format", fmt],
                    prog_name="ivigmeta",
                    standalone_mode=False,
                )
        except click.ClickException as exc:
            raise RunError(exc.format_message()) from None
        except (click.exceptions.Exit, click.exceptions.Abort, SystemExit) as exc:
            code = getattr(exc, "exit_code", getattr(exc, "code", 1))
            if code:
                raise RunError(f"exited with status {code}: {err.getvalue().strip()}") from None
        except Exception as exc:  # noqa: BLE001 - a bug in a command must not stop the audit
            raise RunError(f"internal error ({type(exc).__name__}: {exc})") from None
        if isinstance(status, int) and status:  # a command that ended with ctx.exit(status)
            raise RunError(f"exited with status {status}: {err.getvalue().strip()}")
        return out.getvalue()

    def run(self, command: str, args: Sequence[str]) -> Any:
        """The command's ``--format json`` output, parsed."""
        from ivigmeta.audit.runner import RunError

        text = self._invoke(command, args, "json")
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise RunError("the command did not print JSON") from None

    def markdown(self, command: str, args: Sequence[str]) -> str:
        """The command's ``--format markdown`` output."""
        return self._invoke(command, args, "markdown")

    def plot_commands(self) -> tuple[str, ...]:
        """The commands that can draw a figure (they have a ``--plot`` option)."""
        return tuple(
            name
            for name in self.commands
            if any("--plot" in getattr(p, "opts", ()) for p in self.cli.commands[name].params)
        )

    def _context(self, command: str, args: Sequence[str]) -> click.Context:
        """The command's context with ``args`` parsed (option callbacks run), not invoked."""
        from ivigmeta.audit.runner import RunError

        cmd = self.cli.commands.get(command)
        if cmd is None:
            raise RunError(f"unknown command '{command}'")
        try:
            with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
                return cmd.make_context(command, list(args))
        except click.ClickException as exc:
            raise RunError(exc.format_message()) from None

    def params(self, command: str, args: Sequence[str]) -> dict[str, Any]:
        """The command's option values for ``args``."""
        return dict(self._context(command, args).params)

    def fit(self, command: str, args: Sequence[str]) -> Any:
        """The fitted MetaAnalysis the command starts from, built as the commands build it
        (inside the command's context, so options stored there apply too)."""
        import inspect

        from ivigmeta.audit.runner import RunError
        from ivigmeta.cli.commands import load_and_fit

        ctx = self._context(command, args)
        wanted = inspect.signature(load_and_fit).parameters
        missing = [name for name in wanted if name not in ctx.params]
        if missing:
            raise RunError(f"'{command}' has no option for {', '.join(missing)}")
        try:
            with ctx, redirect_stderr(io.StringIO()):
                _, ma = load_and_fit(**{name: ctx.params[name] for name in wanted})
        except IvigmetaError as exc:
            raise RunError(str(exc)) from None
        return ma

    def payload(self, result: Any, view: str) -> Any:
        from ivigmeta.render import render

        return json.loads(render(result, view, "json"))


def run_reproduce(published_path: str, data: str | None, explain: bool = True):
    """Load, validate and check a published-numbers file; returns the ReproduceResult."""
    from ivigmeta.audit.published import load_published, resolve_data
    from ivigmeta.audit.reproduce import reproduce

    if is_revman_file(published_path):
        from ivigmeta.api import audit_revman

        if data is not None:
            raise IvigmetaError(
                f"{published_path}: --data does not apply: a RevMan file holds its own data"
            )
        return audit_revman(published_path)
    runner = InProcessRunner()
    published = load_published(published_path, runner.commands)
    return reproduce(published, runner, resolve_data(published, data), explain=explain)


def is_revman_file(path: str) -> bool:
    """A RevMan 5 file (.rm5, or RevMan's CSV export of analyses), by its name or first bytes."""
    from ivigmeta.io.revman import is_revman_csv_head, is_rm5

    if path.lower().endswith(".rm5"):
        return True
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return is_rm5(path, head) or is_revman_csv_head(head)


def reproduce_paper(
    published: str | os.PathLike[str],
    data: str | os.PathLike[str] | None = None,
    explain: bool = True,
) -> ReproduceResult:
    """The public ``ivigmeta.reproduce()``: check a paper's printed numbers (a TOML file, docs/reproduce.md) against the data, as
    ``ivigmeta reproduce`` does.

    The audit replays the command lines the file records (``ivigmeta pool --tau2 REML ...``) in
    this process, so it lives with the command line rather than in :mod:`ivigmeta.api`.

    Parameters
    ----------
    published : str or os.PathLike
        The published-numbers file (``published.toml``).
    data : str or os.PathLike, optional
        The study table (default: the file's ``[paper] data`` entry, relative to it).
    explain : bool
        Try the usual alternative conventions on the numbers that differ.

    Returns
    -------
    ReproduceResult
        One check per number (``numbers``: verdict, printed and recomputed values) and the
        ``summary`` (``summary.ok`` is the command's exit status 0).
    """
    return run_reproduce(
        os.fspath(published), os.fspath(data) if data is not None else None, explain=explain
    )


def report_problems(result) -> None:
    """One line on stderr for each number that did not behave as expected."""
    for i, n in enumerate(result.numbers, start=1):
        if n.ok:
            continue
        name = f"number {i} ('{n.label}')"
        if n.verdict == "error":
            click.echo(f"Error: {name}: {n.error}", err=True)
        elif n.verdict == "differs":
            click.echo(f"differs: {name}: printed {n.printed}, the data give {n.rounded}", err=True)
        else:
            click.echo(
                f'unexpected: {name}: printed {n.printed} reproduces but expect = "differs"',
                err=True,
            )


@click.command()
@click.argument("published", required=False, default="published.toml", metavar="[PUBLISHED]")
@click.option(
    "--data",
    metavar="FILE",
    help="Study table to recompute from (default: the [paper] data entry, relative to PUBLISHED).",
)
@click.option(
    "--no-explain", is_flag=True, help="Do not try alternative conventions on numbers that differ."
)
@output_options
@handle_errors
def reproduce(published, data, no_explain, fmt, ascii_only):
    """Check a paper's printed numbers (a TOML file, default published.toml) against the data,
    or every number a RevMan file (.rm5 or its CSV export) stored against RevMan's methods.

    Each number names an ivigmeta command, its options and a JSON path into its output, and the
    value exactly as printed; it is compared at the precision it was printed with ('< x' and
    '> x' are bounds). Numbers that differ are explained by trying the usual alternative
    conventions. Exit status 0 when every number behaves as its 'expect' says, 1 otherwise.
    """

    result = run_reproduce(published, data, explain=not no_explain)
    show_result(result, "reproduce", fmt, ascii_only)
    report_problems(result)
    if not result.summary.ok:
        sys.stdout.flush()
        raise click.exceptions.Exit(1)
