"""Groups of rows: the shape every kernel of the engine works on.

One meta-analysis is one group of consecutive rows (studies); ``pool`` is the engine applied to
one group, ``batch`` to a million. Group sums are ``np.add.reduceat`` over the group starts (NumPy's
own idiom for segmented reductions).

The sums that the random-effects model needs in the form ``sum w - sum w² / sum w`` (the c of
DerSimonian-Laird, tr P) cancel catastrophically when one weight dominates by many orders of
magnitude (a study of 1e9 participants beside three of 50): the textbook form then gives 0 or a
negative number. :meth:`Groups.others` gives, for every row, the sum of the *other* weights of its
group without that cancellation, and :func:`trace_p` / :func:`trace_pp` are built on it.
"""

from __future__ import annotations

import numpy as np


class Groups:
    """Rows sorted by group: each group's start and size, and each row's group index."""

    __slots__ = ("index", "sizes", "starts")

    def __init__(self, sizes: np.ndarray) -> None:
        self.sizes = np.asarray(sizes, dtype=np.intp)
        self.starts = np.concatenate(([0], np.cumsum(self.sizes)[:-1])).astype(np.intp)
        self.index = np.repeat(np.arange(len(self.sizes)), self.sizes)

    @classmethod
    def single(cls, k: int) -> Groups:
        """One group of ``k`` rows (what ``pool`` fits)."""
        return cls(np.array([k], dtype=np.intp))

    def __len__(self) -> int:
        return len(self.sizes)

    @property
    def n_rows(self) -> int:
        return int(self.sizes.sum())

    def sum(self, x: np.ndarray) -> np.ndarray:
        """Per-group sums of ``x`` (every group non-empty)."""
        return np.add.reduceat(x, self.starts) if len(x) else np.zeros(len(self.sizes))

    def max(self, x: np.ndarray) -> np.ndarray:
        """Per-group maxima of ``x``."""
        return np.maximum.reduceat(x, self.starts)

    def spread(self, per_group: np.ndarray) -> np.ndarray:
        """A per-group value repeated on each of the group's rows."""
        return per_group[self.index]

    def take(self, mask: np.ndarray) -> tuple[Groups, np.ndarray]:
        """The groups where ``mask`` holds, and the row mask selecting their rows."""
        return Groups(self.sizes[mask]), mask[self.index]

    def repeat(self, which: np.ndarray) -> tuple[Groups, np.ndarray]:
        """Groups ``which`` (indices, repeats allowed) as new groups, and the rows to gather."""
        sizes = self.sizes[which]
        new = Groups(sizes)
        rows = np.repeat(self.starts[which], sizes) + (
            np.arange(int(sizes.sum())) - np.repeat(new.starts, sizes)
        )
        return new, rows

    def others(self, x: np.ndarray) -> np.ndarray:
        """For each row, the sum of the other (non-negative) values of its group.

        ``S - x_i`` loses at most a factor 2 of relative precision when ``x_i <= S / 2``; the one
        row of a group that can exceed half the sum (its dominant value) gets the sum of the rest
        of its group instead, added up directly.
        """
        total = self.spread(self.sum(x))
        big = x > 0.5 * total
        rest = self.spread(self.sum(np.where(big, 0.0, x)))
        return np.where(big, rest, total - x)


def _scaled(w: np.ndarray, g: Groups) -> tuple[np.ndarray, np.ndarray]:
    """Weights divided by their group's largest: the traces are homogeneous in w, and weights
    near the overflow threshold (variances of 1e-300) must not overflow their products."""
    top = g.max(w)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where((top > 0) & np.isfinite(top), top, 1.0)
    return w / g.spread(scale), scale


#: Weights above this may overflow in w² or w³: such groups take the scaled form.
_LARGE_WEIGHT = 1e100


def _careful(w: np.ndarray, g: Groups, sw: np.ndarray) -> np.ndarray:
    """Groups whose textbook traces may lose precision or overflow: one weight above half the
    group's sum (then sum w² / sum w comes close to sum w), or weights near the overflow range.

    Elsewhere sum w² / sum w <= max w <= sum w / 2, so tr P >= sum w / 2 and tr PP >= sum w² / 4:
    the textbook forms are then exact to a few ulps (and are what metafor computes)."""
    top = g.max(w)
    return (top > 0.5 * sw) | ~(top <= _LARGE_WEIGHT)


def _trace_p_others(w: np.ndarray, g: Groups) -> np.ndarray:
    u, scale = _scaled(w, g)
    return scale * (g.sum(u * g.others(u)) / g.sum(u))


def _trace_pp_others(w: np.ndarray, g: Groups) -> np.ndarray:
    u, scale = _scaled(w, g)
    u2 = u * u
    o = g.others(u)
    su = g.sum(u)
    with np.errstate(over="ignore"):
        return (scale * scale) * (g.sum(u2 * (o * o + g.others(u2))) / (su * su))


def trace_p(w: np.ndarray, g: Groups) -> np.ndarray:
    """tr P = sum w - sum w² / sum w of the intercept-only model, per group.

    Where one weight dominates it is computed as sum_i w_i o_i / sum w, o_i the sum of the other
    weights (no cancellation; :func:`_careful` says where)."""
    sw = g.sum(w)
    with np.errstate(over="ignore", invalid="ignore"):
        out = sw - g.sum(w * w) / sw
    hard = _careful(w, g, sw)
    if hard.any():
        sub, rows = g.take(hard)
        out[hard] = _trace_p_others(w[rows], sub)
    return out


def trace_pp(w: np.ndarray, g: Groups) -> np.ndarray:
    """tr(P P) = sum w² - 2 sum w³ / sum w + (sum w²)² / (sum w)² of the intercept-only model.

    Where one weight dominates it is computed, with P = W - w w' / sum w, as
    sum_i w_i² (o_i² + O_i) / (sum w)², o_i the sum of the other weights and O_i that of their
    squares: a sum of positive terms."""
    sw = g.sum(w)
    w2 = w * w
    with np.errstate(over="ignore", invalid="ignore"):
        sw2 = g.sum(w2)
        r = sw2 / sw
        out = sw2 - 2.0 * g.sum(w2 * w) / sw + r * r
    hard = _careful(w, g, sw)
    if hard.any():
        sub, rows = g.take(hard)
        out[hard] = _trace_pp_others(w[rows], sub)
    return out


def traces(w: np.ndarray, g: Groups, sw: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(tr P, tr PP) together, sharing their sums (REML's score and information)."""
    if sw is None:
        sw = g.sum(w)
    w2 = w * w
    with np.errstate(over="ignore", invalid="ignore"):
        sw2 = g.sum(w2)
        r = sw2 / sw
        tp = sw - r
        tpp = sw2 - 2.0 * g.sum(w2 * w) / sw + r * r
    hard = _careful(w, g, sw)
    if hard.any():
        sub, rows = g.take(hard)
        tp[hard] = _trace_p_others(w[rows], sub)
        tpp[hard] = _trace_pp_others(w[rows], sub)
    return tp, tpp
