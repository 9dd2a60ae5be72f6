"""Check a paper's printed numbers against what ivigmeta recomputes from the paper's data.

The orchestration: for every number of a published-numbers file
(:mod:`ivigmeta.audit.published`), run its command once (:mod:`ivigmeta.audit.runner`), find the
value at its path (:mod:`ivigmeta.audit.paths`), compare it at the printed precision
(:mod:`ivigmeta.audit.compare`), explain the ones that differ (:mod:`ivigmeta.audit.explain`) and
assemble the verdicts into a :class:`~ivigmeta.results.ReproduceResult`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ivigmeta.audit.compare import compare, parse_printed
from ivigmeta.audit.explain import explain_number
from ivigmeta.audit.paths import PathError, resolve
from ivigmeta.audit.published import Published, PublishedNumber
from ivigmeta.audit.runner import CommandCache, RunError, Runner, command_line
from ivigmeta.results import NumberCheck, ReproduceResult, ReproduceSummary


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
