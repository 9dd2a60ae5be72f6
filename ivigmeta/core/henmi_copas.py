"""The Henmi-Copas confidence interval (Henmi & Copas 2010), as metafor's ``hc()``.

The point estimate is the common-effect (inverse-variance) one, theta = sum w y / sum w with
w = 1 / v, robust to publication bias; its variance under the random-effects model with
DerSimonian-Laird's tau² is se² = (tau² W2 + 1) / W1 (W1 = sum w, Wr = sum w^r / W1). The
interval is theta ± u0 se, where u0 = sqrt(1 + tau² W2) t0 and t0 solves

    integral_{t0}^{inf} G(f(r / t0); shape(r), scale(r)) phi(r) dr = alpha / 2,

G the gamma distribution function approximating Q's conditional distribution given the
standardized estimate r (its mean E(r) and variance V(r) from Henmi & Copas' eq. 6 and 7,
shape = E² / V, scale = V / E), f(x) = (W1 / W2 - 1) (x² - 1) + (k - 1) and phi the normal
density. As metafor, t0 is searched in [0, 2]; the integral and the root are computed to
near double precision (metafor's integrate() and uniroot() default to a relative 1.2e-4).

scipy's quad and brentq are imported inside the function (the default pool output does not
load scipy). One numerical integration per root-finding step per group: groups are a loop.
"""

from __future__ import annotations

import math

import numpy as np

from ivigmeta.core.groups import Groups
from ivigmeta.errors import ModelError

SQRT_2PI = math.sqrt(2.0 * math.pi)


def hc_one(y: np.ndarray, v: np.ndarray, level: float) -> tuple[float, float, float, float, float]:
    """(theta, se, ci_low, ci_high, tau2_DL) of one meta-analysis (k >= 2, v > 0)."""
    from scipy import integrate, optimize
    from scipy.special import gammainc

    k = len(y)
    if k < 2:
        raise ModelError("the Henmi-Copas interval needs at least 2 studies")
    if np.any(v <= 0):
        raise ModelError("the Henmi-Copas interval needs positive sampling variances")
    alpha = 1.0 - level
    w = 1.0 / v
    w1 = float(w.sum())
    w2 = float((w**2).sum()) / w1
    w3 = float((w**3).sum()) / w1
    w4 = float((w**4).sum()) / w1
    theta = float((w * y).sum()) / w1
    q = float((w * (y - theta) ** 2).sum())
    tau2 = max(0.0, (q - (k - 1)) / (w1 - w2))
    se = math.sqrt((tau2 * w2 + 1.0) / w1)
    vr = 1.0 + tau2 * w2
    sdr = math.sqrt(vr)
    d32 = w3 - w2 * w2

    def eq(r: float) -> float:
        return (k - 1) + tau2 * (w1 - w2) + tau2**2 * (r * r / vr**2 - 1.0 / vr) * d32

    def vq(r: float) -> float:
        c = r * r / vr**2 - 1.0 / vr
        return (
            2.0 * (k - 1)
            + 4.0 * tau2 * (w1 - w2)
            + 2.0 * tau2**2 * (w1 * w2 - 2.0 * w3 + w2 * w2)
            + 4.0 * tau2**2 * c * d32
            + 4.0 * tau2**3 * c * (w4 - 2.0 * w2 * w3 + w2**3)
            + 2.0 * tau2**4 * (1.0 / vr**2 - 2.0 * r * r / vr**3) * d32 * d32
        )

    def finv(f: float) -> float:
        return (w1 / w2 - 1.0) * (f * f - 1.0) + (k - 1)

    def integrand(r: float, x: float) -> float:
        e, var = eq(sdr * r), vq(sdr * r)
        z = finv(r / x) * e / var
        cdf = float(gammainc(e * e / var, z)) if z > 0 else 0.0
        return cdf * math.exp(-0.5 * r * r) / SQRT_2PI

    def equation(x: float) -> float:
        value = integrate.quad(integrand, x, math.inf, args=(x,), epsabs=1e-15, epsrel=1e-13)[0]
        return value - alpha / 2.0

    try:
        t0 = optimize.brentq(equation, 1e-300, 2.0, xtol=1e-15, rtol=1e-15, maxiter=1000)
    except ValueError:
        raise ModelError(
            "the Henmi-Copas interval: no root of its equation in [0, 2] (as metafor's hc())"
        ) from None
    u0 = sdr * t0
    return theta, se, theta - u0 * se, theta + u0 * se, tau2


def hc_groups(
    y: np.ndarray, v: np.ndarray, g: Groups, level: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`hc_one` for every group: (theta, se, ci_low, ci_high, tau2_DL) arrays."""
    out = np.full((5, len(g)), np.nan)
    for i, (start, size) in enumerate(zip(g.starts, g.sizes)):
        rows = slice(int(start), int(start + size))
        out[:, i] = hc_one(y[rows], v[rows], level)
    return out[0], out[1], out[2], out[3], out[4]
