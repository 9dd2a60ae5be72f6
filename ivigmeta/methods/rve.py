"""Robust variance estimation for dependent effect sizes of a study table (``ivigmeta rve``;
robumeta's ``robu()``): the effects, clustered by a column (the study of several outcomes or
time points), on moderator columns coded as ``metareg`` codes them; the arithmetic is
:func:`ivigmeta.core.rve.rve_fit`.

What it refuses, as one-line errors: a row without a cluster value (naming file, row and
column), a row whose sampling variance is not positive (naming its row), rho outside [0, 1],
a single cluster, and no more clusters than coefficients (robumeta's N - p df would be 0 or
negative).

numpy is imported inside the functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ivigmeta.core.distributions import t_crit, t_p_two_sided
from ivigmeta.core.rve import MODELS, RVEDegenerate, rve_fit
from ivigmeta.errors import DataError, ModelError
from ivigmeta.methods.aggregate import cluster_values
from ivigmeta.results import EffectSizes, Exclusion, RobustVarianceModel, RVECoefficient

if TYPE_CHECKING:
    from ivigmeta.io.studies import StudyTable

#: --model's spellings: robumeta's modelweights names too
MODEL_NAMES = {
    "correlated": "correlated",
    "corr": "correlated",
    "hierarchical": "hierarchical",
    "hier": "hierarchical",
}


def check_model(model: str) -> str:
    """``correlated`` or ``hierarchical`` (robumeta's ``CORR`` / ``HIER`` accepted)."""
    name = MODEL_NAMES.get(str(model).lower())
    if name is None:
        raise ModelError(f"unknown --model '{model}' (expected one of {', '.join(MODELS)})")
    return name


def check_rho(rho: float) -> float:
    """rho in [0, 1] (robumeta: "Rho must be a value between 0 and 1.")."""
    x = float(rho)
    if not 0.0 <= x <= 1.0:
        raise ModelError(
            f"--rho {x:g} is outside [0, 1] (expected the assumed correlation of the effects "
            "within a study, as robumeta's rho)"
        )
    return x


def rve_analysis(
    table: StudyTable,
    es: EffectSizes,
    cluster: str,
    mods: Sequence[str] = (),
    ref: Mapping[str, str] | None = None,
    categorical: Sequence[str] = (),
    model: str = "correlated",
    rho: float = 0.8,
    small: bool = True,
    level: float = 0.95,
    measure: str | None = None,
) -> RobustVarianceModel:
    """Robust variance estimation of the effects ``es`` of ``table``, clustered by the column
    ``cluster``, on the moderator ``mods`` (coded with ``ref`` and ``categorical`` as in
    ``metareg``; none: the intercept alone). ``level`` is a fraction. Rows with an empty
    moderator value are left out (listed in ``excluded``), as R's model frame drops them.
    ``measure`` names the effects' measure (default: that of ``es``)."""
    import numpy as np

    model = check_model(model)
    rho = check_rho(rho)
    table.require_label_column(cluster)
    if es.k == 0:
        raise ModelError(f"{table.source}: no effect to analyse")
    excluded: tuple[Exclusion, ...] = ()
    if mods:
        from ivigmeta.methods.metareg import build_moderators

        design = build_moderators(es, mods, ref, categorical)
        keep = list(design.keep)
        X = design.X
        names = list(design.names)
        excluded = design.excluded
    else:
        keep = list(range(es.k))
        X = np.ones((es.k, 1))
        names = ["intercept"]
    studies = [es.studies[i] for i in keep]
    labels = cluster_values(studies, cluster, table.source)
    y = np.asarray([es.yi[i] for i in keep], dtype=float)
    v = np.asarray([es.vi[i] for i in keep], dtype=float)
    bad = [s for s, x in zip(studies, v) if not x > 0]
    if bad:
        first = bad[0]
        where = f"{table.source}, row {first.row}" if first.row is not None else first.label()
        raise DataError(
            f"{where}: the sampling variance is {float(v[studies.index(first)]):g} (expected a "
            "positive variance: robumeta's weights divide by it)"
        )
    order = list(dict.fromkeys(labels))
    index = {c: i for i, c in enumerate(order)}
    ids = np.asarray([index[c] for c in labels])
    n, p = len(order), X.shape[1]
    if n == 1:
        raise ModelError(
            f"--cluster {cluster}: every effect is in one cluster ('{order[0]}'): robust "
            "variance estimation needs several independent clusters"
        )
    if n <= p:
        raise ModelError(
            f"--cluster {cluster}: {n} clusters for {p} coefficients: robust variance "
            f"estimation needs more clusters than coefficients (at least {p + 1})"
        )
    try:
        est = rve_fit(y, v, X, ids, model, rho, small)
    except np.linalg.LinAlgError:
        raise ModelError(
            "the model is numerically singular (a moderator is collinear with others)"
        ) from None
    except RVEDegenerate as exc:
        raise ModelError(f"--model {model}: {exc}") from None
    finite = [est.tau2, *est.beta, *est.se, *np.ravel(est.vcov)]
    if est.omega2 is not None:
        finite.append(est.omega2)
    if not all(math.isfinite(x) for x in finite):
        raise ModelError(
            "the model is numerically singular (the weights or the moderators leave no finite "
            "estimate)"
        )
    coefs = []
    for j, name in enumerate(names):
        b, s, df = float(est.beta[j]), float(est.se[j]), float(est.df[j])
        if not (math.isfinite(df) and s > 0):
            raise ModelError(
                f"coefficient {name} rests on clusters fitted exactly (its robust variance "
                "is 0): no test"
            )
        stat = b / s
        crit = t_crit(level, df)
        coefs.append(
            RVECoefficient(
                name, b, s, stat, df, t_p_two_sided(stat, df), b - crit * s, b + crit * s
            )
        )
    sizes = {c: 0 for c in order}
    for c in labels:
        sizes[c] += 1
    return RobustVarianceModel(
        measure=str(measure or es.measure),
        cluster=cluster,
        model=model,
        rho=est.rho,
        small=est.small,
        level=level,
        moderators=tuple(mods),
        cluster_sizes=tuple(sizes.items()),
        coefficients=tuple(coefs),
        vcov=tuple(tuple(float(x) for x in row) for row in est.vcov),
        tau2=est.tau2,
        omega2=est.omega2,
        i2=est.i2,
        qe=est.qe,
        qe_df=est.qe_df,
        excluded=es.excluded + excluded,
    )


__all__ = ["MODEL_NAMES", "check_model", "check_rho", "rve_analysis"]
