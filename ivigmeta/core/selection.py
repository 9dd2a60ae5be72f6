"""Selection models for publication bias (Vevea & Hedges 1995; Citkowicz & Vevea 2017; Preston,
Ashby & Smyth 2004), as metafor's ``selmodel()``: the normal (random- or common-effect) model
refitted by maximum likelihood with a weight function w(p; delta) of each study's one-sided
p-value.

With y_i ~ N(mu_i = x_i beta, s_i² = v_i + tau²) before selection, and p(y) the p-value of y
against 0 (``alternative``: "greater", p = 1 - Phi(y / sqrt v); "less", p = Phi(y / sqrt v);
"two.sided", p = 2 (1 - Phi(|y| / sqrt v))), the density of an observed study is

    f(y_i) = w(p(y_i)) phi(y_i; mu_i, s_i) / A_i,   A_i = E[w(p(Y))],  Y ~ N(mu_i, s_i²),

and the log-likelihood is ll = sum [log w(p_i) + log phi(y_i; mu_i, s_i) - log A_i].

* Step function (``stepfun``): steps 0 < a_1 < ... < a_N = 1 (1 is appended when missing),
  w(p) = delta_j for a_{j-1} < p <= a_j, delta_1 = 1 fixed (unless given). A_i = sum_j delta_j
  P(a_{j-1} < p(Y) <= a_j) has a closed form in normal CDFs.
* Continuous functions (A_i by composite Gauss-Legendre quadrature in u = y / sqrt(v), broken
  at the kinks of w, with closed-form normal tails; :func:`integrals_by_quad` checks it with
  scipy.integrate.quad): beta, p^(d1-1) (1-p)^(d2-1); halfnorm, exp(-d c (p² - a²)); negexp,
  exp(-d c (p - a)); logistic, [2 e^(-d c p) / (1 + e^(-d c p))] / [the same at p = a]; power,
  ((1 - p) / (1 - a))^(c d); negexppow, exp(-d1 c (p^(1/d2) - a^(1/d2))); each 1 for p <= a
  (``step`` a, 0 by default); c the study's precision (``prec``: sei, vi, 1/n or 1/sqrt n,
  divided by its maximum under ``scaleprec``; 1 without ``prec``). p is kept in
  [pval_min, 1 - pval_min] (1e-5 for beta and power, as metafor).

The parameters are estimated by BFGS on tau² = exp(t) and delta = lo + (hi - lo) / (1 +
exp(-u)) with metafor's bounds (lo, hi) = (0, 100) ((1e-5, 100) for beta); their standard
errors come from the inverse Hessian of -ll in (beta, tau², delta), by Richardson extrapolation
of central differences as numDeriv::hessian (steps 0.1 |x|, or 1e-4 for |x| < 1.8e-5, halved
r = 6 times), which metafor uses. scipy is imported inside the functions.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ivigmeta.errors import ModelError

if TYPE_CHECKING:
    import numpy as np

TYPES = ("stepfun", "beta", "halfnorm", "negexp", "logistic", "power", "negexppow")
ALTERNATIVES = ("greater", "less", "two.sided")
PRECISIONS = ("sei", "vi", "ninv", "sqrtninv")
LOG_2PI = 1.8378770664093453
#: metafor's tau² floor inside the likelihood (10 machine epsilons count as 0)
TAU2_ZERO = 10 * 2.220446049250313e-16


@dataclass(frozen=True)
class WeightSpec:
    """The delta parameters of one weight function: how many, their start values, the bounds
    the optimizer keeps them in, their null values (the Wald tests) and the p-value floor."""

    n_delta: int
    init: tuple[float, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    null: tuple[float, ...]
    pval_min: float


def weight_spec(kind: str, n_steps: int = 0) -> WeightSpec:
    """metafor's settings for the weight function ``kind`` (``n_steps`` deltas for stepfun)."""
    if kind == "stepfun":
        n = n_steps
        return WeightSpec(n, (1.0,) * n, (0.0,) * n, (100.0,) * n, (1.0,) * n, 0.0)
    if kind == "beta":
        return WeightSpec(2, (1.0, 1.0), (1e-5, 1e-5), (100.0, 100.0), (1.0, 1.0), 1e-5)
    if kind == "negexppow":
        return WeightSpec(2, (1.0, 1.0), (0.0, 0.0), (100.0, 100.0), (0.0, 0.0), 0.0)
    if kind in ("halfnorm", "negexp", "logistic", "power"):
        return WeightSpec(1, (1.0,), (0.0,), (100.0,), (0.0,), 1e-5 if kind == "power" else 0.0)
    raise ModelError(f"unknown selection model type '{kind}' (choose one of {', '.join(TYPES)})")


def one_sided_pvalues(y: np.ndarray, v: np.ndarray, alternative: str) -> np.ndarray:
    """Each study's p-value against 0 in the direction ``alternative`` (module docstring)."""
    import numpy as np
    from scipy.special import ndtr

    z = y / np.sqrt(v)
    if alternative == "greater":
        return ndtr(-z)
    if alternative == "less":
        return ndtr(z)
    return 2.0 * ndtr(-np.abs(z))


def check_steps(steps: Sequence[float]) -> tuple[float, ...]:
    """Steps sorted, duplicates dropped, 1 appended when missing (metafor's ``steps``)."""
    vals = [float(s) for s in steps]
    if not vals:
        raise ModelError("steps: give at least one p-value cut-off")
    if any(not math.isfinite(s) or s < 0 or s > 1 for s in vals):
        raise ModelError("steps must be p-values between 0 and 1")
    out = sorted(set(vals))
    if out[-1] != 1.0:
        out.append(1.0)
    return tuple(out)


def interval_of(p: np.ndarray, steps: Sequence[float]) -> np.ndarray:
    """The 0-based interval a_{j-1} < p <= a_j of each p-value."""
    import numpy as np

    return np.searchsorted(np.asarray(steps, dtype=float), p, side="left")


def _prob_at_most(mu, s, sd, a: float, alternative: str):
    """P(p(Y) <= a) for Y ~ N(mu, s²) and a study with standard error sd."""
    from scipy.special import ndtr, ndtri

    if a <= 0.0:
        return 0.0 * mu
    if alternative == "greater":
        c = -sd * ndtri(a)
        return ndtr((mu - c) / s)
    if alternative == "less":
        c = sd * ndtri(a)
        return ndtr((c - mu) / s)
    c = -sd * ndtri(a / 2.0)
    return ndtr((mu - c) / s) + ndtr((-c - mu) / s)


def _prob_above(mu, s, sd, a: float, alternative: str):
    """P(p(Y) > a), from the other tail (not 1 - P(p <= a): no cancellation)."""
    from scipy.special import ndtr, ndtri

    if alternative == "greater":
        c = -sd * ndtri(a)
        return ndtr((c - mu) / s)
    if alternative == "less":
        c = sd * ndtri(a)
        return ndtr((mu - c) / s)
    c = -sd * ndtri(a / 2.0)
    return ndtr((c - mu) / s) - ndtr((-c - mu) / s)


def step_probabilities(
    mu: np.ndarray, s: np.ndarray, sd: np.ndarray, steps: Sequence[float], alternative: str
) -> np.ndarray:
    """k x N: P(a_{j-1} < p(Y_i) <= a_j), Y_i ~ N(mu_i, s_i²)."""
    import numpy as np

    n = len(steps)
    out = np.empty((len(mu), n))
    below = _prob_at_most(mu, s, sd, steps[0], alternative)
    out[:, 0] = below
    for j in range(1, n):
        if j < n - 1:
            upto = _prob_at_most(mu, s, sd, steps[j], alternative)
            out[:, j] = upto - below
            below = upto
        else:
            out[:, j] = _prob_above(mu, s, sd, steps[j - 1], alternative)
    return out


def weight_function(
    kind: str, p: np.ndarray, delta: np.ndarray, prec: np.ndarray, step: float
) -> np.ndarray:
    """w(p; delta) of a continuous model (``step``: the p-value below which w = 1)."""
    import numpy as np

    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        if kind == "beta":
            return p ** (delta[0] - 1.0) * (1.0 - p) ** (delta[1] - 1.0)
        d = delta[0] * prec
        if kind == "halfnorm":
            w = np.exp(-d * (p * p - step * step))
        elif kind == "negexp":
            w = np.exp(-d * (p - step))
        elif kind == "logistic":
            w = np.exp(-d * (p - step)) * (1.0 + np.exp(-d * step)) / (1.0 + np.exp(-d * p))
        elif kind == "power":
            w = ((1.0 - p) / (1.0 - step)) ** d
        elif kind == "negexppow":
            e = 1.0 / delta[1]
            w = np.exp(-d * (p**e - step**e))
        else:
            raise ModelError(f"unknown selection model type '{kind}'")
        return np.where(p <= step, 1.0, w)


@dataclass(frozen=True)
class SelectionData:
    """What the likelihood needs: effects, variances, design, precisions and the model."""

    y: np.ndarray
    v: np.ndarray
    X: np.ndarray
    kind: str
    alternative: str
    steps: tuple[float, ...]  # stepfun: the cut-offs ending at 1; else (step,) or ()
    prec: np.ndarray
    pvals: np.ndarray  # observed, clamped to [pval_min, 1 - pval_min]
    groups: np.ndarray  # stepfun: the interval of each observed p-value
    pval_min: float


def log_likelihood(data: SelectionData, beta: np.ndarray, tau2: float, delta: np.ndarray) -> float:
    """ll of the selection model at (beta, tau², delta) (module docstring); tau² below 10
    machine epsilons counts as 0, as metafor."""
    import numpy as np

    if tau2 < TAU2_ZERO:
        tau2 = 0.0
    mu = data.X @ beta
    s2 = data.v + tau2
    s = np.sqrt(s2)
    sd = np.sqrt(data.v)
    dens = -0.5 * (LOG_2PI + np.log(s2) + (data.y - mu) ** 2 / s2)
    with np.errstate(divide="ignore", invalid="ignore"):
        if data.kind == "stepfun":
            probs = step_probabilities(mu, s, sd, data.steps, data.alternative)
            a = probs @ delta
            lw = np.log(delta[data.groups])
        else:
            a = _integrals(data, mu, s, delta)
            step = data.steps[0] if data.steps else 0.0
            lw = np.log(weight_function(data.kind, data.pvals, delta, data.prec, step))
        total = float(np.sum(lw + dens - np.log(a)))
    return total if math.isfinite(total) else -math.inf


#: the integrals run over u = y / sqrt(v) (the study's z statistic), where every feature of
#: w(p(u)) has a width of order 1: composite Gauss-Legendre on [-U, U] in panels of width
#: PANEL broken at the kinks of w (the step, the p-value floor), closed-form normal tails
#: beyond (where p is within 1e-19 of 0 or 1 and w is constant)
U_MAX = 9.0
PANEL = 0.25
GL_NODES = 16


def _kink_points(alternative: str, step: float, pval_min: float) -> list[float]:
    """The u values in (-U, U) where w(p(u)) has a kink: the step, the p-value floor and
    ceiling (and 0 for two-sided p-values)."""
    from scipy.special import ndtri

    ps = [a for a in (step, pval_min, 1.0 - pval_min) if 0.0 < a < 1.0]
    out = []
    for a in ps:
        if alternative == "greater":
            out.append(-float(ndtri(a)))
        elif alternative == "less":
            out.append(float(ndtri(a)))
        else:
            c = -float(ndtri(a / 2.0))
            out.extend([c, -c])
    if alternative == "two.sided":
        out.append(0.0)
    return [u for u in out if -U_MAX < u < U_MAX]


def quadrature_nodes(data: SelectionData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes, weights and the (clamped) p-values at the nodes on [-U, U] (notes above), shared
    by every study and every evaluation."""
    step = data.steps[0] if data.steps else 0.0
    return _nodes(data.alternative, step, data.pval_min)


@functools.lru_cache(maxsize=64)
def _nodes(
    alternative: str, step: float, pval_min: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import numpy as np

    kinks = np.asarray(_kink_points(alternative, step, pval_min))
    # panels graded geometrically towards each kink: w may behave as |u - kink|^c there
    graded = (kinks[:, None] + PANEL * np.ldexp(1.0, -np.arange(1, 31))[None, :]).ravel()
    graded = np.concatenate([graded, 2 * np.repeat(kinks, 30) - graded])
    edges = np.union1d(np.arange(-U_MAX, U_MAX + PANEL / 2, PANEL), np.concatenate([kinks, graded]))
    edges = edges[(edges >= -U_MAX) & (edges <= U_MAX)]
    x, w = np.polynomial.legendre.leggauss(GL_NODES)
    a, b = edges[:-1, None], edges[1:, None]
    nodes = (0.5 * (b - a) * x + 0.5 * (a + b)).ravel()
    weights = (0.5 * (b - a) * w).ravel()
    p = np.clip(one_sided_pvalues(nodes, np.ones_like(nodes), alternative), pval_min, 1 - pval_min)
    return nodes, weights, p


def _integrals(data: SelectionData, mu: np.ndarray, s: np.ndarray, delta: np.ndarray):
    """A_i = E[w(p(Y_i))]: over u = Y_i / sqrt(v_i) ~ N(mu_i / sd_i, (s_i / sd_i)²), by the
    quadrature of :func:`quadrature_nodes` on [-U, U] and the normal tails beyond."""
    import numpy as np
    from scipy.special import ndtr

    nodes, weights, p_nodes = quadrature_nodes(data)
    sd = np.sqrt(data.v)
    m = (mu / sd)[:, None]
    r = (s / sd)[:, None]
    step = data.steps[0] if data.steps else 0.0
    prec = data.prec[:, None]
    wn = weight_function(data.kind, p_nodes[None, :], delta, prec, step)
    dens = np.exp(-0.5 * ((nodes - m) / r) ** 2) / (r * 2.5066282746310002)
    middle = np.sum(wn * dens * weights, axis=1)
    ends = np.array([U_MAX, -U_MAX])
    p_ends = np.clip(
        one_sided_pvalues(ends, np.ones(2), data.alternative), data.pval_min, 1 - data.pval_min
    )
    w_ends = weight_function(data.kind, p_ends[None, :], delta, prec, step)
    upper = ndtr((m[:, 0] - U_MAX) / r[:, 0]) * w_ends[:, 0]
    lower = ndtr((-U_MAX - m[:, 0]) / r[:, 0]) * w_ends[:, 1]
    return middle + upper + lower


def integrals_by_quad(
    data: SelectionData, mu: np.ndarray, s: np.ndarray, delta: np.ndarray
) -> np.ndarray:
    """The same A_i by scipy.integrate.quad over the real line, study by study (a check of
    :func:`_integrals`; slow)."""
    import numpy as np
    from scipy.integrate import quad

    step = data.steps[0] if data.steps else 0.0
    lo, hi = data.pval_min, 1.0 - data.pval_min
    out = np.empty(len(mu))
    for i in range(len(mu)):

        def f(y: float, i: int = i) -> float:
            p = one_sided_pvalues(np.array([y]), data.v[i : i + 1], data.alternative)
            w = weight_function(data.kind, np.clip(p, lo, hi), delta, data.prec[i : i + 1], step)
            return (
                float(w[0])
                * math.exp(-0.5 * ((y - mu[i]) / s[i]) ** 2)
                / (s[i] * 2.5066282746310002)
            )

        out[i] = quad(f, -np.inf, np.inf, epsabs=0.0, epsrel=1e-12, limit=2000)[0]
    return out


def richardson_hessian(
    f: Callable[[np.ndarray], float], x: np.ndarray, r: int = 6, d: float = 0.1
) -> np.ndarray:
    """The Hessian of ``f`` at ``x`` by Richardson extrapolation of central differences, the
    scheme of numDeriv::hessian (steps d |x_i|, or 1e-4 when |x_i| is below
    sqrt(eps / 7e-7); halved r times; extrapolated with factors 4^m)."""
    import numpy as np

    eps, zero_tol = 1e-4, math.sqrt(2.220446049250313e-16 / 7e-7)
    n = len(x)
    f0 = f(x)
    h0 = np.abs(d * x) + eps * (np.abs(x) < zero_tol)

    def extrapolate(a: list[float]) -> float:
        a = list(a)
        for m in range(1, r):
            for k in range(r - m):
                a[k] = (a[k + 1] * 4.0**m - a[k]) / (4.0**m - 1.0)
        return a[0]

    H = np.zeros((n, n))
    for i in range(n):
        h = h0.copy()
        approx = []
        for _ in range(r):
            e = np.zeros(n)
            e[i] = h[i]
            approx.append((f(x + e) - 2.0 * f0 + f(x - e)) / h[i] ** 2)
            h = h / 2.0
        H[i, i] = extrapolate(approx)
    for i in range(n):
        for j in range(i):
            h = h0.copy()
            approx = []
            for _ in range(r):
                e = np.zeros(n)
                e[i], e[j] = h[i], h[j]
                approx.append(
                    (f(x + e) - 2.0 * f0 + f(x - e) - H[i, i] * h[i] ** 2 - H[j, j] * h[j] ** 2)
                    / (2.0 * h[i] * h[j])
                )
                h = h / 2.0
            H[i, j] = H[j, i] = extrapolate(approx)
    return H


@dataclass(frozen=True)
class SelectionEstimate:
    """The maximum-likelihood fit of a selection model (arrays over coefficients / deltas)."""

    beta: np.ndarray
    tau2: float
    delta: np.ndarray
    delta_fixed: np.ndarray  # bool: given (not estimated)
    ll: float
    #: the covariance of the estimated (beta, tau², free delta) from the inverse Hessian; None
    #: when the Hessian is not positive definite (the standard errors are then NaN)
    vcov: np.ndarray | None
    iterations: int


def _map(u, lo, hi):
    import numpy as np

    return lo + (hi - lo) / (1.0 + np.exp(-u))


def _unmap(d, lo, hi):
    import numpy as np

    with np.errstate(divide="ignore"):
        return np.log((d - lo) / (hi - d))


def fit_selection(
    data: SelectionData,
    beta0: np.ndarray,
    tau2_0: float,
    random: bool,
    delta_given: Sequence[float],
    spec: WeightSpec,
    hessian: bool = True,
    tau2_value: float = 0.0,
) -> SelectionEstimate:
    """Maximise the log-likelihood over beta, tau² (``random``; else tau² = ``tau2_value``)
    and the deltas not given (``delta_given`` has NaN for an estimated delta). Raises
    ModelError when the optimizer fails."""
    import numpy as np
    from scipy.optimize import minimize

    p = data.X.shape[1]
    given = np.asarray(delta_given, dtype=float)
    fixed = ~np.isnan(given)
    free = np.flatnonzero(~fixed)
    lo = np.asarray(spec.lower)[free]
    hi = np.asarray(spec.upper)[free]
    init = np.asarray(spec.init)[free]

    def unpack(par: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        beta = par[:p]
        tau2 = float(np.exp(par[p])) if random else tau2_value
        delta = given.copy()
        delta[free] = _map(par[p + int(random) :], lo, hi)
        return beta, tau2, delta

    def nll(par: np.ndarray) -> float:
        beta, tau2, delta = unpack(par)
        return -log_likelihood(data, beta, tau2, delta)

    start = np.concatenate(
        [beta0, [math.log(tau2_0 + 0.001)] if random else [], _unmap(init, lo, hi)]
    )
    if not math.isfinite(nll(start)):
        raise ModelError("the selection model's likelihood is not finite at the start values")
    res = minimize(
        nll, start, method="BFGS", jac="3-point", options={"gtol": 1e-9, "maxiter": 5000}
    )
    # polished by Nelder-Mead to the last digits BFGS's finite differences leave
    polished = minimize(
        nll, res.x, method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-14, "maxfev": 400 * (len(start) + 1)},
    )  # fmt: skip
    best = polished if polished.fun <= res.fun else res
    ok = res.success or res.status == 2 or polished.success
    if not math.isfinite(best.fun) or not ok:
        raise ModelError(f"the selection model did not converge ({res.message.rstrip('.')})")
    beta, tau2, delta = unpack(best.x)
    if random and tau2 < TAU2_ZERO:
        tau2 = 0.0
    ll = -float(best.fun)
    vcov = None
    if hessian:
        natural = np.concatenate([beta, [tau2] if random else [], delta[free]])

        def nll_natural(x: np.ndarray) -> float:
            b = x[:p]
            t2 = float(x[p]) if random else tau2_value
            dl = given.copy()
            dl[free] = x[p + int(random) :]
            return -log_likelihood(data, b, t2, dl)

        H = richardson_hessian(nll_natural, natural)
        try:
            L = np.linalg.cholesky(H)
            Linv = np.linalg.inv(L)
            vcov = Linv.T @ Linv
            if not np.all(np.isfinite(vcov)):
                vcov = None
        except np.linalg.LinAlgError:
            vcov = None
    return SelectionEstimate(beta, tau2, delta, fixed, ll, vcov, int(best.nit))


def profile_interval(
    lrt: Callable[[float], float], estimate: float, low: float, high: float, objective: float
) -> tuple[float | None, float | None]:
    """The profile-likelihood interval of one parameter, as metafor's ``confint()`` of a
    selection model: the values in [low, high] on either side of ``estimate`` where the LRT
    statistic ``lrt(value)`` (the model refitted with the parameter fixed) equals
    ``objective``. A side whose end of the range is still inside the interval gives that end;
    where the refit fails at the end (a weight of 0 for observed studies), the end moves a tenth
    of the way towards the estimate, up to 10 times (metafor's ``eptries``), else None."""
    from scipy.optimize import brentq

    def f(x: float) -> float:
        return lrt(x) - objective

    out: list[float | None] = []
    for end in (low, high):
        step = (estimate - end) / 10.0
        found: float | None = None
        for _ in range(10):
            try:
                value = f(end) if end != estimate else -objective
            except ModelError:
                end += step
                continue
            if value < 0:
                found = end
            else:
                a, b = (end, estimate) if end < estimate else (estimate, end)
                try:
                    found = float(brentq(f, a, b, xtol=1e-10, rtol=1e-12, maxiter=200))
                except (ModelError, ValueError, RuntimeError):
                    found = None
            break
        out.append(found)
    return out[0], out[1]


__all__ = [
    "ALTERNATIVES",
    "PRECISIONS",
    "TYPES",
    "SelectionData",
    "SelectionEstimate",
    "WeightSpec",
    "check_steps",
    "fit_selection",
    "integrals_by_quad",
    "interval_of",
    "log_likelihood",
    "one_sided_pvalues",
    "profile_interval",
    "richardson_hessian",
    "step_probabilities",
    "weight_function",
    "weight_spec",
]
