"""Study-level quantities of a random-effects model, with or without moderators (metafor's
``blup()``, ``ranef()``, ``fitted()``, ``residuals()``, ``rstandard()`` and ``rstudent()`` of an
``rma.uni`` fit; Raudenbush 2009, Viechtbauer 2010, Viechtbauer & Cheung 2010).

With design X (intercept first), tau², W = diag(1 / (v + tau²)), beta = (X'WX)^-1 X'W y,
Var(beta) = vb (times the Knapp-Hartung factor s² under ``ci = "hk"``), lambda_i = tau² / (tau² + v_i),
x_i the study's row of X and c the normal (t on k - p df under hk) quantile:

* fitted value x_i beta; residual e_i = y_i - x_i beta (|e_i| < 100 eps is 0, as metafor);
* BLUP of the true effect: lambda_i y_i + (1 - lambda_i) x_i beta, variance
  lambda_i v_i + (1 - lambda_i)² x_i vb x_i', interval +- c se;
* random effect: lambda_i e_i, variance lambda_i v_i + lambda_i² x_i vb x_i';
* standardized residual: e_i / sqrt([(I - H) M (I - H)']_ii), H = X (X'WX)^-1 X'W,
  M = diag(v + tau²);
* studentized deleted residual: (y_i - x_i beta_(-i)) / sqrt(v_i s²_(-i) + x_i vb_(-i) x_i' +
  tau²_(-i) s²_(-i)) from the model refitted without study i (s² = 1 under z).

numpy is imported inside the functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ivigmeta.core.distributions import t_crit, z_crit
from ivigmeta.errors import ModelError
from ivigmeta.results import (
    EffectSizes,
    Exclusion,
    Interval,
    MetaAnalysis,
    StudyLevel,
    StudyLevelRow,
)

if TYPE_CHECKING:
    import numpy as np

_RESID_ZERO = 100 * 2.220446049250313e-16


#: ``tau2_method`` of the common-effect (fixed-effects) model: tau² = 0 (metafor's method="FE").
COMMON_EFFECT = "FE"


def wls_fit(
    y: np.ndarray, v: np.ndarray, X: np.ndarray, tau2_method: str, hk: bool
) -> tuple[float, np.ndarray, np.ndarray, float]:
    """tau², beta, Var(beta) and the scale factor s² of the model (y, v, X).

    ``tau2_method`` is an estimator of :mod:`ivigmeta.core.tau2`, or :data:`COMMON_EFFECT` for
    the common-effect model (tau² = 0). Var(beta) includes s² (1 unless ``hk``).
    """
    from ivigmeta.core.regression import regression_fit

    rf = regression_fit(
        y,
        v,
        X,
        tau2_method,
        "hk" if hk else "z",
        "common" if tau2_method == COMMON_EFFECT else "random",
    )
    return rf.tau2, rf.beta, rf.vb, rf.s2w


def hat_matrix(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """H = X (X' W X)^-1 X' W, W = diag(w): the fitted values are H y."""
    import numpy as np

    return X @ np.linalg.solve((X.T * w) @ X, X.T * w)


def deleted_residual(
    y: float,
    v: float,
    x: np.ndarray,
    tau2_d: float,
    beta_d: np.ndarray,
    vb_d: np.ndarray,
    s2_d: float,
) -> Interval:
    """The studentized deleted residual of a study (y, v, design row x) from the model refitted
    without it (tau²_(-i), beta_(-i), Var(beta_(-i)) and s²_(-i) from :func:`wls_fit`)."""
    e_d = float(y - x @ beta_d)
    if abs(e_d) < _RESID_ZERO:
        e_d = 0.0
    se_d = math.sqrt(v * s2_d + float(x @ vb_d @ x) + tau2_d * s2_d)
    return Interval(e_d, se_d, e_d / se_d)


def study_level(
    es: EffectSizes,
    X: np.ndarray,
    names: Sequence[str],
    tau2_method: str = "DL",
    ci_method: str = "z",
    level: float = 0.95,
    excluded: Sequence[Exclusion] = (),
    studies: Sequence[int] | None = None,
) -> StudyLevel:
    """Every study-level quantity of the model of ``es`` (rows ``studies``) on design ``X``."""
    import numpy as np

    from ivigmeta.core.tau2 import check_tau2_method

    method = (
        COMMON_EFFECT if tau2_method.upper() == COMMON_EFFECT else check_tau2_method(tau2_method)
    )
    if ci_method not in ("z", "hk"):
        raise ModelError(f"unknown interval method '{ci_method}' (choose one of z, hk)")
    keep = list(range(es.k)) if studies is None else list(studies)
    y = np.asarray([es.yi[i] for i in keep], dtype=float)
    v = np.asarray([es.vi[i] for i in keep], dtype=float)
    X = np.asarray(X, dtype=float)
    k, p = X.shape
    if k < 2:
        raise ModelError(f"study-level quantities need at least 2 studies (have {k})")
    if k <= p:
        raise ModelError(f"a model with {p} coefficients needs more than {p} studies (have {k})")
    hk = ci_method == "hk"
    try:
        tau2, beta, vb, _ = wls_fit(y, v, X, method, hk)
    except np.linalg.LinAlgError:
        raise ModelError("the model is numerically singular") from None
    crit = t_crit(level, k - p) if hk else z_crit(level)
    fitted = X @ beta
    resid = y - fitted
    resid[np.abs(resid) < _RESID_ZERO] = 0.0
    lam = tau2 / (tau2 + v)
    xvx = np.einsum("ij,jk,ik->i", X, vb, X)
    blup = lam * y + (1 - lam) * fitted
    blup_se = np.sqrt(lam * v + (1 - lam) ** 2 * xvx)
    re = lam * (y - fitted)
    re_se = np.sqrt(lam * v + lam**2 * xvx)
    w = 1.0 / (v + tau2)
    H = hat_matrix(X, w)
    ImH = np.eye(k) - H
    std_se = np.sqrt(np.diag(ImH @ np.diag(v + tau2) @ ImH.T))
    rows = []
    for i in range(k):
        others = [j for j in range(k) if j != i]
        try:
            t_d, b_d, vb_d, s2_d = wls_fit(y[others], v[others], X[others], method, hk)
            student: Interval | None = deleted_residual(y[i], v[i], X[i], t_d, b_d, vb_d, s2_d)
            note = ""
        except (ModelError, np.linalg.LinAlgError, ArithmeticError, ValueError) as exc:
            student, note = None, str(exc) or "the refit without the study failed"
        s = es.studies[keep[i]]
        rows.append(
            StudyLevelRow(
                study=s,
                blup=float(blup[i]),
                blup_se=float(blup_se[i]),
                blup_pi=(float(blup[i] - crit * blup_se[i]), float(blup[i] + crit * blup_se[i])),
                ranef=float(re[i]),
                ranef_se=float(re_se[i]),
                ranef_pi=(float(re[i] - crit * re_se[i]), float(re[i] + crit * re_se[i])),
                fitted=float(fitted[i]),
                residual=float(resid[i]),
                rstandard=Interval(float(resid[i]), float(std_se[i]), float(resid[i] / std_se[i])),
                rstudent=student,
                note=note,
            )
        )
    return StudyLevel(
        measure=es.measure,
        k=k,
        tau2=tau2,
        tau2_method=method,
        ci_method=ci_method,
        level=level,
        coefficients=tuple(names),
        rows=tuple(rows),
        excluded=tuple(excluded),
        common_method="IV" if method == COMMON_EFFECT else None,
    )


def counts_study_level(ma: MetaAnalysis) -> StudyLevel:
    """Fitted values and residuals of a Mantel-Haenszel or Peto fit, as metafor's ``fitted``,
    ``residuals``, ``rstandard`` and ``rstudent`` of an ``rma.mh`` / ``rma.peto`` object: with
    the per-study effects y_i, v_i of the fit (escalc with the analysis's continuity correction;
    Peto's log odds ratios for Peto) and the pooled theta, residual y_i - theta, standardized
    (y_i - theta) / sqrt(v_i), studentized (y_i - theta_(-i)) / sqrt(v_i + Var(theta_(-i))) from
    the fit without study i. The BLUP of a common-effect model is the pooled estimate (its
    interval the pooled CI) and the random effects are 0, as metafor's blup() of an FE fit."""
    import numpy as np

    from ivigmeta.core.mantel_haenszel import peto_effects
    from ivigmeta.core.pooling import fit

    common = ma.common
    if common is None or common.method not in ("MH", "PETO"):
        raise ModelError("study-level quantities of a common-effect fit need --common MH or PETO")
    es = ma.effects
    k = es.k
    if k < 2:
        raise ModelError(f"study-level quantities need at least 2 studies (have {k})")
    if common.method == "PETO":
        a, n1, c, n2 = (
            np.asarray(col, dtype=float) for col in zip(*(s.counts for s in es.studies))
        )
        y, v = peto_effects(a, n1, c, n2, es.cc, es.cc_policy)
    else:
        y, v = np.asarray(es.yi, dtype=float), np.asarray(es.vi, dtype=float)
    theta, se = common.theta, common.se
    half = (common.ci_high_theta - common.ci_low_theta) / 2.0
    rows = []
    for i, s in enumerate(es.studies):
        resid = float(y[i] - theta)
        if abs(resid) < _RESID_ZERO:
            resid = 0.0
        sd = math.sqrt(v[i]) if v[i] > 0 and math.isfinite(v[i]) else math.nan
        try:
            deleted = fit(es.subset([j for j in range(k) if j != i]), ma.options).common
            assert deleted is not None
            e_d = float(y[i] - deleted.theta)
            se_d = math.sqrt(v[i] + deleted.se**2)
            student: Interval | None = Interval(e_d, se_d, e_d / se_d)
            note = ""
        except (ModelError, ArithmeticError, ValueError) as exc:
            student, note = None, str(exc) or "the refit without the study failed"
        rows.append(
            StudyLevelRow(
                study=s,
                blup=theta,
                blup_se=se,
                blup_pi=(theta - half, theta + half),
                ranef=0.0,
                ranef_se=0.0,
                ranef_pi=(0.0, 0.0),
                fitted=theta,
                residual=resid,
                rstandard=Interval(resid, sd, resid / sd if sd else math.nan),
                rstudent=student,
                note=note,
            )
        )
    return StudyLevel(
        measure=es.measure,
        k=k,
        tau2=0.0,
        tau2_method=COMMON_EFFECT,
        ci_method=ma.options.ci_method,
        level=ma.options.level,
        coefficients=("intercept",),
        rows=tuple(rows),
        excluded=es.excluded,
        common_method=common.method,
    )


def study_level_analysis(
    es: EffectSizes,
    columns: Sequence[str] = (),
    tau2_method: str = "DL",
    ci_method: str = "z",
    level: float = 0.95,
    ref: Mapping[str, str] | None = None,
    categorical: Sequence[str] = (),
) -> StudyLevel:
    """:func:`study_level` of the intercept-only model (no ``columns``) or of the
    meta-regression on moderator ``columns`` (built as ``metareg`` builds them)."""
    import numpy as np

    from ivigmeta.methods.metareg import build_moderators

    if not columns:
        return study_level(
            es, np.ones((es.k, 1)), ("intercept",), tau2_method, ci_method, level, es.excluded
        )
    mods = build_moderators(es, columns, ref, categorical)
    return study_level(
        es,
        mods.X,
        mods.names,
        tau2_method,
        ci_method,
        level,
        mods.excluded + es.excluded,
        mods.keep,
    )


__all__ = [
    "COMMON_EFFECT",
    "deleted_residual",
    "hat_matrix",
    "study_level",
    "study_level_analysis",
    "counts_study_level",
    "wls_fit",
]
