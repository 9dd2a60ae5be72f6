"""Q-profile confidence intervals for tau², I² and H² (Viechtbauer 2007), as metafor's ``confint()``.

The generalized Q statistic Q(tau²) = y' P(tau²) y (sum w (y - mu_w)² with w = 1 / (v + tau²)
without moderators) follows a chi-square distribution on k - p df at the true tau², and decreases
in tau². The interval collects the tau² values not rejected:

* lower bound: the root of Q(tau²) = chi²_{k-p, 1 - alpha/2}, or 0 when Q(0) is already below it;
* upper bound: the root of Q(tau²) = chi²_{k-p, alpha/2}, or 0 when Q(0) is below it (then the
  interval is the single point 0: metafor's "null set" flag, ``ci_null``).

As metafor, the roots are searched on [0, max(100, 10 tau²)]; a bound that lies beyond the upper
limit is reported as that limit with the sign ">" (bcg, k = 2: [0, >100]). The bounds do not depend
on the tau² estimator; I² and H² bounds are transformed with the typical within-study variance
s² = (k - p) / tr P0: I² = 100 tau² / (tau² + s²), H² = 1 + tau² / s².

Pure Python without moderators (chi-square quantiles from :mod:`ivigmeta.core.distributions`), so the
default ``pool`` output can carry the intervals without importing numpy or scipy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ivigmeta.core.distributions import chi2_ppf
from ivigmeta.core.tau2 import make_design, solve_q
from ivigmeta.errors import ModelError
from ivigmeta.results import HeterogeneityCI


def qprofile_ci(
    yi: Sequence[float],
    vi: Sequence[float],
    tau2: float,
    level: float = 0.95,
    X: Any = None,
) -> HeterogeneityCI:
    """Q-profile interval for tau² (and I², H²) around the estimate ``tau2``."""
    design = make_design(yi, vi, X)
    k, p = int(design.k[0]), design.p
    df = k - p
    if df < 1:
        raise ModelError(
            f"a confidence interval for tau² needs more studies than coefficients (k = {k})"
        )
    alpha = 1.0 - level
    crit_upper = chi2_ppf(1.0 - alpha / 2.0, df)  # Q above this: tau² = 0 is rejected
    crit_lower = chi2_ppf(alpha / 2.0, df)
    tau2_max = max(100.0, 10.0 * tau2)

    def q(t: float) -> float:
        return float(design.q(np.array([t]))[0][0])

    def root(target: float) -> float:
        return float(solve_q(design, np.array([target]), np.array([tau2_max]))[0][0])

    q_min = q(0.0)
    q_max = q(tau2_max)
    lb_sign = ub_sign = ""
    ci_null = False
    if q_min < crit_lower:
        low = high = 0.0
        lb_sign = ub_sign = "<"
        ci_null = True
    else:
        if q_max > crit_lower:
            high, ub_sign = tau2_max, ">"
        else:
            high = root(crit_lower)
        if q_max > crit_upper:
            low = high = tau2_max
            lb_sign = ub_sign = ">"
        elif q_min < crit_upper:
            low = 0.0
        else:
            low = root(crit_upper)
    tr = float(design.trace_p(np.zeros(1))[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        # numpy division: degenerate weights (tr P = 0 or inf) give NaN or inf, not an exception
        s2 = np.float64(df) / np.float64(tr)
        i2 = 100.0 * np.array([low, high]) / (s2 + np.array([low, high]))
        h2 = 1.0 + np.array([low, high]) / s2
    return HeterogeneityCI(
        level=level,
        tau2_low=low,
        tau2_high=high,
        i2_low=float(i2[0]),
        i2_high=float(i2[1]),
        h2_low=float(h2[0]),
        h2_high=float(h2[1]),
        lb_sign=lb_sign,
        ub_sign=ub_sign,
        ci_null=ci_null,
    )
