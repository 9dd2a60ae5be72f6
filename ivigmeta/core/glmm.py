"""Generalized linear mixed models for sparse binary and count data: metafor's ``rma.glmm``.

The models work on the counts themselves, so no continuity correction is added and a study with
a zero cell contributes what its counts say. Study i has ``a`` events among ``n1`` treated and
``c`` among ``n2`` controls (OR), or ``x1``, ``x2`` events over person-time ``t1``, ``t2`` (IRR),
or ``x`` events among ``n`` (PLO, one group), or ``x`` events over person-time ``t`` (IRLN, one
group). ``theta`` is the log odds ratio (log rate ratio, logit proportion, log rate),
``u_i ~ N(0, tau²)`` the study's random effect. Following metafor 3.8-1 (Stijnen, Hamza & Ozdemir
2010; Jackson et al. 2018):

* ``UM.FS``, unconditional model with fixed study effects: ``logit p_i1 = alpha_i + theta +
  u_i/2``, ``logit p_i2 = alpha_i - u_i/2`` (binomial; Poisson with ``log t`` offsets for IRR),
  one fixed intercept ``alpha_i`` per study. The random effect is integrated out with adaptive
  Gauss-Hermite quadrature, 7 nodes (lme4's ``glmer(nAGQ = 7)``, which metafor calls).
* ``UM.RS``, unconditional model with random study effects: ``logit p_i1 = mu + v_i + theta +
  u_i/2``, ``logit p_i2 = mu + v_i - u_i/2``, ``v_i ~ N(0, sigma²)`` independent of ``u_i``; two
  random effects per study, integrated with the Laplace approximation (metafor forces lme4's
  ``nAGQ = 1`` here).
* ``CM.EL``, conditional model with the exact likelihood: given the study's total events
  ``m = a + c``, ``a`` follows Fisher's non-central hypergeometric distribution with odds ratio
  ``exp(theta + u_i)``; the normal random effect is integrated with adaptive Gauss-Hermite
  quadrature (:data:`EXACT_NODES` nodes, accurate to ~1e-10, where metafor uses R's
  ``integrate``). For IRR the conditional distribution of ``x1`` given ``x1 + x2`` is binomial
  and the model is the binomial-normal one below with offset ``log(t1/t2)``.
* ``CM.AL``, conditional model with the approximate likelihood: ``a | a + c ~ Bin(a + c, pi_i)``,
  ``logit pi_i = log(n1/n2) + theta + u_i`` (binomial-normal; adaptive Gauss-Hermite, 7 nodes).
* ``PLO`` (one group): ``x_i ~ Bin(n_i, expit(theta + u_i))``, the binomial-normal model
  (adaptive Gauss-Hermite, 7 nodes).
* ``IRLN`` (one group): ``x_i ~ Poisson(t_i exp(theta + u_i))``, the Poisson-normal model
  (offset ``log t_i``; adaptive Gauss-Hermite, 7 nodes).

With moderators (:func:`fit_glmm_regression`, metafor's ``rma.glmm(..., mods = ~ x)``) theta
becomes ``x_i' beta`` in every model: the design X (intercept first) multiplies the treatment
indicator of UM.FS and UM.RS and is the linear predictor of CM.EL, CM.AL, PLO and IRLN; tau² is the
residual variance. Non-indicator moderator columns are centred and scaled for the maximization
(metafor's ``scaleX``) and the coefficients transformed back.

Every model is fitted by maximum likelihood; metafor's fixed-effects counterpart (its
``method = "EE"``: the same likelihood with tau² = 0) is fitted too (:attr:`GlmmResult.common`).
Heterogeneity is tested as metafor does against the saturated model (one effect per study): the
Wald-type test of the study effects being equal (with moderators: lying in the column space of
X), and the likelihood-ratio test ``-2 (ll_FE - ll_saturated)``, both on k - p df (p = 1
without moderators).

Double-zero studies (no events, or only events, in both groups): with fixed study effects
(UM.FS) or conditioning on the study's total (CM.EL, CM.AL) such a study's likelihood does not
depend on theta or tau², so it changes nothing but the tests' degrees of freedom; with random
study effects (UM.RS) it informs mu and sigma² and so the estimate. Which studies are passed in
is the caller's decision (metafor drops them by default, ``drop00 = TRUE``).

Numerics: the likelihood is maximized by Newton's method over all parameters at once, the
per-study nuisance intercepts (UM.FS, and the saturated UM.RS model) through the arrow-shaped
Hessian (Schur complement), so k intercepts cost no more than one. Derivatives are central
differences of the per-study log-likelihoods, evaluated for all perturbed parameter vectors in
one vectorized pass; steps are damped (Levenberg-Marquardt) and backtracked so that every step
increases the likelihood. tau is optimized on its own scale, where the likelihood is even, so
the boundary tau² = 0 is an ordinary point: it is reported as 0 exactly, with a note. The
standard errors come from the inverse of the observed information over all parameters, as
lme4's (``vcov`` from the Hessian) and metafor's for CM.EL (numDeriv's Hessian).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ivigmeta.core.distributions import chi2_sf, norm_p_two_sided, z_crit
from ivigmeta.errors import ModelError

if TYPE_CHECKING:
    from numpy.typing import NDArray

    Array = NDArray[np.float64]

#: the models of each measure (metafor 3.8-1: CM.AL is CM.EL for IRR; PLO and IRLN have one)
MODELS = ("UM.FS", "UM.RS", "CM.EL", "CM.AL")
GLMM_MEASURES: dict[str, tuple[str, ...]] = {
    "OR": MODELS,
    "IRR": ("UM.FS", "UM.RS", "CM.EL"),
    "PLO": ("UM.FS",),
    "IRLN": ("UM.FS",),
}
#: the measures of one group: one linear predictor per study, no study intercepts
ONE_GROUP = ("PLO", "IRLN")
MODEL_TITLES = {
    "UM.FS": "unconditional model with fixed study effects",
    "UM.RS": "unconditional model with random study effects",
    "CM.EL": "conditional model with exact likelihood",
    "CM.AL": "conditional model with approximate likelihood",
}
#: lme4's default number of adaptive Gauss-Hermite nodes in metafor's calls (nAGQ = 7)
NAGQ = 7
#: nodes of the adaptive Gauss-Hermite rule that integrates the exact conditional likelihood
EXACT_NODES = 32
#: central-difference step for the derivatives of the per-study log-likelihoods
FD_STEP = 1e-4
#: Newton stops when no parameter moves by more than this (the step after it is ~1e-16)
STEP_TOL = 1e-9
MAX_ITER = 200
#: tau below this at the optimum is the boundary: reported as tau² = 0
BOUNDARY_TAU = 1e-5
#: starting values of tau, tried in turn while the maximum found is at the boundary
TAU_STARTS = (0.3, 1.0, 2.0)
#: where the log OR of an arm without events (or non-events) is pinned in the saturated UM.RS
#: model: the arm's log-likelihood there is below 1e-15 of its supremum for n < 10^8
PINNED_LOG_OR = 60.0


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class GlmmCommon:
    """The fixed-effects counterpart of a GLMM (tau² = 0; metafor's ``method = "EE"``)."""

    theta: float
    se: float
    z: float
    p_value: float
    ci_low: float
    ci_high: float
    loglik: float
    sigma2: float | None = None


@dataclass(frozen=True)
class GlmmConvergence:
    """How the maximum was found."""

    converged: bool
    iterations: int
    algorithm: str
    integration: str
    nodes: int
    max_gradient: float


@dataclass(frozen=True)
class GlmmResult:
    """A fitted GLMM: the pooled effect (analysis scale), tau², the heterogeneity tests.

    ``contributes`` says, per study passed in, whether its likelihood depends on theta or tau²
    (False for double-zero studies under UM.FS, CM.EL and CM.AL).
    """

    measure: str
    model: str
    level: float
    k: int
    theta: float
    se: float
    z: float
    p_value: float
    ci_low: float
    ci_high: float
    tau2: float
    se_tau2: float | None
    sigma2: float | None
    loglik: float
    loglik_fe: float
    loglik_saturated: float
    qe_df: int | None
    qe_wald: float | None
    qe_wald_p: float | None
    qe_lrt: float | None
    qe_lrt_p: float | None
    boundary: bool
    common: GlmmCommon
    convergence: GlmmConvergence
    contributes: tuple[bool, ...]
    notes: tuple[str, ...] = ()

    @property
    def tau(self) -> float:
        return math.sqrt(self.tau2)

    @property
    def title(self) -> str:
        return MODEL_TITLES.get(self.model, self.model)


# ---------------------------------------------------------------------------------------------
# Families: log-density of the counts given the linear predictor, and its first two derivatives


class _Family:
    """Elementwise log-density ``ll(eta)`` with d/d eta and d²/d eta², arms on the last axis."""

    def terms(self, eta: Array) -> tuple[Array, Array, Array]:
        raise NotImplementedError

    def saturated(self) -> float:
        raise NotImplementedError


class _Binomial(_Family):
    def __init__(self, x: Array, n: Array) -> None:
        from scipy.special import gammaln

        self.x, self.n = x, n
        self.lc = gammaln(n + 1) - gammaln(x + 1) - gammaln(n - x + 1)

    def terms(self, eta: Array) -> tuple[Array, Array, Array]:
        from scipy.special import expit

        mu = expit(eta)
        ll = self.x * eta - self.n * np.logaddexp(0.0, eta) + self.lc
        return ll, self.x - self.n * mu, -self.n * mu * (1.0 - mu)

    def saturated(self) -> float:
        x, n = self.x, self.n
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.where(n > 0, x / np.where(n > 0, n, 1.0), 0.0)
            t1 = np.where(x > 0, x * np.log(np.where(x > 0, p, 1.0)), 0.0)
            t2 = np.where(n - x > 0, (n - x) * np.log(np.where(n - x > 0, 1.0 - p, 1.0)), 0.0)
        return float(np.sum(t1 + t2 + self.lc))


class _Poisson(_Family):
    """Counts over person-time: the offset log t is part of eta."""

    def __init__(self, x: Array, t: Array) -> None:
        from scipy.special import gammaln

        self.x, self.t = x, t
        self.lf = gammaln(x + 1)

    def terms(self, eta: Array) -> tuple[Array, Array, Array]:
        mu = np.exp(eta)
        return self.x * eta - mu - self.lf, self.x - mu, -mu

    def saturated(self) -> float:
        x = self.x
        with np.errstate(divide="ignore"):
            t = np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0)), 0.0)
        return float(np.sum(t - x - self.lf))


class _NoncentralHypergeometric(_Family):
    """Fisher's non-central hypergeometric density of ``a`` given the margins, in eta = log OR
    (one "arm" per study)."""

    def __init__(self, a: Array, n1: Array, c: Array, n2: Array) -> None:
        from scipy.special import gammaln

        def lchoose(n: Array, k: Array) -> Array:
            return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)

        m = a + c
        lo = np.maximum(0.0, m - n2)
        hi = np.minimum(n1, m)
        size = int(np.max(hi - lo)) + 1
        s = lo[:, None] + np.arange(size, dtype=float)[None, :]
        valid = s <= hi[:, None]
        s = np.where(valid, s, lo[:, None])
        logw = np.where(
            valid, lchoose(n1[:, None], s) + lchoose(n2[:, None], m[:, None] - s), -np.inf
        )
        self.a = a
        self.s = s  # (k, S) support, padded
        self.logw = logw  # (k, S)
        self.la = lchoose(n1, a) + lchoose(n2, m - a)
        self.lo, self.hi = lo, hi

    def terms(self, eta: Array) -> tuple[Array, Array, Array]:
        # eta (..., k, 1)
        e = eta[..., 0]
        t = self.logw + self.s * e[..., None]
        top = np.max(t, axis=-1, keepdims=True)
        w = np.exp(t - top)
        tot = np.sum(w, axis=-1)
        lse = np.log(tot) + top[..., 0]
        p = w / tot[..., None]
        mean = np.sum(p * self.s, axis=-1)
        var = np.sum(p * (self.s - mean[..., None]) ** 2, axis=-1)
        ll = self.a * e + self.la - lse
        return ll[..., None], (self.a - mean)[..., None], (-var)[..., None]

    def saturated(self) -> float:
        # studies at an end of their support have sup = 1 (log OR -> +-inf); the others are
        # maximized by :func:`_conditional_mle`
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# The marginal likelihood of one study: the random effects integrated out


def _marginal(family: _Family, base: Array, zs: Array | None, nodes: int) -> Array:
    """Per-study log marginal likelihood.

    ``base`` (..., k, J): linear predictor without random effects; ``zs`` (..., k, J, q): the
    random effects' (standardized, ``u ~ N(0, I)``) coefficients, or None for no random effect.
    q = 1 with ``nodes`` > 1: adaptive Gauss-Hermite at the conditional mode, scaled by the
    curvature there (Pinheiro & Bates 1995; lme4's ``nAGQ``); otherwise Laplace.
    """
    if zs is None:
        return family.terms(base)[0].sum(axis=-1)
    q = zs.shape[-1]
    shape = base.shape[:-1]
    u = np.zeros((*shape, q))
    eye = np.eye(q)

    def joint(u: Array) -> tuple[Array, Array, Array]:
        """log p(y | u) + log phi(u), and the family's derivatives there."""
        ll, d1, d2 = family.terms(base + np.einsum("...jr,...r->...j", zs, u))
        return ll.sum(axis=-1) - 0.5 * np.sum(u * u, axis=-1), d1, d2

    # Newton's method for the conditional modes (the joint is concave in u): steps longer than
    # 4 are shortened along their direction, and halved where they would lower the joint, so
    # that two random effects with large counts cannot cycle.
    g, d1, d2 = joint(u)
    for _ in range(100):
        grad = np.einsum("...jr,...j->...r", zs, d1) - u
        hess = np.einsum("...jr,...js,...j->...rs", zs, zs, -d2) + eye  # -d²/du²
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        longest = np.max(np.abs(step), axis=-1, keepdims=True)
        step = step * np.minimum(1.0, 4.0 / np.maximum(longest, 1e-300))
        t = np.ones((*shape, 1))
        for _ in range(40):
            g_new, d1_new, d2_new = joint(u + t * step)
            worse = ~(g_new >= g - 1e-12 * np.maximum(1.0, np.abs(g)))
            if not np.any(worse):
                break
            t = np.where(worse[..., None], 0.5 * t, t)
        u = u + t * step
        g, d1, d2 = g_new, d1_new, d2_new
        if np.max(np.abs(t * step)) < 1e-13:
            break
    eta = base + np.einsum("...jr,...r->...j", zs, u)
    ll, _, d2 = family.terms(eta)
    hess = np.einsum("...jr,...js,...j->...rs", zs, zs, -d2) + eye
    g0 = ll.sum(axis=-1) - 0.5 * np.sum(u * u, axis=-1)
    if q == 1 and nodes > 1:
        z, w = _gh_rule(nodes)
        sd = 1.0 / np.sqrt(hess[..., 0, 0])
        # nodes on the first axis, so that the families' (k, J) arrays broadcast
        zn = z.reshape((-1,) + (1,) * sd.ndim)
        uu = u[..., 0] + sd * zn  # (nodes, ..., k)
        eta_k = base + zs[..., 0] * uu[..., None]
        gk = family.terms(eta_k)[0].sum(axis=-1) - 0.5 * uu * uu
        rel = gk - g0 + 0.5 * zn * zn
        wn = w.reshape(zn.shape)
        top = np.max(rel, axis=0)
        return g0 + np.log(sd) + top + np.log(np.sum(wn * np.exp(rel - top), axis=0))
    _, logdet = np.linalg.slogdet(hess)
    return g0 - 0.5 * logdet


_GH: dict[int, tuple[Array, Array]] = {}


def _gh_rule(n: int) -> tuple[Array, Array]:
    """Gauss-Hermite nodes and weights for the standard normal density (weights sum to 1)."""
    if n not in _GH:
        z, w = np.polynomial.hermite_e.hermegauss(n)
        _GH[n] = (z, w / math.sqrt(2.0 * math.pi))
    return _GH[n]


# ---------------------------------------------------------------------------------------------
# Maximization: Newton over shared parameters and one optional nuisance parameter per study


StudyLoglik = Callable[["Array", "Array | None"], "Array"]


@dataclass(frozen=True)
class _Optimum:
    shared: Array
    nuisance: Array | None
    loglik: float
    cov_shared: Array | None  # inverse observed information of the shared parameters
    cov_nuisance: Array | None  # (k, k) covariance of the nuisance parameters, when asked
    iterations: int
    converged: bool
    max_gradient: float


def _derivatives(
    fun: StudyLoglik, shared: Array, nuisance: Array | None
) -> tuple[Array, Array, Array]:
    """Per-study log-likelihood, gradient and Hessian (central differences, one batch)."""
    m = shared.size
    dim = m + (0 if nuisance is None else 1)
    h = FD_STEP
    offsets = [np.zeros(dim)]
    for j in range(dim):
        for sign in (1.0, -1.0):
            e = np.zeros(dim)
            e[j] = sign * h
            offsets.append(e)
    pairs = [(i, j) for i in range(dim) for j in range(i + 1, dim)]
    for i, j in pairs:
        for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
            e = np.zeros(dim)
            e[i], e[j] = si * h, sj * h
            offsets.append(e)
    off = np.array(offsets)  # (P, dim)
    sh = shared[None, :] + off[:, :m]
    nu = None if nuisance is None else nuisance[None, :] + off[:, m : m + 1]
    f = fun(sh, nu)  # (P, k)
    f0 = f[0]
    k = f.shape[1]
    grad = np.empty((k, dim))
    hess = np.empty((k, dim, dim))
    for j in range(dim):
        fp, fm = f[1 + 2 * j], f[2 + 2 * j]
        grad[:, j] = (fp - fm) / (2 * h)
        hess[:, j, j] = (fp - 2 * f0 + fm) / (h * h)
    base = 1 + 2 * dim
    for idx, (i, j) in enumerate(pairs):
        pp, pm, mp, mm = f[base + 4 * idx : base + 4 * idx + 4]
        hess[:, i, j] = hess[:, j, i] = (pp - pm - mp + mm) / (4 * h * h)
    return f0, grad, hess


def _newton_step(
    grad: Array, hess: Array, m: int, has_nuisance: bool, damping: float
) -> tuple[Array, Array | None] | None:
    """The (damped) Newton step of the arrow-shaped system, or None if not positive definite."""
    g_s = grad[:, :m].sum(axis=0)
    a = -hess[:, :m, :m].sum(axis=0) + damping * np.eye(m)
    if not has_nuisance:
        try:
            chol = np.linalg.cholesky(a)
        except np.linalg.LinAlgError:
            return None
        return np.linalg.solve(chol.T, np.linalg.solve(chol, g_s)), None
    b = -hess[:, :m, m]  # (k, m)
    c = -hess[:, m, m] + damping  # (k,)
    if np.any(c <= 0):
        return None
    g_a = grad[:, m]
    s = a - np.einsum("ij,il,i->jl", b, b, 1.0 / c)
    rhs = g_s - np.einsum("ij,i->j", b, g_a / c)
    try:
        chol = np.linalg.cholesky(s)
    except np.linalg.LinAlgError:
        return None
    ds = np.linalg.solve(chol.T, np.linalg.solve(chol, rhs))
    da = (g_a - b @ ds) / c
    return ds, da


def _information(hess: Array, m: int, has_nuisance: bool) -> tuple[Array | None, Array | None]:
    """Inverse observed information: the shared block, and the nuisance block when present."""
    a = -hess[:, :m, :m].sum(axis=0)
    if not has_nuisance:
        try:
            return np.linalg.inv(a), None
        except np.linalg.LinAlgError:
            return None, None
    b = -hess[:, :m, m]
    c = -hess[:, m, m]
    if np.any(c <= 0):
        return None, None
    s = a - np.einsum("ij,il,i->jl", b, b, 1.0 / c)
    try:
        cov_s = np.linalg.inv(s)
    except np.linalg.LinAlgError:
        return None, None
    # nuisance block of the inverse: diag(1/c) + (B/c) S^-1 (B/c)'
    bc = b / c[:, None]
    cov_a = np.diag(1.0 / c) + bc @ cov_s @ bc.T
    return cov_s, cov_a


def _maximize(
    fun: StudyLoglik,
    shared0: Sequence[float],
    nuisance0: Array | None = None,
    abs_index: Sequence[int] = (),
) -> _Optimum:
    """Maximize sum_i fun(shared, nuisance_i) by damped Newton steps with backtracking.

    ``abs_index``: shared parameters the likelihood is even in (standard deviations); they are
    kept non-negative.
    """
    shared = np.asarray(shared0, dtype=float).copy()
    nuisance = None if nuisance0 is None else np.asarray(nuisance0, dtype=float).copy()
    m = shared.size
    has_nu = nuisance is not None

    def total(s: Array, a: Array | None) -> float:
        val = fun(s[None, :], None if a is None else a[None, :])
        return float(np.sum(val))

    f0, grad, hess = _derivatives(fun, shared, nuisance)
    current = float(np.sum(f0))
    converged = False
    iterations = 0
    for iteration in range(1, MAX_ITER + 1):
        iterations = iteration
        step = None
        lam = 0.0
        scale = float(np.max(np.abs(hess))) if hess.size else 1.0
        for _ in range(60):
            step = _newton_step(grad, hess, m, has_nu, lam)
            if step is not None:
                break
            lam = max(lam * 10.0, 1e-6 * max(scale, 1.0))
        if step is None:
            break
        ds, da = step
        t = 1.0
        accepted = False
        for _ in range(50):
            s_new = shared + t * ds
            for i in abs_index:
                s_new[i] = abs(s_new[i])
            a_new = None if da is None else nuisance + t * da  # type: ignore[operator]
            val = total(s_new, a_new)
            if np.isfinite(val) and val >= current - 1e-12 * max(1.0, abs(current)):
                accepted = True
                break
            t *= 0.5
        if not accepted:
            break
        move = float(np.max(np.abs(t * ds)))
        if da is not None:
            move = max(move, float(np.max(np.abs(t * da))))
        gain = val - current
        shared, nuisance, current = s_new, a_new, val
        f0, grad, hess = _derivatives(fun, shared, nuisance)
        current = float(np.sum(f0))
        if (
            t == 1.0
            and lam == 0.0
            and (move < STEP_TOL or abs(gain) < 1e-13 * max(1.0, abs(current)))
        ):
            converged = True
            break
    g_s = grad[:, :m].sum(axis=0)
    max_grad = float(np.max(np.abs(g_s))) if g_s.size else 0.0
    if has_nu:
        max_grad = max(max_grad, float(np.max(np.abs(grad[:, m]))))
    cov_s, cov_a = _information(hess, m, has_nu)
    return _Optimum(shared, nuisance, current, cov_s, cov_a, iterations, converged, max_grad)


# ---------------------------------------------------------------------------------------------
# The models


@dataclass
class _Counts:
    """The data of one GLMM, as the models need it."""

    measure: str
    x1: Array
    n1: Array  # totals (OR, PLO) or person-time (IRR, IRLN)
    x2: Array
    n2: Array

    @property
    def k(self) -> int:
        return int(self.x1.size)


def _two_arm(counts: _Counts) -> tuple[_Family, Array]:
    """The family of the two arms and the offsets of their linear predictors."""
    x = np.stack([counts.x1, counts.x2], axis=1)
    n = np.stack([counts.n1, counts.n2], axis=1)
    if counts.measure == "IRR":
        return _Poisson(x, n), np.log(n)
    return _Binomial(x, n), np.zeros_like(x)


def _conditional_binomial(counts: _Counts) -> tuple[_Family, Array]:
    """x1 given x1 + x2: binomial with offset log(n1/n2) (CM.AL for OR, exact for IRR)."""
    x = counts.x1[:, None]
    n = (counts.x1 + counts.x2)[:, None]
    return _Binomial(x, n), np.log(counts.n1 / counts.n2)[:, None]


def _starting_theta(counts: _Counts) -> float:
    """Mantel-Haenszel-type starting value of the log OR / log IRR / logit / log rate."""
    x1, n1, x2, n2 = counts.x1, counts.n1, counts.x2, counts.n2
    if counts.measure == "PLO":
        return float(math.log((x1.sum() + 0.5) / (n1.sum() - x1.sum() + 0.5)))
    if counts.measure == "IRLN":
        return float(math.log((x1.sum() + 0.5) / n1.sum()))
    if counts.measure == "IRR":
        tot = n1 + n2
        r, s = np.sum(x1 * n2 / tot), np.sum(x2 * n1 / tot)
    else:
        tot = n1 + n2
        r = np.sum(x1 * (n2 - x2) / tot)
        s = np.sum(x2 * (n1 - x1) / tot)
    return float(math.log((r + 0.5) / (s + 0.5)))


def _study_intercepts(counts: _Counts) -> Array:
    """Starting values of the per-study intercepts alpha_i (the control arm's logit/log rate)."""
    if counts.measure == "IRR":
        return np.log((counts.x2 + 0.5) / counts.n2)
    return np.log((counts.x2 + 0.5) / (counts.n2 - counts.x2 + 0.5))


@dataclass(frozen=True)
class _Fit:
    """One maximized model: the treatment coefficients are shared parameters
    ``beta_start .. beta_start + p - 1``; tau's index (None if absent), sigma's (UM.RS)."""

    opt: _Optimum
    beta_start: int
    tau_index: int | None
    sigma_index: int | None = None
    p: int = 1

    @property
    def beta(self) -> Array:
        return np.asarray(self.opt.shared[self.beta_start : self.beta_start + self.p], dtype=float)

    @property
    def cov_beta(self) -> Array:
        cov = self.opt.cov_shared
        if cov is None:
            return np.full((self.p, self.p), math.nan)
        sl = slice(self.beta_start, self.beta_start + self.p)
        return np.asarray(cov[sl, sl], dtype=float)

    @property
    def theta(self) -> float:
        return float(self.opt.shared[self.beta_start])

    @property
    def se(self) -> float:
        cov = self.opt.cov_shared
        if cov is None:
            return math.nan
        var = cov[self.beta_start, self.beta_start]
        return math.sqrt(var) if var > 0 else math.nan

    @property
    def tau(self) -> float:
        return 0.0 if self.tau_index is None else abs(float(self.opt.shared[self.tau_index]))

    @property
    def sigma(self) -> float | None:
        return None if self.sigma_index is None else abs(float(self.opt.shared[self.sigma_index]))


def _treatment(sh: Array, X: Array, start: int) -> Array:
    """The treatment effect X beta of every study, for each parameter row: (P, k)."""
    p = X.shape[1]
    return sh[:, start : start + p] @ X.T


def _um_fs_loglik(counts: _Counts, X: Array, with_tau: bool) -> StudyLoglik:
    """UM.FS: shared (beta_1..beta_p, tau), nuisance alpha_i."""
    family, off = _two_arm(counts)
    half = np.array([0.5, -0.5])
    treat = np.array([1.0, 0.0])
    p = X.shape[1]

    def fun(sh: Array, alpha: Array | None) -> Array:
        assert alpha is not None
        base = off + alpha[..., None] + _treatment(sh, X, 0)[..., None] * treat
        if not with_tau:
            return _marginal(family, base, None, 1)
        zs = (sh[:, p][:, None, None] * half)[..., None] * np.ones((1, counts.k, 1, 1))
        return _marginal(family, base, zs, NAGQ)

    return fun


def _maximize_tau(
    fun: StudyLoglik,
    shared0: Sequence[float],
    nuisance0: Array | None,
    abs_index: Sequence[int],
    tau_index: int,
) -> _Optimum:
    """Maximize from tau = 0.3; when that ends at the boundary tau = 0 (which can be a local
    maximum beside an interior one: irr_zeros UM.RS), also from tau = 1 and 2, keeping the best."""
    best: _Optimum | None = None
    for tau0 in TAU_STARTS:
        start = list(shared0)
        start[tau_index] = tau0
        opt = _maximize(fun, start, nuisance0, abs_index=abs_index)
        if best is None or opt.loglik > best.loglik + 1e-10 * max(1.0, abs(best.loglik)):
            best = opt
        if abs(float(best.shared[tau_index])) >= BOUNDARY_TAU:
            break
    assert best is not None
    return best


def _fit_um_fs(
    counts: _Counts, X: Array, beta0: Sequence[float], with_tau: bool, start: _Fit | None = None
) -> _Fit:
    fun = _um_fs_loglik(counts, X, with_tau)
    p = X.shape[1]
    if start is not None:
        s0 = list(start.beta) + ([0.3] if with_tau else [])
        a0 = start.opt.nuisance
    else:
        s0 = list(beta0) + ([0.3] if with_tau else [])
        a0 = _study_intercepts(counts)
    if with_tau:
        opt = _maximize_tau(fun, s0, a0, (p,), p)
    else:
        opt = _maximize(fun, s0, a0)
    return _Fit(opt, 0, p if with_tau else None, p=p)


def _um_rs_loglik(counts: _Counts, X: Array, with_tau: bool, nodes: int = 1) -> StudyLoglik:
    """UM.RS: shared (mu, beta_1..beta_p, sigma[, tau])."""
    family, off = _two_arm(counts)
    treat = np.array([1.0, 0.0])
    half = np.array([0.5, -0.5])
    k = counts.k
    p = X.shape[1]

    def fun(sh: Array, _: Array | None) -> Array:
        mu, sigma = sh[:, 0], sh[:, p + 1]
        base = off + mu[:, None, None] + _treatment(sh, X, 1)[..., None] * treat
        zs_sigma = np.broadcast_to(sigma[:, None, None, None], (sh.shape[0], k, 2, 1))
        if with_tau:
            zs_tau = np.broadcast_to(
                (sh[:, p + 2][:, None, None] * half)[..., None], (sh.shape[0], k, 2, 1)
            )
            zs = np.concatenate([zs_sigma, zs_tau], axis=-1)
        else:
            zs = zs_sigma
        return _marginal(family, base, zs, nodes)

    return fun


def _fit_um_rs(
    counts: _Counts,
    X: Array,
    beta0: Sequence[float],
    with_tau: bool,
    start: _Fit | None = None,
    nodes: int = 1,
) -> _Fit:
    fun = _um_rs_loglik(counts, X, with_tau, nodes)
    p = X.shape[1]
    if start is not None:
        s0 = list(start.opt.shared[: p + 2]) + ([0.3] if with_tau else [])
    else:
        s0 = [float(np.mean(_study_intercepts(counts))), *beta0, 0.5]
        s0 += [0.3] if with_tau else []
    if with_tau:
        opt = _maximize_tau(fun, s0, None, (p + 1, p + 2), p + 2)
    else:
        opt = _maximize(fun, s0, None, abs_index=(p + 1,))
    return _Fit(opt, 1, p + 2 if with_tau else None, sigma_index=p + 1, p=p)


def _fit_um_rs_saturated(counts: _Counts, fe: _Fit) -> tuple[_Fit, Array]:
    """One log OR per study (nuisance), random study intercepts (shared mu, sigma)."""
    family, off = _two_arm(counts)
    treat = np.array([1.0, 0.0])
    k = counts.k
    x1, n1, x2, n2 = counts.x1, counts.n1, counts.x2, counts.n2
    # A study without events (or non-events) in the treated arm has its log OR at -inf (+inf):
    # that arm then has probability 1 whatever the random intercept, and the study informs mu and
    # sigma through its control arm only. Its psi is pinned far out, where the treated arm's
    # log-likelihood is 0 to double precision, by a penalty that vanishes there.
    low = x1 == 0
    high = (x1 == n1) & (counts.measure != "IRR")
    pinned = np.where(low, -PINNED_LOG_OR, np.where(high, PINNED_LOG_OR, np.nan))
    is_pinned = low | high

    def fun(sh: Array, psi: Array | None) -> Array:
        assert psi is not None
        eff = np.where(is_pinned, pinned, psi)
        base = off + sh[:, 0][:, None, None] + eff[..., None] * treat
        zs = np.broadcast_to(sh[:, 1][:, None, None, None], (sh.shape[0], k, 2, 1))
        penalty = np.where(is_pinned, 0.5 * (psi - np.where(is_pinned, pinned, 0.0)) ** 2, 0.0)
        return _marginal(family, base, zs, 1) - penalty

    if counts.measure == "IRR":
        psi0 = np.log((x1 + 0.5) / n1) - np.log((x2 + 0.5) / n2)
    else:
        psi0 = np.log((x1 + 0.5) / (n1 - x1 + 0.5)) - np.log((x2 + 0.5) / (n2 - x2 + 0.5))
    psi0 = np.where(is_pinned, pinned, psi0)
    s0 = [float(fe.opt.shared[0]), float(fe.sigma or 0.5)]
    opt = _maximize(fun, s0, psi0, abs_index=(1,))
    return _Fit(opt, 0, None, sigma_index=1), ~is_pinned


def _one_re_loglik(
    family: _Family, off: Array, X: Array, with_tau: bool, nodes: int
) -> StudyLoglik:
    """X beta (+ u_i) on one linear predictor per study: shared (beta_1..beta_p[, tau])."""
    k = off.shape[0]
    p = X.shape[1]

    def fun(sh: Array, _: Array | None) -> Array:
        base = off + _treatment(sh, X, 0)[..., None]
        if not with_tau:
            return _marginal(family, base, None, 1)
        zs = np.broadcast_to(sh[:, p][:, None, None, None], (sh.shape[0], k, 1, 1))
        return _marginal(family, base, zs, nodes)

    return fun


def _one_re_family(counts: _Counts, model: str) -> tuple[_Family, Array, int]:
    """CM.EL (OR): the exact conditional density; CM.AL, CM.EL (IRR) and PLO: binomial; IRLN:
    Poisson with offset log t."""
    if counts.measure == "OR" and model == "CM.EL":
        nch = _NoncentralHypergeometric(counts.x1, counts.n1, counts.x2, counts.n2)
        return nch, np.zeros((counts.k, 1)), EXACT_NODES
    if counts.measure == "PLO":
        return _Binomial(counts.x1[:, None], counts.n1[:, None]), np.zeros((counts.k, 1)), NAGQ
    if counts.measure == "IRLN":
        t = counts.n1[:, None]
        return _Poisson(counts.x1[:, None], t), np.log(t), NAGQ
    family, off = _conditional_binomial(counts)
    return family, off, NAGQ


def _fit_one_re(
    family: _Family, off: Array, X: Array, with_tau: bool, nodes: int, beta0: Sequence[float]
) -> _Fit:
    """X beta (+ u_i) on one linear predictor per study: CM.AL, CM.EL, PLO, IRLN."""
    fun = _one_re_loglik(family, off, X, with_tau, nodes)
    p = X.shape[1]
    s0 = list(beta0) + ([0.3] if with_tau else [])
    if with_tau:
        opt = _maximize_tau(fun, s0, None, (p,), p)
    else:
        opt = _maximize(fun, s0, None)
    return _Fit(opt, 0, p if with_tau else None, p=p)


def _conditional_mle(family: _NoncentralHypergeometric) -> tuple[Array, Array, Array]:
    """Each study's conditional MLE of the log OR, its information and its log-likelihood
    (0 and no information for a study at an end of its support: the MLE is infinite)."""
    a = family.a
    interior = (a > family.lo) & (a < family.hi)
    psi = np.zeros_like(a)
    for _ in range(200):
        _, d1, d2 = family.terms(psi[:, None])
        step = np.where(interior, -d1[:, 0] / np.where(interior, d2[:, 0], -1.0), 0.0)
        step = np.clip(step, -2.0, 2.0)
        psi = psi + step
        if np.max(np.abs(step)) < 1e-13:
            break
    ll, _, d2 = family.terms(psi[:, None])
    info = np.where(interior, -d2[:, 0], 0.0)
    ll = np.where(interior, ll[:, 0], 0.0)
    return psi, info, ll


def _residual_q(y: Array, v: Array, X: Array) -> float:
    """The weighted residual sum of squares of the finite estimates regressed on X (an estimate
    with infinite variance weighs nothing); for X the intercept alone, Cochran's Q."""
    ok = np.isfinite(y) & np.isfinite(v) & (v > 0)
    if not np.any(ok):
        return 0.0
    w = 1.0 / v[ok]
    yy = y[ok]
    Xo = X[ok]
    if Xo.shape[1] == 1 and np.all(Xo == 1.0):
        mean = np.sum(w * yy) / np.sum(w)
        return float(np.sum(w * (yy - mean) ** 2))
    sw = np.sqrt(w)
    b = np.linalg.lstsq(Xo * sw[:, None], yy * sw, rcond=None)[0]
    return float(np.sum(w * (yy - Xo @ b) ** 2))


def _saturated_wald(counts: _Counts, model: str, X: Array) -> float:
    """The Wald-type test of the saturated model's study effects against the model's (X beta):
    the weighted residual sum of squares of the per-study maximum likelihood estimates with their
    asymptotic variances (for UM.FS, CM.AL, PLO and IRLN, the saturated logistic/Poisson
    regression: uncorrected log OR with Woolf's variance, log rate with variance 1/x); Cochran's
    Q without moderators."""
    x1, n1, x2, n2 = counts.x1, counts.n1, counts.x2, counts.n2
    with np.errstate(divide="ignore", invalid="ignore"):
        if counts.measure == "PLO":
            y = np.log(x1 / (n1 - x1))
            v = 1 / x1 + 1 / (n1 - x1)
        elif counts.measure == "IRLN":
            y = np.log(x1 / n1)
            v = 1 / x1
        elif counts.measure == "IRR":
            y = np.log(x1 / n1) - np.log(x2 / n2)
            v = 1 / x1 + 1 / x2
        elif model == "CM.AL":
            y = np.log(x1 / x2) - np.log(n1 / n2)
            v = 1 / x1 + 1 / x2
        else:
            y = np.log(x1 * (n2 - x2) / ((n1 - x1) * x2))
            v = 1 / x1 + 1 / (n1 - x1) + 1 / x2 + 1 / (n2 - x2)
    return _residual_q(y, v, X)


def _wald_in_span(psi: Array, cov: Array, X: Array) -> float:
    """Wald test that the study effects psi lie in the column space of X: psi_1 = ... = psi_k
    (contrasts psi_i - psi_k) for the intercept alone, else C psi = 0 for C spanning the
    orthogonal complement of X."""
    k = psi.size
    if X.shape[1] == 1 and np.all(X == 1.0):
        contrast = np.hstack([np.eye(k - 1), -np.ones((k - 1, 1))])
    else:
        q, _ = np.linalg.qr(X, mode="complete")
        rank = int(np.linalg.matrix_rank(X))
        contrast = q[:, rank:].T
    if contrast.shape[0] == 0:
        return 0.0
    b = contrast @ psi
    vb = contrast @ cov @ contrast.T
    return float(b @ np.linalg.solve(vb, b))


def _starting_beta(counts: _Counts, X: Array) -> list[float]:
    """Starting values of the treatment coefficients: the Mantel-Haenszel-type pooled effect
    for the intercept alone; else the weighted least-squares regression of the studies'
    effects (1/2 added to every cell) on X."""
    if X.shape[1] == 1 and np.all(X == 1.0):
        return [_starting_theta(counts)]
    x1, n1, x2, n2 = counts.x1, counts.n1, counts.x2, counts.n2
    if counts.measure == "PLO":
        y = np.log((x1 + 0.5) / (n1 - x1 + 0.5))
        v = 1 / (x1 + 0.5) + 1 / (n1 - x1 + 0.5)
    elif counts.measure == "IRLN":
        y = np.log((x1 + 0.5) / n1)
        v = 1 / (x1 + 0.5)
    elif counts.measure == "IRR":
        y = np.log((x1 + 0.5) / n1) - np.log((x2 + 0.5) / n2)
        v = 1 / (x1 + 0.5) + 1 / (x2 + 0.5)
    else:
        y = np.log((x1 + 0.5) * (n2 - x2 + 0.5) / ((n1 - x1 + 0.5) * (x2 + 0.5)))
        v = 1 / (x1 + 0.5) + 1 / (n1 - x1 + 0.5) + 1 / (x2 + 0.5) + 1 / (n2 - x2 + 0.5)
    sw = 1.0 / np.sqrt(v)
    return [float(b) for b in np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)[0]]


# ---------------------------------------------------------------------------------------------
# Entry points


@dataclass(frozen=True)
class _Fitted:
    """Everything :func:`fit_glmm` and :func:`fit_glmm_regression` report, before the tests."""

    measure: str
    model: str
    k: int
    p: int
    result_fit: _Fit
    ml: _Fit
    fe: _Fit
    common_fit: _Fit
    loglik_saturated: float
    qe_df: int
    qe_wald: float | None
    qe_lrt: float
    tau2: float
    se_tau2: float | None
    sigma2: float | None
    boundary: bool
    convergence: GlmmConvergence
    contributes: tuple[bool, ...]
    notes: tuple[str, ...]


def _check_model(measure: str, model: str) -> tuple[str, str]:
    measure, model = measure.upper(), model.upper()
    if measure not in GLMM_MEASURES:
        raise ModelError(
            f"GLMMs are fitted for OR (2x2 counts), IRR (events over person-time), PLO "
            f"(one group's events and totals) and IRLN (one group's events over person-time), "
            f"not {measure}"
        )
    if model not in GLMM_MEASURES[measure]:
        allowed = ", ".join(GLMM_MEASURES[measure])
        raise ModelError(f"--glmm {model} does not apply to {measure} (choose {allowed})")
    return measure, model


def _fit_models(
    measure: str,
    model: str,
    x1: Sequence[float],
    n1: Sequence[float],
    x2: Sequence[float] | None,
    n2: Sequence[float] | None,
    X: Array,
) -> _Fitted:
    """Fit the model with treatment effect X beta (X: one row per study passed, full rank),
    its fixed-effects counterpart and the saturated model."""
    a1 = np.asarray(x1, dtype=float)
    b1 = np.asarray(n1, dtype=float)
    one_group = measure in ONE_GROUP
    a2 = np.zeros_like(a1) if one_group else np.asarray(x2, dtype=float)
    b2 = np.ones_like(a1) if one_group else np.asarray(n2, dtype=float)
    counts_all = _Counts(measure, a1, b1, a2, b2)
    k_all = counts_all.k
    p = X.shape[1]
    if one_group:
        informative = np.ones(k_all, dtype=bool)
    elif measure == "IRR":
        informative = (a1 + a2) > 0
    else:
        informative = ((a1 + a2) > 0) & ((b1 - a1 + b2 - a2) > 0)
    if model == "UM.RS":
        informative = np.ones(k_all, dtype=bool)
    elif model == "CM.AL" and measure == "OR":
        informative = (a1 + a2) > 0
    needed = max(2, p + 1)
    if k_all < needed or int(informative.sum()) < needed:
        raise ModelError(
            f"the GLMM ({model}) needs at least {needed} studies whose counts inform it "
            f"({int(informative.sum())} here)"
        )
    idx = np.flatnonzero(informative)
    counts = _Counts(measure, a1[idx], b1[idx], a2[idx], b2[idx])
    Xi = X[idx]
    if p > 1 and int(np.linalg.matrix_rank(Xi)) < p:
        raise ModelError(
            "the moderators are collinear in the studies that inform the GLMM: a coefficient "
            "cannot be estimated"
        )
    beta0 = _starting_beta(counts, Xi)

    notes: list[str] = []
    wald: float | None
    common_fit: _Fit | None = None
    if model == "UM.FS" and measure not in ONE_GROUP:
        fe = _fit_um_fs(counts, Xi, beta0, with_tau=False)
        ml = _fit_um_fs(counts, Xi, beta0, with_tau=True, start=fe)
        family, _ = _two_arm(counts)
        ll_sat = family.saturated()
        wald = _saturated_wald(counts, model, Xi)
        algorithm, integration, nodes = "Newton", "adaptive Gauss-Hermite", NAGQ
    elif model == "UM.RS":
        fe = _fit_um_rs(counts, Xi, beta0, with_tau=False)
        ml = _fit_um_rs(counts, Xi, beta0, with_tau=True, start=fe)
        # metafor's method = "EE" fit keeps lme4's nAGQ = 7 (its ML fit, and the LRT's
        # fixed-effects model within it, use the Laplace approximation)
        common_fit = _fit_um_rs(counts, Xi, beta0, with_tau=False, start=fe, nodes=NAGQ)
        sat, finite = _fit_um_rs_saturated(counts, fe)
        ll_sat = sat.opt.loglik
        wald = None
        if sat.opt.cov_nuisance is not None and sat.opt.nuisance is not None:
            keep = np.flatnonzero(finite)
            wald = _wald_in_span(
                sat.opt.nuisance[keep], sat.opt.cov_nuisance[np.ix_(keep, keep)], Xi[keep]
            )
        algorithm, integration, nodes = "Newton", "Laplace", 1
    elif model == "CM.EL" and measure == "OR":
        nch, off, _ = _one_re_family(counts, model)
        assert isinstance(nch, _NoncentralHypergeometric)
        fe = _fit_one_re(nch, off, Xi, False, 1, beta0)
        ml = _fit_one_re(nch, off, Xi, True, EXACT_NODES, list(fe.beta))
        psi, info, ll_each = _conditional_mle(nch)
        ll_sat = float(np.sum(ll_each))
        with np.errstate(divide="ignore"):
            wald = _residual_q(np.where(info > 0, psi, np.nan), 1.0 / info, Xi)
        algorithm, integration, nodes = "Newton", "adaptive Gauss-Hermite", EXACT_NODES
    else:  # CM.AL (OR), CM.EL (IRR), PLO: the binomial-normal model; IRLN: Poisson-normal
        family, off, _ = _one_re_family(counts, model)
        fe = _fit_one_re(family, off, Xi, False, 1, beta0)
        ml = _fit_one_re(family, off, Xi, True, NAGQ, list(fe.beta))
        ll_sat = family.saturated()
        wald = _saturated_wald(counts, model, Xi)
        algorithm, integration, nodes = "Newton", "adaptive Gauss-Hermite", NAGQ

    boundary = ml.tau < BOUNDARY_TAU or ml.opt.loglik < fe.opt.loglik
    result_fit = fe if boundary else ml
    if boundary:
        notes.append(
            "tau² is estimated at the boundary (0): the likelihood is largest without "
            "between-study variance, so the random-effects estimate equals the fixed-effects one"
        )
    if not ml.opt.converged:
        notes.append(
            f"the maximization of the {model} likelihood did not converge in "
            f"{ml.opt.iterations} iterations (largest gradient {ml.opt.max_gradient:.2g})"
        )
    if not all(math.isfinite(v) for v in np.diag(result_fit.cov_beta)) or np.any(
        np.diag(result_fit.cov_beta) <= 0
    ):
        what = "pooled effect" if p == 1 else "coefficients"
        raise ModelError(
            f"the {model} likelihood is flat at its maximum: the standard error of the {what} "
            "cannot be computed (too few events?)"
        )
    tau2 = 0.0 if boundary else ml.tau**2
    se_tau2: float | None = None
    if (
        model == "CM.EL"
        and measure == "OR"
        and not boundary
        and ml.opt.cov_shared is not None
        and ml.tau_index is not None
    ):
        var_tau = ml.opt.cov_shared[ml.tau_index, ml.tau_index]
        se_tau2 = 2.0 * ml.tau * math.sqrt(var_tau) if var_tau > 0 else None
    sigma2 = None
    if model == "UM.RS":
        sigma = result_fit.sigma
        sigma2 = None if sigma is None else sigma**2
    return _Fitted(
        measure=measure,
        model=model,
        k=k_all,
        p=p,
        result_fit=result_fit,
        ml=ml,
        fe=fe,
        common_fit=common_fit or fe,
        loglik_saturated=ll_sat,
        qe_df=k_all - p,
        qe_wald=None if wald is None else max(0.0, wald),
        qe_lrt=max(0.0, -2.0 * (fe.opt.loglik - ll_sat)),
        tau2=tau2,
        se_tau2=se_tau2,
        sigma2=sigma2,
        boundary=boundary,
        convergence=GlmmConvergence(
            converged=ml.opt.converged,
            iterations=ml.opt.iterations,
            algorithm=algorithm,
            integration=integration,
            nodes=nodes,
            max_gradient=ml.opt.max_gradient,
        ),
        contributes=tuple(bool(v) for v in informative),
        notes=tuple(notes),
    )


def fit_glmm(
    measure: str,
    model: str,
    x1: Sequence[float],
    n1: Sequence[float],
    x2: Sequence[float] | None = None,
    n2: Sequence[float] | None = None,
    level: float = 0.95,
) -> GlmmResult:
    """Fit metafor's ``rma.glmm(measure, model)`` (intercept only, ``method = "ML"``).

    Parameters
    ----------
    measure : {"OR", "IRR", "PLO", "IRLN"}
    model : {"UM.FS", "UM.RS", "CM.EL", "CM.AL"}
        See the module docstring; PLO has the one binomial-normal model ("UM.FS"), IRLN the one
        Poisson-normal model ("UM.FS").
    x1, n1, x2, n2 : sequences of numbers
        OR: events and totals of the treated (x1 of n1) and control (x2 of n2) groups; IRR:
        events and person-time; PLO: events and totals of the one group, IRLN: its events and
        person-time (x2, n2 not given).
    level : float
        Confidence level as a fraction.

    Raises
    ------
    ModelError
        The model does not apply to the measure, fewer than 2 studies inform the model, or the
        likelihood cannot be maximized.
    """
    measure, model = _check_model(measure, model)
    X = np.ones((len(x1), 1))
    f = _fit_models(measure, model, x1, n1, x2, n2, X)
    theta, se = f.result_fit.theta, f.result_fit.se
    crit = z_crit(level)
    df = f.qe_df
    cf = f.common_fit
    cf_se = cf.se
    common = GlmmCommon(
        theta=cf.theta,
        se=cf_se,
        z=cf.theta / cf_se,
        p_value=norm_p_two_sided(cf.theta / cf_se),
        ci_low=cf.theta - crit * cf_se,
        ci_high=cf.theta + crit * cf_se,
        loglik=cf.opt.loglik,
        sigma2=None if cf.sigma is None else cf.sigma**2,
    )
    z = theta / se
    return GlmmResult(
        measure=measure,
        model=model,
        level=level,
        k=f.k,
        theta=theta,
        se=se,
        z=z,
        p_value=norm_p_two_sided(z),
        ci_low=theta - crit * se,
        ci_high=theta + crit * se,
        tau2=f.tau2,
        se_tau2=f.se_tau2,
        sigma2=f.sigma2,
        loglik=f.result_fit.opt.loglik,
        loglik_fe=f.fe.opt.loglik,
        loglik_saturated=f.loglik_saturated,
        qe_df=df,
        qe_wald=f.qe_wald,
        qe_wald_p=None if f.qe_wald is None else chi2_sf(f.qe_wald, df),
        qe_lrt=f.qe_lrt,
        qe_lrt_p=chi2_sf(f.qe_lrt, df),
        boundary=f.boundary,
        common=common,
        convergence=f.convergence,
        contributes=f.contributes,
        notes=f.notes,
    )


def loglik_at(
    measure: str,
    model: str,
    x1: Sequence[float],
    n1: Sequence[float],
    x2: Sequence[float] | None,
    n2: Sequence[float] | None,
    theta: float | Sequence[float],
    tau: float,
    intercepts: Sequence[float] | None = None,
    mu: float | None = None,
    sigma: float | None = None,
    X: Sequence[Sequence[float]] | Array | None = None,
) -> float:
    """The log-likelihood :func:`fit_glmm` (or, with the design ``X`` and ``theta`` its
    coefficients, :func:`fit_glmm_regression`) maximizes, at given parameters, over every study
    passed (to compare optima with another program's).

    UM.FS needs one ``intercepts`` value per study (alpha_i), UM.RS ``mu`` and ``sigma``.
    """
    measure, model = measure.upper(), model.upper()
    a1 = np.asarray(x1, dtype=float)
    b1 = np.asarray(n1, dtype=float)
    if measure in ONE_GROUP:
        a2, b2 = np.zeros_like(a1), np.ones_like(a1)
    else:
        a2, b2 = np.asarray(x2, dtype=float), np.asarray(n2, dtype=float)
    counts = _Counts(measure, a1, b1, a2, b2)
    beta = list(np.atleast_1d(np.asarray(theta, dtype=float)))
    design = np.ones((counts.k, 1)) if X is None else np.asarray(X, dtype=float)
    if model == "UM.FS" and measure not in ONE_GROUP:
        if intercepts is None:
            raise ValueError("UM.FS needs the study intercepts")
        fun = _um_fs_loglik(counts, design, True)
        nu = np.asarray(intercepts, dtype=float)[None, :]
        return float(np.sum(fun(np.array([[*beta, tau]]), nu)))
    if model == "UM.RS":
        if mu is None or sigma is None:
            raise ValueError("UM.RS needs mu and sigma")
        fun = _um_rs_loglik(counts, design, True)
        return float(np.sum(fun(np.array([[mu, *beta, sigma, tau]]), None)))
    family, off, nodes = _one_re_family(counts, model)
    fun = _one_re_loglik(family, off, design, True, nodes)
    return float(np.sum(fun(np.array([[*beta, tau]]), None)))


@dataclass(frozen=True)
class GlmmRegressionResult:
    """A GLMM with moderators (metafor's ``rma.glmm(..., mods = ~ ...)``): the treatment effect
    (log OR, log IRR, logit) is X beta + u_i, X the design with an intercept.

    ``vcov`` is Var(beta) (inverse observed information), ``z``/``p_values``/CIs Wald z, or t on
    k - p df with ``test = "t"``. ``qm`` is the Wald test that the coefficients but the
    intercept are 0 (chi² on p - 1 df; under ``test = "t"`` divided by p - 1 and F on p - 1 and
    k - p df). ``qe_wald``/``qe_lrt`` test the residual heterogeneity: the saturated model (one
    effect per study) against the fixed-effects model with the moderators, on k - p df. The
    ``common_*`` fields are that fixed-effects fit (tau² = 0; metafor's ``method = "EE"``).
    """

    measure: str
    model: str
    level: float
    test: str
    k: int
    names: tuple[str, ...]
    beta: tuple[float, ...]
    se: tuple[float, ...]
    z: tuple[float, ...]
    p_values: tuple[float, ...]
    ci_low: tuple[float, ...]
    ci_high: tuple[float, ...]
    vcov: tuple[tuple[float, ...], ...]
    df: int | None
    qm: float | None
    qm_df: int
    qm_df2: int | None
    qm_p_value: float | None
    tau2: float
    se_tau2: float | None
    sigma2: float | None
    loglik: float
    loglik_fe: float
    loglik_saturated: float
    qe_df: int
    qe_wald: float | None
    qe_wald_p: float | None
    qe_lrt: float
    qe_lrt_p: float | None
    boundary: bool
    common_beta: tuple[float, ...]
    common_se: tuple[float, ...]
    common_loglik: float
    common_sigma2: float | None
    convergence: GlmmConvergence
    contributes: tuple[bool, ...]
    notes: tuple[str, ...] = ()

    @property
    def p(self) -> int:
        return len(self.beta)

    @property
    def parameters(self) -> int:
        """Parameters counted by the fit statistics, as metafor's ``parms``: p + 1 (tau²), plus
        the k study intercepts (UM.FS) or mu and sigma² (UM.RS)."""
        if self.model == "UM.FS" and self.measure not in ONE_GROUP:
            return self.p + self.k + 1
        if self.model == "UM.RS":
            return self.p + 3
        return self.p + 1

    @property
    def observations(self) -> int:
        """The sample size of BIC and AICc, as metafor's ``k.eff``: 2k for the unconditional
        models of two groups (one row per group), else k."""
        two_rows = self.model in ("UM.FS", "UM.RS") and self.measure not in ONE_GROUP
        return 2 * self.k if two_rows else self.k

    def fit_statistics(self) -> tuple[float, float, float, float, float]:
        """(log-likelihood, deviance, AIC, BIC, AICc) under ML, as metafor's ``fit.stats``
        with the marginal log-likelihood (the deviance against the saturated model)."""
        return glmm_fit_statistics(
            self.loglik, self.loglik_saturated, self.parameters, self.observations
        )

    @property
    def title(self) -> str:
        return MODEL_TITLES.get(self.model, self.model)


def glmm_fit_statistics(
    loglik: float, loglik_saturated: float, parameters: int, observations: int
) -> tuple[float, float, float, float, float]:
    """(ll, deviance, AIC, BIC, AICc) of a GLMM: deviance -2 (ll - ll_saturated), AIC -2 ll +
    2 m, BIC -2 ll + m log n, AICc -2 ll + 2 m n' / (n' - m - 1) with n' = max(n, m + 2)."""
    m, n = parameters, observations
    nn = max(n, m + 2)
    return (
        loglik,
        -2.0 * (loglik - loglik_saturated),
        -2.0 * loglik + 2.0 * m,
        -2.0 * loglik + m * math.log(n),
        -2.0 * loglik + 2.0 * m * nn / (nn - m - 1),
    )


def _standardize(X: Array) -> tuple[Array, Array]:
    """X with its non-indicator moderator columns centred and scaled (as metafor's scaleX), and
    the matrix M with beta = M beta_scaled."""
    p = X.shape[1]
    Xs = X.copy()
    M = np.eye(p)
    for j in range(1, p):
        col = X[:, j]
        if np.all((col == 0.0) | (col == 1.0)):
            continue
        mean, sd = float(np.mean(col)), float(np.std(col, ddof=1))
        if not sd > 0:
            continue
        Xs[:, j] = (col - mean) / sd
        M[j, j] = 1.0 / sd
        M[0, j] = -mean / sd
    return Xs, M


def fit_glmm_regression(
    measure: str,
    model: str,
    x1: Sequence[float],
    n1: Sequence[float],
    x2: Sequence[float] | None,
    n2: Sequence[float] | None,
    X: Sequence[Sequence[float]] | Array,
    names: Sequence[str],
    level: float = 0.95,
    test: str = "z",
) -> GlmmRegressionResult:
    """Fit metafor's ``rma.glmm(measure, model, mods = ...)`` with design ``X`` (one row per
    study passed, first column the intercept; ``names`` its columns), ``method = "ML"``.

    ``test``: ``"z"`` (Wald z, chi² QM) or ``"t"`` (t on k - p df, F QM). The moderator columns
    are centred and scaled for the maximization (as metafor's ``scaleX``) and the coefficients
    transformed back, which leaves the maximum likelihood fit unchanged.

    Raises
    ------
    ModelError
        The model does not apply to the measure, fewer than p + 1 studies inform the model, the
        moderators are collinear, or the likelihood cannot be maximized.
    """
    from ivigmeta.core.distributions import f_sf, t_crit, t_p_two_sided

    measure, model = _check_model(measure, model)
    design = np.asarray(X, dtype=float)
    if design.ndim != 2 or design.shape[0] != len(x1) or not np.all(design[:, 0] == 1.0):
        raise ValueError("X needs one row per study and the intercept as its first column")
    test = test.lower()
    if test not in ("z", "t"):
        raise ModelError(f"the GLMM's tests are Wald z or t, not {test}")
    Xs, M = _standardize(design)
    f = _fit_models(measure, model, x1, n1, x2, n2, Xs)
    p = design.shape[1]
    beta = M @ f.result_fit.beta
    vb = M @ f.result_fit.cov_beta @ M.T
    se = np.sqrt(np.diag(vb))
    z = beta / se
    df = f.k - p if test == "t" else None
    if df is not None:
        if df < 1:
            raise ModelError(f"--ci t needs more studies than coefficients (k = {f.k}, p = {p})")
        pv = np.array([t_p_two_sided(float(v), df) for v in z])
        crit = t_crit(level, df)
    else:
        pv = np.array([norm_p_two_sided(float(v)) for v in z])
        crit = z_crit(level)
    qm: float | None = None
    qm_p: float | None = None
    m = p - 1
    if m > 0:
        b = beta[1:]
        qm = float(b @ np.linalg.solve(vb[1:, 1:], b))
        if df is not None:
            qm /= m
            qm_p = f_sf(qm, m, df)
        else:
            qm_p = chi2_sf(qm, m)
    cf = f.common_fit
    c_beta = M @ cf.beta
    c_se = np.sqrt(np.diag(M @ cf.cov_beta @ M.T))
    return GlmmRegressionResult(
        measure=measure,
        model=model,
        level=level,
        test=test,
        k=f.k,
        names=tuple(names),
        beta=tuple(float(v) for v in beta),
        se=tuple(float(v) for v in se),
        z=tuple(float(v) for v in z),
        p_values=tuple(float(v) for v in pv),
        ci_low=tuple(float(v) for v in beta - crit * se),
        ci_high=tuple(float(v) for v in beta + crit * se),
        vcov=tuple(tuple(float(v) for v in row) for row in vb),
        df=df,
        qm=qm,
        qm_df=m,
        qm_df2=df if m > 0 else None,
        qm_p_value=qm_p,
        tau2=f.tau2,
        se_tau2=f.se_tau2,
        sigma2=f.sigma2,
        loglik=f.result_fit.opt.loglik,
        loglik_fe=f.fe.opt.loglik,
        loglik_saturated=f.loglik_saturated,
        qe_df=f.qe_df,
        qe_wald=f.qe_wald,
        qe_wald_p=None if f.qe_wald is None or f.qe_df < 1 else chi2_sf(f.qe_wald, f.qe_df),
        qe_lrt=f.qe_lrt,
        qe_lrt_p=None if f.qe_df < 1 else chi2_sf(f.qe_lrt, f.qe_df),
        boundary=f.boundary,
        common_beta=tuple(float(v) for v in c_beta),
        common_se=tuple(float(v) for v in c_se),
        common_loglik=cf.opt.loglik,
        common_sigma2=None if cf.sigma is None else cf.sigma**2,
        convergence=f.convergence,
        contributes=f.contributes,
        notes=f.notes,
    )
