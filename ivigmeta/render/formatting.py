"""Rounding for display. Only tables and Markdown round; JSON and CSV carry full precision."""

from __future__ import annotations

import math

NA = "n/a"


def decimals_for(measure: str) -> int:
    """Ratio measures and mean differences print with 2 decimals (as the paper), differences of
    risks and rates, proportions and correlations (phi, tetrachoric, Yule's Q and Y among them), one group's rates and
    partial correlations with 3."""
    three = ("RD", "AS", "IRD", "IRSD", "PR", "PLO", "PAS", "PFT", "PLN", "ZCOR", "COR", "UCOR")
    more = (
        "PHI",
        "RTET",
        "YUQ",
        "YUY",
        "IR",
        "IRLN",
        "IRS",
        "IRFT",
        "RPB",
        "RBIS",
        "CVLN",
        "MPRD",
        "PCOR",
        "ZPCOR",
        "SPCOR",
    )
    return 3 if measure in three + more else 2


def plain(x: float) -> str:
    """A number as given: 38, 39.1 (never rounded: these are the study's own data)."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


def num(x: float | None, decimals: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return NA
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    text = f"{x:.{decimals}f}"
    return "0." + "0" * decimals if text == "-0." + "0" * decimals else text


def ci(low: float | None, high: float | None, decimals: int = 2) -> str:
    return f"[{num(low, decimals)}, {num(high, decimals)}]"


def est_ci(est: float | None, low: float | None, high: float | None, decimals: int = 2) -> str:
    return f"{num(est, decimals)} {ci(low, high, decimals)}"


def pval(p: float | None) -> str:
    """p-values as the paper prints them: 3 decimals, '< 0.001' and '< 0.0001' below those."""
    if p is None or math.isnan(p):
        return NA
    if p < 0.0001:
        return "< 0.0001"
    if p < 0.001:
        return "< 0.001"
    return f"{p:.3f}"


def p_eq(p: float | None) -> str:
    """'p = 0.007' or 'p < 0.0001', for running text."""
    text = pval(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def pct(x: float | None, decimals: int = 1) -> str:
    return NA if x is None else f"{num(x, decimals)}%"


def tau2(x: float | None) -> str:
    return num(x, 4)


def sig(x: float | None, digits: int = 4) -> str:
    """A number to ``digits`` significant digits (5.177e-05, 0.06205): for matrices whose cells
    span orders of magnitude."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return NA
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return "0" if x == 0 else f"{x:.{digits}g}"


def tau2_label(method: str | None, short: bool = False) -> str:
    """How a tau² method is named in a table: the estimator's name, or "tau² fixed" ("fixed"
    when ``short``, after the word tau²) for a number given with --tau2 VALUE."""
    if method is None:
        return NA
    try:
        float(method)
    except ValueError:
        return method
    return "fixed" if short else "tau² fixed"
