"""Running the commands a published-numbers file names, each distinct one once.

The command line provides a :class:`Runner` (``ivigmeta.cli.reproduce.InProcessRunner``) so that
the audit never imports click; :class:`CommandCache` runs each command and options once and keeps
failures too, as :class:`RunError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ivigmeta.errors import IvigmetaError


class RunError(IvigmetaError):
    """A command could not produce its output (usage error, bad data ...); the message says why."""


class Runner(Protocol):
    """What the core needs from the command line: run a command in-process and return its JSON.

    ``run`` raises :class:`RunError` when the command fails. For alternatives computed in the
    core: ``params`` parses a command's options into their values, ``fit`` returns the fitted
    :class:`~ivigmeta.results.MetaAnalysis` the command starts from, and ``payload`` renders a
    result object as the command's JSON would show it.
    """

    commands: Sequence[str]

    def run(self, command: str, args: Sequence[str]) -> Any: ...

    def params(self, command: str, args: Sequence[str]) -> dict[str, Any]: ...

    def fit(self, command: str, args: Sequence[str]) -> Any: ...

    def payload(self, result: Any, view: str) -> Any: ...


@dataclass
class CommandCache:
    """Runs each distinct command + options once; failures are cached as well."""

    runner: Runner
    data: str
    results: dict[tuple[str, tuple[str, ...]], Any] = field(default_factory=dict)
    runs: int = 0

    def get(self, command: str, args: Sequence[str]) -> Any:
        """The JSON of ``command`` run on the data with ``args``; :class:`RunError` if it fails."""
        key = (command, tuple(args))
        if key not in self.results:
            self.runs += 1
            try:
                self.results[key] = self.runner.run(command, [self.data, *args])
            except RunError as exc:
                self.results[key] = exc
        out = self.results[key]
        if isinstance(out, RunError):
            raise out
        return out


def command_line(command: str, args: Sequence[str]) -> str:
    """The shell command line that runs ``command`` with ``args`` (for messages)."""
    import shlex

    return " ".join(["ivigmeta", command, *(shlex.quote(a) for a in args)])
