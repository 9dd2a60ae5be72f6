"""The random-effects model's quantities as functions of tau², for many models at once.

Every tau² estimator (:mod:`ivigmeta.core.tau2`) and the Q-profile interval
(:mod:`ivigmeta.core.confint`) is written once against the small interface below, and works on
two kinds of model:

* :class:`InterceptModels`: many intercept-only models (one per group of rows, :class:`Groups`),
  in closed form with grouped sums: what ``pool``, ``batch``, leave-one-out and subgroups fit;
* :class:`RegressionModels`: models with a moderator matrix X (meta-regression), one matrix
  computation per model.

Notation: k studies, p columns of X, W = diag(w) with w = 1 / (v + tau²),
P = W - W X (X' W X)^-1 X' W; y' P y is the generalized Q (Cochran's Q at tau² = 0 without
moderators), tr P its expectation's slope.

Every method returns one value per model (NumPy arrays); ``tau2`` arguments are arrays too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from ivigmeta.core.groups import Groups, trace_p, traces

LOG_2PI = math.log(2.0 * math.pi)


class Models(Protocol):
    """What the estimators ask of a set of models."""

    k: np.ndarray  # studies per model (float)
    p: int  # coefficients per model

    def __len__(self) -> int: ...
    def q(self, tau2: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
    def trace_p(self, tau2: np.ndarray) -> np.ndarray: ...
    def score(self, tau2: np.ndarray, reml: bool) -> tuple[np.ndarray, np.ndarray]: ...
    def loglik(self, tau2: np.ndarray, reml: bool) -> np.ndarray: ...
    def he_raw(self) -> np.ndarray: ...
    def sj_start(self) -> np.ndarray: ...
    def mad2(self) -> np.ndarray: ...
    def vmax(self) -> np.ndarray: ...
    def take(self, mask: np.ndarray) -> Models: ...
    def repeat(self, which: np.ndarray) -> Models: ...


class InterceptModels:
    """Intercept-only random-effects models, one per group of rows (rows sorted by group)."""

    p = 1

    def __init__(self, y: np.ndarray, v: np.ndarray, groups: Groups) -> None:
        self.y = np.asarray(y, dtype=float)
        self.v = np.asarray(v, dtype=float)
        self.g = groups
        self.k = groups.sizes.astype(float)
        # Q and tr P at tau² = 0 serve DL, PM, the I² of every fit and the Q-profile: once.
        self._at_zero: dict[str, Any] = {}

    @classmethod
    def single(cls, y: Sequence[float], v: Sequence[float]) -> InterceptModels:
        return cls(np.asarray(y, dtype=float), np.asarray(v, dtype=float), Groups.single(len(y)))

    def __len__(self) -> int:
        return len(self.g)

    def _fit(self, tau2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Weights, per-group weight sums and residuals about the weighted mean."""
        g = self.g
        w = 1.0 / (self.v + g.spread(tau2))
        sw = g.sum(w)
        r = self.y - g.spread(g.sum(w * self.y) / sw)
        return w, sw, r

    def q(self, tau2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """y' P y = sum w (y - mu_w)² and its slope in tau², -y' P P y = -sum w² (y - mu_w)²."""
        if not np.any(tau2):
            if "q" not in self._at_zero:
                self._at_zero["q"] = self._q(tau2)
            return self._at_zero["q"]
        return self._q(tau2)

    def _q(self, tau2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w, _, r = self._fit(tau2)
        wr2 = w * r * r
        with np.errstate(over="ignore"):  # weights near overflow: the slope is -inf, not an error
            return self.g.sum(wr2), -self.g.sum(w * wr2)

    def trace_p(self, tau2: np.ndarray) -> np.ndarray:
        if not np.any(tau2) and "tr" in self._at_zero:
            return self._at_zero["tr"]
        w = 1.0 / (self.v + self.g.spread(tau2))
        out = trace_p(w, self.g)
        if not np.any(tau2):
            self._at_zero["tr"] = out
        return out

    def score(self, tau2: np.ndarray, reml: bool) -> tuple[np.ndarray, np.ndarray]:
        """Fisher scoring's numerator and information (Viechtbauer 2005).

        ML: (y'PPy - sum w, sum w²); REML: (y'PPy - tr P, tr PP), both traces without
        cancellation (:mod:`ivigmeta.core.groups`).
        """
        g = self.g
        w, sw, r = self._fit(tau2)
        w2 = w * w
        yppy = g.sum(w2 * r * r)
        if reml:
            tp, tpp = traces(w, g, sw)
            return yppy - tp, tpp
        return yppy - sw, g.sum(w2)

    def loglik(self, tau2: np.ndarray, reml: bool) -> np.ndarray:
        """(Restricted) log-likelihood at ``tau2``."""
        g = self.g
        w, sw, r = self._fit(tau2)
        rss = g.sum(w * r * r)
        slv = g.sum(np.log(self.v + g.spread(tau2)))
        if reml:
            return -0.5 * (self.k - 1) * LOG_2PI - 0.5 * slv - 0.5 * np.log(sw) - 0.5 * rss
        return -0.5 * self.k * LOG_2PI - 0.5 * slv - 0.5 * rss

    def he_raw(self) -> np.ndarray:
        """Hedges' unweighted moment estimate before truncation at 0:
        (sum (y - ybar)² - (k - 1)/k sum v) / (k - 1)."""
        g, k = self.g, self.k
        r = self.y - g.spread(g.sum(self.y) / k)
        return (g.sum(r * r) - (k - 1) / k * g.sum(self.v)) / (k - 1)

    def sj_start(self) -> np.ndarray:
        """Sidik-Jonkman's starting value sum (y - ybar)² / k."""
        g = self.g
        r = self.y - g.spread(g.sum(self.y) / self.k)
        return g.sum(r * r) / self.k

    def mad2(self) -> np.ndarray:
        """R's mad(y)² per group (1.4826 x the median absolute deviation): metafor's tau² scale."""
        g = self.g
        ys = self.y[np.lexsort((self.y, g.index))]
        lo = g.starts + (g.sizes - 1) // 2
        hi = g.starts + g.sizes // 2
        med = 0.5 * (ys[lo] + ys[hi])
        dev = np.abs(self.y - g.spread(med))
        ds = dev[np.lexsort((dev, g.index))]
        return (1.4826 * 0.5 * (ds[lo] + ds[hi])) ** 2

    def vmax(self) -> np.ndarray:
        return self.g.max(self.v)

    def take(self, mask: np.ndarray) -> InterceptModels:
        g, rows = self.g.take(mask)
        return InterceptModels(self.y[rows], self.v[rows], g)

    def repeat(self, which: np.ndarray) -> InterceptModels:
        g, rows = self.g.repeat(which)
        return InterceptModels(self.y[rows], self.v[rows], g)


class RegressionModels:
    """Random-effects models with moderators: one (y, v, X) per model, X's first column the
    intercept (or any full-rank design)."""

    def __init__(self, items: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        self.items = [
            (np.asarray(y, dtype=float), np.asarray(v, dtype=float), np.asarray(X, dtype=float))
            for y, v, X in items
        ]
        shapes = {X.shape[1] for _, _, X in self.items}
        self.p = shapes.pop() if len(shapes) == 1 else 0
        self.k = np.array([float(len(y)) for y, _, _ in self.items])

    @classmethod
    def single(cls, y: Sequence[float], v: Sequence[float], X: Any) -> RegressionModels:
        return cls([(np.asarray(y, float), np.asarray(v, float), np.asarray(X, float))])

    def __len__(self) -> int:
        return len(self.items)

    def _each(self, fn: Any, tau2: np.ndarray | None = None) -> np.ndarray:
        if tau2 is None:
            return np.array([fn(*item) for item in self.items], dtype=float)
        return np.array([fn(*item, float(t)) for item, t in zip(self.items, tau2)], dtype=float)

    @staticmethod
    def _p_matrix(v: np.ndarray, X: np.ndarray, tau2: float) -> np.ndarray:
        w = 1.0 / (v + tau2)
        WX = X * w[:, None]
        return np.diag(w) - WX @ np.linalg.solve(X.T @ WX, WX.T)

    def q(self, tau2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        def one(y: np.ndarray, v: np.ndarray, X: np.ndarray, t: float) -> tuple[float, float]:
            Py = self._p_matrix(v, X, t) @ y
            return float(y @ Py), -float(Py @ Py)

        pairs = [one(*item, float(t)) for item, t in zip(self.items, tau2)]
        return np.array([a for a, _ in pairs]), np.array([b for _, b in pairs])

    def trace_p(self, tau2: np.ndarray) -> np.ndarray:
        return self._each(lambda y, v, X, t: np.trace(self._p_matrix(v, X, t)), tau2)

    def score(self, tau2: np.ndarray, reml: bool) -> tuple[np.ndarray, np.ndarray]:
        def one(y: np.ndarray, v: np.ndarray, X: np.ndarray, t: float) -> tuple[float, float]:
            P = self._p_matrix(v, X, t)
            Py = P @ y
            yppy = float(Py @ Py)
            if reml:
                return yppy - float(np.trace(P)), float((P * P).sum())
            w = 1.0 / (v + t)
            return yppy - float(w.sum()), float((w * w).sum())

        pairs = [one(*item, float(t)) for item, t in zip(self.items, tau2)]
        return np.array([a for a, _ in pairs]), np.array([b for _, b in pairs])

    def loglik(self, tau2: np.ndarray, reml: bool) -> np.ndarray:
        def one(y: np.ndarray, v: np.ndarray, X: np.ndarray, t: float) -> float:
            k, p = X.shape
            rss = float(y @ self._p_matrix(v, X, t) @ y)
            slv = float(np.log(v + t).sum())
            if reml:
                w = 1.0 / (v + t)
                logdet = float(np.linalg.slogdet(X.T @ (X * w[:, None]))[1])
                return -0.5 * (k - p) * LOG_2PI - 0.5 * slv - 0.5 * logdet - 0.5 * rss
            return -0.5 * k * LOG_2PI - 0.5 * slv - 0.5 * rss

        return self._each(one, tau2)

    def he_raw(self) -> np.ndarray:
        def one(y: np.ndarray, v: np.ndarray, X: np.ndarray) -> float:
            k, p = X.shape
            P = np.eye(k) - X @ np.linalg.solve(X.T @ X, X.T)
            return (float(y @ P @ y) - float(np.diag(P) @ v)) / (k - p)

        return self._each(one)

    def sj_start(self) -> np.ndarray:
        # metafor starts Sidik-Jonkman from the variance of y about its mean, moderators or not.
        return self._each(lambda y, v, X: float(((y - y.mean()) ** 2).sum()) / len(y))

    def mad2(self) -> np.ndarray:
        def one(y: np.ndarray, v: np.ndarray, X: np.ndarray) -> float:
            med = float(np.median(y))
            return (1.4826 * float(np.median(np.abs(y - med)))) ** 2

        return self._each(one)

    def vmax(self) -> np.ndarray:
        return self._each(lambda y, v, X: float(v.max()))

    def take(self, mask: np.ndarray) -> RegressionModels:
        return RegressionModels([item for item, m in zip(self.items, mask) if m])

    def repeat(self, which: np.ndarray) -> RegressionModels:
        return RegressionModels([self.items[int(i)] for i in which])
