"""The k x k matrices of a fitted model (metafor's ``vcov(fit, type = ...)``,
``hatvalues(fit, type = "matrix")`` and ``weights(fit, type = "matrix")``; Viechtbauer 2010).

For the model y = X beta + u + e of :mod:`ivigmeta.core.regression` (intercept only, or with
moderators; tau² = 0 for the common-effect model), with M = diag(v + tau²), the weight matrix
W = diag(1 / (v + tau²)) (W = A = diag(a) with user weights a, metafor's ``weights=``) and
Var(beta) = vb (the sandwich (X'AX)^-1 X'A M A X (X'AX)^-1 with user weights; times the
Knapp-Hartung factor s² under ``ci = "hk"``):

* ``coef``: Var(beta), p x p (``vcov(fit)``);
* ``obs``: the marginal variance of the observed effects, M (``type = "obs"``);
* ``fitted``: Var(X beta) = X vb X' (``type = "fitted"``);
* ``resid``: Var(y - X beta) = (I - H) M (I - H)' with the hat matrix H = X (X'WX)^-1 X'W
  (``type = "resid"``; H and M without the Knapp-Hartung factor, as metafor);
* ``hat``: H (``hatvalues(fit, type = "matrix")``);
* ``weights``: W (``weights(fit, type = "matrix")``).

For a Mantel-Haenszel or Peto fit (common effect, no moderators) only ``coef`` (the pooled
estimate's variance), ``fitted`` (that variance in every cell) and ``weights`` (the diagonal of
the method's raw weights: b c / N, c n1 / N, n1 n2 / N, x2 t1 / T, t1 t2 / T, or Peto's V) are
defined, as for metafor's rma.mh / rma.peto objects.

numpy is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ivigmeta.errors import ModelError
from ivigmeta.results import EffectSizes, MetaAnalysis, ModelMatrix

if TYPE_CHECKING:
    import numpy as np

#: The matrices a fit offers, in the order ``--type`` lists them.
MATRIX_TYPES = ("coef", "obs", "fitted", "resid", "hat", "weights")
#: Those of a Mantel-Haenszel or Peto fit.
COUNTS_MATRIX_TYPES = ("coef", "fitted", "weights")

#: ``tau2_method`` of the common-effect (fixed-effects) model: tau² = 0 (metafor's method="FE").
COMMON_EFFECT = "FE"


def check_matrix_type(kind: str) -> str:
    """``kind`` in lower case; a ModelError naming the choices when it is not one of them."""
    out = kind.lower()
    if out not in MATRIX_TYPES:
        raise ModelError(f"unknown matrix type '{kind}' (choose one of {', '.join(MATRIX_TYPES)})")
    return out


def _rows(m: np.ndarray) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(x) for x in row) for row in m)


def model_matrices(
    y: np.ndarray,
    v: np.ndarray,
    X: np.ndarray,
    tau2_method: str,
    ci_method: str = "z",
    weights: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Every matrix of :data:`MATRIX_TYPES` of the model (y, v, X), with tau² by
    ``tau2_method`` (:data:`COMMON_EFFECT`: 0) and user ``weights`` a (or None), plus
    ``"tau2"`` (a 1 x 1 array)."""
    import numpy as np

    from ivigmeta.core.regression import regression_fit

    common = tau2_method == COMMON_EFFECT
    rf = regression_fit(
        y, v, X, tau2_method, ci_method, "common" if common else "random", weights=weights
    )
    marginal = v + rf.tau2
    w = 1.0 / marginal if weights is None else np.asarray(weights, dtype=float)
    hat = X @ np.linalg.solve((X.T * w) @ X, X.T * w)
    rest = np.eye(len(y)) - hat
    return {
        "coef": rf.vb,
        "obs": np.diag(marginal),
        "fitted": X @ rf.vb @ X.T,
        "resid": (rest * marginal) @ rest.T,
        "hat": hat,
        "weights": np.diag(w),
        "tau2": np.array([[rf.tau2]]),
    }


def fit_matrix(
    es: EffectSizes,
    kind: str,
    columns: Sequence[str] = (),
    tau2_method: str = "DL",
    ci_method: str = "z",
    ref: Mapping[str, str] | None = None,
    categorical: Sequence[str] = (),
    weights: np.ndarray | None = None,
    unweighted: bool = False,
) -> ModelMatrix:
    """The matrix ``kind`` of the intercept-only model (no ``columns``) or of the
    meta-regression on moderator ``columns`` (built as ``metareg`` builds them); ``weights``
    are user weights per study of ``es`` (None: inverse variance); ``unweighted``: every study
    of the model weighs 1/k (metafor's ``weighted = FALSE``)."""
    import numpy as np

    from ivigmeta.core.tau2 import check_tau2_method
    from ivigmeta.methods.metareg import build_moderators

    kind = check_matrix_type(kind)
    method = (
        COMMON_EFFECT if tau2_method.upper() == COMMON_EFFECT else check_tau2_method(tau2_method)
    )
    if ci_method not in ("z", "hk", "t"):
        raise ModelError(f"unknown interval method '{ci_method}' (choose one of z, hk, t)")
    if columns:
        mods = build_moderators(es, columns, ref, categorical)
        X, names, keep = mods.X, mods.names, list(mods.keep)
        excluded = mods.excluded + es.excluded
    else:
        X, names, keep = np.ones((es.k, 1)), ("intercept",), list(range(es.k))
        excluded = es.excluded
    k = len(keep)
    if k < 2:
        raise ModelError(f"the model's matrices need at least 2 studies (have {k})")
    if k <= X.shape[1]:
        raise ModelError(
            f"{k} studies for {X.shape[1]} coefficients: the model's matrices need more studies "
            "than coefficients"
        )
    y = np.asarray([es.yi[i] for i in keep], dtype=float)
    v = np.asarray([es.vi[i] for i in keep], dtype=float)
    a = None if weights is None else np.asarray([weights[i] for i in keep], dtype=float)
    if unweighted:
        a = np.full(k, 1.0 / k)
    try:
        mats = model_matrices(y, v, X, method, ci_method, a)
    except np.linalg.LinAlgError:
        raise ModelError(
            "the moderators are collinear (X'WX is singular): the matrices are undefined"
        ) from None
    studies = tuple(es.studies[i] for i in keep)
    return ModelMatrix(
        measure=es.measure,
        type=kind,
        k=k,
        tau2=float(mats["tau2"][0, 0]),
        tau2_method=method,
        ci_method=ci_method,
        coefficients=tuple(names),
        row_studies=studies if kind != "coef" else (),
        values=_rows(mats[kind]),
        excluded=tuple(excluded),
        user_weights=a is not None,
    )


def counts_matrix(ma: MetaAnalysis, kind: str) -> ModelMatrix:
    """The matrix ``kind`` (:data:`COUNTS_MATRIX_TYPES`) of a Mantel-Haenszel or Peto fit."""
    import numpy as np

    from ivigmeta.core.pooling import common_raw_weights

    kind = check_matrix_type(kind)
    common = ma.common
    if common is None or common.method not in ("MH", "PETO"):
        raise ModelError("the matrices of a common-effect fit by counts need --common MH or PETO")
    if kind not in COUNTS_MATRIX_TYPES:
        name = "Mantel-Haenszel" if common.method == "MH" else "Peto"
        raise ModelError(
            f"a {name} fit has no '{kind}' matrix (it has: {', '.join(COUNTS_MATRIX_TYPES)})"
        )
    es = ma.effects
    k = es.k
    if kind == "weights":
        m = np.diag(common_raw_weights(es, ma.options))
    else:
        m = np.full((1, 1) if kind == "coef" else (k, k), common.se**2)
    return ModelMatrix(
        measure=es.measure,
        type=kind,
        k=k,
        tau2=0.0,
        tau2_method=COMMON_EFFECT,
        ci_method=ma.options.ci_method,
        coefficients=("intercept",),
        row_studies=tuple(es.studies) if kind != "coef" else (),
        values=_rows(m),
        excluded=es.excluded,
        common_method=common.method,
    )


__all__ = [
    "COMMON_EFFECT",
    "COUNTS_MATRIX_TYPES",
    "MATRIX_TYPES",
    "check_matrix_type",
    "counts_matrix",
    "fit_matrix",
    "model_matrices",
]
