"""Tests for small-study effects (publication bias).

* Egger's regression test (Egger et al. 1997): ordinary least squares of the standardized effect
  y / se on the precision 1 / se; the intercept measures asymmetry, tested with t on k - 2 df.
  It equals metafor's ``regtest(fit, model = "lm")`` and CMA's Egger test.
"""

from __future__ import annotations

import math
from typing import Sequence

from ivigmeta.distributions import t_p_two_sided
from ivigmeta.results import BiasAnalysis, EggerTest, MetaAnalysis, NotApplicable


def egger_test(yi: Sequence[float], vi: Sequence[float]) -> EggerTest | NotApplicable:
    """Egger's test of funnel-plot asymmetry; not applicable with fewer than 3 studies."""
    k = len(yi)
    if k < 3:
        return NotApplicable("egger", f"Egger's test needs at least 3 studies (have {k})")
    se = [math.sqrt(v) for v in vi]
    x = [1.0 / s for s in se]
    z = [y / s for y, s in zip(yi, se)]
    xbar = math.fsum(x) / k
    zbar = math.fsum(z) / k
    sxx = math.fsum((xi - xbar) ** 2 for xi in x)
    if sxx <= 0:
        return NotApplicable("egger", "all studies have the same precision: the regression is undefined")
    slope = math.fsum((xi - xbar) * (zi - zbar) for xi, zi in zip(x, z)) / sxx
    intercept = zbar - slope * xbar
    rss = math.fsum((zi - intercept - slope * xi) ** 2 for xi, zi in zip(x, z))
    df = k - 2
    s2 = rss / df
    if s2 <= 0:
        return NotApplicable("egger", "the regression fits exactly: no residual variance to test against")
    se_int = math.sqrt(s2 * (1.0 / k + xbar * xbar / sxx))
    t = intercept / se_int
    return EggerTest(
        intercept=intercept,
        se=se_int,
        t=t,
        df=df,
        p_value=t_p_two_sided(t, df),
        slope=slope,
        slope_se=math.sqrt(s2 / sxx),
        k=k,
    )


def bias_analysis(ma: MetaAnalysis) -> BiasAnalysis:
    """All small-study-effect tests that apply to ``ma``."""
    return BiasAnalysis(full=ma, egger=egger_test(ma.effects.yi, ma.effects.vi))
