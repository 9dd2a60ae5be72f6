"""The one serializer from result objects to JSON-ready dicts, at full precision.

Each result class in :mod:`ivigmeta.results` declares its JSON layout in a class attribute
``__json__``: a tuple of entries, in output order. An entry is

- a string ``"name"``: the key ``name`` with the value of the field or property ``name``;
- :class:`Key`: a key with its value from another attribute (a rename, or a dotted path such as
  ``"analysis.heterogeneity.q"``), written only under a condition, or left out when ``None``;
- :class:`Flatten`: the keys of a nested object (or mapping) merged into this level;
- :class:`Group`: a nested JSON object made of entries of this same object.

Entries are written in order into one dict, so a later entry with an earlier entry's key replaces
that value in place, keeping the key's position (as ``dict`` does). A dataclass without
``__json__`` is written field by field. Values are converted recursively: result objects to
dicts, tuples and lists to lists, mappings to dicts; everything else (numbers, strings, ``None``)
is kept as is, unrounded. Non-finite floats are left to the JSON writer (``render.to_json``
writes them as ``null``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

__all__ = ["Flatten", "Group", "Key", "Layout", "keys_of", "null_keys", "to_json", "to_json_dict"]


@dataclass(frozen=True)
class Key:
    """One JSON key ``name``, its value taken from the attribute ``path`` (default: ``name``).

    ``path`` may be dotted; a path running into ``None`` gives ``default``. ``when``/``unless``
    name a (dotted) attribute: the key is written only when it is truthy / falsy. ``omit_none``
    leaves the key out when its value is ``None``. ``layout`` writes the value (an object, or
    each item of a sequence of objects) with that layout instead of its class's ``__json__``.
    """

    name: str
    path: str = ""
    default: Any = None
    when: str = ""
    unless: str = ""
    omit_none: bool = False
    layout: Layout | None = None


@dataclass(frozen=True)
class Flatten:
    """The keys of the object (or mapping) at ``path`` written at this level.

    ``layout`` replaces the object's own ``__json__``. When the object is ``None``, the keys and
    values of ``when_none`` are written instead (none by default). ``when``/``unless`` as for
    :class:`Key`.
    """

    path: str
    layout: Layout | None = None
    when_none: Mapping[str, Any] | None = None
    when: str = ""
    unless: str = ""


@dataclass(frozen=True)
class Group:
    """A nested JSON object ``name`` whose keys are ``entries`` of this same object."""

    name: str
    entries: Layout
    when: str = ""
    unless: str = ""


Entry: TypeAlias = "str | Key | Flatten | Group"
Layout: TypeAlias = "tuple[Entry, ...]"


def keys_of(prefix: str, *names: str) -> tuple[Key, ...]:
    """``Key(name, f"{prefix}.{name}")`` for each name: several keys read from one nested object."""
    return tuple(Key(name, f"{prefix}.{name}") for name in names)


def null_keys(layout: Layout) -> dict[str, None]:
    """Every key a flat layout writes, with ``None``: the ``when_none`` of a :class:`Flatten`."""
    return {
        (e if isinstance(e, str) else e.name): None for e in layout if isinstance(e, (str, Key))
    }


def to_json_dict(obj: Any, layout: Layout | None = None) -> dict[str, Any]:
    """``obj`` as a JSON-ready dict, following ``layout`` (default: its class's ``__json__``).

    Parameters
    ----------
    obj
        A result object: a dataclass, usually with a ``__json__`` layout.
    layout
        Entries to write instead of the class's own layout.

    Returns
    -------
    dict
        Keys in layout order; values at full precision (see the module docstring).
    """
    if layout is None:
        layout = getattr(type(obj), "__json__", None)
    if layout is None:
        if not dataclasses.is_dataclass(obj):
            raise TypeError(f"no JSON layout for {type(obj).__name__}")
        layout = tuple(f.name for f in dataclasses.fields(obj))
    out: dict[str, Any] = {}
    _write(out, obj, layout)
    return out


def to_json(value: Any, layout: Layout | None = None) -> Any:
    """Any value as JSON-ready data: result objects to dicts, sequences to lists, mappings to dicts.

    ``layout``, when given, applies to the object (or to each item of a sequence).
    """
    if isinstance(value, (list, tuple)):
        return [to_json(v, layout) for v in value]
    if isinstance(value, Mapping):
        return {k: to_json(v) for k, v in value.items()}
    if layout is not None or (dataclasses.is_dataclass(value) and not isinstance(value, type)):
        return to_json_dict(value, layout)
    return value


def _get(obj: Any, path: str, default: Any = None) -> Any:
    for name in path.split("."):
        if obj is None:
            return default
        obj = getattr(obj, name)
    return default if obj is None else obj


def _write(out: dict[str, Any], obj: Any, layout: Layout) -> None:
    for entry in layout:
        if isinstance(entry, str):
            out[entry] = to_json(getattr(obj, entry))
            continue
        if not isinstance(entry, (Key, Flatten, Group)):
            raise TypeError(f"not a JSON layout entry: {entry!r}")
        if entry.when and not _get(obj, entry.when):
            continue
        if entry.unless and _get(obj, entry.unless):
            continue
        if isinstance(entry, Key):
            value = _get(obj, entry.path or entry.name, entry.default)
            if value is None and entry.omit_none:
                continue
            out[entry.name] = to_json(value, entry.layout)
        elif isinstance(entry, Flatten):
            inner = _get(obj, entry.path)
            if inner is None:
                out.update(entry.when_none or {})
            elif isinstance(inner, Mapping) and entry.layout is None:
                out.update(to_json(inner))
            else:
                out.update(to_json_dict(inner, entry.layout))
        else:
            sub: dict[str, Any] = {}
            _write(sub, obj, entry.entries)
            out[entry.name] = sub
