"""The path language: where a number lies in a command's ``--format json`` output.

``a.b[2].c[key=value]`` walks keys, list indices and the one element whose ``key`` has
``value``; ``[*]`` fans out over a list; ``sum(...)`` and ``count(...)`` wrap a path, and
``sum(a, b)`` adds several. :func:`parse_path` parses, :func:`format_path` writes back and
:func:`resolve` finds the value, raising :class:`PathError` with a sentence saying where it failed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from ivigmeta.errors import IvigmetaError


class PathError(IvigmetaError):
    """A JSON path is malformed, or resolves to nothing in a command's output."""


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

    def stepsvalue_text(p: Path) -> str:
        text = ""
        for step in p.steps:
            text += f".{step}" if text and step.kind == "key" else str(step)
        return text

    inner = ", ".join(stepsvalue_text(p) for p in (path, *path.more))
    return f"{path.aggregate}({inner})" if path.aggregate else inner


def describe_value(value: Any) -> str:
    """How a message names a JSON value: "an object", "a list of 3", or its repr."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return repr(value)


def _step(value: Any, step: Step, done: str) -> Any:
    at = done or "the top level"
    if step.kind == "key":
        if not isinstance(value, dict):
            raise PathError(f"'{step.key}': {at} is {describe_value(value)}, not an object")
        if step.key not in value:
            keys = ", ".join(sorted(map(str, value))) or "none"
            raise PathError(f"no key '{step.key}' in {at} (keys: {keys})")
        return value[step.key]
    if not isinstance(value, list):
        raise PathError(f"'{step}': {at} is {describe_value(value)}, not a list")
    if step.kind == "index":
        if not -len(value) <= step.index < len(value):
            raise PathError(f"index {step.index} out of range: {at} has {len(value)} elements")
        return value[step.index]
    if step.kind == "all":
        return value
    hits = [
        el
        for el in value
        if isinstance(el, dict) and step.key in el and value_text(el[step.key]) == step.value
    ]
    if not hits:
        seen = [value_text(el[step.key]) for el in value if isinstance(el, dict) and step.key in el]
        if not seen:
            raise PathError(f"no element of {at} has a key '{step.key}'")
        raise PathError(
            f"no element of {at} has {step.key}={step.value} (values: {', '.join(seen)})"
        )
    if len(hits) > 1:
        raise PathError(f"{len(hits)} elements of {at} have {step.key}={step.value}: ambiguous")
    return hits[0]


def value_text(value: Any) -> str:
    """A JSON scalar as text, as ``[key=value]`` and printed text compare it (``true``, ``null``)."""
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
