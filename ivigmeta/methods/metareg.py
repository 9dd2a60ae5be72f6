"""Mixed-effects meta-regression (metafor's ``rma(yi, vi, mods = ...)``).

Model: y = X beta + u + e, u ~ N(0, tau²), e ~ N(0, v); X has the intercept first. With
W = diag(w) and P(w) = W - W X (X' W X)^-1 X' W (:mod:`ivigmeta.core.tau2`):

* residual tau² by any estimator of :data:`ivigmeta.core.tau2.TAU2_METHODS`, given X;
* with W* = diag(1 / (v + tau²)): beta = (X' W* X)^-1 X' W* y, Var(beta) = (X' W* X)^-1;
* ``ci = "z"``: Wald z tests and intervals; the omnibus QM = b' Var(b)^-1 b over the m
  non-intercept coefficients, chi-square on m df;
* ``ci = "hk"`` (Knapp & Hartung 2003, metafor's ``test = "knha"``): Var(beta) multiplied by
  s² = y' P(W*) y / (k - p) (0 when that is below machine epsilon), t tests and intervals on k - p
  df, and F = QM / m on (m, k - p) df;
* QE = y' P0 y on k - p df: the test of residual heterogeneity;
* I² = 100 tau² / (tau² + s²) and H² = (tau² + s²) / s² with s² = (k - p) / tr P0;
* R² = 100 max(0, (tau²_0 - tau²) / tau²_0), tau²_0 from the model without moderators with the
  same estimator (Raudenbush 2009; 0 when tau²_0 = 0, as metafor).

Moderators come from the study table: a column whose every non-empty value is a number is
continuous, any other column (or one forced with ``categorical``) is dummy-coded against a
reference level (the first level in file order, or ``ref``). A study with an empty moderator
is left out and listed as excluded. A constant or perfectly collinear moderator is a clear
:class:`ModelError`.

numpy is imported inside the functions: ``pool`` never pays for it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ivigmeta.core.distributions import (
    chi2_sf,
    f_sf,
    norm_p_two_sided,
    t_crit,
    t_p_two_sided,
    z_crit,
)
from ivigmeta.core.regression import regression_fit, residual_q
from ivigmeta.errors import ModelError
from ivigmeta.results import (
    Bubble,
    Coefficient,
    CoefficientTest,
    Contrast,
    EffectSizes,
    Exclusion,
    MetaAnalysis,
    MetaRegression,
    ModelComparison,
    ModelFit,
    PermutationTest,
    Prediction,
    VarianceInflation,
)

if TYPE_CHECKING:
    import numpy as np

METAREG_TAU2_METHODS = ("DL", "REML", "ML", "PM", "HE", "SJ")


class SingularFit(ModelError):
    """The weighted design is numerically singular (variances orders of magnitude apart)."""


def meta_regression(
    yi: Sequence[float],
    vi: Sequence[float],
    X: np.ndarray,
    names: Sequence[str],
    tau2_method: str = "DL",
    ci_method: str = "z",
    level: float = 0.95,
    excluded: Sequence[Exclusion] = (),
    model: str = "random",
    tau2_ci: str = "qp",
    weights: Sequence[float] | None = None,
    tau2_weights: Sequence[float] | None = None,
) -> MetaRegression:
    """Fit a mixed-effects meta-regression; ``X`` includes the intercept column first.
    ``tau2_weights``: the weights of ``tau2_method`` GENQ (the generalized Q estimator).
    ``model = "common"`` is the fixed-effects (common-effect) meta-regression, tau² = 0.

    A weighted design that is numerically singular (sampling variances many orders of magnitude
    apart make X' W X not invertible in double precision) is a :class:`SingularFit`.
    """
    import numpy as np

    try:
        return _meta_regression(
            yi,
            vi,
            X,
            names,
            tau2_method,
            ci_method,
            level,
            excluded,
            model,
            tau2_ci,
            weights,
            tau2_weights,
        )
    except np.linalg.LinAlgError:
        raise SingularFit(
            "the meta-regression is numerically singular (the studies' sampling variances differ "
            "by too many orders of magnitude)"
        ) from None


def _meta_regression(
    yi: Sequence[float],
    vi: Sequence[float],
    X: np.ndarray,
    names: Sequence[str],
    tau2_method: str,
    ci_method: str,
    level: float,
    excluded: Sequence[Exclusion],
    model: str = "random",
    tau2_ci: str = "qp",
    weights: Sequence[float] | None = None,
    tau2_weights: Sequence[float] | None = None,
) -> MetaRegression:
    import numpy as np

    from ivigmeta.core.tau2 import check_tau2_method, estimate_tau2, fixed_tau2, likelihood_of

    if model not in ("random", "common"):
        raise ModelError(f"unknown model '{model}' (choose random or common)")
    method = "FE" if model == "common" else check_tau2_method(tau2_method)
    if method == "GENQ" and tau2_weights is None:
        raise ModelError("--tau2 GENQ needs its weights: --tau2-weights COLUMN")
    if tau2_weights is not None and method != "GENQ":
        raise ModelError(f"--tau2-weights are the GENQ estimator's: not with --tau2 {method}")
    if ci_method == "hc":
        raise ModelError(
            "--ci hc (Henmi-Copas) applies to models without moderators only, as metafor's hc()"
        )
    if ci_method not in ("z", "hk", "adhoc", "t"):
        raise ModelError(f"unknown interval method '{ci_method}' (choose one of z, hk, adhoc, t)")
    knha = ci_method in ("hk", "adhoc", "t")
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    X = np.asarray(X, dtype=float)
    k, p = X.shape
    check_design(X, names)
    if k <= p:
        raise ModelError(
            f"meta-regression with {p} coefficients needs more than {p} studies (have {k})"
        )
    a = None if weights is None else np.asarray(weights, dtype=float)
    if a is not None and ci_method not in ("z", "t"):
        raise ModelError(f"--weights takes --ci z or t, not {ci_method}")
    genq = None if tau2_weights is None else np.asarray(tau2_weights, dtype=float)
    rf = regression_fit(y, v, X, method, ci_method, model, a, tau2_weights=genq)
    tau2_se: float | None = None
    interval = None
    if model == "random":
        from ivigmeta.core.confint import tau2_ci as residual_tau2_ci

        tau2_se = None if math.isnan(rf.tau2_se) else rf.tau2_se
        if fixed_tau2(method) is None:  # a fixed tau² has no interval (metafor's confint())
            interval = residual_tau2_ci(tau2_ci, yi, vi, rf.tau2, method, rf.tau2_se, level, X)
    df2 = rf.df2
    coefs = coefficient_rows(names, rf.beta, rf.se, rf.statistics, df2, level)
    m = p - 1
    qm = rf.qm
    qm_p: float | None = None
    if qm is not None:
        if knha:
            assert df2 is not None
            qm_p = f_sf(qm, m, df2) if math.isfinite(qm) else 0.0
        else:
            qm_p = chi2_sf(qm, m)
    qe, trace_p0 = residual_q(y, v, X)
    if model == "common":
        # metafor's method = "FE": I² and H² from QE, no R² (there is no tau² to explain).
        i2 = max(0.0, 100.0 * (qe - (k - p)) / qe) if qe > 0 else 0.0
        h2 = qe / (k - p)
        r2: float | None = None
    else:
        s2 = (k - p) / trace_p0
        i2 = 100.0 * rf.tau2 / (rf.tau2 + s2)
        h2 = (rf.tau2 + s2) / s2
        # R² of a fixed tau²: against the REML tau² of the intercept-only model (metafor's
        # default method, which rma(tau2 = ) keeps for everything but tau² itself)
        tau2_0 = estimate_tau2(
            list(yi),
            list(vi),
            "REML" if fixed_tau2(method) is not None else method,
            weights=None if genq is None else list(genq),
        ).tau2
        r2 = 0.0 if tau2_0 == 0 else max(0.0, 100.0 * (tau2_0 - rf.tau2) / tau2_0)
    from ivigmeta.core.fitstats import model_fit_statistics, statistics_of

    estimated = model != "common" and fixed_tau2(method) is None
    stats = model_fit_statistics(y, v, X, rf.tau2, rf.beta, p + (1 if estimated else 0))
    return MetaRegression(
        fit_statistics=statistics_of(stats, 0, likelihood_of(method)),
        tau2_interval=interval,
        tau2_se=tau2_se,
        coefficients=tuple(coefs),
        qm=qm,
        qm_df=m,
        qm_p_value=qm_p,
        qe=qe,
        qe_df=k - p,
        qe_p_value=chi2_sf(qe, k - p),
        tau2=rf.tau2,
        i2=i2,
        h2=h2,
        r2=r2,
        k=k,
        tau2_method=method,
        ci_method=ci_method,
        qm_df2=df2,
        excluded=tuple(excluded),
        level=level,
        model=model,
        vcov=tuple(tuple(float(x) for x in row) for row in rf.vb),
        yi=tuple(float(x) for x in y),
        vi=tuple(float(x) for x in v),
        design=tuple(tuple(float(x) for x in row) for row in X),
    )


def coefficient_rows(
    names: Sequence[str],
    estimates: np.ndarray,
    se: np.ndarray,
    statistics: np.ndarray,
    df2: int | None,
    level: float,
) -> tuple[Coefficient, ...]:
    """Each coefficient with its Wald test and interval: z (normal) when ``df2`` is None,
    else t on ``df2`` df (a zero SE: p = 0 for a non-zero estimate, 1 for zero)."""
    crit = t_crit(level, df2) if df2 is not None else z_crit(level)
    coefs = []
    for j, name in enumerate(names):
        b, s, stat = float(estimates[j]), float(se[j]), float(statistics[j])
        if df2 is not None:
            pval = t_p_two_sided(stat, df2) if s > 0 else (0.0 if b else 1.0)
        else:
            pval = norm_p_two_sided(stat)
        coefs.append(Coefficient(name, b, s, stat, pval, b - crit * s, b + crit * s))
    return tuple(coefs)


def check_design(X: np.ndarray, names: Sequence[str]) -> None:
    """A clear error for a constant or perfectly collinear moderator."""
    import numpy as np

    p = X.shape[1]
    for j in range(1, p):
        col = X[:, j]
        if np.all(col == col[0]):
            raise ModelError(
                f"moderator '{names[j]}' is constant in the studies analysed: it cannot be "
                "separated from the intercept"
            )
    if np.linalg.matrix_rank(X) < p:
        for j in range(2, p + 1):
            if np.linalg.matrix_rank(X[:, :j]) < j:
                raise ModelError(
                    f"moderator '{names[j - 1]}' is perfectly collinear with "
                    f"{', '.join(repr(n) for n in names[: j - 1])}: drop one of them"
                )


def dummy_design(labels: Sequence[str], levels: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Intercept plus one indicator per level beyond the first (the reference level)."""
    import numpy as np

    X = np.ones((len(labels), len(levels)))
    for j, level in enumerate(levels[1:], start=1):
        X[:, j] = [1.0 if lab == level else 0.0 for lab in labels]
    return X, ["intercept"] + [f"{lev}" for lev in levels[1:]]


@dataclass(frozen=True)
class Moderators:
    """The design matrix built from moderator columns, and which studies it uses."""

    X: np.ndarray
    names: tuple[str, ...]
    keep: tuple[int, ...]
    excluded: tuple[Exclusion, ...]
    kinds: Mapping[str, str]
    references: Mapping[str, str]
    levels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def build_moderators(
    es: EffectSizes,
    columns: Sequence[str],
    ref: Mapping[str, str] | None = None,
    categorical: Sequence[str] = (),
) -> Moderators:
    """Design matrix for moderator ``columns`` of the studies in ``es``.

    ``ref`` maps a categorical column to its reference level; ``categorical`` forces dummy
    coding of numeric columns. Studies with an empty value in any moderator are left out.
    """
    import numpy as np

    ref = dict(ref or {})
    if not columns:
        raise ModelError("meta-regression needs at least one moderator (--mod COL)")
    if len(set(columns)) != len(columns):
        raise ModelError("a moderator is named more than once")
    values = {c: [s.fields.get(c, "").strip() for s in es.studies] for c in columns}
    keep = [i for i in range(es.k) if all(values[c][i] for c in columns)]
    excluded = tuple(
        Exclusion(
            es.studies[i].study,
            "no value for moderator(s) " + ", ".join(f"'{c}'" for c in columns if not values[c][i]),
            es.studies[i].row,
        )
        for i in range(es.k)
        if i not in keep
    )
    cols = [np.ones(len(keep))]
    names = ["intercept"]
    kinds: dict[str, str] = {}
    references: dict[str, str] = {}
    coded: dict[str, tuple[str, ...]] = {}
    for c in columns:
        vals = [values[c][i] for i in keep]
        numbers = [_number(x) for x in vals]
        if c not in categorical and all(n is not None for n in numbers):
            kinds[c] = "continuous"
            if c in ref:
                raise ModelError(f"--ref {c}={ref[c]}: '{c}' is a continuous moderator")
            cols.append(np.asarray(numbers, dtype=float))
            names.append(c)
            continue
        kinds[c] = "categorical"
        levels: list[str] = []
        for x in vals:
            if x not in levels:
                levels.append(x)
        if c in ref:
            if ref[c] not in levels:
                raise ModelError(
                    f"--ref: '{ref[c]}' is not a level of '{c}' (levels: {', '.join(levels)})"
                )
            levels.remove(ref[c])
            levels.insert(0, ref[c])
        references[c] = levels[0] if levels else ""
        coded[c] = tuple(levels)
        if len(levels) < 2:
            raise ModelError(
                f"moderator '{c}' is constant in the studies analysed"
                + (f" (every value is '{levels[0]}')" if levels else "")
            )
        for lev in levels[1:]:
            cols.append(np.asarray([1.0 if x == lev else 0.0 for x in vals]))
            names.append(f"{c}={lev}")
    unknown_refs = [c for c in ref if c not in columns]
    if unknown_refs:
        raise ModelError(f"--ref names a column that is not a moderator: {', '.join(unknown_refs)}")
    X = np.column_stack(cols)
    return Moderators(X, tuple(names), tuple(keep), excluded, kinds, references, coded)


def metareg_analysis(
    es: EffectSizes,
    columns: Sequence[str],
    tau2_method: str = "DL",
    ci_method: str = "z",
    level: float = 0.95,
    ref: Mapping[str, str] | None = None,
    categorical: Sequence[str] = (),
    model: str = "random",
    predict: Sequence[str] = (),
    permutations: int | None = None,
    seed: int | None = None,
    tau2_ci: str = "qp",
    btt: Sequence[str] = (),
    lrt: Sequence[str] = (),
    weights: str | None = None,
    unweighted: bool = False,
    contrast: Sequence[str] = (),
    tau2_weights: str | None = None,
) -> MetaRegression:
    """Meta-regression of the effect sizes ``es`` on the moderator ``columns`` of its studies.

    ``model = "common"``: the fixed-effects meta-regression (tau² = 0). ``predict``: moderator
    values ("COL=VALUE,COL2=VALUE"), one prediction each. ``permutations``: also the permutation
    test (:func:`ivigmeta.methods.permutest.permutation_test`) with that many iterations, exact
    when there are no more distinct permutations than that. ``tau2_ci``: the interval type
    for the residual tau² (:data:`ivigmeta.core.confint.TAU2_CI_METHODS`). ``btt``: subsets of
    coefficients to test jointly (:func:`coefficient_test`). ``lrt``: moderator columns whose
    removal the likelihood-ratio test assesses (:func:`compare_without`). ``weights``: a
    column of user weights for the coefficients (metafor's ``weights=``); ``unweighted``: every
    study weighs the same (metafor's ``weighted = FALSE``; the estimates as with weights all 1).
    ``contrast``: linear combinations of the coefficients to test (:func:`linear_contrasts`).
    ``tau2_weights``: the column of the GENQ estimator's weights (``tau2_method`` GENQ).
    """
    from ivigmeta.io.studies import distinct_labels

    mods = build_moderators(es, columns, ref, categorical)
    if not mods.keep:
        # Every study was excluded (double zeros, missing moderator values): say why.
        reasons = "; ".join(f"{e.study}: {e.reason}" for e in mods.excluded + es.excluded)
        raise ModelError(
            "no usable studies for the meta-regression"
            + (f" (excluded: {reasons})" if reasons else "")
        )
    yi = [es.yi[i] for i in mods.keep]
    vi = [es.vi[i] for i in mods.keep]
    user = None
    if (weights is not None or unweighted) and (permutations is not None or lrt):
        option = "--unweighted" if unweighted else "--weights (user weights)"
        raise ModelError(
            f"{option} is not offered with --permutations or --lrt: their refits "
            "assume inverse-variance weights"
        )
    if unweighted:
        if ci_method not in ("z", "t"):
            raise ModelError(f"--unweighted takes --ci z or t, not {ci_method}")
        user = [1.0] * len(mods.keep)
    elif weights is not None:
        from ivigmeta.core.pooling import column_numbers

        user = list(column_numbers(es.subset(list(mods.keep)), weights, "--weights", "a weight"))
    genq = None
    if tau2_weights is not None:
        from ivigmeta.core.pooling import column_numbers

        kept = es.subset(list(mods.keep))
        genq = list(column_numbers(kept, tau2_weights, "--tau2-weights", "a tau² weight"))
    reg = meta_regression(
        yi,
        vi,
        mods.X,
        mods.names,
        tau2_method,
        ci_method,
        level,
        mods.excluded + es.excluded,
        model,
        tau2_ci,
        user,
        genq,
    )
    reg = replace(
        reg,
        measure=es.measure,
        references=tuple(mods.references.items()),
        study_labels=tuple(distinct_labels([es.studies[i] for i in mods.keep])),
        terms=tuple((c, mods.kinds[c], mods.levels.get(c, ())) for c in columns),
    )
    if predict:
        reg = replace(reg, predictions=tuple(predict_at(reg, text) for text in predict))
    if len(reg.coefficients) > 1:
        reg = replace(reg, vif=coefficient_vifs(reg), gvif=moderator_vifs(reg))
    if btt:
        reg = replace(reg, coefficient_tests=tuple(coefficient_test(reg, spec) for spec in btt))
    if contrast:
        rows, joint = linear_contrasts(reg, contrast)
        reg = replace(reg, contrasts=rows, contrast_test=joint)
    if lrt:
        reg = replace(reg, comparison=compare_without(reg, lrt))
    if permutations is not None:
        from ivigmeta.methods.permutest import permutation_test

        reg = replace(reg, permutation=permutation_test(reg, permutations, seed))
    return reg


def glmm_metareg_analysis(
    es: EffectSizes,
    columns: Sequence[str],
    model: str,
    ci_method: str = "z",
    level: float = 0.95,
    ref: Mapping[str, str] | None = None,
    categorical: Sequence[str] = (),
    keep_double_zero: bool = False,
    btt: Sequence[str] = (),
    predict: Sequence[str] = (),
) -> MetaRegression:
    """Meta-regression of a GLMM (metafor's ``rma.glmm(..., mods = ...)``, ``model`` one of
    UM.FS, UM.RS, CM.EL, CM.AL) on the moderator ``columns``, fitted to the raw counts of the
    studies of ``es``: the coefficients (Wald z, or t on k - p df with ``ci_method = "t"``), QM,
    the residual tau², the Wald and likelihood-ratio tests of residual heterogeneity, metafor's
    I² and H², the fit statistics; ``glmm`` holds the model's details. ``btt``: subsets of
    coefficients to test jointly (:func:`coefficient_test`); ``predict``: moderator values
    ("COL=VALUE,..."), one prediction each (:func:`predict_at`, as metafor's
    ``predict(fit, newmods = ...)`` of an rma.glmm fit)."""
    import numpy as np

    from ivigmeta.core.glmm import fit_glmm_regression
    from ivigmeta.core.pooling import (
        check_glmm_measure,
        glmm_counts,
        glmm_i2_h2,
        glmm_studies,
    )
    from ivigmeta.io.studies import distinct_labels
    from ivigmeta.results import FitStatistics, GlmmRegressionModel

    check_glmm_measure(es.measure)
    ci_method = ci_method.lower()
    if ci_method not in ("z", "t"):
        raise ModelError(
            f"--ci {ci_method} does not apply to --glmm: its tests and intervals are Wald z, or "
            't on k - p df with --ci t, as metafor\'s rma.glmm (test = "z" or "t")'
        )
    glmm_es, _ = glmm_studies(es, keep_double_zero)
    mods = build_moderators(glmm_es, columns, ref, categorical)
    if not mods.keep:
        reasons = "; ".join(f"{e.study}: {e.reason}" for e in mods.excluded + glmm_es.excluded)
        raise ModelError(
            "no usable studies for the meta-regression"
            + (f" (excluded: {reasons})" if reasons else "")
        )
    used = glmm_es.subset(list(mods.keep))
    x1, n1, x2, n2 = glmm_counts(used)
    fit = fit_glmm_regression(
        es.measure,
        model,
        x1,
        n1,
        x2 or None,
        n2 or None,
        mods.X,
        mods.names,
        level=level,
        test=ci_method,
    )
    coefficients = tuple(
        Coefficient(n, b, se, z, p, lo, hi)
        for n, b, se, z, p, lo, hi in zip(
            fit.names, fit.beta, fit.se, fit.z, fit.p_values, fit.ci_low, fit.ci_high
        )
    )
    i2, h2 = glmm_i2_h2(used, fit.tau2, mods.X)
    nan5 = (math.nan,) * 5
    uninformative = tuple(
        s.study for s, informs in zip(used.studies, fit.contributes) if not informs
    )
    reg = MetaRegression(
        coefficients=coefficients,
        qm=fit.qm,
        qm_df=fit.qm_df,
        qm_p_value=fit.qm_p_value,
        qe=math.nan if fit.qe_wald is None else fit.qe_wald,
        qe_df=fit.qe_df,
        qe_p_value=fit.qe_wald_p,
        tau2=fit.tau2,
        i2=i2,
        h2=h2,
        r2=None,
        k=fit.k,
        tau2_method="ML",
        ci_method=ci_method,
        qm_df2=fit.qm_df2,
        excluded=mods.excluded + glmm_es.excluded,
        level=level,
        measure=es.measure,
        references=tuple(mods.references.items()),
        model="random",
        vcov=fit.vcov,
        design=tuple(tuple(float(v) for v in row) for row in np.asarray(mods.X)),
        study_labels=tuple(distinct_labels(list(used.studies))),
        terms=tuple((c, mods.kinds[c], mods.levels.get(c, ())) for c in columns),
        fit_statistics=FitStatistics(ml=fit.fit_statistics(), reml=nan5, reported="ML"),
        tau2_se=fit.se_tau2,
        glmm=GlmmRegressionModel(
            fit,
            uninformative=uninformative,
            double_zero="kept" if keep_double_zero else "excluded",
        ),
    )
    if predict:
        reg = replace(reg, predictions=tuple(predict_at(reg, text) for text in predict))
    if btt:
        reg = replace(reg, coefficient_tests=tuple(coefficient_test(reg, spec) for spec in btt))
    return reg


def coefficient_test(reg: MetaRegression, spec: str) -> CoefficientTest:
    """metafor's ``anova(fit, btt = ...)``: the Wald test that the coefficients ``spec`` names
    are all zero. ``spec`` is a moderator column (all its coefficients: one for a continuous
    moderator, one per non-reference level of a categorical one) or comma-separated coefficient
    names (``intercept``, ``ablat``, ``alloc=random``). QM = b_S' Var(b)_SS^-1 b_S on m df
    (chi-square), or F = QM / m on (m, k - p) df under hk/adhoc, as metafor."""
    return subset_wald_test(
        reg.coefficients, reg.vcov, [t[0] for t in reg.terms], reg.qm_df2, spec, "--btt"
    )


def contrast_weights(reg: MetaRegression, spec: str) -> list[float]:
    """The row L of ``spec`` ("COEF=W,COEF=W", coefficient names as the model prints them,
    the others weighing 0)."""
    names = [c.name for c in reg.coefficients]
    row = [0.0] * len(names)
    for part in [x.strip() for x in spec.split(",") if x.strip()]:
        name, sep, value = part.rpartition("=")
        number = _number(value.strip()) if sep else None
        if not sep or number is None or not math.isfinite(number):
            raise ModelError(
                f"--contrast '{spec}': expected COEF=WEIGHT[,COEF=WEIGHT...], not '{part}'"
            )
        name = name.strip()
        if name not in names:
            raise ModelError(
                f"--contrast '{spec}': '{name}' is not a coefficient of the model "
                f"(coefficients: {', '.join(names)})"
            )
        row[names.index(name)] += number
    if not any(row):
        raise ModelError(f"--contrast '{spec}': every weight is 0")
    return row


def linear_contrasts(
    reg: MetaRegression, specs: Sequence[str]
) -> tuple[tuple[Contrast, ...], CoefficientTest | None]:
    """metafor's ``anova(fit, L = ...)``: each row L of ``specs`` (:func:`contrast_weights`)
    gives L b with se = sqrt(L Var(b) L'), a z test (t on k - p df under hk/adhoc/t) and CI;
    with more than one row also the joint Wald test QM = (Lb)' (L Var(b) L')^-1 (Lb) on the
    number of rows (F = QM / m on (m, k - p) df under hk/adhoc/t), as metafor."""
    import numpy as np

    L = np.asarray([contrast_weights(reg, spec) for spec in specs])
    b = np.asarray([c.estimate for c in reg.coefficients])
    V = np.asarray(reg.vcov)
    est = L @ b
    cov = L @ V @ L.T
    df2 = reg.qm_df2
    crit = t_crit(reg.level, df2) if df2 is not None else z_crit(reg.level)
    names = [c.name for c in reg.coefficients]
    rows = []
    for i, spec in enumerate(specs):
        se = math.sqrt(max(float(cov[i, i]), 0.0))
        e = float(est[i])
        stat = e / se if se > 0 else (math.copysign(math.inf, e) if e else 0.0)
        p = t_p_two_sided(stat, df2) if df2 is not None else norm_p_two_sided(stat)
        weights = tuple((n, float(w)) for n, w in zip(names, L[i]) if w != 0)
        rows.append(Contrast(spec, weights, e, se, stat, p, e - crit * se, e + crit * se, df2))
    joint = None
    if len(specs) > 1:
        m = int(np.linalg.matrix_rank(L))
        if m < len(specs):
            raise ModelError("--contrast: the rows are linearly dependent (give independent ones)")
        try:
            qm = float(est @ np.linalg.solve(cov, est))
        except np.linalg.LinAlgError:
            raise ModelError("--contrast: the rows' variance matrix is singular") from None
        if df2 is not None:
            stat = qm / m
            joint = CoefficientTest(
                " ; ".join(specs), tuple(names), stat, m, df2, f_sf(stat, m, df2)
            )
        else:
            joint = CoefficientTest(" ; ".join(specs), tuple(names), qm, m, None, chi2_sf(qm, m))
    return tuple(rows), joint


def subset_wald_test(
    coefficients: Sequence[Coefficient],
    vcov: Sequence[Sequence[float]],
    columns: Sequence[str],
    df2: int | None,
    spec: str,
    option: str,
) -> CoefficientTest:
    """The Wald test of :func:`coefficient_test` on any set of ``coefficients`` with their
    ``vcov`` and moderator ``columns`` (the location model's for --btt, the scale model's for
    --att); ``option`` names the option in errors."""
    import numpy as np

    names = [c.name for c in coefficients]
    chosen: list[str] = []
    for part in [x.strip() for x in spec.split(",")]:
        if part in columns:
            picked = [n for n in names if n == part or n.startswith(part + "=")]
        elif part in names:
            picked = [part]
        else:
            raise ModelError(
                f"{option} '{part}': not a moderator or coefficient of the model (coefficients: "
                + ", ".join(names)
                + ")"
            )
        chosen += [n for n in picked if n not in chosen]
    idx = [names.index(n) for n in chosen]
    b = np.asarray([coefficients[i].estimate for i in idx])
    V = np.asarray(vcov)[np.ix_(idx, idx)]
    try:
        qm = float(b @ np.linalg.solve(V, b))
    except np.linalg.LinAlgError:
        qm = math.inf if np.any(b != 0) else 0.0
    m = len(idx)
    if df2 is not None:
        stat = qm / m
        p = f_sf(stat, m, df2) if math.isfinite(stat) else 0.0
        return CoefficientTest(spec, tuple(chosen), stat, m, df2, p)
    return CoefficientTest(spec, tuple(chosen), qm, m, None, chi2_sf(qm, m))


def compare_without(reg: MetaRegression, dropped: Sequence[str]) -> ModelComparison:
    """metafor's ``anova(full, reduced)``: ``reg`` against the model refitted (same estimator,
    interval method and model) without the moderator columns ``dropped``. LRT = 2 (ll_full -
    ll_reduced) with the likelihood of the fits' estimator (REML for REML, else ML), chi-square
    on the difference in parameters; R² = 100 max(0, (tau²_r - tau²_f) / tau²_r)."""
    import numpy as np

    terms = [t[0] for t in reg.terms]
    unknown = [c for c in dropped if c not in terms]
    if unknown:
        raise ModelError(
            f"--lrt '{unknown[0]}': not a moderator of the model (moderators: {', '.join(terms)})"
        )
    names = [c.name for c in reg.coefficients]
    keep = [
        j for j, n in enumerate(names) if not any(n == c or n.startswith(c + "=") for c in dropped)
    ]
    X = np.asarray(reg.design)[:, keep]
    reduced = meta_regression(
        reg.yi,
        reg.vi,
        X,
        [names[j] for j in keep],
        reg.tau2_method if reg.model == "random" else "DL",
        reg.ci_method,
        reg.level,
        (),
        reg.model,
    )
    assert reg.fit_statistics is not None and reduced.fit_statistics is not None
    which = reg.fit_statistics.reported
    extra = 0 if reg.model == "common" else 1

    def side(r: MetaRegression) -> ModelFit:
        assert r.fit_statistics is not None
        v = r.fit_statistics.values
        return ModelFit(
            len(r.coefficients) + extra, v["loglik"], v["aic"], v["bic"], v["aicc"], r.qe, r.tau2
        )

    full, red = side(reg), side(reduced)
    df = full.parms - red.parms
    lrt = max(0.0, 2.0 * (full.loglik - red.loglik))
    if reg.model == "random":
        r2 = 0.0 if red.tau2 == 0 else max(0.0, 100.0 * (red.tau2 - full.tau2) / red.tau2)
    else:
        # metafor: the residual variances of the weighted least-squares fits, QE / (k - p)
        s2_f, s2_r = reg.qe / reg.qe_df, reduced.qe / reduced.qe_df
        r2 = 0.0 if s2_r == 0 else max(0.0, 100.0 * (s2_r - s2_f) / s2_r)
    note = ""
    if which == "REML":
        note = (
            "REML comparisons are not meaningful for models with different fixed effects "
            "(metafor warns so): use --tau2 ML"
        )
    elif reg.model == "random" and reg.tau2_method != "ML":
        note = (
            f"a likelihood-ratio test should be based on ML or REML estimation, not "
            f"{reg.tau2_method} (metafor warns so): use --tau2 ML"
        )
    return ModelComparison(tuple(dropped), which, full, red, lrt, df, chi2_sf(lrt, df), r2, note)


def inflation(reg: MetaRegression, name: str, chosen: Sequence[str]) -> VarianceInflation:
    """metafor's ``vif()`` of the coefficients ``chosen``: with R the correlation matrix of
    Var(b) without the intercept and S the chosen set, GVIF = det R_SS det R_-S-S / det R
    (the VIF for one coefficient), SIF = GVIF^(1 / (2 |S|))."""
    return variance_inflation([c.name for c in reg.coefficients], reg.vcov, name, chosen)


def variance_inflation(
    names: Sequence[str], vcov: Sequence[Sequence[float]], name: str, chosen: Sequence[str]
) -> VarianceInflation:
    """:func:`inflation` for any coefficients ``names`` (intercept first) with their ``vcov``
    (the location model's, or the scale model's: metafor's ``vif()`` of the scale part)."""
    import numpy as np

    rest_names = list(names)[1:]
    V = np.asarray(vcov)[1:, 1:]
    d = np.sqrt(np.diag(V))
    R = V / np.outer(d, d)
    idx = [rest_names.index(n) for n in chosen]
    rest = [j for j in range(len(rest_names)) if j not in idx]

    def det(rows: list[int]) -> float:
        return float(np.linalg.det(R[np.ix_(rows, rows)])) if rows else 1.0

    gvif = det(idx) * det(rest) / float(np.linalg.det(R))
    m = len(idx)
    return VarianceInflation(name, tuple(chosen), m, gvif, gvif ** (1.0 / (2 * m)))


def coefficient_vifs(reg: MetaRegression) -> tuple[VarianceInflation, ...]:
    """The VIF of every non-intercept coefficient (metafor's ``vif(fit)``)."""
    return tuple(inflation(reg, c.name, [c.name]) for c in reg.coefficients[1:])


def moderator_vifs(reg: MetaRegression) -> tuple[VarianceInflation, ...]:
    """The generalized VIF of each moderator column: its coefficients together (metafor's
    ``vif(fit, btt = list(...))`` with one set per moderator)."""
    names = [c.name for c in reg.coefficients]
    out = []
    for col, _kind, _levels in reg.terms:
        chosen = [n for n in names if n == col or n.startswith(col + "=")]
        if chosen:
            out.append(inflation(reg, col, chosen))
    return tuple(out)


def moderator_row(reg: MetaRegression, values: Mapping[str, str]) -> list[float]:
    """The design row (intercept first) of moderator ``values`` {column: text}, coded as the
    model's moderators are; every moderator needs a value."""
    return design_row(reg.terms, values)


def design_row(
    terms: Sequence[tuple[str, str, Sequence[str]]], values: Mapping[str, str]
) -> list[float]:
    """The design row (intercept first) of ``values`` {column: text} for moderators coded as
    ``terms`` (column, "continuous" or "categorical", levels with the reference first)."""
    unknown = [col for col in values if col not in {t[0] for t in terms}]
    if unknown:
        raise ModelError(
            f"'{unknown[0]}' is not a moderator of the model (moderators: "
            + ", ".join(t[0] for t in terms)
            + ")"
        )
    missing = [col for col, _, _ in terms if col not in values]
    if missing:
        raise ModelError(
            "give a value for every moderator of the model (missing: " + ", ".join(missing) + ")"
        )
    row = [1.0]
    for col, kind, levels in terms:
        text = values[col].strip()
        if kind == "continuous":
            number = _number(text)
            if number is None:
                raise ModelError(f"'{col}' is a continuous moderator: '{text}' is not a number")
            row.append(number)
            continue
        if text not in levels:
            raise ModelError(f"'{text}' is not a level of '{col}' (levels: {', '.join(levels)})")
        row += [1.0 if text == lev else 0.0 for lev in levels[1:]]
    return row


def parse_at(text: str, option: str = "--predict") -> list[tuple[str, str]]:
    """'ablat=10, alloc=random' as [(column, value)]; ``option`` names the option in errors."""
    pairs = []
    for part in text.split(","):
        col, sep, value = part.partition("=")
        if not sep or not col.strip() or not value.strip():
            raise ModelError(f"{option} '{text}': expected COL=VALUE pairs separated by commas")
        pairs.append((col.strip(), value.strip()))
    columns = [c for c, _ in pairs]
    if len(set(columns)) != len(columns):
        raise ModelError(f"{option} '{text}' names a moderator twice")
    return pairs


def predict_at(
    reg: MetaRegression, text: str, df_of: Callable[[Sequence[float]], float] | None = None
) -> Prediction:
    """metafor's ``predict(fit, newmods = ...)`` at the moderator values ``text``
    ("COL=VALUE,..."): x b, se = sqrt(x Var(b) x'), CI x b +- c se and prediction interval
    x b +- c sqrt(se² + tau²) (c: normal quantile, t on k - p df under hk/adhoc; the PI is the
    CI for a common-effect model). ``df_of``: the t df of the design row x (a cluster-robust
    prediction's, recorded in its ``df``); a ModelError it raises names ``text``."""
    pairs = parse_at(text)
    try:
        x = moderator_row(reg, dict(pairs))
        df = df_of(x) if df_of is not None else None
    except ModelError as exc:
        raise ModelError(f"--predict '{text}': {exc}") from None
    est, se = linear_prediction(reg, x)
    if df is not None:
        crit = t_crit(reg.level, df)
    else:
        crit = t_crit(reg.level, reg.qm_df2) if reg.qm_df2 is not None else z_crit(reg.level)
    half_pi = crit * math.sqrt(se * se + reg.tau2)
    values = (est, est - crit * se, est + crit * se, est - half_pi, est + half_pi)
    return Prediction(
        at=tuple(pairs),
        estimate=est,
        se=se,
        ci_low=values[1],
        ci_high=values[2],
        pi_low=values[3],
        pi_high=values[4],
        reported=reported_values(values, reg.measure),
        df=df,
    )


def reported_values(
    values: tuple[float, float, float, float, float], measure: str
) -> tuple[float, float, float, float, float]:
    """Estimate, CI and PI on the measure's reported scale (exp for ratio measures; the
    Freeman-Tukey back-transform, which needs study sizes, is not applied)."""
    from ivigmeta.core.measures import reported_scalar

    if measure == "PFT":
        return values
    a, b, c, d, e = (reported_scalar(x, measure) for x in values)
    return a, b, c, d, e


def linear_prediction(reg: MetaRegression, x: Sequence[float]) -> tuple[float, float]:
    """x b and its standard error sqrt(x Var(b) x') for a design row ``x``."""
    beta = [c.estimate for c in reg.coefficients]
    est = math.fsum(a * b for a, b in zip(x, beta))
    var = math.fsum(x[i] * reg.vcov[i][j] * x[j] for i in range(len(x)) for j in range(len(x)))
    return est, math.sqrt(max(var, 0.0))


def bubble(reg: MetaRegression, moderator: str | None = None, points: int = 101) -> Bubble:
    """The bubble plot's data (metafor's ``regplot``): each study's value of the continuous
    ``moderator`` (default: the first continuous one), effect and weight 1 / (v + tau²), and
    the regression line with its confidence and prediction bands over the moderator's range,
    the other moderators held at their means."""
    continuous = [col for col, kind, _ in reg.terms if kind == "continuous"]
    if not continuous:
        raise ModelError(
            "the bubble plot needs a continuous moderator (the model's are all categorical)"
        )
    col = moderator or continuous[0]
    if col not in [t[0] for t in reg.terms]:
        raise ModelError(
            f"--plot-mod {col}: not a moderator of the model (moderators: "
            + ", ".join(t[0] for t in reg.terms)
            + ")"
        )
    if col not in continuous:
        raise ModelError(
            f"--plot-mod {col}: a categorical moderator; the bubble plot's x axis needs a "
            "continuous one"
        )
    # The moderator's design column: after the intercept and the columns of the terms before it.
    j = 1
    for name, kind, levels in reg.terms:
        if name == col:
            break
        j += 1 if kind == "continuous" else len(levels) - 1
    k = len(reg.design)
    means = [math.fsum(row[c] for row in reg.design) / k for c in range(len(reg.design[0]))]
    xs = [row[j] for row in reg.design]
    lo, hi = min(xs), max(xs)
    grid = [lo + (hi - lo) * i / (points - 1) for i in range(points)]
    crit = t_crit(reg.level, reg.qm_df2) if reg.qm_df2 is not None else z_crit(reg.level)
    line, ci_low, ci_high, pi_low, pi_high = [], [], [], [], []
    for g in grid:
        row = list(means)
        row[j] = g
        est, se = linear_prediction(reg, row)
        half_pi = crit * math.sqrt(se * se + reg.tau2)
        line.append(est)
        ci_low.append(est - crit * se)
        ci_high.append(est + crit * se)
        pi_low.append(est - half_pi)
        pi_high.append(est + half_pi)
    return Bubble(
        measure=reg.measure,
        moderator=col,
        x=tuple(xs),
        y=reg.yi,
        weights=tuple(1.0 / (v + reg.tau2) for v in reg.vi),
        labels=reg.study_labels,
        grid=tuple(grid),
        line=tuple(line),
        ci_low=tuple(ci_low),
        ci_high=tuple(ci_high),
        pi_low=tuple(pi_low),
        pi_high=tuple(pi_high),
        level=reg.level,
        model=reg.model,
        tau2_method=reg.tau2_method,
        held=tuple(t[0] for t in reg.terms if t[0] != col),
    )


def pooled_permutation_test(
    ma: MetaAnalysis, iterations: int = 1000, seed: int | None = None
) -> PermutationTest:
    """The permutation test of the random-effects estimate of ``ma`` (sign flips of the
    intercept-only model with the fit's tau² estimator and interval method)."""
    import numpy as np

    from ivigmeta.methods.permutest import permutation_test

    ci = ma.options.ci_method
    if ma.glmm is not None or ci == "hc" or ma.options.tau2_method == "GENQ":
        raise ModelError(
            "--permutations refits the normal-normal model: not with --glmm, --ci hc or --tau2 GENQ"
        )
    es = ma.effects
    reg = meta_regression(
        es.yi,
        es.vi,
        np.ones((es.k, 1)),
        ["intercept"],
        ma.options.tau2_method,
        ci,
        ma.options.level,
    )
    return permutation_test(reg, iterations, seed)


def resolve_refs(es: EffectSizes, columns: Sequence[str], refs: Sequence[str]) -> dict[str, str]:
    """Turn ``--ref`` values into {column: level}.

    ``COL=LEVEL`` names the column; a bare ``LEVEL`` applies to the one moderator that has it.
    """
    out: dict[str, str] = {}
    for text in refs:
        col, sep, level = text.partition("=")
        if sep and col.strip() in columns:
            col, level = col.strip(), level.strip()
        else:
            level = text.strip()
            owners = [
                c for c in columns if any(s.fields.get(c, "").strip() == level for s in es.studies)
            ]
            if not owners:
                raise ModelError(
                    f"--ref '{level}': no moderator ({', '.join(columns)}) has this level"
                )
            if len(owners) > 1:
                raise ModelError(
                    f"--ref '{level}' is a level of {', '.join(owners)}: write --ref COL={level}"
                )
            col = owners[0]
        if col in out and out[col] != level:
            raise ModelError(f"--ref gives two reference levels for '{col}'")
        out[col] = level
    return out


__all__ = [
    "check_design",
    "coefficient_rows",
    "subset_wald_test",
    "variance_inflation",
    "design_row",
    "predict_at",
    "parse_at",
    "moderator_row",
    "coefficient_test",
    "compare_without",
    "coefficient_vifs",
    "moderator_vifs",
    "inflation",
    "linear_prediction",
    "bubble",
    "meta_regression",
    "pooled_permutation_test",
    "dummy_design",
    "build_moderators",
    "metareg_analysis",
    "resolve_refs",
]
