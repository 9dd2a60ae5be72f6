"""The CR2 bias-reduced linearization sandwich for a weighted regression y = X beta + u + e
fitted with W = diag(1 / (v + tau²)), and its small-sample tests (Bell & McCaffrey 2002;
McCaffrey, Bell & Botts 2001; Tipton 2015; Tipton & Pustejovsky 2015; Pustejovsky & Tipton
2018), as the R package clubSandwich computes them for an rma.uni fit (``vcovCR(fit, cluster,
type = "CR2")``, ``coef_test(test = "Satterthwaite")``, ``linear_contrast``,
``Wald_test(test = "HTZ")``; metafor's ``robust(fit, cluster, clubSandwich = TRUE)``).

With the weights scaled to mean 1 (w~ = w / mean(w), as clubSandwich does; the results do not
depend on the scale except through the eigenvalue threshold below), the working covariance of
cluster j is Theta_j = diag(1 / w~_j), M_U = (X' W~ X)^-1 and M = (X' W X)^-1:

* B_j = Theta_j - X_j M_U X_j' (Bell & McCaffrey's matrix; Theta_j (I - H_jj));
* the adjustment A_j = Theta_j^(1/2) (Theta_j^(1/2) B_j Theta_j^(1/2))^(-1/2) Theta_j^(1/2),
  the inverse square root taken on the range: eigenvalues at most 1e-12 give 0
  (clubSandwich's ``matrix_power``), so a cluster fitted exactly (B_j = 0) has A_j = 0;
* the sandwich Var_CR2(beta) = sum_j (M_U X_j' W~_j A_j e_j)(M_U X_j' W~_j A_j e_j)';
* for a contrast c (a coefficient, or a prediction's design row): with
  G_j = M X_j' W~_j A_j Theta_j^(1/2) and r_j = c M X_j' W~_j A_j X_j L (L L' = M_U), the matrix
  P_c (clusters x clusters) has P_jj = |c G_j|² - |r_j|² and P_jk = -r_j . r_k; the
  Satterthwaite degrees of freedom are df = 2 tr(P_c)² / (2 sum P_c²) (clubSandwich's
  ``Satterthwaite``), tr(P_c) being E[c Var_CR2 c'] under the working model (divided by
  mean(w));
* the omnibus test of q constraints C beta = 0 (HTZ): Q = (C b)' (C Var_CR2 C')^-1 (C b);
  Omega = sum_j P_jj over the q x q contrasts, B_jk = Omega^(-1/2) P_jk Omega^(-1/2) (the same
  P with the rows of Omega^(-1/2) C), nu = q (q + 1) / sum_st [sum_jk B_jk,st B_jk,ts +
  B_jk,ss B_jk,tt]; F = delta Q / q with delta = max((nu - q + 1) / nu, 0) on (q, nu - q + 1) df
  (Hotelling's T² approximation; no p-value when nu - q + 1 <= 0).

Sums over pairs of clusters are taken in closed form (sum_jk (r_j . r_k)² = |sum_j r_j r_j'|²),
so memory grows with the studies, not with the square of the clusters.

numpy is imported inside the functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

#: eigenvalues at or below this are dropped by the restricted matrix powers (clubSandwich's
#: ``matrix_power(x, p, tol = -12)``: values > 10^-12)
EIGEN_TOL = 1e-12
#: a contrast whose expected CR2 variance is below this share of its model-based variance rests
#: on clusters fitted exactly: its Satterthwaite df are 0 / 0 (clubSandwich: NaN)
UNDEFINED_DF_SHARE = 1e-10


def restricted_power(a: np.ndarray, power: float, tol: float = EIGEN_TOL) -> np.ndarray:
    """The symmetric matrix ``a`` to ``power`` on the eigenvectors whose eigenvalues exceed
    ``tol`` (default :data:`EIGEN_TOL`; 0 on the others): the inverse square root restricted to
    the range."""
    import numpy as np

    values, vectors = np.linalg.eigh(a)
    keep = values > tol
    scaled = np.where(keep, np.abs(values), 1.0) ** power * keep
    return (vectors * scaled) @ vectors.T


@dataclass(frozen=True)
class HotellingTest:
    """The HTZ test of q constraints: F = delta Q / q on (q, nu - q + 1) df; ``p_value`` None
    when the denominator df are not positive."""

    q_statistic: float
    f_statistic: float
    delta: float
    df_num: int
    df_denom: float
    p_value: float | None


@dataclass(frozen=True)
class CR2Sandwich:
    """The CR2 sandwich of one fit and what its Satterthwaite and HTZ tests need."""

    #: Var_CR2(beta), p x p
    vcov: np.ndarray
    #: G_j of every cluster side by side: p x k (column i belongs to cluster ``cluster_of[i]``)
    g: np.ndarray
    cluster_of: np.ndarray
    #: M X_j' W~_j A_j X_j L per cluster: n_clusters x p x p
    h: np.ndarray
    #: M = (X' W X)^-1, the model-based Var(beta)
    model_vcov: np.ndarray
    n_clusters: int

    def _parts(self, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For the q x p contrasts ``c``: D (n_clusters x q x q, D_j = (c G_j)(c G_j)') and
        R (n_clusters x q x p, R_j = c H_j)."""
        import numpy as np

        cg = c @ self.g  # q x k
        q = c.shape[0]
        d = np.zeros((self.n_clusters, q, q))
        np.add.at(d, self.cluster_of, np.einsum("si,ti->ist", cg, cg))
        r = np.einsum("sp,jpr->jsr", c, self.h)
        return d, r

    def satterthwaite(self, c: np.ndarray) -> float:
        """The Satterthwaite degrees of freedom of the contrast ``c`` (length p); NaN when its
        expected CR2 variance vanishes (see :data:`UNDEFINED_DF_SHARE`)."""
        import numpy as np

        c = np.asarray(c, dtype=float).reshape(1, -1)
        d, r = self._parts(c)
        dj = d[:, 0, 0]
        rj = r[:, 0, :]  # n_clusters x p
        rr = np.einsum("jp,jp->j", rj, rj)
        expected = float(dj.sum() - rr.sum())
        model = float((c @ self.model_vcov @ c.T)[0, 0])
        if not expected > UNDEFINED_DF_SHARE * abs(model):
            return math.nan
        k = rj.T @ rj
        sum_sq = float((dj * dj).sum() - 2.0 * (dj * rr).sum() + (k * k).sum())
        return expected * expected / sum_sq

    def htz(self, c: np.ndarray, beta: np.ndarray) -> HotellingTest:
        """The HTZ test that the q x p contrasts ``c`` of ``beta`` are all zero. Raises numpy's
        LinAlgError when c Var_CR2 c' is not positive definite (clubSandwich's Cholesky)."""
        import numpy as np

        c = np.asarray(c, dtype=float)
        q = c.shape[0]
        cb = c @ beta
        chol = np.linalg.cholesky(c @ self.vcov @ c.T)
        z = np.linalg.solve(chol, cb)
        q_stat = float(z @ z)
        d, r = self._parts(c)
        omega = d.sum(axis=0) - np.einsum("jsp,jtp->st", r, r)
        ct = restricted_power(omega, -0.5) @ c
        d, r = self._parts(ct)
        rr = np.einsum("jsp,jtp->jst", r, r)  # R_j,s . R_j,t
        kk = np.einsum("jsi,jtl->stil", r, r)  # K_st = sum_j R_j,s R_j,t'
        diag_d = np.einsum("jss->js", d)
        diag_rr = np.einsum("jss->js", rr)
        t1 = (d * d).sum(axis=0) - 2.0 * (d * rr).sum(axis=0) + np.einsum("stil,stli->st", kk, kk)
        t2 = (
            np.einsum("js,jt->st", diag_d, diag_d)
            - np.einsum("js,jt->st", diag_d, diag_rr)
            - np.einsum("jt,js->st", diag_d, diag_rr)
            + np.einsum("stil,stil->st", kk, kk)
        )
        total = float((t1 + t2).sum())
        nu = q * (q + 1) / total if total > 0 else math.nan  # 0: no CR2 variance at all
        delta = max((nu - q + 1) / nu, 0.0)
        df = nu - q + 1
        f_stat = delta * q_stat / q
        p_value = None
        if df > 0:
            from ivigmeta.core.distributions import f_sf

            p_value = f_sf(f_stat, q, df)
        return HotellingTest(q_stat, f_stat, delta, q, df, p_value)


def cr2_sandwich(
    X: np.ndarray, v: np.ndarray, tau2: float, resid: np.ndarray, cluster_of: np.ndarray
) -> CR2Sandwich:
    """The CR2 sandwich of the fit of y on ``X`` (k x p) with weights 1 / (v + tau²) and
    residuals ``resid``; ``cluster_of`` gives each study's cluster as 0..n-1. Raises numpy's
    LinAlgError when X' W X is singular."""
    import numpy as np

    return cr2_weighted(X, 1.0 / (np.asarray(v, dtype=float) + tau2), resid, cluster_of)


def cr2_weighted(
    X: np.ndarray,
    w: np.ndarray,
    resid: np.ndarray,
    cluster_of: np.ndarray,
    eigen_tol: float = EIGEN_TOL,
    eigen_scale: np.ndarray | None = None,
) -> CR2Sandwich:
    """The CR2 sandwich of the weighted fit of y on ``X`` with the working weights ``w`` (the
    working covariance Theta = diag(1 / w)) and residuals ``resid``.

    The restricted inverse square root drops the eigenvalues lambda of Theta~_j^(1/2) B_j
    Theta~_j^(1/2) with ``eigen_scale[j] * lambda <= eigen_tol`` (default: clubSandwich's
    threshold on the mean-1 weights; robumeta applies 1e-10 to matrices of other scales, see
    :mod:`ivigmeta.core.rve`). Raises numpy's LinAlgError when X' W X is singular."""
    import numpy as np

    X = np.asarray(X, dtype=float)
    k, p = X.shape
    ids = np.asarray(cluster_of)
    n = int(ids.max()) + 1
    w = np.asarray(w, dtype=float)
    wt = w / w.mean()
    m_u = np.linalg.inv((X.T * wt) @ X)
    m_u = (m_u + m_u.T) / 2.0
    m = m_u / w.mean()
    chol_mu = np.linalg.cholesky(m_u)
    g = np.zeros((p, k))
    h = np.zeros((n, p, p))
    scores = np.zeros((n, p))
    for j in range(n):
        rows = np.flatnonzero(ids == j)
        xj = X[rows]
        root = np.sqrt(1.0 / wt[rows])  # Theta_j^(1/2)
        bj = np.diag(1.0 / wt[rows]) - xj @ m_u @ xj.T
        scale = 1.0 if eigen_scale is None else float(eigen_scale[j])
        inner = restricted_power(root[:, None] * bj * root[None, :], -0.5, eigen_tol / scale)
        aj = root[:, None] * inner * root[None, :]
        ej = (xj.T * wt[rows]) @ aj  # p x n_j
        scores[j] = m_u @ (ej @ resid[rows])
        mej = m @ ej
        g[:, rows] = mej * root[None, :]
        h[j] = mej @ xj @ chol_mu
    return CR2Sandwich(vcov=scores.T @ scores, g=g, cluster_of=ids, h=h, model_vcov=m, n_clusters=n)


__all__ = [
    "EIGEN_TOL",
    "CR2Sandwich",
    "HotellingTest",
    "cr2_sandwich",
    "cr2_weighted",
    "restricted_power",
]
