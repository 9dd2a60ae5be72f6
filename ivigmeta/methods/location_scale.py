"""Location-scale meta-regression (metafor's ``rma(yi, vi, mods = ~ X, scale = ~ Z)``;
Viechtbauer & López-López 2022): the location moderators as in
:mod:`ivigmeta.methods.metareg`, and the heterogeneity regressed on scale moderators,
log tau²_i = z_i' alpha (link ``"log"``) or tau²_i = z_i' alpha (``"identity"``), fitted by
REML (default) or ML (:mod:`ivigmeta.core.location_scale`).

Reported, as metafor: the location coefficients (Wald z at W = diag(1 / (v + tau²_i))) with
QM over the non-intercept ones, QE (the residual heterogeneity test of the location model with
inverse-variance weights), the scale coefficients (Wald z from the Hessian of the
log-likelihood) with QS over the non-intercept ones, each study's tau²_i, and the fit
statistics with p + q parameters. Further questions of the fit: Wald tests of subsets of the
scale coefficients (``anova(fit, att = ...)``), predictions at scale-moderator values
(``predict(fit, newscale = ...)``), profile-likelihood intervals of alpha
(``confint(fit, alpha = j)``), the likelihood-ratio test against scale ~ 1
(``anova(full, reduced)``) and the variance inflation of the scale coefficients (``vif()``).

Moderators of both parts are coded as ``--mod`` is (:func:`ivigmeta.methods.metareg.build_moderators`);
a study with an empty value in any location or scale moderator is left out and listed as
excluded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from ivigmeta.core.distributions import chi2_sf, z_crit
from ivigmeta.errors import ModelError
from ivigmeta.methods.metareg import (
    build_moderators,
    check_design,
    coefficient_rows,
    coefficient_test,
    design_row,
    linear_prediction,
    parse_at,
    reported_values,
    subset_wald_test,
    variance_inflation,
)
from ivigmeta.results import (
    EffectSizes,
    MetaRegression,
    ModelComparison,
    ModelFit,
    Prediction,
    ProfileInterval,
    ScaleModel,
    ScalePrediction,
)

if TYPE_CHECKING:
    import numpy as np


def location_scale_analysis(
    es: EffectSizes,
    mods: Sequence[str],
    scale: Sequence[str],
    link: str = "log",
    method: str = "REML",
    level: float = 0.95,
    ref: Mapping[str, str] | None = None,
    categorical: Sequence[str] = (),
    predict: Sequence[str] = (),
    predict_scale: Sequence[str] = (),
    btt: Sequence[str] = (),
    att: Sequence[str] = (),
    profile: bool = False,
    lrt: bool = False,
) -> MetaRegression:
    """The location-scale meta-regression of ``es`` on location moderators ``mods`` (none: an
    intercept-only location) and scale moderators ``scale`` (at least one). ``ref`` and
    ``categorical`` code the columns of both parts. ``predict``: :func:`location_prediction`
    each; ``btt`` as for :func:`ivigmeta.methods.metareg.metareg_analysis`;
    ``predict_scale``: scale-moderator values
    ("COL=VALUE,..."), one :class:`ScalePrediction` each; ``att``: subsets of scale coefficients
    to test jointly; ``profile``: the profile-likelihood interval of every scale coefficient;
    ``lrt``: the likelihood-ratio test against the same location model with scale ~ 1."""
    import numpy as np

    from ivigmeta.core.fitstats import model_fit_statistics, statistics_of
    from ivigmeta.core.location_scale import check_link, location_scale_fit
    from ivigmeta.core.regression import residual_q
    from ivigmeta.io.studies import distinct_labels

    link = check_link(link)
    method = method.upper()
    if method not in ("REML", "ML"):
        raise ModelError(
            f"location-scale models are fitted by REML or ML (--tau2 REML or ML), not {method}"
        )
    if not scale:
        raise ModelError("a location-scale model needs at least one scale moderator (--scale COL)")
    if len(set(scale)) != len(scale):
        raise ModelError("a scale moderator is named more than once")
    ref = dict(ref or {})
    columns = list(dict.fromkeys([*mods, *scale]))
    union = build_moderators(es, columns, ref, categorical)
    if not union.keep:
        reasons = "; ".join(f"{e.study}: {e.reason}" for e in union.excluded + es.excluded)
        raise ModelError(
            "no usable studies for the location-scale model"
            + (f" (excluded: {reasons})" if reasons else "")
        )
    sub = es.subset(list(union.keep))

    def part(cols: Sequence[str]) -> tuple[np.ndarray, tuple[str, ...], tuple, tuple]:
        if not cols:
            return np.ones((sub.k, 1)), ("intercept",), (), ()
        built = build_moderators(
            sub,
            cols,
            {c: r for c, r in ref.items() if c in cols},
            [c for c in categorical if c in cols],
        )
        terms = tuple((c, built.kinds[c], built.levels.get(c, ())) for c in cols)
        return built.X, built.names, terms, tuple(built.references.items())

    X, names, terms, references = part(mods)
    Z, z_names, z_terms, z_references = part(scale)
    check_design(X, names)
    try:
        check_design(Z, z_names)
    except ModelError as exc:
        raise ModelError(f"scale model: {exc}") from None
    y = np.asarray(sub.yi, dtype=float)
    v = np.asarray(sub.vi, dtype=float)
    k, p = X.shape
    q = Z.shape[1]
    if p + q > k:
        raise ModelError(
            f"the location-scale model has {p + q} coefficients ({p} location, {q} scale) but "
            f"only {k} studies"
        )
    if np.any(v <= 0):
        raise ModelError("a location-scale model needs positive sampling variances")
    try:
        fit = location_scale_fit(y, v, X, Z, link, method)
    except np.linalg.LinAlgError:
        raise ModelError(
            "the location-scale model is numerically singular (the studies' sampling variances "
            "differ by too many orders of magnitude)"
        ) from None
    rf = fit.regression
    coefs = coefficient_rows(names, rf.beta, rf.se, rf.statistics, None, level)
    qm = rf.qm
    qm_p = None if qm is None else chi2_sf(qm, p - 1)
    qe, _ = residual_q(y, v, X)
    stats = model_fit_statistics(y, v, X, fit.tau2, rf.beta, p + q)
    se_alpha = np.sqrt(np.diag(fit.va))
    z_coefs = coefficient_rows(z_names, fit.alpha, se_alpha, fit.alpha / se_alpha, None, level)
    qs: float | None = None
    qs_p: float | None = None
    if q > 1:
        a = fit.alpha[1:]
        qs = float(a @ np.linalg.solve(fit.va[1:, 1:], a))
        qs_p = chi2_sf(qs, q - 1)
    vcov_alpha = tuple(tuple(float(x) for x in row) for row in fit.va)
    scale_model = ScaleModel(
        link=link,
        coefficients=z_coefs,
        vcov=vcov_alpha,
        qs=qs,
        qs_df=q - 1,
        qs_p_value=qs_p,
        tau2=tuple(float(t) for t in fit.tau2),
        references=z_references,
        design=tuple(tuple(float(x) for x in row) for row in Z),
        terms=z_terms,
        note=fit.note,
    )
    if q > 1 and bool(np.all(np.isfinite(fit.va))):
        scale_model = replace(
            scale_model,
            vif=tuple(
                variance_inflation(z_names, vcov_alpha, c.name, [c.name]) for c in z_coefs[1:]
            ),
        )
    reg = MetaRegression(
        coefficients=coefs,
        qm=qm,
        qm_df=p - 1,
        qm_p_value=qm_p,
        qe=qe,
        qe_df=k - p,
        qe_p_value=chi2_sf(qe, k - p),
        tau2=math.nan,
        i2=None,
        h2=None,
        r2=None,
        k=k,
        tau2_method=method,
        ci_method="z",
        excluded=union.excluded + es.excluded,
        level=level,
        measure=es.measure,
        references=references,
        model="random",
        vcov=tuple(tuple(float(x) for x in row) for row in rf.vb),
        yi=tuple(float(x) for x in y),
        vi=tuple(float(x) for x in v),
        design=tuple(tuple(float(x) for x in row) for row in X),
        study_labels=tuple(distinct_labels(list(sub.studies))),
        terms=terms,
        fit_statistics=statistics_of(stats, 0, method),
        scale=scale_model,
    )
    if predict:
        reg = replace(reg, predictions=tuple(location_prediction(reg, text) for text in predict))
    if btt:
        reg = replace(reg, coefficient_tests=tuple(coefficient_test(reg, spec) for spec in btt))
    extra: dict = {}
    if att:
        extra["coefficient_tests"] = tuple(
            subset_wald_test(z_coefs, vcov_alpha, [t[0] for t in z_terms], None, spec, "--att")
            for spec in att
        )
    if predict_scale:
        extra["predictions"] = tuple(
            scale_prediction(scale_model, text, level) for text in predict_scale
        )
    if profile:
        from ivigmeta.core.location_scale import profile_alpha_ci

        intervals = []
        for j, c in enumerate(z_coefs):
            lo, hi = profile_alpha_ci(fit, y, v, X, Z, j, level)
            intervals.append(ProfileInterval(c.name, c.estimate, lo, hi))
        extra["profile"] = tuple(intervals)
    if lrt:
        extra["comparison"] = _scale_lrt(reg, fit.loglik, y, v, X, link, method, scale)
    if extra:
        reg = replace(reg, scale=replace(scale_model, **extra))
    return reg


def location_prediction(reg: MetaRegression, text: str) -> Prediction:
    """metafor's ``predict(fit, newmods = ..., newscale = ...)`` at ``text`` ("COL=VALUE,..."):
    values for every location moderator give x'b, its SE and z interval; when they also give
    every scale moderator (a column in both parts takes one value for both), the prediction
    interval is x'b +- z sqrt(se² + tau²) with tau² the scale model's at those values (its
    identity-link negatives set to 0); without scale values there is none (NaN), as metafor."""
    assert reg.scale is not None
    pairs = parse_at(text)
    values = dict(pairs)
    location = {t[0] for t in reg.terms}
    scale = {t[0] for t in reg.scale.terms}
    try:
        unknown = [c for c in values if c not in location | scale]
        if unknown:
            raise ModelError(
                f"'{unknown[0]}' is not a moderator of the model (location: "
                + (", ".join(t[0] for t in reg.terms) or "none")
                + "; scale: "
                + ", ".join(t[0] for t in reg.scale.terms)
                + ")"
            )
        x = design_row(reg.terms, {c: v for c, v in values.items() if c in location})
        given = {c: v for c, v in values.items() if c in scale}
        missing = [t[0] for t in reg.scale.terms if t[0] not in given]
        if given and missing and not set(given) <= location:
            raise ModelError(
                "give a value for every scale moderator for a prediction interval, or none "
                "(missing: " + ", ".join(missing) + ")"
            )
    except ModelError as exc:
        raise ModelError(f"--predict '{text}': {exc}") from None
    est, se = linear_prediction(reg, x)
    tau2 = math.nan
    if not missing:
        z = design_row(reg.scale.terms, given)
        eta = math.fsum(a * c.estimate for a, c in zip(z, reg.scale.coefficients))
        tau2 = _exp(eta) if reg.scale.link == "log" else max(eta, 0.0)
    crit = z_crit(reg.level)
    half_pi = crit * math.sqrt(se * se + tau2)
    values5 = (est, est - crit * se, est + crit * se, est - half_pi, est + half_pi)
    return Prediction(
        at=tuple(pairs),
        estimate=est,
        se=se,
        ci_low=values5[1],
        ci_high=values5[2],
        pi_low=values5[3],
        pi_high=values5[4],
        reported=reported_values(values5, reg.measure),
    )


def scale_prediction(scale: ScaleModel, text: str, level: float = 0.95) -> ScalePrediction:
    """metafor's ``predict(fit, newscale = ...)`` at the scale-moderator values ``text``
    ("COL=VALUE,..."): z' alpha, se = sqrt(z' Var(alpha) z), the z interval, and tau² = exp of
    them (log link; metafor's ``transf = exp``) or the values themselves with negatives set to
    0 (identity link, as metafor)."""
    pairs = parse_at(text, "--predict-scale")
    if not scale.terms:
        raise ModelError("--predict-scale: the scale model has no moderators")
    try:
        z = design_row(scale.terms, dict(pairs))
    except ModelError as exc:
        raise ModelError(f"--predict-scale '{text}': {exc}") from None
    alpha = [c.estimate for c in scale.coefficients]
    est = math.fsum(a * b for a, b in zip(z, alpha))
    var = math.fsum(z[i] * scale.vcov[i][j] * z[j] for i in range(len(z)) for j in range(len(z)))
    se = math.sqrt(max(var, 0.0))
    crit = z_crit(level)
    lo, hi = est - crit * se, est + crit * se
    if scale.link == "log":
        tau2, t_lo, t_hi = _exp(est), _exp(lo), _exp(hi)
    else:
        tau2, t_lo, t_hi = max(est, 0.0), max(lo, 0.0), max(hi, 0.0)
    return ScalePrediction(tuple(pairs), est, se, lo, hi, tau2, t_lo, t_hi)


def _exp(x: float) -> float:
    """exp(x), infinite beyond the float range (a boundary fit's bounds can be huge)."""
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _scale_lrt(
    reg: MetaRegression,
    loglik: float,
    y: np.ndarray,
    v: np.ndarray,
    X: np.ndarray,
    link: str,
    method: str,
    scale: Sequence[str],
) -> ModelComparison:
    """anova(full, reduced) with the reduced model the same location model and scale ~ 1
    (the plain REML/ML fit): LRT = 2 (ll_full - ll_reduced) on q - 1 df."""
    import numpy as np

    from ivigmeta.core.fitstats import model_fit_statistics, statistics_of
    from ivigmeta.core.location_scale import location_scale_fit

    assert reg.scale is not None and reg.fit_statistics is not None
    k, p = X.shape
    q = len(reg.scale.coefficients)
    reduced = location_scale_fit(y, v, X, np.ones((k, 1)), link, method)
    red_stats = statistics_of(
        model_fit_statistics(y, v, X, reduced.tau2, reduced.regression.beta, p + 1), 0, method
    )

    def side(values: Mapping[str, float], parms: int, tau2: float) -> ModelFit:
        return ModelFit(
            parms, values["loglik"], values["aic"], values["bic"], values["aicc"], reg.qe, tau2
        )

    full = side(reg.fit_statistics.values, p + q, math.nan)
    red = side(red_stats.values, p + 1, float(reduced.tau2[0]))
    df = q - 1
    stat = max(0.0, 2.0 * (loglik - reduced.loglik))
    return ModelComparison(tuple(scale), method, full, red, stat, df, chi2_sf(stat, df), None)


__all__ = ["location_scale_analysis", "location_prediction", "scale_prediction"]
