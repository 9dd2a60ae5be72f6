"""The integral back-transform of the random-effects estimate (``pool --transf-int``), as
metafor's ``predict(fit, transf = transf.ztor.int | transf.ilogit.int | transf.exp.int, targs =
list(tau2 = fit$tau2))``: E[h(theta + u)], u ~ N(0, tau²), the mean of the distribution of the
true effects on the reported scale (h = tanh for ZCOR and ZPCOR, the inverse logit for PLO, exp
for the log measures), at the estimate and at its confidence bounds, over theta -+ 10 tau
(metafor's bounds; :mod:`ivigmeta.core.transforms`). With tau² = 0 it is the usual back-
transform. metafor applies the same function to the prediction interval's bounds; that
integrates the spread of the true effects twice, so it is not reported (docs/methods.md).
"""

from __future__ import annotations

from ivigmeta.core.measures import INTEGRAL_BY
from ivigmeta.core.transforms import TRANSFORMS
from ivigmeta.errors import ModelError
from ivigmeta.results import IntegralMean, MetaAnalysis


def integral_back_transform(ma: MetaAnalysis) -> IntegralMean:
    """:class:`IntegralMean` of the fit's random-effects estimate; ModelError for a measure
    metafor has no integral back-transform for, or without a pooled estimate."""
    measure = str(ma.measure)
    if measure not in INTEGRAL_BY:
        raise ModelError(
            f"--transf-int: {measure} has no integral back-transform (metafor's transf.ztor.int, "
            "transf.ilogit.int and transf.exp.int are for ZCOR, ZPCOR, PLO and the log "
            "measures)"
        )
    r = ma.random
    if r is None:
        raise ModelError("--transf-int needs a pooled estimate (a single study was given)")
    spec = TRANSFORMS[INTEGRAL_BY[measure]]
    values = spec([r.theta, r.ci_low_theta, r.ci_high_theta], tau2=r.tau2)
    est, low, high = (float(v) for v in values)
    return IntegralMean(spec.name, r.tau2, est, low, high)
