"""Cluster-robust inference for the fixed effects of a fitted model (metafor's
``robust(fit, cluster, adjust = TRUE)`` for rma.uni fits; Hedges, Tipton & Johnson 2010;
Sidik & Jonkman 2005, 2006).

Given the model's tau² (0 for a common-effect model), W = diag(1 / (v + tau²)), its beta and
residuals e = y - X beta, and clusters c = 1..n of the studies:

* bread B = (X' W X)^-1 X' W; meat = block-diagonal e_c e_c' by cluster; the sandwich
  Var_R(beta) = B meat B' = sum_c (B_c e_c)(B_c e_c)', multiplied by n / (n - p) when ``adjust``
  (metafor's "CR1"; "CR0" without);
* t tests and intervals on n - p df; F = b' Var_R(b)^-1 b / m on (m, n - p) df over the m
  non-intercept coefficients (the intercept when it is the only one);
* tau², beta and QE are the model's: only their inference changes. The prediction interval
  (intercept-only random-effects model; a meta-regression's ``--predict``) is metafor's
  ``predict()`` of the robust fit: x b +- t_{n-p} sqrt(x Var_R x' + tau²).

Var(beta) under the model (the bread) is (X' W X)^-1 whatever the model's ``--ci``: metafor
3.8-1's robust() of a ``test = "knha"`` fit would use its s²-scaled Var(beta) in the bread
(Var_R times s⁴); here the inference is that of the ``test = "z"`` fit, the same for any --ci.

``cr2`` is metafor's ``robust(fit, cluster, clubSandwich = TRUE)`` (clubSandwich's defaults
there; the arithmetic is :mod:`ivigmeta.core.sandwich`): Var_R the CR2 bias-reduced sandwich
(Bell & McCaffrey 2002; Pustejovsky & Tipton 2018) with the working model W = diag(1 / (v +
tau²)); each coefficient's t test and interval on its Satterthwaite df (``coef_test``,
``conf_int``); F the HTZ test of the m non-intercept coefficients (``Wald_test(test = "HTZ")``;
metafor's QM = max(0, F), QMdf = (m, its denominator df)), t² on (1, df) for the intercept
alone; a prediction (``linear_contrast``) and the prediction interval on the Satterthwaite df
of its design row. clubSandwich's sandwich does not use the fit's Var(beta), so metafor agrees
for any ``test``. A coefficient or prediction whose expected CR2 variance vanishes (it rests on
clusters fitted exactly; clubSandwich's df are NaN) and a singular robust Var(beta) of the
moderators (metafor stops: no Wald test) are :class:`ModelError`.

numpy is imported inside the functions: ``pool`` without ``--cluster`` never loads this module.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from ivigmeta.core.distributions import f_sf, t_crit, t_p_two_sided
from ivigmeta.core.regression import regression_fit
from ivigmeta.errors import DataError, ModelError
from ivigmeta.results import (
    Coefficient,
    EffectSizes,
    MetaAnalysis,
    MetaRegression,
    RobustInference,
    RobustPooled,
)

if TYPE_CHECKING:
    import numpy as np

    from ivigmeta.io.studies import Study

#: how many studies an error about empty cluster values names before "and N more"
NAMED_STUDIES = 5


def robust_fit(
    yi: Sequence[float],
    vi: Sequence[float],
    X: np.ndarray | Sequence[Sequence[float]],
    cluster: Sequence[str],
    tau2: float = 0.0,
    names: Sequence[str] | None = None,
    adjust: bool = True,
    level: float = 0.95,
    model: str = "random",
    tau2_method: str = "DL",
    measure: str = "",
    column: str = "cluster",
    cr2: bool = False,
) -> RobustInference:
    """Cluster-robust inference for the model y = X beta + u + e fitted with ``tau2`` (the
    model's estimate; 0 and ``model = "common"`` for the common-effect model), studies grouped
    by the labels ``cluster`` (one per study, none empty). ``X`` has the intercept first
    (a column of ones alone: the pooled estimate). ``column`` names the cluster variable in
    messages and the result. ``cr2``: clubSandwich's CR2 with Satterthwaite df and the HTZ
    test (``adjust`` is then not used).

    Fewer clusters than p + 1 is a :class:`ModelError`, as in metafor.
    """
    return _robust(
        yi, vi, X, cluster, tau2, names, adjust, level, model, tau2_method, measure, column, cr2
    )[0]


def _robust(
    yi: Sequence[float],
    vi: Sequence[float],
    X: np.ndarray | Sequence[Sequence[float]],
    cluster: Sequence[str],
    tau2: float,
    names: Sequence[str] | None,
    adjust: bool,
    level: float,
    model: str,
    tau2_method: str,
    measure: str,
    column: str,
    cr2: bool,
) -> tuple[RobustInference, Callable[[Sequence[float]], float]]:
    """:func:`robust_fit`, and the t df of a design row x of the fit (n - p; CR2: its
    Satterthwaite df, a ModelError when undefined): what a robust prediction needs."""
    import numpy as np

    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    Xa = np.asarray(X, dtype=float)
    if Xa.ndim == 1:
        Xa = Xa[:, None]
    k, p = Xa.shape
    labels = [str(c) for c in cluster]
    if len(labels) != k or len(y) != k or len(v) != k:
        raise ModelError(f"--cluster {column}: {len(labels)} cluster labels for {k} studies")
    if any(not c for c in labels):
        raise ModelError(f"--cluster {column}: every study needs a cluster (an empty label)")
    order = list(dict.fromkeys(labels))
    n = len(order)
    dfs = n - p
    if dfs <= 0:
        what = "the pooled estimate" if p == 1 else f"the model's {p} coefficients"
        raise ModelError(
            f"--cluster {column}: {n} cluster{'s' if n != 1 else ''}; cluster-robust inference "
            f"for {what} needs more clusters than coefficients (at least {p + 1})"
        )
    names = list(names) if names is not None else ["intercept"] + [f"x{j}" for j in range(1, p)]
    try:
        # The model's fit at its tau²: weights 1 / (v + tau²), beta and (X' W X)^-1.
        rf = regression_fit(y, v + tau2, Xa, "DL", "z", "common")
    except np.linalg.LinAlgError:
        raise ModelError("the model is numerically singular: no cluster-robust inference") from None
    beta, bread_inv = rf.beta, rf.vb
    w = 1.0 / (v + tau2)
    e = y - Xa @ beta
    index = {c: i for i, c in enumerate(order)}
    ids = np.array([index[c] for c in labels])
    btt = list(range(1, p)) if p > 1 else [0]
    m = len(btt)
    qm: float | None
    qm_p: float | None
    qm_denom: float | None = None
    coef_df: tuple[float, ...] = ()
    if cr2:
        from ivigmeta.core.sandwich import cr2_sandwich

        try:
            sandwich = cr2_sandwich(Xa, v, tau2, e, ids)
        except np.linalg.LinAlgError:
            raise ModelError(
                "the model is numerically singular: no cluster-robust inference"
            ) from None
        vb = sandwich.vcov

        def df_of(x: Sequence[float]) -> float:
            df = sandwich.satterthwaite(np.asarray(x, dtype=float))
            if not math.isfinite(df):
                raise ModelError(
                    f"--cluster {column} --cluster-type CR2: the prediction rests on clusters "
                    "fitted exactly (its CR2 variance is 0): no Satterthwaite df"
                )
            return df

        tdfs = []
        for j in range(p):
            df = sandwich.satterthwaite(np.eye(p)[j])
            if not math.isfinite(df):
                raise ModelError(
                    f"--cluster {column} --cluster-type CR2: coefficient {names[j]} rests on "
                    "clusters fitted exactly (its CR2 variance is 0): no Satterthwaite df"
                )
            tdfs.append(df)
        coef_df = tuple(tdfs)
    else:
        bread = bread_inv @ (Xa.T * w)  # p x k
        scores = np.zeros((n, p))  # row c: B_c e_c
        np.add.at(scores, ids, (bread * e).T)
        vb = scores.T @ scores
        if adjust:
            vb = vb * (n / dfs)
        tdfs = [float(dfs)] * p

        def df_of(x: Sequence[float]) -> float:
            return dfs

    se = np.sqrt(np.clip(np.diag(vb), 0.0, None))
    coefs = []
    for j in range(p):
        b, s = float(beta[j]), float(se[j])
        if s > 0:
            stat = b / s
            pval = t_p_two_sided(stat, tdfs[j])
        else:  # every cluster's score vanishes: decided as regression_fit decides a zero SE
            stat = math.copysign(math.inf, b) if b else 0.0
            pval = 0.0 if b else 1.0
        crit = t_crit(level, tdfs[j])
        coefs.append(Coefficient(names[j], b, s, stat, pval, b - crit * s, b + crit * s))
    if cr2 and p == 1:  # metafor: QM = t², on (1, df)
        qm, qm_denom, qm_p = coefs[0].statistic ** 2, coef_df[0], coefs[0].p_value
    elif cr2:
        try:
            htz = sandwich.htz(np.eye(p)[btt], beta)
        except np.linalg.LinAlgError:
            raise ModelError(
                f"--cluster {column} --cluster-type CR2: the robust Var(b) of the moderators is "
                "singular: no HTZ test"
            ) from None
        qm, qm_denom, qm_p = max(0.0, htz.f_statistic), htz.df_denom, htz.p_value
    else:
        try:
            bm = beta[btt]
            qm = float(bm @ np.linalg.solve(vb[np.ix_(btt, btt)], bm)) / m
            qm_p = f_sf(qm, m, dfs)
        except np.linalg.LinAlgError:  # metafor: QM is NA when its Cholesky fails
            qm, qm_p = None, None
    pi_low = pi_high = None
    if p == 1 and model == "random":
        half = t_crit(level, tdfs[0]) * math.sqrt(float(se[0]) ** 2 + tau2)
        pi_low, pi_high = float(beta[0]) - half, float(beta[0]) + half
    sizes = {c: 0 for c in order}
    for c in labels:
        sizes[c] += 1
    rob = RobustInference(
        cluster=column,
        adjust=bool(adjust) and not cr2,
        clusters=n,
        k=k,
        cluster_sizes=tuple(sizes.items()),
        model=model,
        tau2_method="FE" if model == "common" else tau2_method,
        tau2=float(tau2),
        level=level,
        measure=measure,
        coefficients=tuple(coefs),
        vcov=tuple(tuple(float(x) for x in row) for row in vb),
        qm=qm,
        qm_df=m,
        qm_p_value=qm_p,
        pi_low_theta=pi_low,
        pi_high_theta=pi_high,
        cr2=cr2,
        coefficient_df=coef_df,
        qm_df_denom=qm_denom,
    )
    return rob, df_of


def cluster_labels(studies: Sequence[Study], column: str) -> list[str]:
    """Each study's value in ``column`` (stripped). An empty value is a :class:`DataError`
    naming the studies and rows: metafor's robust() allows no missing cluster, and leaving a
    study out would change the model whose inference is made robust."""
    labels = [s.fields.get(column, "").strip() for s in studies]
    empty = [s for s, c in zip(studies, labels) if not c]
    if empty:
        named = ", ".join(
            s.label() + (f" (row {s.row})" if s.row is not None else "")
            for s in empty[:NAMED_STUDIES]
        )
        more = f" and {len(empty) - NAMED_STUDIES} more" if len(empty) > NAMED_STUDIES else ""
        raise DataError(
            f"--cluster {column}: no value for {len(empty)} "
            f"stud{'y' if len(empty) == 1 else 'ies'}: {named}{more}; every analysed study "
            "needs a cluster (a study in a cluster of its own needs a label of its own)"
        )
    return labels


def robust_pooled(
    ma: MetaAnalysis, column: str, adjust: bool = True, cr2: bool = False
) -> RobustPooled:
    """Cluster-robust inference for ``pool``'s random-effects model (its tau²) and its
    common-effect inverse-variance model (metafor's robust() of rma(method = "FE")); a
    Mantel-Haenszel or Peto common effect has none (metafor's robust() takes rma.uni fits only).
    ``cr2``: clubSandwich's CR2 with Satterthwaite df (:func:`robust_fit`).
    """
    if ma.glmm is not None:
        raise ModelError(
            "--cluster is not available with --glmm (metafor's robust() takes rma.uni fits only)"
        )
    if ma.random is None or ma.common is None:
        raise ModelError(
            f"--cluster {column}: a single study, nothing pooled: no cluster-robust inference"
        )
    labels = cluster_labels(ma.effects.studies, column)
    ones = [[1.0] for _ in range(ma.k)]
    level = ma.options.level
    random = robust_fit(
        ma.effects.yi,
        ma.effects.vi,
        ones,
        labels,
        tau2=ma.random.tau2,
        adjust=adjust,
        level=level,
        model="random",
        tau2_method=ma.random.tau2_method,
        measure=ma.measure,
        column=column,
        cr2=cr2,
    )
    common = None
    note = None
    if ma.common.method == "IV":
        common = robust_fit(
            ma.effects.yi,
            ma.effects.vi,
            ones,
            labels,
            adjust=adjust,
            level=level,
            model="common",
            measure=ma.measure,
            column=column,
            cr2=cr2,
        )
    else:
        note = (
            f"no cluster-robust common effect for --common {ma.common.method} (metafor's "
            "robust() takes inverse-variance fits only; use --common IV)"
        )
    return RobustPooled(random, common, note)


def robust_metareg(
    es: EffectSizes,
    reg: MetaRegression,
    column: str,
    columns: Sequence[str],
    ref: Mapping[str, str] | None = None,
    categorical: Sequence[str] = (),
    adjust: bool = True,
    cr2: bool = False,
) -> RobustInference:
    """Cluster-robust inference for the meta-regression ``reg`` of ``es`` on the moderator
    ``columns`` (coded with ``ref`` and ``categorical`` as when it was fitted); its --predict
    rows again with the robust Var(beta) and t on n - p df (CR2: each on the Satterthwaite df
    of its design row; metafor's predict() of the robust fit)."""
    from ivigmeta.methods.metareg import build_moderators, predict_at

    mods = build_moderators(es, columns, ref, categorical)
    labels = cluster_labels([es.studies[i] for i in mods.keep], column)
    rob, df_of = _robust(
        reg.yi,
        reg.vi,
        reg.design,
        labels,
        reg.tau2,
        [c.name for c in reg.coefficients],
        adjust,
        reg.level,
        reg.model,
        reg.tau2_method,
        reg.measure,
        column,
        cr2,
    )
    if reg.predictions:
        at_robust = replace(reg, vcov=rob.vcov, qm_df2=rob.df)
        rob = replace(
            rob,
            predictions=tuple(predict_at(at_robust, p.label, df_of) for p in reg.predictions),
        )
    return rob


__all__ = ["cluster_labels", "robust_fit", "robust_metareg", "robust_pooled"]
