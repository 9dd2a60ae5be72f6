"""The location-scale meta-regression (Viechtbauer & López-López 2022; metafor's
``rma(yi, vi, mods = ~ X, scale = ~ Z)``): the location y_i ~ N(x_i' beta, v_i + tau²_i) with
the heterogeneity itself regressed on scale moderators,

* link ``"log"`` (metafor's default): log tau²_i = z_i' alpha;
* link ``"identity"``: tau²_i = z_i' alpha, constrained to tau²_i >= 0.

alpha maximizes the restricted (REML, default) or full (ML) log-likelihood with beta profiled
out: at tau² = tau²(alpha), V = diag(v + tau²), W = V^-1, P = W - W X (X' W X)^-1 X' W and
u = P y (= W (y - X beta_hat)),

* ML:   ll(alpha) = -1/2 [k log 2 pi + log|V| + y' P y];
* REML: ll(alpha) = -1/2 [(k - p) log 2 pi - log|X'X| + log|V| + log|X' W X| + y' P y]

(metafor's ``.ll.rma.ls``, with the log|X'X| term of its default ``REMLf = TRUE``). Its
derivatives are analytic: with s_i = d ll / d tau²_i = -1/2 (P_ii - u_i²) under REML
(-1/2 (w_i - u_i²) under ML) and d_i = d tau²_i / d eta_i (tau²_i for the log link, 1 for the
identity link),

* gradient: Z' (d s);
* Hessian: Z' [diag(d) S diag(d) + diag(d' s)] Z with S_ij = 1/2 P_ij² - u_i u_j P_ij (REML;
  1/2 w_i² delta_ij - u_i u_j P_ij under ML) and d'_i = d² tau²_i / d eta_i² (tau²_i, or 0).

The optimum is found by a trust-region Newton method on these (scipy's ``trust-exact``), polished
by Newton steps until the Newton decrement is below 1e-20 (1e-10 counts as converged); Var(alpha)
is the inverse of minus the Hessian there. metafor takes the same Hessian numerically (numDeriv's
Richardson extrapolation) and agrees to about 1e-7 relative. beta, Var(beta) = (X' W X)^-1 and the
Wald tests are :func:`ivigmeta.core.regression.regression_fit` at the fitted tau²_i.

The k x k matrix P is formed, which bounds k to some thousands of studies. numpy and scipy are
imported inside the functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ivigmeta.core.fitstats import LOG_2PI
from ivigmeta.core.regression import RegressionFit, regression_fit
from ivigmeta.errors import ModelError

if TYPE_CHECKING:
    import numpy as np

LINKS = ("log", "identity")
LOCATION_SCALE_METHODS = ("REML", "ML")
# The trust-region optimizer stops when the gradient of the log-likelihood is below this; Newton
# steps then polish the optimum until the Newton decrement g' (-H)^-1 g (about twice the
# log-likelihood still to gain, whatever the scale of the moderators) is below the square of
# NEWTON_DECREMENT_TOLERANCE. The fit counts as converged when it is below the tolerance itself.
GRADIENT_TOLERANCE = 1e-9
NEWTON_DECREMENT_TOLERANCE = 1e-10
MAX_ITERATIONS = 1000
MAX_NEWTON_STEPS = 50
# A fitted tau²_i at most this times the median sampling variance counts as 0 (at the boundary).
BOUNDARY_TAU2 = 1e-8
# A tau²_i above this is outside the parameter space (log-likelihood -inf): the Hessian's
# products of tau²_i would overflow.
TAU2_MAX = 1e100


@dataclass(frozen=True)
class LocationScaleFit:
    """The fitted location-scale model: the scale coefficients ``alpha`` with Var(alpha)
    (``va``), the studies' tau²_i, the location fit at those (``regression``) and the maximized
    log-likelihood (REML or ML, as ``method``)."""

    alpha: np.ndarray
    va: np.ndarray
    tau2: np.ndarray
    regression: RegressionFit
    loglik: float
    method: str
    link: str
    iterations: int
    # Said when some tau²_i is (about) 0 at the optimum: the identity link's constraint holds
    # (no Wald SEs: Var(alpha) is NaN) or log tau²_i heads to -infinity (no interior maximum).
    note: str = ""


def check_link(link: str) -> str:
    """The link's canonical name; a clear error for any other."""
    name = link.lower()
    if name not in LINKS:
        raise ModelError(f"unknown scale link '{link}' (choose log or identity)")
    return name


def scale_tau2(Z: np.ndarray, alpha: np.ndarray, link: str) -> np.ndarray:
    """tau²_i = exp(z_i' alpha) (log link) or z_i' alpha (identity link)."""
    import numpy as np

    eta = Z @ alpha
    with np.errstate(over="ignore"):
        return np.exp(eta) if link == "log" else eta


def loglik_derivatives(
    alpha: np.ndarray,
    y: np.ndarray,
    v: np.ndarray,
    X: np.ndarray,
    Z: np.ndarray,
    link: str,
    method: str,
    order: int = 2,
) -> tuple[float, np.ndarray | None, np.ndarray | None]:
    """The profile log-likelihood of the module docstring at ``alpha``, with its gradient
    (``order >= 1``) and Hessian (``order = 2``) in alpha; ``-inf`` (and no derivatives) where
    some tau²_i is negative or v + tau² is not positive."""
    import numpy as np

    tau2 = scale_tau2(Z, alpha, link)
    vt = v + tau2
    # tau² beyond TAU2_MAX counts as outside the parameter space: the derivatives would overflow
    if (
        not np.all(np.isfinite(tau2))
        or np.any(tau2 < 0)
        or np.any(tau2 > TAU2_MAX)
        or np.any(vt <= 0)
    ):
        return -math.inf, None, None
    k, p = X.shape
    w = 1.0 / vt
    XtW = X.T * w
    A = XtW @ X
    try:
        sign, logdet_a = np.linalg.slogdet(A)
        if sign <= 0:
            return -math.inf, None, None
        B = np.linalg.solve(A, XtW)
    except np.linalg.LinAlgError:
        return -math.inf, None, None
    P = np.diag(w) - XtW.T @ B
    u = P @ y
    quad = float(y @ u)
    logdet_v = float(np.sum(np.log(vt)))
    reml = method == "REML"
    if reml:
        logdet_xtx = float(np.linalg.slogdet(X.T @ X)[1])
        ll = -0.5 * ((k - p) * LOG_2PI - logdet_xtx + logdet_v + logdet_a + quad)
    else:
        ll = -0.5 * (k * LOG_2PI + logdet_v + quad)
    if order == 0:
        return ll, None, None
    s = -0.5 * ((np.diag(P) if reml else w) - u * u)
    d1 = tau2 if link == "log" else np.ones(k)
    grad = Z.T @ (d1 * s)
    if order == 1:
        return ll, grad, None
    S = -np.outer(u, u) * P
    if reml:
        S += 0.5 * P * P
    else:
        S[np.diag_indices(k)] += 0.5 * w * w
    H_eta = np.outer(d1, d1) * S
    if link == "log":
        H_eta[np.diag_indices(k)] += tau2 * s
    return ll, grad, Z.T @ H_eta @ Z


def _starting_alpha(y: np.ndarray, v: np.ndarray, X: np.ndarray, q: int, link: str) -> np.ndarray:
    """Start with a constant tau² from the DerSimonian-Laird estimate of the location model
    (a tenth of the mean v when that is 0): log of it, or it plus 0.01 under the identity link
    (metafor's fallback start there)."""
    import numpy as np

    from ivigmeta.core.tau2 import estimate_tau2

    tau2 = estimate_tau2(list(y), list(v), "DL", X).tau2
    alpha = np.zeros(q)
    if link == "log":
        alpha[0] = math.log(tau2 if tau2 > 0 else 0.1 * float(np.mean(v)))
    else:
        alpha[0] = tau2 + 0.01
    return alpha


def _maximize(
    start: np.ndarray,
    free: np.ndarray,
    y: np.ndarray,
    v: np.ndarray,
    X: np.ndarray,
    Z: np.ndarray,
    link: str,
    method: str,
) -> tuple[np.ndarray, float, int, bool]:
    """Maximize the log-likelihood over the ``free`` entries of alpha (the others held at
    ``start``): (alpha, ll, iterations, converged)."""
    import numpy as np
    from scipy.optimize import minimize

    fixed = start.copy()

    def full(a: np.ndarray) -> np.ndarray:
        out = fixed.copy()
        out[free] = a
        return out

    cache: dict[bytes, tuple[float, np.ndarray | None, np.ndarray | None]] = {}

    def evaluate(a: np.ndarray) -> tuple[float, np.ndarray | None, np.ndarray | None]:
        key = a.tobytes()
        if key not in cache:
            cache.clear()
            cache[key] = loglik_derivatives(full(a), y, v, X, Z, link, method)
        return cache[key]

    def fun(a: np.ndarray) -> float:
        ll = evaluate(a)[0]
        return math.inf if not math.isfinite(ll) else -ll

    # scipy evaluates the derivatives at a proposed step before rejecting it; where the
    # likelihood is -inf (a negative tau² under the identity link) any finite values do, as
    # the step is then always rejected.
    def jac(a: np.ndarray) -> np.ndarray:
        g = evaluate(a)[1]
        return np.zeros(len(a)) if g is None else -g[free]

    def hess(a: np.ndarray) -> np.ndarray:
        H = evaluate(a)[2]
        return np.eye(len(a)) if H is None else -H[np.ix_(free, free)]

    x0 = start[free]
    if not math.isfinite(evaluate(x0)[0]):
        return start, -math.inf, 0, False
    res = minimize(
        fun,
        x0,
        jac=jac,
        hess=hess,
        method="trust-exact",
        options={"gtol": GRADIENT_TOLERANCE, "maxiter": MAX_ITERATIONS},
    )
    alpha, iterations = full(res.x), int(res.nit)
    # Newton steps (halved until the likelihood does not fall) from where the trust region
    # stopped: it can stop early on precision when a scale moderator's values are large (the
    # Hessian is then badly scaled); Newton's method is invariant to that scaling.
    decrement = math.inf
    for _ in range(MAX_NEWTON_STEPS):
        ll, grad, H = loglik_derivatives(alpha, y, v, X, Z, link, method)
        if grad is None or H is None:
            break
        g, Hf = grad[free], -H[np.ix_(free, free)]
        try:
            np.linalg.cholesky(Hf)
            step = np.linalg.solve(Hf, g)
        except np.linalg.LinAlgError:
            decrement = math.inf
            break
        decrement = float(g @ step)
        if decrement < NEWTON_DECREMENT_TOLERANCE**2:
            break
        t = 1.0
        while t > 1e-10:
            cand = alpha.copy()
            cand[free] = alpha[free] + t * step
            if loglik_derivatives(cand, y, v, X, Z, link, method, order=0)[0] >= ll:
                alpha = cand
                iterations += 1
                break
            t /= 2
        else:
            break
    ll = loglik_derivatives(alpha, y, v, X, Z, link, method, order=0)[0]
    converged = math.isfinite(ll) and decrement < NEWTON_DECREMENT_TOLERANCE
    return alpha, ll, iterations, converged


def location_scale_fit(
    y: np.ndarray,
    v: np.ndarray,
    X: np.ndarray,
    Z: np.ndarray,
    link: str = "log",
    method: str = "REML",
    ci_method: str = "z",
) -> LocationScaleFit:
    """Fit the location-scale model of the module docstring; ``X`` and ``Z`` have the
    intercept first. Raises :class:`ModelError` when the optimizer does not converge or the
    Hessian at an interior optimum is not negative definite (Var(alpha) undefined).

    Under the identity link, when Newton's method does not converge the maximum is sought under
    the constraints tau²_i >= 0 (SLSQP); at such a boundary optimum Var(alpha) is NaN. The
    result's ``note`` says when some tau²_i is (about) 0."""
    import numpy as np

    link = check_link(link)
    if method not in LOCATION_SCALE_METHODS:
        raise ModelError(
            f"location-scale models are fitted by REML or ML, not {method} (metafor's rma "
            "with scale = ...)"
        )
    y, v = np.asarray(y, dtype=float), np.asarray(v, dtype=float)
    X, Z = np.asarray(X, dtype=float), np.asarray(Z, dtype=float)
    q = Z.shape[1]
    start = _starting_alpha(y, v, X, q, link)
    alpha, ll, iterations, converged = _maximize(
        start, np.ones(q, dtype=bool), y, v, X, Z, link, method
    )
    if not converged and link == "identity":
        alpha, ll, iterations, converged = _maximize_on_boundary(start, y, v, X, Z, method)
    if not converged:
        raise ModelError(
            f"the location-scale model did not converge ({iterations} iterations): the "
            "likelihood may have no maximum (a tau² driven to 0, or too few studies per scale "
            "coefficient)"
        )
    tau2 = scale_tau2(Z, alpha, link)
    at_zero = bool(np.any(tau2 <= BOUNDARY_TAU2 * float(np.median(v))))
    note = ""
    if at_zero and link == "identity":
        # The constraint tau²_i >= 0 holds at the optimum: the Wald SEs do not apply (metafor's
        # numerical Hessian steps outside the constraint there and cannot be inverted: NA).
        va = np.full((q, q), np.nan)
        note = (
            "some studies' fitted tau² is 0 (the constraint tau² >= 0 holds at the optimum): "
            "the scale coefficients have no Wald standard errors, tests or intervals"
        )
    else:
        _, _, H = loglik_derivatives(alpha, y, v, X, Z, link, method)
        assert H is not None
        try:
            L = np.linalg.cholesky(-H)
        except np.linalg.LinAlgError:
            raise ModelError(
                "the Hessian of the location-scale likelihood is not negative definite at the "
                "optimum: the scale coefficients have no standard errors"
            ) from None
        Linv = np.linalg.inv(L)
        va = Linv.T @ Linv
        if at_zero:
            note = (
                "some studies' fitted tau² is ~0 (log tau² heading to -infinity): the likelihood "
                "has no interior maximum and the scale coefficients, their SEs and tests are not "
                "meaningful"
            )
    rf = regression_fit(y, v, X, "REML", ci_method, tau2_values=tau2)
    return LocationScaleFit(alpha, va, tau2, rf, ll, method, link, iterations, note)


def _maximize_on_boundary(
    start: np.ndarray,
    y: np.ndarray,
    v: np.ndarray,
    X: np.ndarray,
    Z: np.ndarray,
    method: str,
) -> tuple[np.ndarray, float, int, bool]:
    """The identity-link maximum under the constraints Z alpha >= 0 (SLSQP with the analytic
    gradient), for when Newton's method does not converge: the maximum is then on the
    boundary, where some tau²_i = 0."""
    import numpy as np
    from scipy.optimize import minimize

    def fun(a: np.ndarray) -> float:
        ll = loglik_derivatives(a, y, v, X, Z, "identity", method, order=0)[0]
        return 1e300 if not math.isfinite(ll) else -ll

    def jac(a: np.ndarray) -> np.ndarray:
        g = loglik_derivatives(a, y, v, X, Z, "identity", method, order=1)[1]
        return np.zeros(len(a)) if g is None else -g

    res = minimize(
        fun,
        start,
        jac=jac,
        method="SLSQP",
        constraints=[{"type": "ineq", "fun": lambda a: Z @ a, "jac": lambda a: Z}],
        options={"ftol": 1e-15, "maxiter": MAX_ITERATIONS},
    )
    alpha = np.asarray(res.x, dtype=float)
    tau2 = Z @ alpha
    if np.any(tau2 < 0):  # within the solver's tolerance of 0: on the boundary
        alpha = alpha.copy()
        alpha[0] -= float(np.min(tau2)) if bool(np.all(Z[:, 0] == 1.0)) else 0.0
    ll = loglik_derivatives(alpha, y, v, X, Z, "identity", method, order=0)[0]
    return alpha, ll, int(res.nit), bool(res.success) and math.isfinite(ll)


def profile_alpha_ci(
    fit: LocationScaleFit,
    y: np.ndarray,
    v: np.ndarray,
    X: np.ndarray,
    Z: np.ndarray,
    j: int,
    level: float = 0.95,
) -> tuple[float, float]:
    """The profile-likelihood interval of alpha_j (metafor's ``confint(fit, alpha = j)``):
    the values a where 2 [ll_max - max over the other alphas of ll(alpha_j = a)] equals the
    chi-square (1 df) quantile at ``level``. A side whose profile never falls that far within
    50 standard errors (a likelihood flat as a tau²_i goes to 0 or grows without bound) is
    NaN, as is one where a refit does not converge; metafor reports the end of its search
    range or a spurious root there.

    The bounds are bracketed by steps of one standard error outwards from the estimate, then
    found by Brent's method (xtol 1e-12)."""
    import numpy as np
    from scipy.optimize import brentq
    from scipy.stats import chi2

    y, v = np.asarray(y, dtype=float), np.asarray(v, dtype=float)
    X, Z = np.asarray(X, dtype=float), np.asarray(Z, dtype=float)
    target = fit.loglik - 0.5 * float(chi2.ppf(level, 1))
    free = np.ones(len(fit.alpha), dtype=bool)
    free[j] = False
    est = float(fit.alpha[j])
    se = float(np.sqrt(fit.va[j, j]))
    if not math.isfinite(se):  # a boundary optimum (identity link): no scale for the search
        return math.nan, math.nan

    # Each refit starts from the optimum at the nearest value of alpha_j profiled so far
    # (continuation): under the log link, a start far from the optimum can sit where some
    # tau²_i is ~0 and the gradient vanishes, which would stop the refit short.
    known: dict[float, np.ndarray] = {est: fit.alpha.copy()}

    def drop(a: float) -> float:
        nearest = min(known, key=lambda b: abs(b - a))
        start = known[nearest].copy()
        start[j] = a
        if fit.link == "identity":
            tau2 = Z @ start
            if np.any(tau2 <= 0) and bool(np.all(Z[:, 0] == 1.0)) and j != 0:
                start[0] += 1e-4 - float(np.min(tau2))  # a feasible start: every tau²_i > 0
        if len(fit.alpha) == 1:
            alpha = start
            ll = loglik_derivatives(start, y, v, X, Z, fit.link, fit.method, order=0)[0]
        else:
            alpha, ll, _, ok = _maximize(start, free, y, v, X, Z, fit.link, fit.method)
            if not ok and math.isfinite(ll):
                return math.nan
        if math.isfinite(ll):
            known[a] = alpha
        return ll - target

    def bound(sign: float) -> float:
        step = max(se, 1e-8)
        inner = est
        for _ in range(50):
            outer = inner + sign * step
            value = drop(outer)
            if math.isnan(value):
                return math.nan
            if value < 0:
                lo, hi = sorted((inner, outer))
                try:
                    return float(brentq(drop, lo, hi, xtol=1e-12, rtol=1e-12))
                except ValueError:  # a refit inside the bracket did not converge (NaN)
                    return math.nan
            inner = outer
        return math.nan

    return bound(-1.0), bound(1.0)


__all__ = [
    "LINKS",
    "LOCATION_SCALE_METHODS",
    "GRADIENT_TOLERANCE",
    "NEWTON_DECREMENT_TOLERANCE",
    "BOUNDARY_TAU2",
    "TAU2_MAX",
    "LocationScaleFit",
    "check_link",
    "scale_tau2",
    "loglik_derivatives",
    "location_scale_fit",
    "profile_alpha_ci",
]
