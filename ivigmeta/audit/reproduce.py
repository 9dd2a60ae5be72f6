"""Check a paper's printed numbers against what ivigmeta recomputes from the paper's data.

A *published-numbers file* (TOML, schema in docs/reproduce.md) lists every number a paper prints:
for each, the ivigmeta command and options that recompute it, a JSON path into that command's
``--format json`` output, the value exactly as printed, and whether it is expected to match.

This module owns:

* loading and validating that file (every problem is a :class:`PublishedError` naming the entry);
* the path language: ``a.b[2].c[key=value]``, ``[*]`` to fan out over a list, and ``sum(...)`` /
  ``count(...)`` around a path;
* parsing a printed value (``"1.93"``, ``"< 0.0001"``, ``"58.9%"``, ``"Ramos-Medina"``) and
  comparing a recomputed value with it at the precision it was printed with;
* running each distinct command once (through a :class:`Runner` the CLI provides, so this module
  never imports click) and assembling the verdicts into a :class:`~ivigmeta.results.ReproduceResult`.

TOML is read with the standard library's ``tomllib`` (Python >= 3.11) or ``tomli``, imported only
when a file is loaded.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any, Protocol

from ivigmeta.errors import IvigmetaError
from ivigmeta.results import NumberCheck, ReproduceResult, ReproduceSummary

DEFAULT_PUBLISHED = "published.toml"
EXPECT_VALUES = ("match", "differs")
NUMBER_KEYS = {"label", "command", "args", "path", "printed", "expect", "note", "where", "scale"}
TOP_KEYS = {"paper", "number"}


class PublishedError(IvigmetaError):
    """The published-numbers file cannot be read or fails validation (the message names the entry)."""


class PathError(IvigmetaError):
    """A JSON path is malformed, or resolves to nothing in a command's output."""


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


# ---------------------------------------------------------------------------------------------
# The published-numbers file


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


def _toml_module():
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
    tomllib = _toml_module()
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


# ---------------------------------------------------------------------------------------------
# The path language


@dataclass(frozen=True)
class Step:
    """One step of a path: a key, a list index, ``[key=value]`` selection, or ``[*]``."""

    kind: str  # "key" | "index" | "select" | "all"
    key: str = ""
    value: str = ""
    index: int = 0

    def __str__(self) -> str:
        if self.kind == "key":
            return self.key
        if self.kind == "index":
            return f"[{self.index}]"
        if self.kind == "all":
            return "[*]"
        return f"[{self.key}={self.value}]"


@dataclass(frozen=True)
class Path:
    """A parsed path, optionally wrapped in an aggregate (``sum`` or ``count``)."""

    steps: tuple[Step, ...]
    aggregate: str = ""
    text: str = ""
    # sum(a, b, ...): the further paths whose sums are added to the first one's.
    more: tuple[Path, ...] = ()


AGGREGATES = ("sum", "count")


def parse_path(text: str) -> Path:
    """Parse ``a.b[2].c[key=value]``, ``[*]`` fan-out and ``sum(...)``/``count(...)``."""
    if not isinstance(text, str) or not text.strip():
        raise PathError("the path is empty")
    source = text.strip()
    aggregate = ""
    m = re.fullmatch(r"(\w+)\((.*)\)", source)
    if m:
        if m.group(1) not in AGGREGATES:
            raise PathError(f"unknown function '{m.group(1)}' (available: {', '.join(AGGREGATES)})")
        aggregate, source = m.group(1), m.group(2).strip()
        if not source:
            raise PathError(f"{aggregate}() needs a path")
        terms = _split_terms(source)
        if len(terms) > 1:
            if aggregate != "sum":
                raise PathError(f"{aggregate}() takes one path")
            first, *rest = (parse_path(f"sum({t})") for t in terms)
            return replace(first, text=text.strip(), more=tuple(rest))
    steps: list[Step] = []
    i, n = 0, len(source)
    expect_key = True
    while i < n:
        ch = source[i]
        if ch == "[":
            end = source.find("]", i)
            if end < 0:
                raise PathError(f"'[' at position {i + 1} is not closed")
            inner = source[i + 1 : end].strip()
            if not inner:
                raise PathError(f"empty brackets at position {i + 1}")
            if inner == "*":
                steps.append(Step("all"))
            elif "=" in inner:
                key, _, value = inner.partition("=")
                if not key.strip():
                    raise PathError(f"'[{inner}]' needs a key before '='")
                steps.append(Step("select", key=key.strip(), value=value.strip()))
            elif re.fullmatch(r"-?\d+", inner):
                steps.append(Step("index", index=int(inner)))
            else:
                raise PathError(f"'[{inner}]' is not an index, [key=value] or [*]")
            i = end + 1
            expect_key = False
        elif ch == ".":
            if expect_key:
                raise PathError(f"unexpected '.' at position {i + 1}")
            i += 1
            expect_key = True
            if i >= n:
                raise PathError("the path ends with '.'")
        elif ch == "]":
            raise PathError(f"unmatched ']' at position {i + 1}")
        else:
            if not expect_key:
                raise PathError(f"expected '.' or '[' at position {i + 1}")
            j = i
            while j < n and source[j] not in ".[]":
                j += 1
            key = source[i:j].strip()
            if not key:
                raise PathError(f"empty key at position {i + 1}")
            steps.append(Step("key", key=key))
            i = j
            expect_key = False
    if not steps:
        raise PathError("the path is empty")
    return Path(tuple(steps), aggregate, text.strip())


def _split_terms(text: str) -> list[str]:
    """Split ``a, b[k=v], c`` at the commas outside brackets."""
    terms, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            terms.append(text[start:i].strip())
            start = i + 1
    terms.append(text[start:].strip())
    if any(not t for t in terms):
        raise PathError("empty path between commas")
    return terms


def format_path(path: Path) -> str:
    """The text of a parsed path (the inverse of :func:`parse_path`)."""

    def steps_text(p: Path) -> str:
        text = ""
        for step in p.steps:
            text += f".{step}" if text and step.kind == "key" else str(step)
        return text

    inner = ", ".join(steps_text(p) for p in (path, *path.more))
    return f"{path.aggregate}({inner})" if path.aggregate else inner


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return repr(value)


def _step(value: Any, step: Step, done: str) -> Any:
    at = done or "the top level"
    if step.kind == "key":
        if not isinstance(value, dict):
            raise PathError(f"'{step.key}': {at} is {_describe(value)}, not an object")
        if step.key not in value:
            keys = ", ".join(sorted(map(str, value))) or "none"
            raise PathError(f"no key '{step.key}' in {at} (keys: {keys})")
        return value[step.key]
    if not isinstance(value, list):
        raise PathError(f"'{step}': {at} is {_describe(value)}, not a list")
    if step.kind == "index":
        if not -len(value) <= step.index < len(value):
            raise PathError(f"index {step.index} out of range: {at} has {len(value)} elements")
        return value[step.index]
    if step.kind == "all":
        return value
    hits = [
        el
        for el in value
        if isinstance(el, dict) and step.key in el and _text(el[step.key]) == step.value
    ]
    if not hits:
        seen = [_text(el[step.key]) for el in value if isinstance(el, dict) and step.key in el]
        if not seen:
            raise PathError(f"no element of {at} has a key '{step.key}'")
        raise PathError(
            f"no element of {at} has {step.key}={step.value} (values: {', '.join(seen)})"
        )
    if len(hits) > 1:
        raise PathError(f"{len(hits)} elements of {at} have {step.key}={step.value}: ambiguous")
    return hits[0]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def resolve(data: Any, path: Path | str) -> Any:
    """The value at ``path`` in ``data`` (parsed JSON); :class:`PathError` when there is none."""
    p = parse_path(path) if isinstance(path, str) else path
    if p.more:
        return resolve(data, replace(p, more=())) + sum(resolve(data, m) for m in p.more)
    values: list[Any] = [data]
    fanned = False
    done = ""
    for step in p.steps:
        nxt = []
        for v in values:
            if step.kind == "all":
                nxt.extend(_step(v, step, done))
            else:
                nxt.append(_step(v, step, done))
        fanned = fanned or step.kind == "all"
        values = nxt
        done = f"{done}.{step}" if done and step.kind == "key" else f"{done}{step}"
    if p.aggregate == "count":
        return len(values) if fanned else (len(values[0]) if isinstance(values[0], list) else 1)
    if p.aggregate == "sum":
        items = values if fanned else (values[0] if isinstance(values[0], list) else values)
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in items):
            raise PathError("sum() needs numbers")
        total = sum(items)
        return total
    if fanned:
        return values
    return values[0]


# ---------------------------------------------------------------------------------------------
# Printed values and the comparison


_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


@dataclass(frozen=True)
class Printed:
    """A printed value: a number (with its decimals), a bound (``< x``, ``> x``) or text."""

    text: str
    kind: str  # "number" | "lt" | "gt" | "text"
    value: Decimal | None = None
    decimals: int = 0
    percent: bool = False


def parse_printed(text: str) -> Printed:
    """Parse a value exactly as printed: ``1.93``, ``< 0.0001``, ``> 0.05``, ``58.9%``, ``0.0``."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("'printed' is empty")
    s = text.strip().replace("\u2212", "-").replace("\u2009", " ").replace("\u00a0", " ")
    kind = "number"
    for prefix, k in (
        ("<=", "lt"),
        (">=", "gt"),
        ("\u2264", "lt"),
        ("\u2265", "gt"),
        ("<", "lt"),
        (">", "gt"),
    ):
        if s.startswith(prefix):
            kind, s = k, s[len(prefix) :].strip()
            break
    percent = s.endswith("%")
    if percent:
        s = s[:-1].strip()
    if _NUMBER.fullmatch(s):
        decimals = len(s.split(".", 1)[1]) if "." in s else 0
        return Printed(text.strip(), kind, Decimal(s), decimals, percent)
    if kind != "number":
        raise ValueError(f"printed '{text}': a bound needs a number after '<' or '>'")
    return Printed(text.strip(), "text")


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def round_to(value: float, decimals: int, truncate: bool = False) -> Decimal:
    """``value`` at ``decimals`` decimals: rounded half away from zero (on the exact binary value),
    or truncated toward zero."""
    exp = Decimal(1).scaleb(-decimals)
    d = Decimal(value).quantize(exp, rounding=ROUND_DOWN if truncate else ROUND_HALF_UP)
    return d + 0  # normalizes -0.00 to 0.00


def shown(value: Decimal, decimals: int) -> str:
    return f"{value:.{decimals}f}"


@dataclass(frozen=True)
class Comparison:
    """The result of comparing one recomputed value with a printed one."""

    matches: bool
    rounded: str
    detail: str = ""


def compare(
    printed: Printed, recomputed: Any, scale: float = 1.0, truncate: bool = False
) -> Comparison:
    """Does ``recomputed`` give ``printed`` at the precision it was printed with?

    Numbers are rounded (or truncated) to the printed decimals; ``< x`` and ``> x`` are strict
    bounds; text is compared exactly. Raises :class:`ValueError` when the value is not comparable.
    """
    if printed.kind == "text":
        if isinstance(recomputed, (dict, list)) or recomputed is None:
            raise ValueError(f"the path gives {_describe(recomputed)}, not a value")
        text = _text(recomputed)
        return Comparison(text == printed.text, text)
    x = _as_number(recomputed)
    if x is None:
        if recomputed is None:
            raise ValueError("the path gives null (not applicable for these data)")
        raise ValueError(f"the path gives {_describe(recomputed)}, not a number")
    x *= scale
    if math.isnan(x):
        raise ValueError("the recomputed value is not a number (NaN)")
    if math.isinf(x):
        return Comparison(printed.kind == "gt" and x > 0 or printed.kind == "lt" and x < 0, str(x))
    assert printed.value is not None
    if printed.kind == "lt":
        ok = Decimal(x) < printed.value
        return Comparison(ok, printed.text if ok else _sig(x, printed.decimals))
    if printed.kind == "gt":
        ok = Decimal(x) > printed.value
        return Comparison(ok, printed.text if ok else _sig(x, printed.decimals))
    r = round_to(x, printed.decimals, truncate)
    return Comparison(r == printed.value, shown(r, printed.decimals))


def _sig(x: float, decimals: int) -> str:
    text = shown(round_to(x, decimals), decimals)
    if float(text) == 0.0 and x != 0.0:
        return f"{x:.2g}"
    return text


# ---------------------------------------------------------------------------------------------
# Running the commands and the verdicts


@dataclass
class CommandCache:
    """Runs each distinct command + options once; failures are cached as well."""

    runner: Runner
    data: str
    results: dict[tuple[str, tuple[str, ...]], Any] = field(default_factory=dict)
    runs: int = 0

    def get(self, command: str, args: Sequence[str]) -> Any:
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
    import shlex

    return " ".join(["ivigmeta", command, *(shlex.quote(a) for a in args)])


def check_number(number: PublishedNumber, cache: CommandCache) -> tuple[NumberCheck, Any]:
    """Recompute one number and compare it with the printed value (no explanation yet)."""
    printed = parse_printed(number.printed)
    base: dict[str, Any] = dict(
        label=number.label,
        printed=number.printed,
        expect=number.expect,
        note=number.note,
        command=number.command,
        args=number.args,
        path=number.path,
        where=number.where,
    )
    try:
        data = cache.get(number.command, number.args)
    except RunError as exc:
        return NumberCheck(
            **base, verdict="error", error=f"{command_line(number.command, number.args)}: {exc}"
        ), None
    try:
        value = resolve(data, number.path)
        cmp = compare(printed, value, number.scale)
    except PathError as exc:
        return NumberCheck(**base, verdict="error", error=f"path '{number.path}': {exc}"), None
    except ValueError as exc:
        return NumberCheck(**base, verdict="error", error=f"path '{number.path}': {exc}"), None
    if cmp.matches:
        verdict = "reproduced"
    else:
        verdict = "differs_expected" if number.expect == "differs" else "differs"
    return NumberCheck(**base, verdict=verdict, recomputed=value, rounded=cmp.rounded), value


def reproduce(
    published: Published,
    runner: Runner,
    data: str,
    explain: bool = True,
    on_progress: Callable[[str], None] | None = None,
) -> ReproduceResult:
    """Check every number of ``published`` against ``data``; explain the ones that differ."""
    cache = CommandCache(runner, data)
    checks = []
    for number in published.numbers:
        check, _ = check_number(number, cache)
        if explain and check.verdict in ("differs", "differs_expected"):
            from ivigmeta.audit.explain import explain_number

            explanation = explain_number(number, check, cache)
            check = replace(
                check, explanation=explanation.text, alternatives=explanation.alternatives
            )
        checks.append(check)
    return ReproduceResult(
        source=published.source,
        paper=dict(published.paper),
        data=data,
        numbers=tuple(checks),
        summary=ReproduceSummary.of(checks),
        runs=cache.runs,
    )


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
