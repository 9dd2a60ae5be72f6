"""Estimators of the between-study variance tau² for the random-effects model.

Every estimator takes the effect sizes ``yi`` and sampling variances ``vi`` and returns a
:class:`Tau2Estimate`. ``TAU2_METHODS`` is the registry the CLI offers as ``--tau2``.

* DL: DerSimonian & Laird (1986), the method-of-moments estimator
  tau² = max(0, (Q - (k - 1)) / (sum w - sum w² / sum w)), w = 1 / vi.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

from ivigmeta.heterogeneity import cochran_q


@dataclass(frozen=True)
class Tau2Estimate:
    """tau² and how it was reached (iterations and convergence for iterative estimators)."""

    tau2: float
    method: str
    converged: bool = True
    iterations: int = 0


def tau2_dl(yi: Sequence[float], vi: Sequence[float]) -> Tau2Estimate:
    """DerSimonian-Laird method-of-moments estimator (DerSimonian & Laird 1986)."""
    k = len(yi)
    if k < 2:
        return Tau2Estimate(0.0, "DL")
    w = [1.0 / v for v in vi]
    sw = math.fsum(w)
    c = sw - math.fsum(x * x for x in w) / sw
    q = cochran_q(yi, vi).q
    if c <= 0:
        return Tau2Estimate(0.0, "DL")
    return Tau2Estimate(max(0.0, (q - (k - 1)) / c), "DL")


TAU2_METHODS: dict[str, Callable[[Sequence[float], Sequence[float]], Tau2Estimate]] = {
    "DL": tau2_dl,
}


def estimate_tau2(yi: Sequence[float], vi: Sequence[float], method: str = "DL") -> Tau2Estimate:
    """Estimate tau² with the named method (a key of ``TAU2_METHODS``)."""
    from ivigmeta.errors import ModelError

    key = method.upper()
    if key not in TAU2_METHODS:
        raise ModelError(
            f"unknown tau² estimator '{method}' (choose one of {', '.join(TAU2_METHODS)})"
        )
    return TAU2_METHODS[key](yi, vi)
