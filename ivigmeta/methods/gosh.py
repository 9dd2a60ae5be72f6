"""GOSH: graphical display of study heterogeneity (Olkin, Dahabreh & Trikalinos 2012), as
metafor's ``gosh()``.

The model is fitted to subsets of the studies, and each subset's pooled estimate is plotted
against its I²: clusters reveal studies that drive the heterogeneity. With k <= 15 studies every
one of the 2^k - 1 non-empty subsets is fitted; above, ``subsets`` of them are drawn at random
(each study in or out with probability 1/2, empty draws redrawn; ``seed`` makes it repeatable).

All subsets are fitted at once by the one engine (:func:`ivigmeta.core.pooling.pool_groups`, one
group per subset): the common-effect (inverse-variance) estimate with Q-based I² = 100 max(0,
(Q - df) / Q) by default (``model="common"``, metafor's gosh on an equal-effects fit), or the
random-effects estimate with the fit's tau² estimator and its I² (``model="random"``). A
single-study subset has its study's effect and I² = 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ivigmeta.core.groups import Groups
from ivigmeta.core.measures import to_reported
from ivigmeta.core.pooling import pool_groups
from ivigmeta.errors import ModelError

if TYPE_CHECKING:
    from ivigmeta.results import Gosh, MetaAnalysis

ALL_SUBSETS_MAX_K = 15


def subset_masks(k: int, subsets: int, seed: int | None) -> tuple[np.ndarray, bool]:
    """Rows of study membership: every non-empty subset when k <= 15, else ``subsets`` random
    ones (not necessarily distinct, as metafor's). Returns (masks, sampled)."""
    if k <= ALL_SUBSETS_MAX_K:
        codes = np.arange(1, 2**k, dtype=np.int64)
        masks = ((codes[:, None] >> np.arange(k)) & 1).astype(bool)
        return masks, False
    rng = np.random.default_rng(seed)
    masks = rng.random((subsets, k)) < 0.5
    empty = ~masks.any(axis=1)
    while empty.any():
        masks[empty] = rng.random((int(empty.sum()), k)) < 0.5
        empty = ~masks.any(axis=1)
    return masks, True


def quartiles(values: tuple[float, ...]) -> tuple[float, float, float, float, float]:
    """Minimum, lower quartile, median, upper quartile and maximum (nearest rank)."""
    v = sorted(values)
    n = len(v) - 1

    def q(p: float) -> float:
        return v[min(n, int(p * n + 0.5))]

    return v[0], q(0.25), q(0.5), q(0.75), v[-1]


def gosh(
    ma: MetaAnalysis, subsets: int = 10_000, seed: int | None = None, model: str = "common"
) -> Gosh:
    """Fit ``ma``'s model to the subsets of its studies (module docstring)."""
    from ivigmeta.results import Gosh

    k = ma.k
    if k < 2:
        raise ModelError(f"a GOSH plot needs at least 2 studies (have {k})")
    if subsets < 1:
        raise ModelError(f"--subsets {subsets}: at least 1")
    if model not in ("common", "random"):
        raise ModelError(f"unknown GOSH model {model!r} (common or random)")
    y_all = np.asarray(ma.effects.yi, dtype=float)
    v_all = np.asarray(ma.effects.vi, dtype=float)
    masks, sampled = subset_masks(k, subsets, seed)
    sizes = masks.sum(axis=1)
    theta = np.empty(len(masks))
    i2 = np.zeros(len(masks))
    one = sizes == 1
    if one.any():
        theta[one] = y_all[masks[one].argmax(axis=1)]
    many = ~one
    if many.any():
        rows = np.nonzero(masks[many])[1]  # study index of every row, subset by subset
        g = Groups(sizes[many])
        tau2_method = ma.options.tau2_method if model == "random" else "DL"
        gf = pool_groups(y_all[rows], v_all[rows], g, tau2_method=tau2_method)
        if model == "random":
            theta[many] = gf.random.theta
            i2[many] = np.nan_to_num(gf.i2, nan=0.0)
        else:
            theta[many] = gf.common.theta
            i2[many] = gf.i2_q
    estimate = to_reported(theta, ma.measure)
    estimates = tuple(float(x) for x in estimate)
    i2s = tuple(float(x) for x in i2)
    bits = (masks * (1 << np.arange(k, dtype=np.int64))).sum(axis=1) if k < 63 else None
    return Gosh(
        k=k,
        measure=ma.measure,
        model=model,
        sampled=sampled,
        seed=seed,
        labels=tuple(s.label() for s in ma.effects.studies),
        sizes=tuple(int(x) for x in sizes),
        estimates=estimates,
        thetas=tuple(float(x) for x in theta),
        i2=i2s,
        estimate_quartiles=quartiles(estimates),
        i2_quartiles=quartiles(i2s),
        members=tuple(int(x) for x in bits) if bits is not None else (),
        excluded=tuple(ma.effects.excluded),
    )
