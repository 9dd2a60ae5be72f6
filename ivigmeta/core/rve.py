"""Robust variance estimation for dependent effect sizes: the correlated and hierarchical
effects models of Hedges, Tipton & Johnson (2010; erratum 1(2): 164-165), with Tipton's (2015)
small-sample correction, as the R package robumeta 2.0-3 computes them (``robu(formula, data,
studynum, var.eff.size, modelweights = "CORR" | "HIER", rho, small)``; Fisher & Tipton 2015,
arXiv:1503.02220).

Effects i of study j (k_j of them, M in all, N studies), design X (p columns, intercept
first), sampling variances v_ij, v̄_j the study's mean variance; J_j the k_j x k_j matrix of
ones. Both models first fit beta by WLS with working weights w⁰ (CORR: w⁰_ij = 1 / (k_j v̄_j);
HIER: 1 / v_ij), residuals e, V = (X' W⁰ X)^-1 and QE = e' W⁰ e, then estimate the variance
components by the method of moments (each truncated at 0):

* CORR: tau² = [QE - N + tr(V Σ_j X_j' W⁰_j X_j / k_j)
  + rho tr(V Σ_j w⁰_j (X_j' J_j X_j - X_j' X_j))] / [Σ w⁰ - tr(V Σ_j X_j' W⁰_j J_j W⁰_j X_j)]
  (the numerator's terms with rho are robumeta's ``term1`` and ``term2``); I² = max(0, (QE -
  df) / QE) with df = N - tr(V Σ X_j' W⁰_j X_j / k_j) - rho tr(V Σ w⁰_j (X_j' J X_j - X_j' X_j)).
  Final weights w_ij = 1 / (k_j (v̄_j + tau²)).
* HIER (tau² between clusters, omega² between the effects within a cluster): with
  Qa = Σ_j (1' e_j)², A1 = Σ k_j² - 2 tr(V Σ k_j X_j'1 1'W⁰_j X_j) + tr(V Σ X_j'J X_j V Σ X_j'W⁰J W⁰X_j),
  B1 = M - 2 tr(V Σ X_j'W⁰_j J X_j) + tr(V Σ X_j'J X_j V Σ X_j'W⁰² X_j), C1 = Σ v - tr(V Σ
  X_j'J X_j), A2 = Σ w⁰ - tr(V Σ X_j'W⁰J W⁰X_j), B2 = Σ w⁰ - tr(V Σ X_j'W⁰² X_j), C2 = M - p:
  omega² = [(Qa - C1) A2 - (QE - C2) A1] / (B1 A2 - B2 A1), tau² = (QE - C2) / A2 - omega² B2 / A2
  (with omega² already truncated). Final weights w_ij = 1 / (v_ij + tau² + omega²).

beta = (X' W X)^-1 X' W y with the final weights, residuals e. Its robust variance:

* ``small = False`` (Hedges, Tipton & Johnson 2010): (X'WX)^-1 [Σ_j X_j' W_j e_j e_j' W_j
  X_j] (X'WX)^-1 times N / (N - p), t tests and intervals on N - p df;
* ``small = True`` (Tipton 2015): the CR2 bias-reduced linearization with the working model
  Theta = W^-1 (robumeta's A_j = (I - H_jj)^(-1/2) for CORR and Theta_j^(1/2) (Theta_j^(1/2)
  (I - H_jj) Theta_j^(3/2))^(-1/2) Theta_j^(1/2) for HIER are that adjustment), each
  coefficient on its Satterthwaite df (tr P)² / tr(P²): the arithmetic is
  :func:`ivigmeta.core.sandwich.cr2_weighted`, with robumeta's eigenvalue threshold 1e-10 on
  I - H_jj for CORR. For HIER robumeta applies it to Theta_j^(1/2) (I - H_jj) Theta_j^(3/2),
  whose eigenvalues scale with the square of the variances (effects with variances ~1e-6 have
  every eigenvalue dropped: robumeta reports SE 0); here it is applied to that matrix divided by
  the square of the cluster's mean working variance, which leaves robumeta's results wherever
  they are not degenerate and makes the correction scale-free.

numpy is imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

MODELS = ("correlated", "hierarchical")
#: robumeta's ``eigenval < 10^-10`` in the small-sample adjustment
ROBUMETA_EIGEN_TOL = 1e-10
#: a method-of-moments denominator at most this share of its terms is 0: no estimate
DEGENERATE_SHARE = 1e-12


class RVEDegenerate(ValueError):
    """The model's moments do not identify its variance components (the message says why)."""


@dataclass(frozen=True)
class RVEEstimate:
    """The arithmetic of one robust variance estimation fit (:func:`rve_fit`)."""

    model: str
    rho: float | None
    small: bool
    tau2: float
    #: HIER: the within-cluster component (None for CORR)
    omega2: float | None
    #: CORR: robumeta's I² in percent (None for HIER, or when QE = 0)
    i2: float | None
    #: the working-weight QE of the first-stage fit
    qe: float
    #: CORR: the df robumeta's I² compares QE with (N - termA - rho termB)
    qe_df: float | None
    beta: np.ndarray
    vcov: np.ndarray
    se: np.ndarray
    #: the t df of each coefficient (N - p, or the Satterthwaite df)
    df: np.ndarray
    #: the final weights of the effects
    weights: np.ndarray
    n_clusters: int


def _wls(X: np.ndarray, w: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    inv = np.linalg.inv((X.T * w) @ X)
    return inv @ ((X.T * w) @ y), inv


def rve_fit(
    y: np.ndarray,
    v: np.ndarray,
    X: np.ndarray,
    cluster_of: np.ndarray,
    model: str = "correlated",
    rho: float = 0.8,
    small: bool = True,
) -> RVEEstimate:
    """Fit the correlated (``rho``: the assumed correlation of a study's effects) or hierarchical
    effects model of y on ``X`` (intercept first), effects in clusters ``cluster_of`` (0..N-1,
    every cluster present). Raises numpy's LinAlgError when a X' W X is singular and
    :class:`RVEDegenerate` when the moments do not identify tau² (and omega²)."""
    import numpy as np

    from ivigmeta.core.sandwich import cr2_weighted

    y = np.asarray(y, dtype=float)
    v = np.asarray(v, dtype=float)
    X = np.asarray(X, dtype=float)
    ids = np.asarray(cluster_of, dtype=int)
    M, p = X.shape
    N = int(ids.max()) + 1
    kj = np.bincount(ids, minlength=N).astype(float)
    vbar = np.bincount(ids, weights=v, minlength=N) / kj
    k = kj[ids]

    # t_j = X_j' 1 and s_j = X_j' w_j: a study's column sums, plain and weighted
    def sums(weights: np.ndarray) -> np.ndarray:
        out = np.zeros((N, p))
        np.add.at(out, ids, X * weights[:, None])
        return out

    t = sums(np.ones(M))
    if model == "correlated":
        w0 = 1.0 / (k * vbar[ids])
    else:
        w0 = 1.0 / v
    b0, Vi = _wls(X, w0, y)
    e0 = y - X @ b0
    qe = float(np.sum(w0 * e0 * e0))
    s = sums(w0)
    xwjwx = s.T @ s
    sum_w = float(w0.sum())
    omega2: float | None = None
    i2: float | None = None
    qe_df: float | None = None

    def tr(a: np.ndarray) -> float:
        return float(np.trace(a))

    if model == "correlated":
        denom = sum_w - tr(Vi @ xwjwx)
        term_a = tr(Vi @ ((X.T * (w0 / k)) @ X))
        wj = 1.0 / (kj * vbar)  # w⁰ of study j (the same for its effects)
        xjx = np.einsum("j,jp,jq->pq", wj / kj, t, t) - (X.T * (w0 / k)) @ X
        term_b = tr(Vi @ xjx)
        if not denom > DEGENERATE_SHARE * sum_w:
            raise RVEDegenerate(
                "the moment estimator of tau² has no denominator (the studies' weighted "
                "design leaves no between-study information)"
            )
        tau2 = max((qe - N + term_a) / denom + rho * term_b / denom, 0.0)
        qe_df = N - term_a - rho * term_b
        if qe > 0:
            i2 = max((qe - qe_df) / qe * 100.0, 0.0)
        w = 1.0 / (k * (vbar[ids] + tau2))
    else:
        e_sum = np.bincount(ids, weights=e0, minlength=N)
        qa = float(np.sum(e_sum * e_sum))
        xjx = t.T @ t
        xwwx = (X.T * (w0 * w0)) @ X
        xwjjx = np.einsum("j,jp,jq->pq", kj, s, t)  # Σ X_j' W_j J J X_j = k_j s_j t_j'
        xwjx = s.T @ t
        a1 = float(np.sum(kj * kj)) - tr(Vi @ xwjjx.T) - tr(Vi @ xwjjx) + tr(Vi @ xjx @ Vi @ xwjwx)
        b1 = M - tr(Vi @ xwjx) - tr(Vi @ xwjx.T) + tr(Vi @ xjx @ Vi @ xwwx)
        c1 = float(v.sum()) - tr(Vi @ xjx)
        a2 = sum_w - tr(Vi @ xwjwx)
        b2 = sum_w - tr(Vi @ xwwx)
        c2 = M - p
        den = b1 * a2 - b2 * a1
        if not abs(den) > DEGENERATE_SHARE * (abs(b1 * a2) + abs(b2 * a1)) or not a2 > 0:
            raise RVEDegenerate(
                "the moment estimators of tau² and omega² are not identified (every cluster "
                "has a single effect, or the design leaves no within-cluster information)"
            )
        omega2 = max(((qa - c1) * a2 - (qe - c2) * a1) / den, 0.0)
        tau2 = max((qe - c2) / a2 - omega2 * (b2 / a2), 0.0)
        w = 1.0 / (v + tau2 + omega2)

    beta, bread = _wls(X, w, y)
    e = y - X @ beta
    if small:
        # robumeta's threshold relative to the square of the cluster's mean working variance:
        # exactly robumeta's for CORR (where it is I - H_jj), scale-free for HIER
        theta = w.mean() / w  # the working variances on the mean-1 scale of cr2_weighted
        scale = 1.0 / (np.bincount(ids, weights=theta, minlength=N) / kj) ** 2
        sandwich = cr2_weighted(X, w, e, ids, ROBUMETA_EIGEN_TOL, scale)
        vcov = sandwich.vcov
        df = np.array([sandwich.satterthwaite(np.eye(p)[j]) for j in range(p)])
    else:
        scores = np.zeros((N, p))
        np.add.at(scores, ids, (bread @ (X.T * w) * e).T)
        vcov = scores.T @ scores * (N / (N - p))
        df = np.full(p, float(N - p))
    se = np.sqrt(np.clip(np.diag(vcov), 0.0, None))
    return RVEEstimate(
        model=model,
        rho=float(rho) if model == "correlated" else None,
        small=bool(small),
        tau2=float(tau2),
        omega2=None if omega2 is None else float(omega2),
        i2=i2,
        qe=qe,
        qe_df=qe_df,
        beta=beta,
        vcov=vcov,
        se=se,
        df=df,
        weights=w,
        n_clusters=N,
    )


__all__ = ["MODELS", "ROBUMETA_EIGEN_TOL", "RVEDegenerate", "RVEEstimate", "rve_fit"]
