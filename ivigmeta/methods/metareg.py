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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ivigmeta.core.distributions import (
    chi2_sf,
    f_sf,
    norm_p_two_sided,
    t_crit,
    t_p_two_sided,
    z_crit,
)
from ivigmeta.errors import ModelError
from ivigmeta.results import Coefficient, EffectSizes, Exclusion, MetaRegression

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
) -> MetaRegression:
    """Fit a mixed-effects meta-regression; ``X`` includes the intercept column first.

    A weighted design that is numerically singular (sampling variances many orders of magnitude
    apart make X' W X not invertible in double precision) is a :class:`SingularFit`.
    """
    import numpy as np

    try:
        return _meta_regression(yi, vi, X, names, tau2_method, ci_method, level, excluded)
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
) -> MetaRegression:
    import numpy as np

    from ivigmeta.core.tau2 import check_tau2_method, estimate_tau2

    method = check_tau2_method(tau2_method)
    if method == "GENQ":
        raise ModelError(
            "meta-regression does not offer --tau2 GENQ (it has no weights option); the "
            "library's estimate_tau2(yi, vi, 'GENQ', X, weights=...) does"
        )
    if ci_method == "hc":
        raise ModelError(
            "--ci hc (Henmi-Copas) applies to models without moderators only, as metafor's hc()"
        )
    if ci_method not in ("z", "hk", "adhoc"):
        raise ModelError(f"unknown interval method '{ci_method}' (choose one of z, hk, adhoc)")
    knha = ci_method in ("hk", "adhoc")
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    X = np.asarray(X, dtype=float)
    k, p = X.shape
    _check_design(X, names)
    if k <= p:
        raise ModelError(
            f"meta-regression with {p} coefficients needs more than {p} studies (have {k})"
        )
    tau2 = estimate_tau2(list(yi), list(vi), method, X).tau2
    ws = 1.0 / (v + tau2)
    XtWs = X.T * ws
    vb = np.linalg.inv(XtWs @ X)
    beta = vb @ XtWs @ y
    df2: int | None = None
    if knha:
        resid = y - X @ beta
        rss = float(np.sum(ws * resid * resid))
        s2w = 0.0 if rss <= np.finfo(float).eps else rss / (k - p)
        if ci_method == "adhoc":  # metafor's test = "adhoc": the factor is at least 1
            s2w = max(s2w, 1.0)
        vb = s2w * vb
        df2 = k - p
        crit = t_crit(level, df2)
    else:
        crit = z_crit(level)
    se = np.sqrt(np.diag(vb))
    coefs = []
    for j in range(p):
        b, s = float(beta[j]), float(se[j])
        # A zero standard error (Hartung-Knapp with residuals that all vanish) is decided as in
        # pooling.random_effects: a non-zero coefficient is infinitely significant, zero is not.
        stat = b / s if s > 0 else (math.copysign(math.inf, b) if b else 0.0)
        if knha:
            assert df2 is not None
            pval = t_p_two_sided(stat, df2) if s > 0 else (0.0 if b else 1.0)
        else:
            pval = norm_p_two_sided(stat)
        coefs.append(Coefficient(names[j], b, s, stat, pval, b - crit * s, b + crit * s))
    m = p - 1
    qm: float | None
    qm_p: float | None
    if m > 0:
        bm = beta[1:]
        try:
            qm = float(bm @ np.linalg.solve(vb[1:, 1:], bm))
        except np.linalg.LinAlgError:  # Var(b) = 0 (as above): QM is 0 when b is, else infinite
            qm = math.inf if np.any(bm != 0) else 0.0
        if knha:
            assert df2 is not None
            qm = qm / m
            qm_p = f_sf(qm, m, df2) if math.isfinite(qm) else 0.0
        else:
            qm_p = chi2_sf(qm, m)
    else:
        qm, qm_p = None, None
    w0 = 1.0 / v
    XtW0 = X.T * w0
    P0 = np.diag(w0) - XtW0.T @ np.linalg.solve(XtW0 @ X, XtW0)
    qe = float(y @ P0 @ y)
    s2 = (k - p) / float(np.trace(P0))
    tau2_0 = estimate_tau2(list(yi), list(vi), method).tau2
    r2 = 0.0 if tau2_0 == 0 else max(0.0, 100.0 * (tau2_0 - tau2) / tau2_0)
    return MetaRegression(
        coefficients=tuple(coefs),
        qm=qm,
        qm_df=m,
        qm_p_value=qm_p,
        qe=qe,
        qe_df=k - p,
        qe_p_value=chi2_sf(qe, k - p),
        tau2=tau2,
        i2=100.0 * tau2 / (tau2 + s2),
        h2=(tau2 + s2) / s2,
        r2=r2,
        k=k,
        tau2_method=method,
        ci_method=ci_method,
        qm_df2=df2,
        excluded=tuple(excluded),
        level=level,
    )


def _check_design(X: np.ndarray, names: Sequence[str]) -> None:
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
    return Moderators(X, tuple(names), tuple(keep), excluded, kinds, references)


def metareg_analysis(
    es: EffectSizes,
    columns: Sequence[str],
    tau2_method: str = "DL",
    ci_method: str = "z",
    level: float = 0.95,
    ref: Mapping[str, str] | None = None,
    categorical: Sequence[str] = (),
) -> MetaRegression:
    """Meta-regression of the effect sizes ``es`` on the moderator ``columns`` of its studies."""
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
    reg = meta_regression(
        yi, vi, mods.X, mods.names, tau2_method, ci_method, level, mods.excluded + es.excluded
    )
    return replace(reg, measure=es.measure, references=tuple(mods.references.items()))


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
    "meta_regression",
    "dummy_design",
    "build_moderators",
    "metareg_analysis",
    "resolve_refs",
]
