"""Tests for small-study effects (publication bias).

* Egger's regression test (Egger et al. 1997): ordinary least squares of the standardized effect
  y / se on the precision 1 / se; the intercept measures asymmetry, tested with t on k - 2 df.
  It equals metafor's ``regtest(fit, model = "lm")`` and CMA's Egger test.
* metafor's ``regtest`` (Sterne & Egger 2005): the effect regressed on a measure of study size,
  ``predictor`` sei (Egger's test), vi, ni (the study's total sample size), 1/ni, sqrt(ni) or
  1/sqrt(ni), either as a moderator of a mixed-effects meta-regression with the fit's tau²
  estimator and test (``model = "rma"``, metafor's default) or by weighted least squares with
  weights 1/v and a multiplicative dispersion (``"lm"``); the slope is tested (z, or t on k - 2
  df). For sei, vi, 1/ni and 1/sqrt(ni) the intercept is the limit estimate, the effect of an
  infinitely large study, reported with its CI (z or t as the test).
* Begg & Mazumdar's (1994) rank correlation test: Kendall's tau between the standardized effects
  y*_i = (y_i - theta_FE) / sqrt(v_i - 1 / sum w) and the variances v_i, as metafor's
  ``ranktest()``: the exact null distribution when there are no ties (metafor passes
  ``exact = TRUE`` to R's ``cor.test``; above 500 studies we use the normal approximation),
  otherwise the normal approximation with the tie-corrected variance of Kendall's score.
* Peters et al. (2006): weighted least squares of the effect on 1 / N (N the study's total
  sample size), weights (a + c)(b + d) / N from the raw counts (the inverse variance of the
  average event probability); the slope, t on k - 2 df, tests asymmetry (as meta's
  ``metabias(method.bias = "Peters")``). For RR and OR.
* Harbord et al. (2006), the score-based modification of Egger's test for odds ratios: with the
  efficient score Z = a - (a + c) n1 / N and its (hypergeometric) variance
  V = n1 n2 (a + c)(b + d) / (N² (N - 1)) from the raw counts, Z / sqrt(V) is regressed on
  sqrt(V); the intercept, t on k - 2 df, tests asymmetry (meta's ``method.bias = "Harbord"``).
  Only for OR.

Trim-and-fill and the fail-safe N live in :mod:`ivigmeta.methods.trimfill` and :mod:`ivigmeta.methods.failsafe`;
:func:`bias_analysis` runs whichever tests are asked for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

from ivigmeta.core.distributions import norm_p_two_sided, t_p_two_sided
from ivigmeta.errors import DataError
from ivigmeta.io.studies import Study
from ivigmeta.results import (
    BeggTest,
    BiasAnalysis,
    EggerTest,
    Exclusion,
    MetaAnalysis,
    NotApplicable,
    RegressionTest,
    RegTest,
)

TESTS = BiasAnalysis.TESTS
#: Tests run only when asked for (``--test regtest``, or a --predictor / --regtest-model):
#: the default report is Egger's classical test.
ON_REQUEST = ("regtest", "tes")
#: metafor's regtest predictors, and the models
PREDICTORS = ("sei", "vi", "ni", "ninv", "sqrtni", "sqrtninv")
REGTEST_MODELS = ("rma", "lm")
# Predictors whose intercept is the effect of an infinitely precise study (metafor's limit
# estimate).
_LIMIT_PREDICTORS = ("sei", "vi", "ninv", "sqrtninv")
# Which tests apply to which effect measure (Peters needs event counts of a ratio measure;
# Harbord's score is that of the log odds ratio).
MEASURES_FOR = {"peters": ("RR", "OR"), "harbord": ("OR",)}
_NO_COUNTS = "an effect-only row (no 2x2 counts): {test} needs the event counts"

# metafor's ranktest() asks R's cor.test() for the exact null distribution of Kendall's statistic
# (exact = TRUE), which R then uses at any k unless there are ties. Above this many studies we use
# the normal approximation instead: the exact recursion costs O(k³) (0.5 s at k = 500).
KENDALL_EXACT_MAX_N = 500
# Exact integer arithmetic up to this many studies, probabilities in floating point beyond.
KENDALL_INTEGER_MAX_N = 60


def egger_test(yi: Sequence[float], vi: Sequence[float]) -> EggerTest | NotApplicable:
    """Egger's test of funnel-plot asymmetry; not applicable with fewer than 3 studies.

    The classic form regresses y / se on 1 / se by ordinary least squares and tests the
    intercept. Dividing the weighted regression of y on se (weights 1 / v) by se gives the same
    model with the roles of intercept and slope swapped, so both come from
    :func:`weighted_regression_test` (metafor's ``regtest(model = "lm")``): Egger's intercept is its
    slope, Egger's slope its intercept, with identical t, df and p.
    """
    k = len(yi)
    if k < 3:
        return NotApplicable("egger", f"Egger's test needs at least 3 studies (have {k})")
    se = [math.sqrt(v) for v in vi]
    reg = weighted_regression_test(yi, se, [1.0 / v for v in vi], "egger", "precision")
    if isinstance(reg, NotApplicable):
        return reg
    return EggerTest(
        intercept=reg.bias,
        se=reg.se,
        t=reg.t,
        df=reg.df,
        p_value=reg.p_value,
        slope=reg.intercept,
        slope_se=reg.intercept_se,
        k=k,
    )


# ---------------------------------------------------------------------------------------------
# Weighted regression tests (metafor's regtest(model = "lm"), Peters, Harbord)


def weighted_regression_test(
    y: Sequence[float],
    x: Sequence[float],
    w: Sequence[float],
    method: str = "regtest",
    predictor: str = "x",
    excluded: Sequence[Exclusion] = (),
) -> RegressionTest | NotApplicable:
    """Weighted least squares of ``y`` on ``x`` with weights ``w`` and a multiplicative dispersion
    (R's ``lm(y ~ x, weights = w)``); the slope is tested with t on k - 2 df.

    With ``w = 1 / v`` and ``x`` = sqrt(v), v, 1/n or 1/sqrt(n) this is metafor's
    ``regtest(model = "lm", predictor = "sei" | "vi" | "ninv" | "sqrtninv")``.
    """
    k = len(y)
    if k < 3:
        return NotApplicable(method, f"the regression test needs at least 3 studies (have {k})")
    if max(x) - min(x) <= 1e-12 * max(abs(v) for v in x):
        return NotApplicable(
            method, f"every study has the same {predictor}: the regression is undefined"
        )
    sw = math.fsum(w)
    xbar = math.fsum(wi * xi for wi, xi in zip(w, x)) / sw
    ybar = math.fsum(wi * yi for wi, yi in zip(w, y)) / sw
    sxx = math.fsum(wi * (xi - xbar) ** 2 for wi, xi in zip(w, x))
    if not sxx > 0 or not math.isfinite(sxx):
        return NotApplicable(
            method, f"every study has the same {predictor}: the regression is undefined"
        )
    slope = math.fsum(wi * (xi - xbar) * (yi - ybar) for wi, xi, yi in zip(w, x, y)) / sxx
    intercept = ybar - slope * xbar
    rss = math.fsum(wi * (yi - intercept - slope * xi) ** 2 for wi, xi, yi in zip(w, x, y))
    df = k - 2
    s2 = rss / df
    if not s2 > 0:
        return NotApplicable(
            method, "the regression fits exactly: no residual variance to test against"
        )
    se = math.sqrt(s2 / sxx)
    t = slope / se
    return RegressionTest(
        method=method,
        predictor=predictor,
        bias=slope,
        se=se,
        t=t,
        df=df,
        p_value=t_p_two_sided(t, df),
        intercept=intercept,
        intercept_se=math.sqrt(s2 * (1.0 / sw + xbar * xbar / sxx)),
        k=k,
        excluded=tuple(excluded),
    )


def _predictor_values(ma: MetaAnalysis, predictor: str) -> list[float]:
    es = ma.effects
    if predictor == "sei":
        return [math.sqrt(v) for v in es.vi]
    if predictor == "vi":
        return list(es.vi)
    missing = [s for s in es.studies if s.n is None]
    if missing:
        s = missing[0]
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise DataError(
            f"--predictor {predictor} needs each study's sample size (n1 + n2 from counts or "
            f"means): {s.study} (row {s.row}){more} {'give' if more else 'gives'} only an effect"
        )
    n = [float(s.n) for s in es.studies]  # type: ignore[arg-type]
    return {
        "ni": n,
        "ninv": [1.0 / m for m in n],
        "sqrtni": [math.sqrt(m) for m in n],
        "sqrtninv": [1.0 / math.sqrt(m) for m in n],
    }[predictor]


def regression_test(
    ma: MetaAnalysis, predictor: str = "sei", model: str = "rma"
) -> RegTest | NotApplicable:
    """metafor's ``regtest(fit, model, predictor)`` on the fit's effect sizes (module docstring).

    ``model = "rma"`` uses the fit's tau² estimator, interval method (z or Hartung-Knapp) and
    level; ``"lm"`` a t test on k - 2 df. A predictor that needs sample sizes on a table that
    has none is a :class:`DataError`.
    """
    from ivigmeta.core.distributions import t_crit

    predictor, model = predictor.lower(), model.lower()
    if predictor not in PREDICTORS:
        raise DataError(f"unknown predictor '{predictor}' (choose one of {', '.join(PREDICTORS)})")
    if model not in REGTEST_MODELS:
        raise DataError(f"unknown regtest model '{model}' (choose one of rma, lm)")
    es = ma.effects
    x = _predictor_values(ma, predictor)
    k = es.k
    if k < 3:
        return NotApplicable("regtest", f"the regression test needs at least 3 studies (have {k})")
    level = ma.options.level
    limit = predictor in _LIMIT_PREDICTORS
    if model == "lm":
        reg = weighted_regression_test(es.yi, x, [1.0 / v for v in es.vi], "regtest", predictor)
        if isinstance(reg, NotApplicable):
            return reg
        crit = t_crit(level, reg.df)
        return RegTest(
            model="lm",
            predictor=predictor,
            distribution="t",
            statistic=reg.t,
            df=reg.df,
            p_value=reg.p_value,
            slope=reg.bias,
            slope_se=reg.se,
            limit_theta=reg.intercept if limit else None,
            limit_ci_low_theta=reg.intercept - crit * reg.intercept_se if limit else None,
            limit_ci_high_theta=reg.intercept + crit * reg.intercept_se if limit else None,
            tau2_method=None,
            tau2=None,
            level=level,
            k=k,
            measure=es.measure,
        )
    import numpy as np

    from ivigmeta.methods.metareg import meta_regression

    if max(x) - min(x) <= 1e-12 * max(abs(v) for v in x):
        return NotApplicable(
            "regtest", f"every study has the same {predictor}: the regression is undefined"
        )
    X = np.column_stack([np.ones(k), np.asarray(x, dtype=float)])
    fit_ = meta_regression(
        es.yi, es.vi, X, ["intrcpt", predictor], ma.options.tau2_method, ma.options.ci_method,
        level,
    )  # fmt: skip
    b0, b1 = fit_.coefficients
    hk = fit_.ci_method in ("hk", "adhoc", "t")
    return RegTest(
        model="rma",
        predictor=predictor,
        distribution="t" if hk else "z",
        statistic=b1.statistic,
        df=k - 2 if hk else None,
        p_value=b1.p_value,
        slope=b1.estimate,
        slope_se=b1.se,
        limit_theta=b0.estimate if limit else None,
        limit_ci_low_theta=b0.ci_low if limit else None,
        limit_ci_high_theta=b0.ci_high if limit else None,
        tau2_method=fit_.tau2_method,
        tau2=fit_.tau2,
        level=level,
        k=k,
        measure=es.measure,
    )


def _not_for_measure(name: str, label: str, measure: str) -> NotApplicable | None:
    allowed = MEASURES_FOR.get(name)
    if allowed and measure not in allowed:
        return NotApplicable(
            name,
            f"{label} is defined for {' and '.join(allowed)}, not {measure} (use --measure {allowed[-1]})",
        )
    return None


def _count_regression(
    ma: MetaAnalysis,
    name: str,
    label: str,
    predictor: str,
    point: Callable[[Study, float], tuple[float, float, float] | str],
) -> RegressionTest | NotApplicable:
    """A regression test built from each study's 2x2 counts (Peters, Harbord).

    ``point(study, yi)`` gives the study's (response, predictor, weight), or the reason it has
    none; effect-only rows and such studies are left out and listed with the reason.
    """
    es = ma.effects
    na = _not_for_measure(name, label, es.measure)
    if na:
        return na
    y: list[float] = []
    x: list[float] = []
    w: list[float] = []
    excluded = []
    for study, yi in zip(es.studies, es.yi):
        if not study.has_counts:
            excluded.append(Exclusion(study.study, _NO_COUNTS.format(test=label), study.row))
            continue
        pt = point(study, yi)
        if isinstance(pt, str):
            excluded.append(Exclusion(study.study, pt, study.row))
            continue
        y.append(pt[0])
        x.append(pt[1])
        w.append(pt[2])
    if len(y) < 3:
        return NotApplicable(name, f"{label} needs at least 3 studies (have {len(y)})")
    return weighted_regression_test(y, x, w, name, predictor, excluded)


def _peters_point(study: Study, yi: float) -> tuple[float, float, float] | str:
    a, n1, c, n2 = study.counts
    events, non_events = a + c, (n1 - a) + (n2 - c)
    if events == 0 or non_events == 0:
        return "no events (or no non-events) in either arm: no Peters weight"
    return yi, 1.0 / (n1 + n2), 1.0 / (1.0 / events + 1.0 / non_events)


def _harbord_point(study: Study, yi: float) -> tuple[float, float, float] | str:
    a, n1, c, n2 = study.counts
    n = n1 + n2
    events, non_events = a + c, n - a - c
    v = n1 * n2 * events * non_events / (n * n * (n - 1)) if n > 1 else 0.0
    if v <= 0:
        return "no events (or no non-events) in either arm: the score has no variance"
    z = a - events * n1 / n
    return z / v, 1.0 / math.sqrt(v), v


def peters_test(ma: MetaAnalysis) -> RegressionTest | NotApplicable:
    """Peters' test: the effect regressed on 1 / N, weights (a + c)(b + d) / N (Peters et al. 2006)."""
    return _count_regression(ma, "peters", "Peters' test", "1/N", _peters_point)


def harbord_test(ma: MetaAnalysis) -> RegressionTest | NotApplicable:
    """Harbord's score test for odds ratios (Harbord, Egger & Sterne 2006): the efficient score
    over its variance, Z / V, regressed on 1 / sqrt(V) with weights V."""
    return _count_regression(ma, "harbord", "Harbord's test", "1/sqrt(V)", _harbord_point)


# ---------------------------------------------------------------------------------------------
# Begg and Mazumdar's rank correlation test


def kendall_counts(n: int) -> list[int]:
    """Number of permutations of n items with t inversions, t = 0 .. n(n-1)/2 (Mahonian numbers)."""
    counts = [1]
    for m in range(2, n + 1):
        size = len(counts) + m - 1
        new = [0] * size
        running = 0
        for t in range(size):
            running += counts[t] if t < len(counts) else 0
            if t - m >= 0:
                running -= counts[t - m]
            new[t] = running
        counts = new
    return counts


def kendall_pmf(n: int) -> list[float]:
    """Null distribution of Kendall's statistic as probabilities (float recursion with numpy):
    p_m(t) = (1/m) sum_{j<m} p_(m-1)(t - j). Used above the exact-integer range."""
    import numpy as np

    p = np.ones(1)
    for m in range(2, n + 1):
        c = np.cumsum(np.concatenate([p, np.zeros(m - 1)]))
        c[m:] -= c[:-m].copy()
        p = c / m
    return p.tolist()


def kendall_exact_cdf(q: int, n: int) -> float:
    """P(T <= q) for Kendall's statistic T (number of concordant pairs) under independence.

    Exact rational arithmetic up to ``KENDALL_INTEGER_MAX_N`` studies, the float recursion above
    (relative error ~1e-13) beyond; the lower tail is summed directly, so small p-values keep
    their relative precision.
    """
    total = n * (n - 1) // 2
    if q < 0:
        return 0.0
    if q >= total:
        return 1.0
    if n <= KENDALL_INTEGER_MAX_N:
        counts = kendall_counts(n)
        return math.fsum(counts[: q + 1]) / math.factorial(n)
    # The float recursion is accurate in the lower half only (the upper half cancels): use the
    # symmetry P(T <= q) = 1 - P(T <= total - q - 1) there.
    pmf = kendall_pmf(n)
    if 2 * q > total:
        return max(0.0, 1.0 - math.fsum(pmf[: total - q]))
    return min(1.0, math.fsum(pmf[: q + 1]))


def kendall_test(x: Sequence[float], y: Sequence[float]) -> tuple[float, float, bool, float]:
    """Kendall's tau-b and its two-sided p-value as R's
    ``cor.test(x, y, method = "kendall", exact = TRUE)`` (metafor's ``ranktest``).

    Returns (tau, p, exact, S) with S = concordant - discordant pairs.
    """
    n = len(x)
    conc = disc = 0
    for i in range(n):
        for j in range(i + 1, n):
            s = (x[i] - x[j]) * (y[i] - y[j])
            if s > 0:
                conc += 1
            elif s < 0:
                disc += 1
    score = conc - disc
    t0 = n * (n - 1) / 2
    xties = _tie_sizes(x)
    yties = _tie_sizes(y)
    t1 = sum(t * (t - 1) for t in xties) / 2
    t2 = sum(t * (t - 1) for t in yties) / 2
    denom = math.sqrt((t0 - t1) * (t0 - t2))
    tau = score / denom if denom > 0 else math.nan
    ties = bool(xties or yties)
    if n <= KENDALL_EXACT_MAX_N and not ties:
        q = round((tau + 1) * n * (n - 1) / 4)
        total = n * (n - 1) // 2
        # R: p = 1 - P(T <= q - 1) above the centre; by symmetry that is P(T <= total - q),
        # computed here without the cancellation.
        p = kendall_exact_cdf(total - q, n) if q > total / 2 else kendall_exact_cdf(q, n)
        return tau, min(2.0 * p, 1.0), True, float(score)
    v0 = n * (n - 1) * (2 * n + 5)
    vt = sum(t * (t - 1) * (2 * t + 5) for t in xties)
    vu = sum(t * (t - 1) * (2 * t + 5) for t in yties)
    v1 = sum(t * (t - 1) for t in xties) * sum(t * (t - 1) for t in yties)
    v2 = sum(t * (t - 1) * (t - 2) for t in xties) * sum(t * (t - 1) * (t - 2) for t in yties)
    var_s = (v0 - vt - vu) / 18 + v1 / (2 * n * (n - 1)) + v2 / (9 * n * (n - 1) * (n - 2))
    if not var_s > 0:
        return tau, math.nan, False, float(score)
    return tau, norm_p_two_sided(score / math.sqrt(var_s)), False, float(score)


def _tie_sizes(values: Iterable[float]) -> list[int]:
    counts: dict[float, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return [c for c in counts.values() if c > 1]


def begg_test(yi: Sequence[float], vi: Sequence[float]) -> BeggTest | NotApplicable:
    """Begg & Mazumdar's rank correlation test, as metafor's ``ranktest()``."""
    k = len(yi)
    if k < 3:
        return NotApplicable("begg", f"Begg's test needs at least 3 studies (have {k})")
    w = [1.0 / v for v in vi]
    sw = math.fsum(w)
    theta = math.fsum(wi * y for wi, y in zip(w, yi)) / sw
    vb = 1.0 / sw
    if not all(v - vb > 0 for v in vi):
        return NotApplicable(
            "begg",
            "one study carries (nearly) all the weight: the standardized effects are undefined",
        )
    ystar = [(y - theta) / math.sqrt(v - vb) for y, v in zip(yi, vi)]
    tau, p, exact, score = kendall_test(ystar, vi)
    if math.isnan(tau) or math.isnan(p):
        return NotApplicable(
            "begg", "all studies have the same variance: Kendall's tau is undefined"
        )
    return BeggTest(tau=tau, p_value=p, exact=exact, statistic=score, k=k)


# ---------------------------------------------------------------------------------------------


_OVERFLOW = "not computable: the effects or variances are too extreme for double precision"


def _has_nan(value: object) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, dict):
        return any(_has_nan(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_nan(v) for v in value)
    return False


def _computable(name: str, compute):  # type: ignore[no-untyped-def]
    """Run one test; extreme inputs that overflow (an error, or NaN in the result) make it not
    applicable with that reason rather than a crash or a meaningless number."""
    try:
        res = compute()
    except (OverflowError, ZeroDivisionError, ValueError) as exc:
        if isinstance(exc, ValueError) and "math domain" not in str(exc):
            raise
        return NotApplicable(name, _OVERFLOW)
    if not isinstance(res, NotApplicable) and _has_nan(res.to_dict()):
        return NotApplicable(name, _OVERFLOW)
    return res


def default_tests(measure: str) -> tuple[str, ...]:
    """Every test that applies to ``measure``, in the fixed order of ``TESTS`` (the regtest
    variants only on request)."""
    return tuple(
        t for t in TESTS if measure in MEASURES_FOR.get(t, (measure,)) and t not in ON_REQUEST
    )


def bias_analysis(
    ma: MetaAnalysis,
    tests: Sequence[str] | None = None,
    side: str | None = None,
    estimator: str = "L0",
    failsafe_method: str = "Rosenthal",
    alpha: float = 0.05,
    target: float | None = None,
    predictor: str = "sei",
    regtest_model: str = "rma",
) -> BiasAnalysis:
    """The small-study-effect tests in ``tests`` (default: all that apply to the measure, but
    not ``regtest``).

    ``side``/``estimator`` go to trim-and-fill, ``failsafe_method``/``alpha``/``target`` (Orwin's
    target on the reported scale) to the fail-safe N, ``predictor``/``regtest_model`` to
    ``regtest`` (metafor's regtest).
    """
    from ivigmeta.errors import ModelError

    wanted = tuple(dict.fromkeys(t.lower() for t in tests)) if tests else default_tests(ma.measure)
    unknown = [t for t in wanted if t not in TESTS]
    if unknown:
        raise ModelError(f"unknown test '{unknown[0]}' (choose from {', '.join(TESTS)})")
    from ivigmeta.methods.failsafe import fail_safe_n
    from ivigmeta.methods.tes import excess_significance
    from ivigmeta.methods.trimfill import trim_and_fill

    es = ma.effects
    run = {
        "egger": lambda: egger_test(es.yi, es.vi),
        "regtest": lambda: regression_test(ma, predictor, regtest_model),
        "begg": lambda: begg_test(es.yi, es.vi),
        "peters": lambda: peters_test(ma),
        "harbord": lambda: harbord_test(ma),
        "trimfill": lambda: trim_and_fill(ma, side=side, estimator=estimator),
        "failsafe": lambda: fail_safe_n(ma, failsafe_method, alpha=alpha, target=target),
        "tes": lambda: excess_significance(ma),
    }
    results: dict[str, object] = {"egger": None}
    for name in wanted:
        results[name] = _computable(name, run[name])
    return BiasAnalysis(full=ma, **results)  # type: ignore[arg-type]
