"""Fit statistics of the normal-normal model y_i ~ N(x_i beta, v_i + tau²): the log-likelihood,
deviance, AIC, BIC and AICc, under maximum likelihood and restricted maximum likelihood, as
metafor's ``fitstats()`` / ``logLik()`` of an ``rma.uni`` fit (Viechtbauer 2005, 2010).

With w = 1 / (v + tau²), RSS = sum w (y - X b)² at the fitted b, and m the number of estimated
parameters (the p coefficients, plus tau² unless the model is common-effect):

* ML:   ll = -1/2 [k log 2 pi + sum log(v + tau²) + RSS];
        deviance = -2 (ll - sum log phi(y; y, sqrt v)) (-2 ll when some v <= 0; 0 when k <= p);
        AIC = -2 ll + 2 m, BIC = -2 ll + m log k, AICc = -2 ll + 2 m n / (n - m - 1),
        n = max(k, m + 2);
* REML: ll = -1/2 (k - p) log 2 pi + 1/2 log|X'X| - 1/2 sum log(v + tau²) - 1/2 log|X'WX|
        - 1/2 RSS; deviance = -2 ll; the criteria as ML with k - p for k.

Vectorised over groups (one meta-analysis per group) from per-group sums, so that ``pool``
(one group), ``batch`` (many) and the meta-regression (one group, any X) share one formula.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from ivigmeta.core.groups import Groups
    from ivigmeta.core.mantel_haenszel import CountPooled
    from ivigmeta.results import FitStatistics

LOG_2PI = 1.8378770664093453


@dataclass(frozen=True)
class FitStatArrays:
    """Per group: log-likelihood, deviance, AIC, BIC and AICc under ML and under REML."""

    ll_ml: np.ndarray
    dev_ml: np.ndarray
    aic_ml: np.ndarray
    bic_ml: np.ndarray
    aicc_ml: np.ndarray
    ll_reml: np.ndarray
    dev_reml: np.ndarray
    aic_reml: np.ndarray
    bic_reml: np.ndarray
    aicc_reml: np.ndarray


def fit_statistics_from_sums(
    k: np.ndarray,
    p: np.ndarray | int,
    parms: np.ndarray | int,
    sum_log_vt: np.ndarray,
    rss: np.ndarray,
    logdet_xtx: np.ndarray,
    logdet_xtwx: np.ndarray,
    ll_saturated: np.ndarray,
) -> FitStatArrays:
    """The statistics of the module docstring from per-group sums: ``sum_log_vt`` = sum
    log(v + tau²), ``rss`` = sum w e², log-determinants of X'X and X'WX, and ``ll_saturated`` =
    sum log phi(y; y, sqrt v) (NaN when some v <= 0)."""
    import numpy as np

    k = np.asarray(k, dtype=float)
    p_ = np.broadcast_to(np.asarray(p, dtype=float), k.shape)
    m = np.broadcast_to(np.asarray(parms, dtype=float), k.shape)
    with np.errstate(all="ignore"):
        ll_ml = -0.5 * (k * LOG_2PI + sum_log_vt + rss)
        dev_ml = np.where(
            k > p_,
            np.where(np.isnan(ll_saturated), -2.0 * ll_ml, -2.0 * (ll_ml - ll_saturated)),
            0.0,
        )
        ll_reml = (
            -0.5 * (k - p_) * LOG_2PI + 0.5 * logdet_xtx - 0.5 * sum_log_vt - 0.5 * logdet_xtwx
            - 0.5 * rss
        )  # fmt: skip

        def criteria(ll: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            big = np.maximum(n, m + 2)
            return (
                -2.0 * ll + 2.0 * m,
                -2.0 * ll + m * np.log(n),
                -2.0 * ll + 2.0 * m * big / (big - m - 1),
            )

        aic_ml, bic_ml, aicc_ml = criteria(ll_ml, k)
        aic_reml, bic_reml, aicc_reml = criteria(ll_reml, k - p_)
    return FitStatArrays(
        ll_ml,
        dev_ml,
        aic_ml,
        bic_ml,
        aicc_ml,
        ll_reml,
        -2.0 * ll_reml,
        aic_reml,
        bic_reml,
        aicc_reml,
    )


def model_fit_statistics(
    y: np.ndarray,
    v: np.ndarray,
    X: np.ndarray,
    tau2: float | np.ndarray,
    beta: np.ndarray,
    parms: int,
) -> FitStatArrays:
    """The statistics of one model with design ``X`` at (beta, tau²) (arrays of length 1);
    ``tau2`` may be per study (a location-scale model's tau²_i)."""
    import numpy as np

    vt = v + tau2
    w = 1.0 / vt
    e = y - X @ beta
    ll_sat = (
        np.array([float(np.sum(-0.5 * (LOG_2PI + np.log(v))))])
        if np.all(v > 0)
        else np.array([np.nan])
    )
    return fit_statistics_from_sums(
        np.array([len(y)]),
        X.shape[1],
        parms,
        np.array([float(np.sum(np.log(vt)))]),
        np.array([float(np.sum(w * e * e))]),
        np.array([float(np.linalg.slogdet(X.T @ X)[1])]),
        np.array([float(np.linalg.slogdet((X.T * w) @ X)[1])]),
        ll_sat,
    )


def intercept_fit_statistics(
    y: np.ndarray,
    v: np.ndarray,
    g: Groups,
    tau2: np.ndarray,
    parms: int,
    theta: np.ndarray | None = None,
) -> FitStatArrays:
    """The statistics of the intercept-only model of every group at its tau² (0 and
    ``parms = 1`` for the common-effect model; ``parms = 2`` with tau² estimated), at the
    inverse-variance estimate or at ``theta`` (a user-weighted one, as metafor's RSS there)."""
    import numpy as np

    with np.errstate(all="ignore"):
        vt = v + g.spread(tau2)
        w = 1.0 / vt
        sw = g.sum(w)
        if theta is None:
            theta = g.sum(w * y) / sw
        e = y - g.spread(theta)
        positive = g.sum((v <= 0).astype(float)) == 0
        ll_sat = np.where(
            positive, g.sum(-0.5 * (LOG_2PI + np.log(np.where(v > 0, v, 1.0)))), np.nan
        )
        return fit_statistics_from_sums(
            g.sizes,
            1,
            parms,
            g.sum(np.log(vt)),
            g.sum(w * e * e),
            np.log(g.sizes.astype(float)),
            np.log(sw),
            ll_sat,
        )


def counts_fit_statistics(cf: CountPooled) -> FitStatArrays:
    """The statistics of a Mantel-Haenszel or Peto fit, as metafor's rma.mh / rma.peto: the
    per-study effects (yi, vi) about the pooled estimate, one parameter."""
    import numpy as np

    assert cf.sum_log_v is not None and cf.sum_w is not None and cf.ll_saturated is not None
    k = cf.k_yi.astype(float)
    rss = cf.q if cf.rss is None else cf.rss
    with np.errstate(all="ignore"):
        return fit_statistics_from_sums(
            k, 1, 1, cf.sum_log_v, rss, np.log(k), np.log(cf.sum_w), cf.ll_saturated
        )


def statistics_of(arrays: FitStatArrays, i: int, reported: str) -> FitStatistics:
    """Group ``i``'s statistics as a result object; ``reported`` ("ML" or "REML") is the set
    metafor's fitstats() prints for the fit's estimator."""
    from ivigmeta.results import FitStatistics

    a = arrays
    return FitStatistics(
        ml=tuple(float(x[i]) for x in (a.ll_ml, a.dev_ml, a.aic_ml, a.bic_ml, a.aicc_ml)),
        reml=tuple(
            float(x[i]) for x in (a.ll_reml, a.dev_reml, a.aic_reml, a.bic_reml, a.aicc_reml)
        ),
        reported=reported,
    )


__all__ = [
    "FitStatArrays",
    "fit_statistics_from_sums",
    "model_fit_statistics",
    "intercept_fit_statistics",
    "counts_fit_statistics",
    "statistics_of",
    "LOG_2PI",
]
