"""Mixed-effects meta-regression (weighted least squares with a residual tau²).

Model: y = X beta + u + e, u ~ N(0, tau²), e ~ N(0, v). With W = diag(1 / v) and
P = W - W X (X' W X)^-1 X' W:

* QE = y' P y on k - p df: the residual heterogeneity test;
* DL (method of moments) residual tau² = max(0, (QE - (k - p)) / tr(P)) (Raudenbush 2009;
  metafor's ``rma(..., method = "DL")`` with moderators);
* with W* = diag(1 / (v + tau²)): beta = (X' W* X)^-1 X' W* y, Var(beta) = (X' W* X)^-1; Wald z
  tests; the omnibus QM = b' Var(b)^-1 b over the non-intercept coefficients, chi-square on their
  number of df;
* I² = 100 tau² / (tau² + s²) with s² = (k - p) / tr(P); H² = (tau² + s²) / s²;
* R² = 100 max(0, (tau²_RE - tau²_ME) / tau²_RE), tau²_RE from the model without moderators.

numpy is imported inside the functions: ``pool`` never pays for it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

from ivigmeta.distributions import chi2_sf, norm_p_two_sided, z_crit
from ivigmeta.errors import ModelError
from ivigmeta.results import Coefficient, MetaRegression

if TYPE_CHECKING:
    import numpy as np

METAREG_TAU2_METHODS = ("DL",)


def _residual_tau2_dl(y: "np.ndarray", v: "np.ndarray", X: "np.ndarray") -> tuple[float, float, float]:
    """Method-of-moments residual tau², with QE and tr(P) it came from."""
    import numpy as np

    w = 1.0 / v
    XtW = X.T * w
    A = np.linalg.inv(XtW @ X)
    P = np.diag(w) - XtW.T @ A @ XtW
    qe = float(y @ P @ y)
    k, p = X.shape
    trace = float(np.trace(P))
    tau2 = max(0.0, (qe - (k - p)) / trace) if trace > 0 else 0.0
    return tau2, qe, trace


def meta_regression(
    yi: Sequence[float],
    vi: Sequence[float],
    X: "np.ndarray",
    names: Sequence[str],
    tau2_method: str = "DL",
    ci_method: str = "z",
    level: float = 0.95,
) -> MetaRegression:
    """Fit a mixed-effects meta-regression; ``X`` includes the intercept column first."""
    import numpy as np

    from ivigmeta.tau2 import estimate_tau2

    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    X = np.asarray(X, dtype=float)
    k, p = X.shape
    if tau2_method.upper() not in METAREG_TAU2_METHODS:
        raise ModelError(
            f"meta-regression supports the tau² estimators {', '.join(METAREG_TAU2_METHODS)}"
        )
    if ci_method != "z":
        raise ModelError("meta-regression supports Wald z intervals only")
    if np.linalg.matrix_rank(X) < p:
        raise ModelError(
            "the moderators are constant or perfectly collinear (the design matrix is not of full rank)"
        )
    if k <= p:
        raise ModelError(f"meta-regression with {p} coefficients needs more than {p} studies (have {k})")
    tau2, qe, trace = _residual_tau2_dl(y, v, X)
    ws = 1.0 / (v + tau2)
    XtWs = X.T * ws
    vb = np.linalg.inv(XtWs @ X)
    beta = vb @ XtWs @ y
    se = np.sqrt(np.diag(vb))
    crit = z_crit(level)
    coefs = []
    for j in range(p):
        z = float(beta[j] / se[j])
        coefs.append(
            Coefficient(
                name=names[j],
                estimate=float(beta[j]),
                se=float(se[j]),
                statistic=z,
                p_value=norm_p_two_sided(z),
                ci_low=float(beta[j] - crit * se[j]),
                ci_high=float(beta[j] + crit * se[j]),
            )
        )
    qm_df = p - 1
    if qm_df > 0:
        b = beta[1:]
        qm = float(b @ np.linalg.solve(vb[1:, 1:], b))
        qm_p = chi2_sf(qm, qm_df)
    else:
        qm, qm_p = None, None
    s2 = (k - p) / trace
    tau2_re = estimate_tau2(list(yi), list(vi), tau2_method).tau2
    r2 = max(0.0, 100.0 * (tau2_re - tau2) / tau2_re) if tau2_re > 0 else None
    return MetaRegression(
        coefficients=tuple(coefs),
        qm=qm,
        qm_df=qm_df,
        qm_p_value=qm_p,
        qe=qe,
        qe_df=k - p,
        qe_p_value=chi2_sf(qe, k - p),
        tau2=tau2,
        i2=100.0 * tau2 / (tau2 + s2),
        h2=(tau2 + s2) / s2,
        r2=r2,
        k=k,
        tau2_method=tau2_method.upper(),
        ci_method=ci_method,
    )


def dummy_design(labels: Sequence[str], levels: Sequence[str]) -> tuple["np.ndarray", list[str]]:
    """Intercept plus one indicator per level beyond the first (the reference level)."""
    import numpy as np

    X = np.ones((len(labels), len(levels)))
    for j, level in enumerate(levels[1:], start=1):
        X[:, j] = [1.0 if lab == level else 0.0 for lab in labels]
    return X, ["intercept"] + [f"{lev}" for lev in levels[1:]]


__all__ = ["meta_regression", "dummy_design", "math"]
