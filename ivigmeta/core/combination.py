"""Combining the studies' one-sided evidence: Stouffer's and Fisher's tests (Stouffer et al.
1949; Fisher 1932; Winkler et al. 2016 for the directed, undirected and concordant tests;
PyMARE's StoufferCombinationTest and FisherCombinationTest; R's metap sumz and sumlog).

Each study's z_i (its effect over its standard error, y_i / sqrt(v_i), so that p_i = 1 - Phi(z_i)
is the one-sided p-value of an effect above 0):

* Stouffer: Z = sum w_i z_i / sqrt(sum w_i²) (w_i = 1 unweighted), p = 1 - Phi(Z);
* Fisher: X² = -2 sum log p_i on 2k df, p = P(chi²_2k > X²), Z = Phi^-1(1 - p).

Modes: ``directed`` tests effects consistently above 0 (as above); ``undirected`` uses |z_i|
(a test of extremity, whatever the signs); ``concordant`` is the directed test in both
directions, p = min(1, 2 min(p_up, p_down)), Z = Phi^-1(1 - p).

scipy.stats is imported inside the functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ivigmeta.errors import ModelError

if TYPE_CHECKING:
    import numpy as np

COMBINATION_METHODS = ("stouffer", "fisher")
COMBINATION_MODES = ("directed", "undirected", "concordant")


@dataclass(frozen=True)
class Combined:
    """A combination test: the statistic (Stouffer's Z or Fisher's X²), its df (Fisher), the
    p-value and the p-value as a normal deviate Z = Phi^-1(1 - p)."""

    statistic: float
    df: int | None
    p_value: float
    z: float


def _directed(z: np.ndarray, method: str, w: np.ndarray | None) -> tuple[float, int | None, float]:
    import numpy as np
    from scipy.stats import chi2, norm

    if method == "stouffer":
        weights = np.ones_like(z) if w is None else w
        stat = float(np.sum(weights * z) / math.sqrt(float(np.sum(weights * weights))))
        return stat, None, float(norm.sf(stat))
    logp = norm.logsf(z)  # log p_i without underflow for large z_i
    stat = float(-2.0 * np.sum(logp))
    df = 2 * len(z)
    return stat, df, float(chi2.sf(stat, df))


def combine_z(
    z: np.ndarray, method: str = "stouffer", mode: str = "directed", w: np.ndarray | None = None
) -> Combined:
    """The combination test ``method`` (stouffer, fisher) of the z values in ``mode``
    (directed, undirected, concordant); ``w`` the Stouffer weights (None: 1 each)."""
    import numpy as np
    from scipy.stats import norm

    method, mode = method.lower(), mode.lower()
    if method not in COMBINATION_METHODS:
        raise ModelError(f"unknown combination test '{method}' (choose stouffer or fisher)")
    if mode not in COMBINATION_MODES:
        raise ModelError(f"unknown mode '{mode}' (choose one of {', '.join(COMBINATION_MODES)})")
    if w is not None and method != "stouffer":
        raise ModelError("weights are for Stouffer's test (Fisher's test has none)")
    z = np.asarray(z, dtype=float)
    if len(z) == 0:
        raise ModelError("no studies to combine")
    if mode == "concordant":
        up = _directed(z, method, w)
        down = _directed(-z, method, w)
        p = min(1.0, 2.0 * min(up[2], down[2]))
        stat, df = (up[0], up[1]) if up[2] <= down[2] else (down[0], down[1])
        return Combined(stat, df, p, float(norm.isf(p)))
    stat, df, p = _directed(np.abs(z) if mode == "undirected" else z, method, w)
    if method == "stouffer":
        return Combined(stat, df, p, stat)
    return Combined(stat, df, p, float(norm.isf(p)))


__all__ = ["COMBINATION_METHODS", "COMBINATION_MODES", "Combined", "combine_z"]
