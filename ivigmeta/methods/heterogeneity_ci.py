"""Other confidence intervals for tau², I² and H² of a fitted analysis (metafor's
``confint(fit, type = ...)``): the fit carries the Q-profile; :func:`with_tau2_ci` swaps in the
profile-likelihood or Wald interval (the arithmetic is in :mod:`ivigmeta.core.confint`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

from ivigmeta.core.confint import check_tau2_ci_method, tau2_ci
from ivigmeta.errors import ModelError

if TYPE_CHECKING:
    from ivigmeta.results import HeterogeneityCI, MetaAnalysis


def heterogeneity_ci(ma: MetaAnalysis, method: str = "qp") -> HeterogeneityCI | None:
    """The interval of type ``method`` ("qp", "pl", "wald") for the fit's tau², at its level;
    None with a single study or where the fit has no interval (degenerate variances)."""
    key = check_tau2_ci_method(method)
    het = ma.heterogeneity
    if key == "qp":
        return het.ci if het is not None else None
    if ma.options.software != "metafor":
        raise ModelError(
            f"--tau2-ci {key}: RevMan 5's methods report no interval for tau² (--software revman)"
        )
    if ma.glmm is not None or (het is not None and het.glmm):
        raise ModelError(f"--tau2-ci {key}: not available for a GLMM (--glmm)")
    if het is None or het.tau2 is None:
        return None
    if het.ci is None:  # no typical within-study variance: no Q-profile either
        return None
    se = math.nan if het.tau2_se is None else het.tau2_se
    es = ma.effects
    return tau2_ci(key, es.yi, es.vi, het.tau2, het.tau2_method, se, ma.options.level)


def with_tau2_ci(ma: MetaAnalysis, method: str = "qp") -> MetaAnalysis:
    """``ma`` with its heterogeneity interval of type ``method`` (``ma`` itself for "qp")."""
    ci = heterogeneity_ci(ma, method)
    het = ma.heterogeneity
    if het is None or ci is het.ci:
        return ma
    return dataclasses.replace(ma, heterogeneity=dataclasses.replace(het, ci=ci))
