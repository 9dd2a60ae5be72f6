"""Common-effect and random-effects pooling, intervals and prediction interval: the one kernel.

:func:`pool_groups` fits every group of rows (one meta-analysis per group) at once; ``pool``
calls it with one group (:func:`fit` builds the result objects), ``batch`` with a million.

* Common effect (inverse variance): theta = sum w y / sum w, se = 1 / sqrt(sum w), w = 1 / v; or
  Mantel-Haenszel / Peto from the counts (:mod:`ivigmeta.core.mantel_haenszel`).
* Random effects: w* = 1 / (v + tau²) with tau² from :mod:`ivigmeta.core.tau2`.
* Intervals: Wald z (default), or Hartung-Knapp-Sidik-Jonkman (``hk``: se² = sum w* (y - theta)² /
  ((k - 1) sum w*), t on k - 1 df; Hartung & Knapp 2001, Sidik & Jonkman 2002), as metafor's
  ``test = "knha"`` (no truncation of the variance factor); a weighted residual sum of squares
  below machine epsilon is exactly 0, as metafor.
* Prediction interval: theta ± crit sqrt(se² + tau²), crit from the normal (z) or t on k - 1 df
  (hk), as metafor's ``predict()`` (Riley et al. 2011).
* Heterogeneity: :mod:`ivigmeta.core.heterogeneity`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ivigmeta.core.distributions import (
    norm_p_array,
    t_crit_array,
    t_p_array,
    z_crit,
)
from ivigmeta.core.groups import Groups
from ivigmeta.core.heterogeneity import GroupHeterogeneity, group_heterogeneity
from ivigmeta.core.mantel_haenszel import (
    CountPooled,
    MhOddsRatioTests,
    peto_measure_error,
    pool_mh,
    pool_mh_rates,
    pool_peto,
    raise_common_error,
)
from ivigmeta.core.models import InterceptModels
from ivigmeta.core.tau2 import (
    GENQ_NEEDS_WEIGHTS,
    GRID,
    Tau2Fit,
    fit_tau2,
    not_converged_message,
)
from ivigmeta.errors import ModelError

if TYPE_CHECKING:
    from ivigmeta.results import (
        ChiSquareTest,
        CommonFit,
        EffectSizes,
        Estimate,
        Exclusion,
        FitOptions,
        MetaAnalysis,
        RandomFit,
    )

CI_METHODS = ("z", "hk", "adhoc", "hc", "t")
PI_METHODS = ("z", "t")
COMMON_CI_METHODS = ("z", "hk")
COMMON_METHODS = ("IV", "MH", "PETO")
EPS = 2.220446049250313e-16


def check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ModelError(
            f"the confidence level must be between 0 and 100 percent, not {level * 100:g}"
        )


def check_ci_method(ci_method: str) -> str:
    ci = ci_method.lower()
    if ci not in CI_METHODS:
        raise ModelError(
            f"unknown interval method '{ci_method}' (choose one of {', '.join(CI_METHODS)})"
        )
    return ci


def check_pi_method(pi_method: str) -> str:
    pi = pi_method.lower()
    if pi not in PI_METHODS:
        raise ModelError(
            f"unknown prediction interval method '{pi_method}' (choose one of "
            f"{', '.join(PI_METHODS)})"
        )
    return pi


def check_common_ci(common_ci: str, common_method: str = "IV") -> str:
    ci = common_ci.lower()
    if ci not in COMMON_CI_METHODS:
        raise ModelError(
            f"unknown common-effect interval method '{common_ci}' (choose one of "
            f"{', '.join(COMMON_CI_METHODS)})"
        )
    if ci == "hk" and common_method.upper() != "IV":
        raise ModelError(
            "--common-ci hk applies to the inverse-variance common-effect model only "
            f"(not --common {common_method})"
        )
    return ci


def check_common_method(common_method: str, measure: str) -> str:
    common = common_method.upper()
    if common not in COMMON_METHODS:
        raise ModelError(
            f"unknown common-effect method '{common_method}' "
            f"(choose one of {', '.join(COMMON_METHODS)})"
        )
    if common == "PETO" and measure != "OR":
        raise ModelError(peto_measure_error(measure))
    if common == "MH" and measure in ("AS", "PHI", "YUQ", "YUY", "OR2DN", "OR2DL") + (
        *("MPRD", "MPRR", "MPOR", "MPORC", "MPPETO", "PBIT", "RTET"),
    ):
        raise ModelError(
            f"Mantel-Haenszel pools RR, OR and RD: {measure} is pooled by inverse variance "
            "(--common IV)"
        )
    if common == "MH" and measure == "IRSD":
        raise ModelError(
            "Mantel-Haenszel pools the rate measures IRR and IRD: IRSD is pooled by inverse "
            "variance (--common IV)"
        )
    return common


@dataclass(frozen=True)
class Counts:
    """The raw 2x2 counts of the rows (Mantel-Haenszel and Peto pool them); for incidence rates
    (Mantel-Haenszel IRR, IRD) a, n1, c, n2 are the events and person-times x1, t1, x2, t2."""

    a: np.ndarray
    n1: np.ndarray
    c: np.ndarray
    n2: np.ndarray
    cc: float = 0.5
    cc_policy: str = "only0"
    #: Mantel-Haenszel's CMH / MH tests with the continuity correction (metafor's correct)
    correct: bool = True


@dataclass(frozen=True)
class Interval:
    """An estimate per group with its test and interval (theta scale)."""

    theta: np.ndarray
    se: np.ndarray
    statistic: np.ndarray
    p_value: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray


@dataclass(frozen=True)
class RandomPart(Interval):
    df: np.ndarray  # NaN under z
    pi_low: np.ndarray
    pi_high: np.ndarray


@dataclass(frozen=True)
class GroupFit:
    """Everything the engine computes for a set of groups (k >= 2 each)."""

    common: Interval
    #: the Mantel-Haenszel / Peto fit, or None for inverse variance
    counts_fit: CountPooled | None
    common_weights: np.ndarray  # per row, raw (not percent)
    random: RandomPart
    random_weights: np.ndarray  # per row, raw
    heterogeneity: GroupHeterogeneity
    tau2: Tau2Fit
    i2: np.ndarray
    h2: np.ndarray
    i2_q: np.ndarray
    #: t df of the common-effect interval under --common-ci hk, NaN under z
    common_df: np.ndarray | None = None


def _wald(theta: np.ndarray, se: np.ndarray, crit: float) -> Interval:
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = theta / se
        p = norm_p_array(stat)
        return Interval(theta, se, stat, p, theta - crit * se, theta + crit * se)


def study_estimates(
    y: np.ndarray, se: np.ndarray, measure: str, level: float
) -> tuple[Estimate, ...]:
    from ivigmeta.results import Estimate

    w = _wald(y, se, z_crit(level))
    return tuple(
        Estimate(
            measure=measure,
            theta=float(w.theta[i]),
            se=float(w.se[i]),
            statistic=float(w.statistic[i]),
            p_value=float(w.p_value[i]),
            ci_low_theta=float(w.ci_low[i]),
            ci_high_theta=float(w.ci_high[i]),
        )
        for i in range(len(y))
    )


def study_estimate(y: float, v: float, measure: str, level: float = 0.95) -> Estimate:
    """Wald z test and interval for one study's effect."""
    return study_estimates(np.array([float(y)]), np.sqrt(np.array([float(v)])), measure, level)[0]


def random_part(
    y: np.ndarray,
    v: np.ndarray,
    g: Groups,
    tau2: np.ndarray,
    ci_method: str,
    level: float,
    pi_method: str = "z",
) -> tuple[RandomPart, np.ndarray]:
    """Random-effects estimate per group for given tau², with z, Hartung-Knapp (hk), its
    truncated form (adhoc), the Wald se on t (t; metafor's test = "t") or Henmi-Copas (hc)
    inference, and the prediction interval.

    Prediction interval theta ± crit sqrt(se² + tau²) (se the interval's own): with
    ``pi_method`` "z" crit is the normal quantile under --ci z (metafor's predict()), t on
    k - 1 df under hk, adhoc and t (metafor's predict() for test = "knha" / "adhoc" / "t"); with "t"
    crit is t on k - 2 df whatever the interval (Higgins et al. 2009; the Cochrane Handbook),
    NaN when k = 2. Under hc there is no prediction interval (metafor's hc() gives none).
    """
    w = 1.0 / (v + g.spread(tau2))
    sw = g.sum(w)
    theta = g.sum(w * y) / sw
    se = np.sqrt(1.0 / sw)
    if ci_method == "hc":
        from ivigmeta.core.henmi_copas import hc_groups

        theta, se, lo, hi, _ = hc_groups(y, v, g, level)
        nan = np.full(len(g), np.nan)
        part = RandomPart(theta, se, nan, nan.copy(), lo, hi, nan.copy(), nan.copy(), nan.copy())
        return part, w
    if ci_method in ("hk", "adhoc", "t"):
        df = (g.sizes - 1).astype(float)
        r = y - g.spread(theta)
        rss = g.sum(w * r * r)
        with np.errstate(divide="ignore", invalid="ignore"):
            s2w = np.where(rss <= EPS, 0.0, rss / df)
            if ci_method == "adhoc":
                # metafor's test = "adhoc": the variance factor is not allowed below 1
                s2w = np.maximum(s2w, 1.0)
            elif ci_method == "t":
                # metafor's test = "t": the Wald se, referred to t on k - 1 df
                s2w = np.ones(len(g))
            se = np.sqrt(s2w / sw)
            crit = t_crit_array(level, df)
            stat = np.where(
                se > 0, theta / se, np.where(theta != 0, np.copysign(np.inf, theta), 0.0)
            )
            p = np.where(se > 0, t_p_array(stat, df), np.where(theta != 0, 0.0, 1.0))
    else:
        df = np.full(len(g), np.nan)
        crit = np.full(len(g), z_crit(level))
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = theta / se
        p = norm_p_array(stat)
    pi_crit = crit
    if pi_method == "t":
        df_pi = (g.sizes - 2).astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            pi_crit = np.where(df_pi > 0, t_crit_array(level, np.maximum(df_pi, 1.0)), np.nan)
    pi_se = np.sqrt(se * se + tau2)
    part = RandomPart(
        theta,
        se,
        stat,
        p,
        theta - crit * se,
        theta + crit * se,
        df,
        theta - pi_crit * pi_se,
        theta + pi_crit * pi_se,
    )
    return part, w


def common_hk(y: np.ndarray, v: np.ndarray, g: Groups, level: float) -> tuple[Interval, np.ndarray]:
    """Hartung-Knapp for the common-effect model (metafor's rma(method = "EE", test = "knha")):
    se² = sum w (y - theta)² / ((k - 1) sum w), w = 1 / v, t on k - 1 df. Returns the interval
    and the df per group."""
    part, _ = random_part(y, v, g, np.zeros(len(g)), "hk", level)
    return Interval(
        part.theta, part.se, part.statistic, part.p_value, part.ci_low, part.ci_high
    ), part.df


def pool_groups(
    y: np.ndarray,
    v: np.ndarray,
    g: Groups,
    tau2_method: str = "DL",
    ci_method: str = "z",
    level: float = 0.95,
    common_method: str = "IV",
    measure: str = "RR",
    counts: Counts | None = None,
    pi_method: str = "z",
    common_ci: str = "z",
    tau2_weights: np.ndarray | None = None,
) -> GroupFit:
    """Fit the common-effect and random-effects models to every group (each with k >= 2).

    ``counts`` (the rows' raw counts) are needed for ``common_method`` MH or PETO;
    ``tau2_weights`` (per row) for the GENQ estimator of tau².
    """
    with np.errstate(all="ignore"):  # degenerate groups come out as NaN or inf, decided by callers
        return _pool_groups(
            y,
            v,
            g,
            tau2_method,
            ci_method,
            level,
            common_method,
            measure,
            counts,
            pi_method,
            common_ci,
            tau2_weights,
        )


def _pool_groups(
    y: np.ndarray,
    v: np.ndarray,
    g: Groups,
    tau2_method: str,
    ci_method: str,
    level: float,
    common_method: str,
    measure: str,
    counts: Counts | None,
    pi_method: str = "z",
    common_ci: str = "z",
    tau2_weights: np.ndarray | None = None,
) -> GroupFit:
    crit = z_crit(level)
    counts_fit = None
    common_df = np.full(len(g), np.nan)
    if common_method == "IV":
        w = 1.0 / v
        sw = g.sum(w)
        if common_ci == "hk":
            common, common_df = common_hk(y, v, g, level)
        else:
            common = _wald(g.sum(w * y) / sw, np.sqrt(1.0 / sw), crit)
        common_w = w
    else:
        if counts is None:
            raise ModelError(f"{common_method} needs event counts")
        if common_method == "MH" and measure in ("IRR", "IRD"):
            # Counts of events over person-time: a, n1, c, n2 are x1, t1, x2, t2.
            counts_fit = pool_mh_rates(
                counts.a,
                counts.n1,
                counts.c,
                counts.n2,
                g,
                measure,
                counts.cc,
                counts.cc_policy,
                counts.correct,
            )
        elif common_method == "MH":
            counts_fit = pool_mh(
                counts.a,
                counts.n1,
                counts.c,
                counts.n2,
                g,
                measure,
                counts.cc,
                counts.cc_policy,
                counts.correct,
            )
        else:
            counts_fit = pool_peto(
                counts.a, counts.n1, counts.c, counts.n2, g, counts.cc, counts.cc_policy
            )
        common = _wald(counts_fit.theta, counts_fit.se, crit)
        common_w = counts_fit.weights
    models = InterceptModels(y, v, g, tau2_weights)
    het = group_heterogeneity(y, v, g, models)
    tau2 = fit_tau2(models, tau2_method)
    random, random_w = random_part(y, v, g, tau2.tau2, ci_method, level, pi_method)
    return GroupFit(
        common,
        counts_fit,
        common_w,
        random,
        random_w,
        het,
        tau2,
        het.i2(tau2.tau2),
        het.h2(tau2.tau2),
        het.i2_q(),
        common_df,
    )


def percent(w: np.ndarray, g: Groups) -> np.ndarray:
    """Weights in percent of their group's total (NaN where the total is not positive)."""
    total = g.spread(g.sum(w))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, 100.0 * w / total, np.nan)


# ---------------------------------------------------------------------------------------------
# One analysis: the result objects.


def _tuple(x: np.ndarray) -> tuple[float, ...]:
    return tuple(float(t) for t in x)


def random_effects(
    yi: Sequence[float],
    vi: Sequence[float],
    measure: str,
    tau2: float,
    tau2_method: str = "DL",
    ci_method: str = "z",
    level: float = 0.95,
    pi_method: str = "z",
) -> RandomFit:
    """Random-effects estimate of one analysis for a given tau², with z, Hartung-Knapp (hk,
    adhoc) or Henmi-Copas (hc) inference (:func:`random_part`)."""
    ci_method = check_ci_method(ci_method)
    pi_method = check_pi_method(pi_method)
    if ci_method != "z" and len(yi) < 2:
        raise ModelError("Hartung-Knapp and Henmi-Copas intervals need at least 2 studies")
    g = Groups.single(len(yi))
    part, w = random_part(
        np.asarray(yi, dtype=float),
        np.asarray(vi, dtype=float),
        g,
        np.array([float(tau2)]),
        ci_method,
        level,
        pi_method,
    )
    return _random_fit(part, 0, percent(w, g), measure, float(tau2), tau2_method, ci_method)


def _random_fit(
    part: RandomPart,
    i: int,
    weights: np.ndarray,
    measure: str,
    tau2: float,
    tau2_method: str,
    ci_method: str,
    converged: bool = True,
    algorithm: str = "",
    tau2_se: float = math.nan,
    pi_method: str = "z",
) -> RandomFit:
    from ivigmeta.results import RandomFit

    df = float(part.df[i])
    pi_low, pi_high = float(part.pi_low[i]), float(part.pi_high[i])
    return RandomFit(
        measure=measure,
        theta=float(part.theta[i]),
        se=float(part.se[i]),
        statistic=float(part.statistic[i]),
        p_value=float(part.p_value[i]),
        ci_low_theta=float(part.ci_low[i]),
        ci_high_theta=float(part.ci_high[i]),
        tau2_method=tau2_method,
        ci_method=ci_method,
        tau2=tau2,
        df=None if math.isnan(df) else int(df),
        pi_low_theta=None if math.isnan(pi_low) else pi_low,
        pi_high_theta=None if math.isnan(pi_high) else pi_high,
        weights=_tuple(weights),
        converged=converged,
        tau2_algorithm=algorithm,
        tau2_se=None if math.isnan(tau2_se) else tau2_se,
        pi_method=pi_method,
    )


def _common_fit(
    gf: GroupFit, g: Groups, measure: str, method: str, ci_method: str = "z"
) -> CommonFit:
    from ivigmeta.results import CommonFit

    c = gf.common
    extra: dict[str, object] = {}
    if ci_method == "hk" and gf.common_df is not None:
        extra = dict(ci_method="hk", df=int(gf.common_df[0]))
    cf = gf.counts_fit
    if cf is not None:
        extra |= dict(
            q=float(cf.q[0]),
            q_df=int(cf.q_df[0]),
            q_p_value=float(cf.q_p_value[0]),
            i2=float(cf.i2[0]),
            h2=float(cf.h2[0]),
            k_yi=int(cf.k_yi[0]),
        )
        if cf.or_tests is not None:
            extra.update(mh_or_results(cf.or_tests, 0))
        if cf.rate_test is not None:
            from ivigmeta.results import ChiSquareTest

            stat, p = cf.rate_test
            extra["cmh"] = ChiSquareTest(_maybe(float(stat[0])), 1, _maybe(float(p[0])))
        if cf.or_tests is not None or cf.rate_test is not None:
            extra["cmh_correct"] = cf.correct
    return CommonFit(
        measure=measure,
        theta=float(c.theta[0]),
        se=float(c.se[0]),
        statistic=float(c.statistic[0]),
        p_value=float(c.p_value[0]),
        ci_low_theta=float(c.ci_low[0]),
        ci_high_theta=float(c.ci_high[0]),
        method=method,
        weights=_tuple(percent(gf.common_weights, g)),
        **extra,  # type: ignore[arg-type]
    )


def _maybe(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def mh_or_results(t: MhOddsRatioTests, i: int) -> dict[str, ChiSquareTest]:
    """Group ``i``'s Mantel-Haenszel odds-ratio statistics as CommonFit's result objects."""
    from ivigmeta.results import ChiSquareTest

    df = max(int(t.k_pos[i]) - 1, 0)
    return {
        "cmh": ChiSquareTest(_maybe(t.cmh[i]), 1, _maybe(t.cmh_p[i])),
        "cochran": ChiSquareTest(_maybe(t.cochran[i]), 1, _maybe(t.cochran_p[i])),
        "breslow_day": ChiSquareTest(_maybe(t.breslow_day[i]), df, _maybe(t.breslow_day_p[i])),
        "tarone": ChiSquareTest(_maybe(t.tarone[i]), df, _maybe(t.tarone_p[i])),
    }


def no_usable_studies(excluded: Sequence[Exclusion]) -> str:
    """The message for a table none of whose studies has an effect: each one, its row, why."""
    reasons = "; ".join(
        f"{e.study}{'' if e.row is None or e.study == f'row {e.row}' else f' (row {e.row})'}: "
        f"{e.reason}"
        for e in excluded
    )
    return "no usable studies" + (f" (excluded: {reasons})" if reasons else "")


def fit(es: EffectSizes, options: FitOptions | None = None) -> MetaAnalysis:
    """Fit the common-effect and random-effects models to ``es`` (the kernel on one group).

    With a single study nothing is pooled: ``common``, ``random`` and ``heterogeneity`` are
    ``None`` and the study's own estimate is reported. No study at all is a :class:`ModelError`.
    """
    from ivigmeta.core.confint import qprofile_ci
    from ivigmeta.core.heterogeneity import heterogeneity_result
    from ivigmeta.results import FitOptions, MetaAnalysis

    options = options or FitOptions()
    check_level(options.level)
    if es.k == 0:
        raise ModelError(no_usable_studies(es.excluded))
    if options.glmm:
        return glmm_analysis(es, options)
    if options.software == "revman":
        return revman_analysis(es, options)
    estimates = study_estimates(
        np.asarray(es.yi, dtype=float),
        np.sqrt(np.asarray(es.vi, dtype=float)),
        es.measure,
        options.level,
    )
    if es.k == 1:
        return MetaAnalysis(es, options, estimates, None, None, None)
    common_method = check_common_method(options.common_method, es.measure)
    ci_method = check_ci_method(options.ci_method)
    pi_method = check_pi_method(options.pi_method)
    common_ci = check_common_ci(options.common_ci, common_method)
    weights = tau2_weights_of(es, options)
    counts = counts_of(es, common_method, options.mh_correct)
    g = Groups.single(es.k)
    y = np.asarray(es.yi, dtype=float)
    v = np.asarray(es.vi, dtype=float)
    gf = pool_groups(
        y,
        v,
        g,
        options.tau2_method,
        ci_method,
        options.level,
        common_method,
        es.measure,
        counts,
        pi_method,
        common_ci,
        weights,
    )
    if gf.counts_fit is not None:
        raise_common_error(int(gf.counts_fit.error[0]))
    t2 = gf.tau2
    if not t2.converged[0]:
        raise ModelError(not_converged_message(t2.method, int(t2.iterations[0])))
    tau2 = float(t2.tau2[0])
    common = _common_fit(gf, g, es.measure, common_method, common_ci)
    tau2_se = float(t2.se[0]) if t2.se is not None else math.nan
    random = _random_fit(
        gf.random,
        0,
        percent(gf.random_weights, g),
        es.measure,
        tau2,
        t2.method,
        ci_method,
        True,
        str(t2.algorithm[0]),
        tau2_se,
        pi_method,
    )
    from ivigmeta.core.fitstats import (
        counts_fit_statistics,
        intercept_fit_statistics,
        statistics_of,
    )
    from ivigmeta.core.tau2 import fixed_tau2, likelihood_of

    weighted = options.user_weighted
    if weighted:
        reweighted, random = with_user_weights(es, options, common, random)
        assert reweighted is not None
        common = reweighted

    random = dataclasses.replace(
        random,
        fit_statistics=statistics_of(
            intercept_fit_statistics(
                y,
                v,
                g,
                t2.tau2,
                1 if fixed_tau2(t2.method) is not None else 2,
                np.array([random.theta]) if weighted else None,
            ),
            0,
            likelihood_of(t2.method),
        ),
    )
    if common_method == "IV":
        common = dataclasses.replace(
            common,
            fit_statistics=statistics_of(
                intercept_fit_statistics(
                    y, v, g, np.zeros(1), 1, np.array([common.theta]) if weighted else None
                ),
                0,
                "ML",
            ),
        )
    elif gf.counts_fit is not None and gf.counts_fit.sum_log_v is not None:
        common = dataclasses.replace(
            common, fit_statistics=statistics_of(counts_fit_statistics(gf.counts_fit), 0, "ML")
        )
    ci = None
    # A fixed tau² (--tau2 VALUE) has no interval: metafor's confint() refuses such a fit.
    if not math.isnan(float(gf.heterogeneity.s2[0])) and fixed_tau2(t2.method) is None:
        ci = qprofile_ci(es.yi, es.vi, tau2, options.level)
    het = heterogeneity_result(gf.heterogeneity, 0, tau2, t2.method, ci)
    het = dataclasses.replace(het, tau2_se=None if math.isnan(tau2_se) else tau2_se)
    return MetaAnalysis(es, options, estimates, common, random, het)


def counts_of(es: EffectSizes, common_method: str, correct: bool = True) -> Counts | None:
    """The raw counts the common-effect method needs (None for inverse variance): events and
    totals of both arms, or events and person-time for Mantel-Haenszel rates; ``correct``:
    Mantel-Haenszel's tests with the continuity correction."""
    if common_method == "MH" and es.measure in ("IRR", "IRD"):
        cols = np.array(rate_counts(es), dtype=float).T
        return Counts(cols[0], cols[1], cols[2], cols[3], es.cc, es.cc_policy, correct)
    if common_method != "IV":
        es.require_counts("Mantel-Haenszel" if common_method == "MH" else "Peto's method")
        cols = np.array([s.counts for s in es.studies], dtype=float).T
        return Counts(cols[0], cols[1], cols[2], cols[3], es.cc, es.cc_policy, correct)
    return None


def common_raw_weights(es: EffectSizes, options: FitOptions) -> np.ndarray:
    """The common-effect method's own weight of every study, not as percentages (1 / v for
    inverse variance; b c / N, c n1 / N, n1 n2 / N, x2 t1 / T, t1 t2 / T for Mantel-Haenszel;
    Peto's V): metafor's ``weights(fit, type = "matrix")`` diagonal of rma.mh / rma.peto."""
    common_method = check_common_method(options.common_method, es.measure)
    gf = pool_groups(
        np.asarray(es.yi, dtype=float),
        np.asarray(es.vi, dtype=float),
        Groups.single(es.k),
        "DL",
        "z",
        options.level,
        common_method,
        es.measure,
        counts_of(es, common_method),
    )
    return np.asarray(gf.common_weights, dtype=float)


def rate_counts(es: EffectSizes) -> list[list[float]]:
    """Each study's events and person-times (x1, t1, x2, t2), which Mantel-Haenszel rate ratios
    and differences pool; a study that gives only an effect is a ModelError naming it."""
    from ivigmeta.results import counts_needed

    missing = [
        (s.study, s.row) for s in es.studies if s.outcome_kind != "incidence" or not s.outcome
    ]
    if missing:  # the message batch gives too
        raise ModelError(counts_needed("Mantel-Haenszel", missing))
    rows = []
    for s in es.studies:
        o = s.outcome
        assert o is not None
        rows.append([o["treat_events"], o["treat_time"], o["control_events"], o["control_time"]])
    return rows


def column_numbers(es: EffectSizes, column: str, option: str, what: str) -> np.ndarray:
    """The non-negative numbers in ``column`` of the analysed studies (not all 0); a missing or
    bad cell is a DataError naming it."""
    from ivigmeta.errors import DataError

    out = []
    for s in es.studies:
        cell = s.fields.get(column)
        if cell is None:
            raise DataError(f"{option}: no column '{column}'")
        try:
            value = float(cell.strip().replace(",", ".") if cell.count(",") == 1 else cell)
        except ValueError:
            raise DataError(f"{s.where(column)}: '{cell}' is not a number ({what})") from None
        if not math.isfinite(value) or value < 0:
            raise DataError(f"{s.where(column)}: {what} must be a non-negative number")
        out.append(value)
    a = np.array(out)
    if not np.any(a > 0):
        raise DataError(f"{option} {column}: every weight is 0")
    return a


def user_weighted(
    y: np.ndarray,
    v: np.ndarray,
    a: np.ndarray,
    tau2: float,
    ci_method: str,
    level: float,
    pi_method: str = "z",
) -> tuple[float, float, float, float, float, float, int | None, float, float]:
    """The pooled estimate with user weights ``a`` (metafor's ``rma(weights = a)``): theta =
    sum a y / sum a, se = sqrt(sum a² (v + tau²)) / sum a, z or t (k - 1 df) test and interval,
    prediction interval theta ± crit sqrt(se² + tau²) (t on k - 2 df with ``pi_method`` "t").
    Returns theta, se, statistic, p, ci_low, ci_high, df, pi_low, pi_high."""
    from ivigmeta.core.distributions import norm_p_two_sided, t_crit, t_p_two_sided
    from ivigmeta.core.regression import regression_fit

    # The weighted least-squares core with X = 1 at the given tau² (v + tau² as the variances
    # of a common-effect fit): theta = sum a y / sum a, se² = sum a² (v + tau²) / (sum a)².
    rf = regression_fit(y, v + tau2, np.ones((len(y), 1)), "DL", "z", "common", a)
    theta, se = float(rf.beta[0]), float(rf.se[0])
    stat = theta / se if se > 0 else (math.copysign(math.inf, theta) if theta else 0.0)
    k = len(y)
    df: int | None = None
    if ci_method == "t":
        df = k - 1
        crit = t_crit(level, df)
        p = t_p_two_sided(stat, df)
    else:
        crit = z_crit(level)
        p = norm_p_two_sided(stat)
    pi_crit = crit
    if pi_method == "t":
        pi_crit = t_crit(level, k - 2) if k > 2 else math.nan
    half = pi_crit * math.sqrt(se * se + tau2)
    return (
        theta,
        se,
        stat,
        p,
        theta - crit * se,
        theta + crit * se,
        df,
        theta - half,
        theta + half,
    )


def with_user_weights(
    es: EffectSizes, options: FitOptions, common: CommonFit | None, random: RandomFit
) -> tuple[CommonFit | None, RandomFit]:
    """The common (inverse-variance) and random-effects fits re-estimated with the user weights
    of ``options.weights`` (:func:`user_weighted`), or equal weights under
    ``options.unweighted`` (metafor's ``weighted = FALSE``): the common effect at tau² = 0."""
    assert options.user_weighted
    option = options.weights_option
    if options.weights is not None and options.unweighted:
        raise ModelError("--weights and --unweighted exclude each other")
    if options.ci_method not in ("z", "t"):
        raise ModelError(
            f"{option} takes --ci z or t (metafor's weights= with the Wald-type intervals), "
            f"not {options.ci_method}"
        )
    if options.common_ci != "z":
        raise ModelError(f"{option} takes --common-ci z")
    if options.weights is None:
        a = np.ones(es.k)
    else:
        a = column_numbers(es, options.weights, "--weights", "a weight")
    y = np.asarray(es.yi, dtype=float)
    v = np.asarray(es.vi, dtype=float)
    pct = tuple(float(x) for x in 100.0 * a / float(np.sum(a)))
    th, se, st, p, lo, hi, df, pl, ph = user_weighted(
        y, v, a, random.tau2, options.ci_method, options.level, options.pi_method
    )
    random = dataclasses.replace(
        random,
        theta=th,
        se=se,
        statistic=st,
        p_value=p,
        ci_low_theta=lo,
        ci_high_theta=hi,
        df=df,
        pi_low_theta=None if math.isnan(pl) else pl,
        pi_high_theta=None if math.isnan(ph) else ph,
        weights=pct,
    )
    if common is not None and common.method == "IV":
        th, se, st, p, lo, hi, _, _, _ = user_weighted(y, v, a, 0.0, "z", options.level)
        common = dataclasses.replace(
            common,
            theta=th,
            se=se,
            statistic=st,
            p_value=p,
            ci_low_theta=lo,
            ci_high_theta=hi,
            weights=pct,
        )
    return common, random


def tau2_weights_of(es: EffectSizes, options: FitOptions) -> np.ndarray | None:
    """The GENQ estimator's weights: the numbers in the column ``options.tau2_weights`` of the
    analysed studies (None without the option); a missing or bad cell is a DataError naming it."""
    from ivigmeta.errors import DataError

    column = options.tau2_weights
    if column is None:
        if options.tau2_method.upper() == "GENQ":
            raise ModelError(GENQ_NEEDS_WEIGHTS)
        return None
    out = []
    for s in es.studies:
        cell = s.fields.get(column)
        if cell is None:
            raise DataError(f"--tau2-weights: no column '{column}'")
        try:
            value = float(cell.strip().replace(",", ".") if cell.count(",") == 1 else cell)
        except ValueError:
            raise DataError(
                f"{s.where(column)}: '{cell}' is not a number (a tau² weight)"
            ) from None
        if not math.isfinite(value) or value < 0:
            raise DataError(f"{s.where(column)}: a tau² weight must be a non-negative number")
        out.append(value)
    a = np.array(out)
    if not np.any(a > 0):
        raise DataError(f"--tau2-weights {column}: every weight is 0")
    return a


def grid_search_note(ma: MetaAnalysis) -> str | None:
    """A note when ML/REML scoring failed and the likelihood search found the maximum."""
    r = ma.random
    if r is None or r.tau2_algorithm != GRID:
        return None
    return (
        f"Fisher scoring for the {r.tau2_method} estimate of tau² did not reach the maximum; "
        "a search of the likelihood over 16 decades found it"
    )


def glmm_counts(es: EffectSizes) -> tuple[list[float], list[float], list[float], list[float]]:
    """The counts a GLMM of ``es.measure`` needs from each study: (x1, n1, x2, n2); for PLO and
    IRLN (one group) x2 and n2 are empty. A study without them is a :class:`ModelError` naming
    its row."""
    measure = es.measure
    need = {"OR": "counts", "IRR": "incidence", "PLO": "proportion", "IRLN": "rate"}[measure]
    what = {
        "counts": "2x2 event counts",
        "incidence": "events and person-time in each group",
        "proportion": "events and totals",
        "rate": "events and person-time",
    }[need]
    x1: list[float] = []
    n1: list[float] = []
    x2: list[float] = []
    n2: list[float] = []
    for s in es.studies:
        o = s.outcome
        if need == "counts" and s.has_counts:
            row = [float(v) for v in s.counts]
        elif need == "incidence" and s.outcome_kind == "incidence" and o is not None:
            row = [o["treat_events"], o["treat_time"], o["control_events"], o["control_time"]]
        elif need == "proportion" and s.outcome_kind == "proportion" and o is not None:
            row = [o["events"], o["total"]]
        elif need == "rate" and s.outcome_kind == "rate" and o is not None:
            row = [o["events"], o["time"]]
        else:
            raise ModelError(
                f"--glmm needs {what} for {measure}, but {s.study} (row {s.row}) gives only "
                f"{s.effect_source if s.effect_source != 'counts' else 'an effect'}"
            )
        x1.append(row[0])
        n1.append(row[1])
        if len(row) == 4:
            x2.append(row[2])
            n2.append(row[3])
    return x1, n1, x2, n2


def glmm_on_t(res: Any, k: int, level: float) -> Any:
    """The GLMM fit ``res`` with metafor's ``test = "t"``: the Wald statistics of the pooled
    effect (random and fixed effects) referred to t on k - 1 df, intervals with the t
    quantile (the standard errors unchanged)."""
    from ivigmeta.core.distributions import t_crit, t_p_two_sided

    df = k - 1
    crit = t_crit(level, df)

    def on_t(part: Any) -> Any:
        return dataclasses.replace(
            part,
            p_value=t_p_two_sided(part.z, df),
            ci_low=part.theta - crit * part.se,
            ci_high=part.theta + crit * part.se,
        )

    return dataclasses.replace(on_t(res), common=on_t(res.common))


def check_glmm_measure(measure: str) -> None:
    """A GLMM is fitted for OR, IRR, PLO and IRLN: anything else is a :class:`ModelError`."""
    from ivigmeta.core.glmm import GLMM_MEASURES

    if measure not in GLMM_MEASURES:
        raise ModelError(
            f"--glmm fits odds ratios from 2x2 counts (--measure OR), incidence rate ratios "
            f"(IRR), logit proportions of one group (PLO) and log rates of one group (IRLN), "
            f"not {measure}"
        )


def glmm_studies(
    es: EffectSizes, keep_double_zero: bool
) -> tuple[EffectSizes, tuple[list[float], list[float], list[float], list[float]]]:
    """The studies a GLMM of ``es`` is fitted to and their counts (:func:`glmm_counts`): for IRR
    a study without events in either group is left out (metafor's ``drop00 = TRUE``; escalc
    keeps it, with 1/2 added) unless ``keep_double_zero``; OR's double zeros are already left
    out (or kept) by the effect sizes."""
    from ivigmeta.results import Exclusion

    x1, n1, x2, n2 = glmm_counts(es)
    if es.measure == "IRR" and not keep_double_zero:
        keep = [i for i in range(es.k) if x1[i] + x2[i] > 0]
        if len(keep) < es.k:
            dropped = [
                Exclusion(
                    es.studies[i].study,
                    "no events in either group (double-zero study); --keep-double-zero keeps it",
                    es.studies[i].row,
                )
                for i in range(es.k)
                if i not in keep
            ]
            es = es.subset(keep, dropped)
            x1, n1, x2, n2 = ([v[i] for i in keep] for v in (x1, n1, x2, n2))
    return es, (x1, n1, x2, n2)


def glmm_i2_h2(
    es: EffectSizes, tau2: float, X: np.ndarray | None = None
) -> tuple[float | None, float | None]:
    """metafor's I² and H² of rma.glmm: tau² against the typical within-study variance of the
    escalc effects (k_yi studies with a finite effect; 1/2 added to studies with a zero cell),
    vt = (k_yi - p) / tr(P), P = W - W X (X'WX)^-1 X'W, X the design (the intercept alone by
    default)."""
    y = np.asarray(es.yi, dtype=float)
    v = np.asarray(es.vi, dtype=float)
    ok = np.isfinite(v) & (v > 0) & np.isfinite(y)
    w = 1.0 / v[ok]
    k_yi = int(ok.sum())
    design = np.ones((es.k, 1)) if X is None else np.asarray(X, dtype=float)
    Xo = design[ok]
    p = Xo.shape[1]
    if k_yi <= p:
        return None, None
    xtwx = Xo.T @ (w[:, None] * Xo)
    try:
        inv = np.linalg.inv(xtwx)
    except np.linalg.LinAlgError:
        return None, None
    trace = float(np.sum(w) - np.trace(inv @ (Xo.T @ ((w * w)[:, None] * Xo))))
    if not trace > 0:
        return None, None
    vt = (k_yi - p) / trace
    return 100.0 * tau2 / (vt + tau2), tau2 / vt + 1.0


def glmm_analysis(es: EffectSizes, options: FitOptions) -> MetaAnalysis:
    """Fit the GLMM ``options.glmm`` (metafor's ``rma.glmm``) to the studies of ``es`` and
    report it as a fit: ``random`` is the GLMM, ``common`` its fixed-effects counterpart
    (tau² = 0), ``heterogeneity`` the Wald-type test of the saturated model with metafor's I²
    and H², ``glmm`` everything else. Study rows keep their escalc effects (with the continuity
    correction, for display and I²); the GLMM uses the raw counts and gives no weights."""
    from ivigmeta.core.distributions import chi2_sf
    from ivigmeta.core.glmm import fit_glmm
    from ivigmeta.results import (
        CommonFit,
        GlmmModel,
        Heterogeneity,
        MetaAnalysis,
        RandomFit,
    )

    model = str(options.glmm).upper()
    measure = es.measure
    check_glmm_measure(measure)
    glmm_ci = options.ci_method.lower()
    if glmm_ci not in ("z", "t"):
        raise ModelError(
            f"--ci {glmm_ci} does not apply to --glmm: its tests and intervals are Wald z, or t "
            'on k - 1 df with --ci t, as metafor\'s rma.glmm (test = "z" or "t")'
        )
    if options.common_method != "IV":
        raise ModelError(
            f"--common {options.common_method} does not apply to --glmm: the GLMM's own "
            "fixed-effects fit (tau² = 0) is its common-effect estimate"
        )
    es, (x1, n1, x2, n2) = glmm_studies(es, options.keep_double_zero)
    res = fit_glmm(measure, model, x1, n1, x2 or None, n2 or None, level=options.level)
    if glmm_ci == "t":
        res = glmm_on_t(res, res.k, options.level)
    estimates = study_estimates(
        np.asarray(es.yi, dtype=float),
        np.sqrt(np.asarray(es.vi, dtype=float)),
        es.measure,
        options.level,
    )
    c = res.common
    common = CommonFit(
        measure=measure,
        theta=c.theta,
        se=c.se,
        statistic=c.z,
        p_value=c.p_value,
        ci_low_theta=c.ci_low,
        ci_high_theta=c.ci_high,
        method=f"GLMM {model}",
    )
    crit = (res.ci_high - res.theta) / res.se
    half_pi = crit * math.sqrt(res.se**2 + res.tau2)
    algorithm = f"GLMM {model}: {res.convergence.algorithm}, {res.convergence.integration}"
    if res.convergence.integration != "Laplace":
        algorithm += f" ({res.convergence.nodes} nodes)"
    random = RandomFit(
        measure=measure,
        theta=res.theta,
        se=res.se,
        statistic=res.z,
        p_value=res.p_value,
        ci_low_theta=res.ci_low,
        ci_high_theta=res.ci_high,
        tau2_method="ML",
        ci_method=glmm_ci,
        tau2=res.tau2,
        df=res.k - 1 if glmm_ci == "t" else None,
        pi_low_theta=res.theta - half_pi,
        pi_high_theta=res.theta + half_pi,
        converged=res.convergence.converged,
        tau2_algorithm=algorithm,
    )
    i2, h2 = glmm_i2_h2(es, res.tau2)
    q, df = res.qe_wald, int(res.qe_df or 0)
    het = Heterogeneity(
        q=q,
        df=df,
        p_value=None if q is None else chi2_sf(q, df),
        i2=i2,
        h2=h2,
        tau2=res.tau2,
        tau=math.sqrt(res.tau2),
        i2_q=None if not q else 100.0 * max(0.0, (q - df) / q),
        tau2_method="ML",
        ci=None,
        glmm=True,
    )
    uninformative = tuple(s.study for s, informs in zip(es.studies, res.contributes) if not informs)
    glmm = GlmmModel(
        res,
        uninformative=uninformative,
        double_zero="kept" if options.keep_double_zero else "excluded",
    )
    return MetaAnalysis(es, options, estimates, common, random, het, glmm)


def revman_analysis(es: EffectSizes, options: FitOptions) -> MetaAnalysis:
    """Fit ``es`` as RevMan 5 does (module docstring): the common-effect row with the analysis's
    method (IV, MH on the corrected counts, Peto), its Chi² about that estimate, and the
    random-effects row DerSimonian-Laird from that Chi², Wald z at ``options.level``."""
    from ivigmeta.core.heterogeneity import i2_from_q
    from ivigmeta.core.revman import (
        StudyEffects,
        dichotomous_effects,
        revman_effects,
    )
    from ivigmeta.core.revman import (
        pool as revman_pool,
    )
    from ivigmeta.results import CommonFit, Heterogeneity, MetaAnalysis, RandomFit

    if options.tau2_method != "DL" or options.ci_method != "z":
        raise ModelError(
            "RevMan 5's random effects are DerSimonian-Laird with Wald z intervals: "
            "--software revman takes --tau2 DL and --ci z (use --software metafor for others)"
        )
    if options.pi_method != "z" or options.common_ci != "z":
        raise ModelError(
            "--pi t and --common-ci hk are not RevMan 5's methods: use --software metafor"
        )
    es = revman_effects(es)
    y = np.asarray(es.yi, dtype=float)
    v = np.asarray(es.vi, dtype=float)
    estimates = study_estimates(y, np.sqrt(v), es.measure, options.level)
    if es.k == 1:
        return MetaAnalysis(es, options, estimates, None, None, None)
    method = options.common_method
    empty = np.array([])
    if method in ("MH", "PETO"):
        es.require_counts("Mantel-Haenszel" if method == "MH" else "Peto's method")
        a, n1, c, n2 = (np.array(col, dtype=float) for col in zip(*(s.counts for s in es.studies)))
        counted = dichotomous_effects(a, n1, c, n2, es.measure if method == "MH" else "OR")
        # the analysis's own yi, vi (IV weights for Chi²), the counts for MH / Peto
        fx = StudyEffects(y, v, counted.estimable, counted.oe, counted.v_peto, counted.counts)
    else:
        fx = StudyEffects(y, v, np.ones(es.k, bool), empty, empty)
    g = Groups.single(es.k)
    fixed = revman_pool(fx, g, es.measure, method, "fixed")
    random = revman_pool(fx, g, es.measure, method, "random")
    crit = z_crit(options.level)

    def total(w: np.ndarray) -> tuple[float, ...]:
        return tuple(float(x) for x in 100 * w / w.sum())

    f_theta, f_se = float(fixed.theta[0]), float(fixed.se[0])
    common = CommonFit(
        measure=es.measure,
        theta=f_theta,
        se=f_se,
        statistic=f_theta / f_se,
        p_value=float(fixed.p_value[0]),
        ci_low_theta=f_theta - crit * f_se,
        ci_high_theta=f_theta + crit * f_se,
        method=method,
        weights=total(fixed.weights),
    )
    tau2 = float(random.tau2[0])
    r_theta, r_se = float(random.theta[0]), float(random.se[0])
    half_pi = crit * math.sqrt(r_se**2 + tau2)
    rfit = RandomFit(
        measure=es.measure,
        theta=r_theta,
        se=r_se,
        statistic=r_theta / r_se,
        p_value=float(random.p_value[0]),
        ci_low_theta=r_theta - crit * r_se,
        ci_high_theta=r_theta + crit * r_se,
        tau2_method="DL",
        ci_method="z",
        tau2=tau2,
        df=None,
        pi_low_theta=r_theta - half_pi,
        pi_high_theta=r_theta + half_pi,
        weights=total(random.weights),
        tau2_algorithm=f"RevMan 5: DerSimonian-Laird from the {method} Chi²",
    )
    q, df = float(fixed.chi2[0]), int(fixed.df[0])
    het = Heterogeneity(
        q=q,
        df=df,
        p_value=float(fixed.p_chi2[0]),
        i2=i2_from_q(q, df),
        h2=q / df if df > 0 else None,
        tau2=tau2,
        tau=math.sqrt(tau2),
        i2_q=i2_from_q(q, df),
        tau2_method="DL",
        ci=None,
    )
    return MetaAnalysis(es, options, estimates, common, rfit, het)
