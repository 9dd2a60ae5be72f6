"""Printed values and the comparison at the precision they were printed with.

:func:`parse_printed` reads a value exactly as a paper prints it (``"1.93"``, ``"< 0.0001"``,
``"58.9%"``, ``"Ramos-Medina"``); :func:`compare` says whether a recomputed value gives it:
numbers rounded half away from zero (or truncated) to the printed decimals, bounds strict, text
exact.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

from ivigmeta.audit.paths import describe_value, value_text

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
    """``value`` written with exactly ``decimals`` decimals."""
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
            raise ValueError(f"the path gives {describe_value(recomputed)}, not a value")
        text = value_text(recomputed)
        return Comparison(text == printed.text, text)
    x = _as_number(recomputed)
    if x is None:
        if recomputed is None:
            raise ValueError("the path gives null (not applicable for these data)")
        raise ValueError(f"the path gives {describe_value(recomputed)}, not a number")
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
