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
from typing import Any, NamedTuple, Protocol

import numpy as np

from ivigmeta.core.groups import Groups, trace_p, traces

LOG_2PI = math.log(2.0 * math.pi)


WEIGHT_KINDS = ("iv", "ols", "user")


class PVTerms(NamedTuple):
    """Traces of one residual maker P_a = A - A X (X' A X)^-1 X' A (A = diag(a)) per model, with
    V = diag(v): what the moment estimators and metafor's standard errors of tau² need.

    ``kind`` of weights a: "iv" 1 / (v + tau²), "ols" 1 (Hedges), "user" the models' own weights
    (the generalized Q estimator)."""

    sum_a: np.ndarray
    tr_p: np.ndarray
    tr_pp: np.ndarray  # sum(P * P)
    tr_pv: np.ndarray
    tr_pvpv: np.ndarray  # sum(PV * t(PV))
    sum_pvp: np.ndarray  # sum(PV * P) = tr(P V P)
    q: np.ndarray  # y' P_a y


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
    def pv_terms(self, kind: str, tau2: np.ndarray | None = None) -> PVTerms: ...
    def has_weights(self) -> bool: ...
    def take(self, mask: np.ndarray) -> Models: ...
    def repeat(self, which: np.ndarray) -> Models: ...


class InterceptModels:
    """Intercept-only random-effects models, one per group of rows (rows sorted by group)."""

    p = 1

    def __init__(
        self, y: np.ndarray, v: np.ndarray, groups: Groups, a: np.ndarray | None = None
    ) -> None:
        self.y = np.asarray(y, dtype=float)
        self.v = np.asarray(v, dtype=float)
        self.g = groups
        #: per-row user weights (the generalized Q estimator, metafor's ``weights``), or None
        self.a = None if a is None else np.asarray(a, dtype=float)
        self.k = groups.sizes.astype(float)
        # Q and tr P at tau² = 0 serve DL, PM, the I² of every fit and the Q-profile: once.
        self._at_zero: dict[str, Any] = {}

    @classmethod
    def single(cls, y: Sequence[float], v: Sequence[float], a: Any = None) -> InterceptModels:
        return cls(
            np.asarray(y, dtype=float),
            np.asarray(v, dtype=float),
            Groups.single(len(y)),
            None if a is None else np.asarray(a, dtype=float),
        )

    def has_weights(self) -> bool:
        return self.a is not None

    def row_weights(self, kind: str, tau2: np.ndarray | None = None) -> np.ndarray:
        if kind == "iv":
            t = np.zeros(len(self)) if tau2 is None else tau2
            return 1.0 / (self.v + self.g.spread(t))
        if kind == "ols":
            return np.ones_like(self.v)
        if self.a is None:
            raise ValueError("these models carry no user weights")
        return self.a

    def pv_terms(self, kind: str, tau2: np.ndarray | None = None) -> PVTerms:
        """:class:`PVTerms` in closed form: with P = A - a a' / S (S = sum a),
        tr PV = sum a v - sum a² v / S, tr(PVPV) = sum a² v² - 2 sum a³ v² / S + (sum a² v)² / S²,
        tr(PVP) = sum a² v - 2 sum a³ v / S + sum a² sum a² v / S²."""
        g, v = self.g, self.v
        a = self.row_weights(kind, tau2)
        s = g.sum(a)
        a2 = a * a
        s2 = g.sum(a2)
        s2v = g.sum(a2 * v)
        s3v = g.sum(a2 * a * v)
        tr_p, tr_pp = traces(a, g, s)
        tr_pv = g.sum(a * v) - s2v / s
        tr_pvpv = g.sum(a2 * v * v) - 2.0 * g.sum(a2 * a * v * v) / s + (s2v / s) ** 2
        sum_pvp = s2v - 2.0 * s3v / s + s2 * s2v / (s * s)
        r = self.y - g.spread(g.sum(a * self.y) / s)
        return PVTerms(s, tr_p, tr_pp, tr_pv, tr_pvpv, sum_pvp, g.sum(a * r * r))

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
        return InterceptModels(
            self.y[rows], self.v[rows], g, None if self.a is None else self.a[rows]
        )

    def repeat(self, which: np.ndarray) -> InterceptModels:
        g, rows = self.g.repeat(which)
        return InterceptModels(
            self.y[rows], self.v[rows], g, None if self.a is None else self.a[rows]
        )


class RegressionModels:
    """Random-effects models with moderators: one (y, v, X) per model, X's first column the
    intercept (or any full-rank design)."""

    def __init__(
        self,
        items: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
        weights: Sequence[np.ndarray] | None = None,
    ) -> None:
        self.items = [
            (np.asarray(y, dtype=float), np.asarray(v, dtype=float), np.asarray(X, dtype=float))
            for y, v, X in items
        ]
        #: per model, user weights (the generalized Q estimator), or None
        self.weights = None if weights is None else [np.asarray(a, float) for a in weights]
        shapes = {X.shape[1] for _, _, X in self.items}
        self.p = shapes.pop() if len(shapes) == 1 else 0
        self.k = np.array([float(len(y)) for y, _, _ in self.items])

    @classmethod
    def single(
        cls, y: Sequence[float], v: Sequence[float], X: Any, a: Any = None
    ) -> RegressionModels:
        return cls(
            [(np.asarray(y, float), np.asarray(v, float), np.asarray(X, float))],
            None if a is None else [np.asarray(a, float)],
        )

    def has_weights(self) -> bool:
        return self.weights is not None

    def pv_terms(self, kind: str, tau2: np.ndarray | None = None) -> PVTerms:
        rows = []
        for i, (y, v, X) in enumerate(self.items):
            if kind == "iv":
                a = 1.0 / (v + (0.0 if tau2 is None else float(tau2[i])))
            elif kind == "ols":
                a = np.ones_like(v)
            else:
                if self.weights is None:
                    raise ValueError("these models carry no user weights")
                a = self.weights[i]
            AX = X * a[:, None]
            P = np.diag(a) - AX @ np.linalg.solve(X.T @ AX, AX.T)
            PV = P * v[None, :]
            rows.append(
                (
                    float(a.sum()),
                    float(np.trace(P)),
                    float((P * P).sum()),
                    float(np.trace(PV)),
                    float((PV * PV.T).sum()),
                    float((PV * P).sum()),
                    float(y @ P @ y),
                )
            )
        cols = np.array(rows, dtype=float).reshape(len(self.items), 7).T
        return PVTerms(*cols)

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
        keep = [i for i, m in enumerate(mask) if m]
        return self._subset(keep)

    def repeat(self, which: np.ndarray) -> RegressionModels:
        return self._subset([int(i) for i in which])

    def _subset(self, idx: Sequence[int]) -> RegressionModels:
        w = self.weights
        return RegressionModels(
            [self.items[i] for i in idx], None if w is None else [w[i] for i in idx]
        )
