"""The weighted least-squares core of a meta-regression y = X beta + u + e, u ~ N(0, tau²),
e ~ N(0, v) (Raudenbush 2009; metafor's ``rma.uni`` with ``mods``): one function that
:mod:`ivigmeta.methods.metareg`, the permutation test and the case-deletion diagnostics refit
with.

With W = diag(1 / (v + tau²)): beta = (X' W X)^-1 X' W y, Var(beta) = (X' W X)^-1; under
``ci = "hk"`` (Knapp & Hartung 2003) Var(beta) is multiplied by s² = sum w e² / (k - p) (0 when
that is below machine epsilon; at least 1 under ``"adhoc"``; 1 under ``"t"``, metafor's
``test = "t"``); QM = b' Var(b)^-1 b over the non-intercept coefficients (F = QM / m on
(m, k - p) df under hk/adhoc/t, the coefficients' tests on t with k - p df).

numpy is imported inside the functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class RegressionFit:
    """The weighted least-squares core of a meta-regression: tau², beta, Var(beta) (with the
    Knapp-Hartung factor ``s2w`` applied under hk/adhoc), the coefficient tests and the omnibus
    statistic over the non-intercept coefficients (QM, or F = QM / m under hk/adhoc)."""

    tau2: float
    beta: np.ndarray
    vb: np.ndarray
    se: np.ndarray
    statistics: np.ndarray
    qm: float | None
    s2w: float
    df2: int | None
    tau2_se: float = math.nan  # the estimator's standard error of tau² (NaN: none; common effect)


def regression_fit(
    y: np.ndarray,
    v: np.ndarray,
    X: np.ndarray,
    tau2_method: str,
    ci_method: str = "z",
    model: str = "random",
    weights: np.ndarray | None = None,
    tau2_values: np.ndarray | None = None,
    tau2_weights: np.ndarray | None = None,
) -> RegressionFit:
    """Fit y = X beta + u + e by weighted least squares; ``model = "common"`` fixes tau² = 0
    (metafor's ``method = "FE"``). Raises numpy's LinAlgError when X' W X is singular.

    ``tau2_values``: per-study tau²_i given (the location-scale model's fitted values,
    :mod:`ivigmeta.core.location_scale`) instead of estimated; W = diag(1 / (v + tau²_i)) and
    the result's ``tau2`` is NaN (no single value).

    With user ``weights`` a (metafor's ``weights=``; --ci z or t): beta = (X'AX)^-1 X'A y and
    Var(beta) = (X'AX)^-1 X'A M A X (X'AX)^-1, M = diag(v + tau²); tau² is estimated as
    without them. ``tau2_weights``: the GENQ estimator's weights (they enter tau² only)."""
    import numpy as np

    from ivigmeta.core.tau2 import estimate_tau2

    k, p = X.shape
    tau2, tau2_se = 0.0, math.nan
    vt = v + tau2
    if tau2_values is not None:
        tau2, vt = math.nan, v + tau2_values
    elif model != "common":
        est = estimate_tau2(
            list(y), list(v), tau2_method, X, None if tau2_weights is None else list(tau2_weights)
        )
        tau2, tau2_se = est.tau2, est.se
        vt = v + tau2
    ws = 1.0 / vt
    XtWs = X.T * ws
    vb = np.linalg.inv(XtWs @ X)
    beta = vb @ XtWs @ y
    if weights is not None:
        XtA = X.T * weights
        B = np.linalg.inv(XtA @ X)
        beta = B @ XtA @ y
        vb = B @ (XtA * vt) @ XtA.T @ B
    knha = ci_method in ("hk", "adhoc", "t")
    s2w = 1.0
    df2: int | None = None
    if knha:
        resid = y - X @ beta
        rss = float(np.sum(ws * resid * resid))
        s2w = 0.0 if rss <= np.finfo(float).eps else rss / (k - p)
        if ci_method == "adhoc":  # metafor's test = "adhoc": the factor is at least 1
            s2w = max(s2w, 1.0)
        elif ci_method == "t":  # metafor's test = "t": the model-based Var(b), t and F tests
            s2w = 1.0
        vb = s2w * vb
        df2 = k - p
    se = np.sqrt(np.diag(vb))
    # A zero standard error (Hartung-Knapp with residuals that all vanish) is decided as in
    # pooling.random_effects: a non-zero coefficient is infinitely significant, zero is not.
    with np.errstate(divide="ignore", invalid="ignore"):
        stats = np.where(se > 0, beta / np.where(se > 0, se, 1.0), np.sign(beta) * np.inf)
    stats = np.where((se == 0) & (beta == 0), 0.0, stats)
    m = p - 1
    qm: float | None = None
    if m > 0:
        bm = beta[1:]
        try:
            qm = float(bm @ np.linalg.solve(vb[1:, 1:], bm))
        except np.linalg.LinAlgError:  # Var(b) = 0 (as above): QM is 0 when b is, else infinite
            qm = math.inf if np.any(bm != 0) else 0.0
        if knha:
            qm = qm / m
    return RegressionFit(tau2, beta, vb, se, stats, qm, s2w, df2, tau2_se)


def residual_q(y: np.ndarray, v: np.ndarray, X: np.ndarray) -> tuple[float, float]:
    """QE = y' P0 y (the test of residual heterogeneity, k - p df) and tr P0, with
    P0 = W0 - W0 X (X' W0 X)^-1 X' W0, W0 = diag(1 / v)."""
    import numpy as np

    w0 = 1.0 / v
    XtW0 = X.T * w0
    P0 = np.diag(w0) - XtW0.T @ np.linalg.solve(XtW0 @ X, XtW0)
    return float(y @ P0 @ y), float(np.trace(P0))


__all__ = ["RegressionFit", "regression_fit", "residual_q"]
