"""Stouffer's and Fisher's combination tests of a table's studies (``ivigmeta combine``): each
study's z = y / sqrt(v) on the analysis scale (its one-sided p-value 1 - Phi(z) that the effect
is above 0), combined by :func:`ivigmeta.core.combination.combine_z`."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ivigmeta.core.combination import combine_z
from ivigmeta.errors import ModelError
from ivigmeta.results import CombinationStudy, CombinationTest, EffectSizes


def combination_test(
    es: EffectSizes,
    method: str = "stouffer",
    mode: str = "directed",
    weights: Sequence[float] | None = None,
    weights_column: str | None = None,
) -> CombinationTest:
    """Stouffer's (``weights``: per study of ``es``, from ``weights_column``) or Fisher's test of
    the studies of ``es``, in ``mode`` directed, undirected or concordant."""
    import numpy as np
    from scipy.stats import norm

    if es.k == 0:
        raise ModelError("no studies to combine")
    y = np.asarray(es.yi, dtype=float)
    v = np.asarray(es.vi, dtype=float)
    if np.any(~(v > 0)):
        bad = next(s for s, x in zip(es.studies, v) if not x > 0)
        raise ModelError(f"{bad.study}: its variance is 0, so its z is undefined")
    z = y / np.sqrt(v)
    w = None if weights is None else np.asarray(weights, dtype=float)
    res = combine_z(z, method, mode, w)
    studies = tuple(
        CombinationStudy(
            study=s,
            z=float(zi),
            p_one_sided=float(norm.sf(zi)),
            weight=None if w is None else float(w[i]),
        )
        for i, (s, zi) in enumerate(zip(es.studies, z))
    )
    return CombinationTest(
        measure=es.measure,
        method=method.lower(),
        mode=mode.lower(),
        k=es.k,
        statistic=res.statistic,
        df=res.df,
        p_value=res.p_value,
        z=res.z if math.isfinite(res.z) else math.inf,
        weights_column=weights_column,
        rows=studies,
        excluded=es.excluded,
    )


__all__ = ["combination_test"]
