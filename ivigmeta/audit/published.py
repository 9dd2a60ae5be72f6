"""The published-numbers file: a paper's printed numbers and where ivigmeta recomputes each.

A *published-numbers file* (TOML, schema in docs/reproduce.md) lists every number a paper prints:
for each, the ivigmeta command and options that recompute it, a JSON path into that command's
``--format json`` output (:mod:`ivigmeta.audit.paths`), the value exactly as printed
(:mod:`ivigmeta.audit.compare`), and whether it is expected to match. This module loads and
validates that file; every problem is a :class:`PublishedError` naming the entry.

TOML is read with the standard library's ``tomllib`` (Python >= 3.11) or ``tomli``, imported only
when a file is loaded.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ivigmeta.audit.compare import parse_printed
from ivigmeta.audit.paths import PathError, parse_path
from ivigmeta.errors import IvigmetaError

DEFAULT_PUBLISHED = "published.toml"
EXPECT_VALUES = ("match", "differs")
NUMBER_KEYS = {"label", "command", "args", "path", "printed", "expect", "note", "where", "scale"}
TOP_KEYS = {"paper", "number"}

# The options a number's ``args`` may hold: those that choose the analysis. Anything else, above
# all an option that writes a file (--plot, -o), would let checking a paper's numbers overwrite
# files the TOML names; reproduce and report refuse it.
ANALYSIS_OPTIONS = frozenset(
    {
        # how the table is read
        "--sep",
        "--sheet",
        "--columns",
        "--keep-double-zero",
        "--missing",
        # effect sizes and models
        "--measure",
        "--cc",
        "--cc-policy",
        "--tau2",
        "--ci",
        "--common",
        "--level",
        # the commands' own
        "--by",
        "--between",
        "--model",
        "--labels",
        "--test",
        "--side",
        "--estimator",
        "--failsafe",
        "--target",
        "--alpha",
        "--contour",
        "--order",
        "--desc",
        "--figure",
        "--mod",
        "--ref",
        "--categorical",
        "--weights",
    }
)


class PublishedError(IvigmetaError):
    """The published-numbers file cannot be read or fails validation (the message names the entry)."""


@dataclass(frozen=True)
class PublishedNumber:
    """One printed number: where it comes from in ivigmeta, and what the paper printed."""

    index: int
    label: str
    command: str
    args: tuple[str, ...]
    path: str
    printed: str
    expect: str = "match"
    note: str = ""
    where: str = ""
    scale: float = 1.0

    @property
    def name(self) -> str:
        """How error messages name this entry: its 1-based index and its label."""
        return f"number {self.index} ('{self.label}')" if self.label else f"number {self.index}"


@dataclass(frozen=True)
class Published:
    """A validated published-numbers file."""

    source: str
    paper: Mapping[str, Any]
    numbers: tuple[PublishedNumber, ...]
    base_dir: str = "."

    @property
    def data(self) -> str | None:
        """The data file named in ``[paper]``, relative to the published file's directory."""
        data = self.paper.get("data")
        if not data:
            return None
        return data if os.path.isabs(data) else os.path.normpath(os.path.join(self.base_dir, data))


def toml_module():
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    return tomllib


def load_published(path: str, commands: Sequence[str] | None = None) -> Published:
    """Read and validate a published-numbers file; ``commands`` are the known subcommands."""
    if not os.path.exists(path):
        raise PublishedError(f"{path}: file not found")
    if os.path.isdir(path):
        raise PublishedError(f"{path}: is a directory, not a TOML file")
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise PublishedError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PublishedError(f"{path}: not UTF-8 text (TOML files are UTF-8)") from None
    return parse_published(text, path, commands)


def _locate_toml_error(text: str, message: str) -> str:
    """Name the ``[[number]]`` entry (index and label) around the line a TOML error points at."""
    m = re.search(r"line (\d+)", message)
    if not m:
        return ""
    line_no = int(m.group(1))
    index, label = 0, ""
    for i, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("[[number]]"):
            if i > line_no:
                break
            index, label = index + 1, ""
        elif index and i <= line_no:
            lm = re.match(r'label\s*=\s*"([^"]*)"', stripped)
            if lm:
                label = lm.group(1)
        elif i > line_no:
            break
    if not index:
        return ""
    return f"number {index}" + (f" ('{label}')" if label else "")


def parse_published(text: str, source: str, commands: Sequence[str] | None = None) -> Published:
    """Parse and validate the TOML ``text``; ``source`` names it in messages."""
    tomllib = toml_module()
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = _locate_toml_error(text, str(exc))
        at = f", {where}" if where else ""
        raise PublishedError(f"{source}{at}: not valid TOML ({exc})") from None
    unknown = sorted(set(doc) - TOP_KEYS)
    if unknown:
        raise PublishedError(
            f"{source}: unknown top-level key(s) {', '.join(unknown)} (expected [paper] and [[number]])"
        )
    paper = doc.get("paper", {})
    if not isinstance(paper, dict):
        raise PublishedError(f"{source}: [paper] must be a table")
    for key in ("title", "doi", "data"):
        if key in paper and not isinstance(paper[key], str):
            raise PublishedError(f"{source}, [paper]: '{key}' must be a string")
    entries = doc.get("number")
    if not isinstance(entries, list) or not entries:
        raise PublishedError(f"{source}: no [[number]] entries (nothing to check)")
    numbers = []
    labels: dict[str, int] = {}
    for i, entry in enumerate(entries, start=1):
        number = _parse_number(entry, i, source, commands)
        if number.label in labels:
            raise PublishedError(
                f"{source}, {number.name}: label already used by number {labels[number.label]}"
            )
        labels[number.label] = i
        numbers.append(number)
    base = (
        os.path.dirname(os.path.abspath(source)) if source not in ("-", "<stdin>") else os.getcwd()
    )
    return Published(source=source, paper=paper, numbers=tuple(numbers), base_dir=base)


def _parse_number(
    entry: Any, index: int, source: str, commands: Sequence[str] | None
) -> PublishedNumber:
    if not isinstance(entry, dict):
        raise PublishedError(f"{source}, number {index}: must be a table")
    label = entry.get("label")
    name = f"number {index}" + (f" ('{label}')" if isinstance(label, str) and label else "")
    where = f"{source}, {name}"
    unknown = sorted(set(entry) - NUMBER_KEYS)
    if unknown:
        raise PublishedError(
            f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(NUMBER_KEYS))})"
        )
    for key in ("label", "command", "path", "printed"):
        if key not in entry:
            raise PublishedError(f"{where}: missing '{key}'")
    for key in ("label", "command", "path", "expect", "note", "where"):
        if key in entry and not isinstance(entry[key], str):
            raise PublishedError(f"{where}: '{key}' must be a string")
    if not isinstance(entry["printed"], str):
        raise PublishedError(
            f"{where}: 'printed' must be a string, exactly as printed "
            f'(write printed = "{entry["printed"]}": a TOML number loses trailing zeros)'
        )
    assert isinstance(label, str)  # (checked above with the other strings)
    if not label.strip():
        raise PublishedError(f"{where}: 'label' is empty")
    command = entry["command"].strip()
    if commands is not None and command not in commands:
        raise PublishedError(
            f"{where}: unknown command '{command}' (commands: {', '.join(sorted(commands))})"
        )
    args = entry.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise PublishedError(
            f'{where}: \'args\' must be a list of strings, e.g. ["--by", "timing"]'
        )
    _check_args(args, where)
    expect = entry.get("expect", "match")
    if expect not in EXPECT_VALUES:
        raise PublishedError(f'{where}: expect must be "match" or "differs", not "{expect}"')
    note = entry.get("note", "")
    if expect == "differs" and not note.strip():
        raise PublishedError(f'{where}: expect = "differs" needs a note saying why')
    scale = entry.get("scale", 1.0)
    if (
        isinstance(scale, bool)
        or not isinstance(scale, (int, float))
        or not math.isfinite(scale)
        or scale == 0
    ):
        raise PublishedError(f"{where}: 'scale' must be a non-zero number")
    try:
        parse_path(entry["path"])
    except PathError as exc:
        raise PublishedError(f"{where}: bad path '{entry['path']}': {exc}") from None
    try:
        parse_printed(entry["printed"])
    except ValueError as exc:
        raise PublishedError(f"{where}: {exc}") from None
    return PublishedNumber(
        index=index,
        label=label,
        command=command,
        args=tuple(args),
        path=entry["path"],
        printed=entry["printed"],
        expect=expect,
        note=note,
        where=entry.get("where", ""),
        scale=float(scale),
    )


def _check_args(args: Sequence[str], where: str) -> None:
    """Every option in ``args`` is an analysis option (:data:`ANALYSIS_OPTIONS`).

    Every token that could be read as an option is checked, values included, so that none slips
    through as the value of another (a value such as ``-0.5`` is a number, not an option).
    """
    for token in args:
        if not token.startswith("-") or token == "-" or _is_number(token):
            continue
        name = token.split("=", 1)[0]
        if name not in ANALYSIS_OPTIONS:
            raise PublishedError(
                f"{where}: '{name}' is not allowed in 'args': only options that choose the "
                f"analysis are ({', '.join(sorted(ANALYSIS_OPTIONS))}); reproduce writes no files"
            )


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def resolve_data(published: Published, data: str | None) -> str:
    """The study table to recompute from: ``--data``, else ``[paper] data``, else studies.csv."""
    if data:
        path, origin = data, "--data"
    elif published.data:
        path, origin = published.data, f"[paper] data in {published.source}"
    else:
        path, origin = os.path.join(published.base_dir, "studies.csv"), "default"
    if path == "-":
        raise PublishedError(
            "reproduce runs several commands on the data: give a file, not '-' (stdin)"
        )
    if not os.path.exists(path):
        raise PublishedError(f"{path}: data file not found ({origin})")
    return path
