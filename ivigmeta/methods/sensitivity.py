"""Sensitivity analyses that refit a meta-analysis on subsets of its studies.

* Leave-one-out: the model refitted k times, each time without one study (metafor's
  ``leave1out``), with the fit's own options (estimator, interval method, level).
* Cumulative meta-analysis (Lau et al. 1992): the studies sorted by a column (publication year by
  default) and the model refitted on the first 1, 2, ..., k of them (metafor's ``cumul``). The sort
  is stable, as R's ``order()``: studies with equal values keep their file order, in either
  direction; studies with no value come last.

Either reports the random-effects refits (default) or, with ``model="common"``, the
common-effect refits by the fit's --common method (inverse variance, Mantel-Haenszel or Peto:
metafor's ``leave1out``/``cumul`` of ``rma(method = "FE")``, ``rma.mh`` and ``rma.peto`` objects),
each with its own heterogeneity test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ivigmeta.core.pooling import fit
from ivigmeta.errors import DataError, ModelError
from ivigmeta.io.studies import YEAR_COLUMN, Study
from ivigmeta.results import (
    Cumulative,
    CumulativeStep,
    LeaveOneOut,
    LeaveOneOutRow,
    MetaAnalysis,
)

_OVERFLOW = "not computable: the effects or variances are too extreme for double precision"


def _has_nan(analysis: MetaAnalysis, model: str = "random") -> bool:
    fit_ = analysis.common_or_single if model == "common" else analysis.fit
    return any(isinstance(x, float) and math.isnan(x) for x in (fit_.theta, fit_.se, fit_.p_value))


MODELS = ("random", "common")


def check_model(model: str) -> str:
    """``random`` or ``common`` (case-insensitive); anything else is a ModelError."""
    if model.lower() not in MODELS:
        raise ModelError(f"unknown model '{model}' (choose one of {', '.join(MODELS)})")
    if model.lower() == "common":
        return "common"
    return "random"


def _check_common(ma: MetaAnalysis, model: str) -> None:
    if model == "common" and ma.options.glmm:
        raise ModelError(
            "--model common reports the --common method's refits; it is not available with "
            "--glmm (whose common-effect row is the GLMM's fixed-effects counterpart)"
        )


def leave_one_out(ma: MetaAnalysis, model: str = "random") -> LeaveOneOut:
    """Refit ``ma`` once per study with that study omitted; ``model`` says which refit the rows
    report (``random`` or ``common``)."""
    model = check_model(model)
    _check_common(ma, model)
    es = ma.effects
    if es.k < 2:
        raise ModelError(f"leave-one-out needs at least 2 studies (have {es.k})")
    rows = []
    for i, study in enumerate(es.studies):
        others = [j for j in range(es.k) if j != i]
        rows.append(
            LeaveOneOutRow(omitted=study, analysis=fit(es.subset(others), ma.options), model=model)
        )
    return LeaveOneOut(full=ma, rows=tuple(rows), model=model)


def _order_values(studies: Sequence[Study], column: str) -> list[str | float | None]:
    """The sort key of each study: numbers when every non-empty value is a number, else text."""
    if column == YEAR_COLUMN:
        return [float(s.year) if s.year is not None else None for s in studies]
    texts = [s.fields.get(column, "").strip() for s in studies]
    numbers: list[str | float | None] = []
    for text in texts:
        if not text:
            numbers.append(None)
            continue
        try:
            numbers.append(float(text))
        except ValueError:
            return [t or None for t in texts]
    return numbers


def cumulative_order(
    studies: Sequence[Study], column: str = YEAR_COLUMN, descending: bool = False
) -> tuple[list[int], list[str | float | None]]:
    """Indices of ``studies`` in cumulative order, and every study's sort value.

    Stable in both directions (ties keep file order, as R's ``order(x, decreasing = TRUE)``);
    studies with no value are placed last in file order (R's ``na.last = TRUE``).
    """
    values = _order_values(studies, column)
    present = [i for i, v in enumerate(values) if v is not None]
    missing = [i for i, v in enumerate(values) if v is None]
    if descending:
        # sorted() is stable; sorting on the negated rank of the value keeps ties in file order.
        distinct = sorted({values[i] for i in present})  # type: ignore[type-var]
        rank = {v: n for n, v in enumerate(distinct)}
        present.sort(key=lambda i: -rank[values[i]])
    else:
        present.sort(key=lambda i: values[i])  # type: ignore[arg-type, return-value]
    return present + missing, values


def cumulative(
    ma: MetaAnalysis, order_by: str = YEAR_COLUMN, descending: bool = False, model: str = "random"
) -> Cumulative:
    """Cumulative meta-analysis of ``ma``: step j is the fit, with ``ma``'s options, of the first j
    studies in the order of column ``order_by``. A step whose fit fails (an iterative tau²
    estimator that does not converge on that subset) has no analysis and says why.

    ``model`` says which fit the steps report (``random`` or ``common``). Raises
    :class:`DataError` when no study has a value in ``order_by``.
    """
    model = check_model(model)
    _check_common(ma, model)
    es = ma.effects
    if es.k == 0:
        raise ModelError("cumulative meta-analysis needs at least 1 study")
    order, values = cumulative_order(es.studies, order_by, descending)
    if all(v is None for v in values):
        raise DataError(f"column '{order_by}' has no values to order the studies by")
    steps = []
    for j in range(1, es.k + 1):
        idx = order[:j]
        i = order[j - 1]
        value = values[i]
        if order_by == YEAR_COLUMN and value is not None:
            value = int(value)  # type: ignore[arg-type]
        try:
            analysis: MetaAnalysis | None = fit(es.subset(idx), ma.options)
            note = ""
        except ModelError as exc:  # e.g. REML not converging on this subset: report, go on
            analysis, note = None, str(exc)
        except ArithmeticError:
            analysis, note = None, _OVERFLOW
        if analysis is not None and _has_nan(analysis, model):
            analysis, note = None, _OVERFLOW
        steps.append(
            CumulativeStep(
                added=es.studies[i],
                order_value=value,
                analysis=analysis,
                k=j,
                note=note,
                model=model,
            )
        )
    missing = tuple(es.studies[i].study for i, v in enumerate(values) if v is None)
    return Cumulative(
        full=ma,
        order_by=order_by,
        descending=descending,
        steps=tuple(steps),
        missing_order=missing,
        model=model,
    )
