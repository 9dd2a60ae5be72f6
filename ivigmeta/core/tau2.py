"""Estimators of the between-study variance tau² for the random-effects model.

Every estimator takes the effect sizes ``yi``, the sampling variances ``vi`` and optionally a
moderator (design) matrix ``X`` whose first column is the intercept, and returns a
:class:`Tau2Estimate`. ``TAU2_METHODS`` is the registry the CLI offers as ``--tau2``.

Notation: k studies, p columns of X, W = diag(w), P(w) = W - W X (X' W X)^-1 X' W, so that
y' P y is the (residual) weighted sum of squares; P0 uses w = 1 / v, P(tau²) uses
w = 1 / (v + tau²). Without moderators X is a column of ones and y' P0 y is Cochran's Q.

* DL, DerSimonian & Laird (1986); Raudenbush (2009) with moderators:
  tau² = max(0, (y' P0 y - (k - p)) / tr P0).
* HE, Hedges (1983) / Hedges & Olkin (1985), unweighted method of moments: with the ordinary
  least-squares residual maker P_ols = I - X (X'X)^-1 X', tau² = max(0, (y' P_ols y - tr(P_ols V))
  / (k - p)).
* SJ, Sidik & Jonkman (2005), as metafor 3.8-1 computes it: one step from
  tau²_0 = sum (y - ybar)² / k, tau² = tau²_0 y' P(tau²_0) y / (k - p).
* PM, Paule & Mandel (1982) (DerSimonian & Kacker 2007): the root of y' P(tau²) y = k - p, or 0
  when y' P0 y < k - p.
* ML and REML (Viechtbauer 2005): Fisher scoring, as metafor, from the HE value, with the
  updates (y' P P y - sum w) / sum w² (ML) and (y' P P y - tr P) / tr(P P) (REML), halving a step
  that would make tau² negative; a boundary optimum (score at 0 not positive) gives tau² = 0.
  Convergence: relative change below ``REL_TOL`` (the issue's 1e-10 is reached with margin); after
  convergence the log-likelihood at tau² = 0 is compared with the optimum, as metafor's
  ``ll0check``. When scoring does not converge, or stops at tau² = 0, the likelihood is also
  searched over a grid of 16 decades and the global maximum is taken (metafor would report
  non-convergence, or 0, on such multimodal likelihoods; documented in docs/methods.md).

Without moderators everything is pure Python (math only), so ``pool`` never imports numpy. With
moderators numpy is imported inside the matrix helpers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ivigmeta.errors import ModelError

if TYPE_CHECKING:
    import numpy as np

#: Iterative estimators stop when |change| <= REL_TOL * tau²: tighter than the 1e-10 asked for.
REL_TOL = 1e-12
#: ... or, when tau² heads for the boundary, when |change| falls below this absolute value.
ABS_TOL = 1e-300
#: A fit is reported as converged if its last relative change was below this.
CONVERGED_TOL = 1e-10
MAX_ITER = 1000
#: metafor's ``ll0check`` tolerance (the reference fits use tol = 1e-12).
LL0_TOL = 1e-12


@dataclass(frozen=True)
class Tau2Estimate:
    """tau² and how it was reached (iterations and convergence for iterative estimators)."""

    tau2: float
    method: str
    converged: bool = True
    iterations: int = 0


# ---------------------------------------------------------------------------------------------
# The two designs: intercept only (pure Python) and a moderator matrix (numpy).


def _others(values: Sequence[float]) -> list[float]:
    """For each i, the sum of the other values (prefix + suffix sums: no subtraction)."""
    k = len(values)
    prefix = [0.0] * (k + 1)
    for i, x in enumerate(values):
        prefix[i + 1] = prefix[i] + x
    suffix = 0.0
    others = [0.0] * k
    for i in range(k - 1, -1, -1):
        others[i] = prefix[i] + suffix
        suffix += values[i]
    return others


def sum_w_minus_sum_w2_over_sum_w(w: Sequence[float]) -> float:
    """tr(P) = sum w - sum w² / sum w, computed as sum_i w_i (sum of the other weights) / sum w.

    The same quantity (the c of DerSimonian-Laird), without the cancellation that makes the
    textbook form 0 (or negative) when one weight dominates by many orders of magnitude.
    """
    return math.fsum(x * o for x, o in zip(w, _others(w))) / math.fsum(w)


def trace_pp(w: Sequence[float]) -> float:
    """tr(P P) of the intercept-only model, sum w² - 2 sum w³ / sum w + (sum w²)² / (sum w)².

    With P = W - w w' / sum w it equals sum_i w_i² (o_i² + O_i) / (sum w)², o_i the sum of the
    other weights and O_i the sum of their squares: a sum of positive terms, which stays positive
    where the textbook form cancels to 0 (one weight many orders of magnitude above the rest).
    """
    sw = math.fsum(w)
    w2 = [x * x for x in w]
    terms = (x2 * (o * o + o2) for x2, o, o2 in zip(w2, _others(w), _others(w2)))
    return math.fsum(terms) / (sw * sw)


class _InterceptOnly:
    """Quantities of the intercept-only model, in closed form with math.fsum."""

    def __init__(self, yi: Sequence[float], vi: Sequence[float]) -> None:
        self.y = [float(y) for y in yi]
        self.v = [float(v) for v in vi]
        self.k = len(self.y)
        self.p = 1

    def _weights(self, tau2: float) -> tuple[list[float], float, float, list[float]]:
        w = [1.0 / (v + tau2) for v in self.v]
        sw = math.fsum(w)
        mu = math.fsum(wi * y for wi, y in zip(w, self.y)) / sw
        e = [y - mu for y in self.y]
        return w, sw, mu, e

    def rss(self, tau2: float) -> float:
        """y' P(tau²) y."""
        w, _, _, e = self._weights(tau2)
        return math.fsum(wi * ei * ei for wi, ei in zip(w, e))

    def rss_slope(self, tau2: float) -> float:
        """d/d tau² of y' P(tau²) y, which is -y' P P y."""
        w, _, _, e = self._weights(tau2)
        return -math.fsum((wi * ei) ** 2 for wi, ei in zip(w, e))

    def trace_p(self, tau2: float) -> float:
        w, _, _, _ = self._weights(tau2)
        return sum_w_minus_sum_w2_over_sum_w(w)

    def score_pieces(self, tau2: float) -> dict[str, float]:
        w, sw, _, e = self._weights(tau2)
        sw2 = math.fsum(x * x for x in w)
        return {
            "sum_w": sw,
            "sum_w2": sw2,
            "tr_p": sum_w_minus_sum_w2_over_sum_w(w),
            "tr_pp": trace_pp(w),
            "yppy": math.fsum((wi * ei) ** 2 for wi, ei in zip(w, e)),
        }

    def he_parts(self) -> tuple[float, float]:
        """(y' P_ols y, tr(P_ols V)) for the unweighted (HE) estimator."""
        k = self.k
        ybar = math.fsum(self.y) / k
        rss = math.fsum((y - ybar) ** 2 for y in self.y)
        return rss, math.fsum(self.v) * (k - 1) / k

    def log_det_xwx(self, tau2: float) -> float:
        return math.log(math.fsum(1.0 / (v + tau2) for v in self.v))


class _Design:
    """Quantities of a model with a moderator matrix X (numpy)."""

    def __init__(self, yi: Sequence[float], vi: Sequence[float], X: Any) -> None:
        import numpy as np

        self.y = np.asarray(yi, dtype=float)
        self.v = np.asarray(vi, dtype=float)
        self.X = np.asarray(X, dtype=float)
        self.k, self.p = self.X.shape

    def _p_matrix(self, tau2: float) -> np.ndarray:
        import numpy as np

        w = 1.0 / (self.v + tau2)
        WX = self.X * w[:, None]
        A = self.X.T @ WX
        return np.diag(w) - WX @ np.linalg.solve(A, WX.T)

    def rss(self, tau2: float) -> float:
        P = self._p_matrix(tau2)
        return float(self.y @ P @ self.y)

    def rss_slope(self, tau2: float) -> float:
        Py = self._p_matrix(tau2) @ self.y
        return -float(Py @ Py)

    def trace_p(self, tau2: float) -> float:
        import numpy as np

        return float(np.trace(self._p_matrix(tau2)))

    def score_pieces(self, tau2: float) -> dict[str, float]:
        import numpy as np

        w = 1.0 / (self.v + tau2)
        P = self._p_matrix(tau2)
        Py = P @ self.y
        return {
            "sum_w": float(w.sum()),
            "sum_w2": float((w * w).sum()),
            "tr_p": float(np.trace(P)),
            "tr_pp": float((P * P).sum()),
            "yppy": float(Py @ Py),
        }

    def he_parts(self) -> tuple[float, float]:
        import numpy as np

        H = self.X @ np.linalg.solve(self.X.T @ self.X, self.X.T)
        P = np.eye(self.k) - H
        return float(self.y @ P @ self.y), float(np.diag(P) @ self.v)

    def log_det_xwx(self, tau2: float) -> float:
        import numpy as np

        w = 1.0 / (self.v + tau2)
        sign, logdet = np.linalg.slogdet(self.X.T @ (self.X * w[:, None]))
        return float(logdet)


def make_design(yi: Sequence[float], vi: Sequence[float], X: Any = None) -> Any:
    """The intercept-only design (pure Python) when ``X`` is None, else the matrix design."""
    if len(yi) != len(vi):
        raise ModelError("effect sizes and variances differ in length")
    if X is None:
        return _InterceptOnly(yi, vi)
    return _Design(yi, vi, X)


# ---------------------------------------------------------------------------------------------
# Root finding for a decreasing function (PM and the Q-profile interval).


def solve_decreasing(
    f: Callable[[float], float],
    slope: Callable[[float], float],
    target: float,
    lo: float,
    hi: float,
) -> tuple[float, int]:
    """The x in [lo, hi] with f(x) = target for a decreasing f with f(lo) >= target >= f(hi).

    Newton steps (``slope`` is f') kept inside the shrinking bracket, bisection otherwise; stops
    at double precision. Returns (root, iterations).
    """
    x = lo
    for it in range(1, 10_000):
        fx = f(x) - target
        if fx == 0.0:
            return x, it
        if fx > 0:
            lo = x
        else:
            hi = x
        d = slope(x)
        new = x - fx / d if d < 0 else math.nan
        if not (lo < new < hi):
            new = 0.5 * (lo + hi)
        if abs(new - x) <= 4e-16 * abs(new) or hi - lo <= 4e-16 * abs(hi):
            return new, it
        x = new
    return x, it


def _upper_bracket(design: Any, target: float, start: float) -> float:
    """An upper search limit where y' P y is below ``target`` (doubling from ``start``)."""
    hi = start
    for _ in range(200):
        if design.rss(hi) <= target:
            return hi
        hi *= 2.0
    raise ModelError("the tau² search did not find an upper bound (the data are degenerate)")


def _mad2(y: Sequence[float]) -> float:
    """R's mad(y)² (median absolute deviation times 1.4826), metafor's tau² search scale."""
    ys = sorted(y)
    n = len(ys)

    def median(values: list[float]) -> float:
        m = n // 2
        return values[m] if n % 2 else 0.5 * (values[m - 1] + values[m])

    med = median(ys)
    dev = sorted(abs(v - med) for v in ys)
    return (1.4826 * median(dev)) ** 2


# ---------------------------------------------------------------------------------------------
# The estimators.


def _check(design: Any) -> None:
    if design.k <= design.p:
        raise ModelError(
            f"estimating tau² needs more studies than coefficients (k = {design.k}, p = {design.p})"
        )


def tau2_dl_design(design: Any) -> Tau2Estimate:
    _check(design)
    q = design.rss(0.0)
    tr = design.trace_p(0.0)
    if tr <= 0:
        return Tau2Estimate(0.0, "DL")
    return Tau2Estimate(max(0.0, (q - (design.k - design.p)) / tr), "DL")


def _he_raw(design: Any) -> float:
    rss, trpv = design.he_parts()
    return (rss - trpv) / (design.k - design.p)


def tau2_he_design(design: Any) -> Tau2Estimate:
    _check(design)
    return Tau2Estimate(max(0.0, _he_raw(design)), "HE")


def tau2_sj_design(design: Any) -> Tau2Estimate:
    _check(design)
    y = list(design.y)
    ybar = math.fsum(y) / len(y)
    tau2_0 = math.fsum((v - ybar) ** 2 for v in y) / len(y)
    if tau2_0 <= 0:
        return Tau2Estimate(0.0, "SJ")
    return Tau2Estimate(max(0.0, tau2_0 * design.rss(tau2_0) / (design.k - design.p)), "SJ")


def tau2_pm_design(design: Any) -> Tau2Estimate:
    _check(design)
    target = float(design.k - design.p)
    if design.rss(0.0) <= target:
        return Tau2Estimate(0.0, "PM")
    hi = _upper_bracket(design, target, max(100.0, 10.0 * _mad2(list(design.y))))
    root, iterations = solve_decreasing(design.rss, design.rss_slope, target, 0.0, hi)
    return Tau2Estimate(root, "PM", True, iterations)


def _fisher_scoring(design: Any, method: str) -> Tau2Estimate:
    _check(design)
    reml = method == "REML"

    def score(t2: float) -> tuple[float, float]:
        s = design.score_pieces(t2)
        if reml:
            return s["yppy"] - s["tr_p"], s["tr_pp"]
        return s["yppy"] - s["sum_w"], s["sum_w2"]

    tau2 = max(0.0, _he_raw(design))
    converged = False
    last_rel = math.inf
    it = 0
    for it in range(1, MAX_ITER + 1):  # noqa: B007 - the count is reported
        try:
            num, info = score(tau2)
            adj = num / info
        except (ArithmeticError, ValueError):
            break  # extreme variances: the weights under- or overflow; search the range instead
        if not math.isfinite(adj):
            break
        if tau2 + adj < 0:
            # The step leaves the parameter space: a boundary optimum if the score at 0 is not
            # positive (metafor halves the step and creeps towards 0 until its absolute threshold).
            if score(0.0)[0] <= 0:
                tau2, converged = 0.0, True
                break
            while tau2 + adj < 0:
                adj /= 2.0
        new = tau2 + adj
        change = abs(new - tau2)
        tau2 = new
        last_rel = change / tau2 if tau2 > 0 else (0.0 if change == 0 else math.inf)
        if change <= REL_TOL * tau2 or change <= ABS_TOL:
            converged = True
            break
    if not converged and last_rel <= CONVERGED_TOL:
        converged = True
    if converged and tau2 > 0 and _ll(design, 0.0, reml) - _ll(design, tau2, reml) > LL0_TOL:
        tau2 = 0.0  # a local maximum: tau² = 0 has the larger likelihood (metafor's ll0check)
    if not converged or tau2 == 0.0:
        # Fisher scoring can oscillate, or stop at the boundary while a positive tau² has the
        # larger likelihood (a multimodal likelihood). Then search the whole range instead.
        best = _global_maximum(design, reml, score)
        if best is not None and (not converged or best > 0.0):
            return Tau2Estimate(best, method, True, it)
    return Tau2Estimate(tau2, method, converged, it)


def _global_maximum(
    design: Any, reml: bool, score: Callable[[float], tuple[float, float]]
) -> float | None:
    """The tau² that maximizes the (restricted) likelihood, by a grid over 16 decades.

    Every sign change of the score from positive to negative between neighbouring grid points is
    a local maximum, refined by bisection to double precision; the best of those and tau² = 0
    wins. ``None`` when the likelihood cannot be evaluated (degenerate data).
    """
    try:
        upper = 10.0 * max(1.0, _mad2(list(design.y)), max(list(design.v)))
        grid = [upper * 10.0 ** (-j / 6.0) for j in range(96, -1, -1)]
        candidates = [0.0]
        prev_t, prev_f = 0.0, score(0.0)[0]
        for t in grid:
            f = score(t)[0]
            if prev_f > 0.0 and f <= 0.0:
                lo, hi = prev_t, t
                for _ in range(200):
                    mid = 0.5 * (lo + hi)
                    if score(mid)[0] > 0.0:
                        lo = mid
                    else:
                        hi = mid
                    if hi - lo <= 4e-16 * hi:
                        break
                candidates.append(0.5 * (lo + hi))
            prev_t, prev_f = t, f
        return max(candidates, key=lambda t2: _ll(design, t2, reml))
    except (ArithmeticError, ValueError):
        return None


def _ll(design: Any, tau2: float, reml: bool) -> float:
    """(Restricted) log-likelihood of the random-effects model at ``tau2``."""
    k, p = design.k, design.p
    logv = math.fsum(math.log(v + tau2) for v in list(design.v))
    rss = design.rss(tau2)
    if reml:
        return (
            -0.5 * (k - p) * math.log(2 * math.pi)
            - 0.5 * logv
            - 0.5 * design.log_det_xwx(tau2)
            - 0.5 * rss
        )
    return -0.5 * k * math.log(2 * math.pi) - 0.5 * logv - 0.5 * rss


def tau2_ml_design(design: Any) -> Tau2Estimate:
    return _fisher_scoring(design, "ML")


def tau2_reml_design(design: Any) -> Tau2Estimate:
    return _fisher_scoring(design, "REML")


_DESIGN_ESTIMATORS: dict[str, Callable[[Any], Tau2Estimate]] = {
    "DL": tau2_dl_design,
    "REML": tau2_reml_design,
    "ML": tau2_ml_design,
    "PM": tau2_pm_design,
    "HE": tau2_he_design,
    "SJ": tau2_sj_design,
}

TAU2_NAMES: dict[str, str] = {
    "DL": "DerSimonian-Laird",
    "REML": "restricted maximum likelihood",
    "ML": "maximum likelihood",
    "PM": "Paule-Mandel",
    "HE": "Hedges (unweighted method of moments)",
    "SJ": "Sidik-Jonkman",
}


def _registry_entry(key: str) -> Callable[[Sequence[float], Sequence[float]], Tau2Estimate]:
    def estimator(yi: Sequence[float], vi: Sequence[float], X: Any = None) -> Tau2Estimate:
        design = make_design(yi, vi, X)
        if X is None and design.k < 2:
            return Tau2Estimate(0.0, key)
        return _DESIGN_ESTIMATORS[key](design)

    estimator.__name__ = f"tau2_{key.lower()}"
    estimator.__doc__ = f"{TAU2_NAMES[key]} estimator of tau² (see the module docstring)."
    return estimator


tau2_dl = _registry_entry("DL")
tau2_reml = _registry_entry("REML")
tau2_ml = _registry_entry("ML")
tau2_pm = _registry_entry("PM")
tau2_he = _registry_entry("HE")
tau2_sj = _registry_entry("SJ")

#: ``--tau2`` choices: each takes (yi, vi) and optionally a moderator matrix X.
TAU2_METHODS: dict[str, Callable[..., Tau2Estimate]] = {
    "DL": tau2_dl,
    "REML": tau2_reml,
    "ML": tau2_ml,
    "PM": tau2_pm,
    "HE": tau2_he,
    "SJ": tau2_sj,
}


def check_tau2_method(method: str) -> str:
    """Upper-case ``method`` and check it is a key of ``TAU2_METHODS``."""
    key = method.upper()
    if key not in TAU2_METHODS:
        raise ModelError(
            f"unknown tau² estimator '{method}' (choose one of {', '.join(TAU2_METHODS)})"
        )
    return key


def estimate_tau2(
    yi: Sequence[float], vi: Sequence[float], method: str = "DL", X: Any = None
) -> Tau2Estimate:
    """Estimate tau² with the named method (a key of ``TAU2_METHODS``), with moderators ``X``.

    Raises :class:`ModelError` if an iterative estimator does not converge.
    """
    key = check_tau2_method(method)
    est = TAU2_METHODS[key](yi, vi, X)
    if not est.converged:
        raise ModelError(
            f"the {key} estimator of tau² did not converge in {est.iterations} iterations "
            "(try --tau2 DL or PM)"
        )
    return est
