"""Case-deletion influence diagnostics of a random-effects model (Viechtbauer & Cheung 2010), as
metafor's ``influence()`` and ``baujat()`` compute them for a model without moderators.

For the fitted model (estimate theta, variance vb, tau², weights w_i = 1 / (v_i + tau²)) and the
model refitted without study i with the same options (theta_(-i), vb_(-i), tau²_(-i), QE_(-i)):

* hat value h_i = w_i / sum w; weight = 100 h_i (percent);
* externally standardized (studentized deleted) residual
  rstudent_i = (y_i - theta_(-i)) / sqrt(v_i + tau²_(-i) + vb_(-i));
* DFFITS_i = (theta - theta_(-i)) / sqrt(h_i (tau²_(-i) + v_i));
* Cook's distance D_i = (theta - theta_(-i))² / vb;
* covariance ratio COVRATIO_i = vb_(-i) / vb;
* DFBETAS_i = (theta - theta_(-i)) / sqrt(1 / sum_j 1 / (v_j + tau²_(-i))) (all k studies);
* a refit that fails (an iterative estimator not converging without study i) leaves that study's
  case-deletion values empty (``None``, with a note), as metafor's NA;
* a study is flagged as influential (metafor 3.8) when |DFFITS| > 3 sqrt(p / (k - p)),
  P(chi²_p <= D) > 0.5, h > 3 p / k or |DFBETAS| > 1, with p = 1 coefficient;
* Baujat et al. (2002) coordinates: x_i = (y_i - theta)² / (v_i + tau²), the squared Pearson
  residual (the study's contribution to Q under a common-effect model), and
  y_i = (theta - theta_(-i))² / vb_(-i), the study's influence on the pooled estimate.

Under ``--ci hk`` the variances vb are the Hartung-Knapp ones and the DFFITS and DFBETAS
denominators carry the deleted fit's scale factor s²_(-i) = vb_(-i) sum w_(-i), as metafor does
with ``test = "knha"``.
"""

from __future__ import annotations

import math
from typing import Any

from ivigmeta.core.distributions import chi2_sf, norm_ppf
from ivigmeta.core.heterogeneity import cochran_q
from ivigmeta.core.pooling import fit
from ivigmeta.errors import ModelError
from ivigmeta.results import Influence, InfluenceRow, MetaAnalysis

# metafor zeroes residuals this close to 0 (100 machine epsilons) before standardizing them.
_RESID_ZERO = 100 * 2.220446049250313e-16


def _fitted(ma: MetaAnalysis) -> tuple[float, float, float, float]:
    """theta, vb, tau² and the scale factor s² (1 for z, the HK factor for hk) of a fit.

    A single study is fitted as metafor does with k = 1: its own estimate, tau² = 0, QE = 0.
    """
    if ma.random is None:
        est = ma.study_estimates[0]
        return est.theta, est.se * est.se, 0.0, 1.0
    r = ma.random
    sw = math.fsum(1.0 / (v + r.tau2) for v in ma.effects.vi)
    vb = r.se * r.se
    return r.theta, vb, r.tau2, vb * sw


_OVERFLOW = "not computable: the effects or variances are too extreme for double precision"


def _empty_row(study, hat: float, baujat_x: float, note: str) -> InfluenceRow:  # type: ignore[no-untyped-def]
    """A study whose refit failed: no case-deletion values (metafor reports NA)."""
    return InfluenceRow(
        study,
        None,
        None,
        None,
        None,
        None,
        None,
        hat,
        100.0 * hat,
        None,
        False,
        (),
        baujat_x,
        None,
        note=note,
    )


def influence(ma: MetaAnalysis) -> Influence:
    """Influence diagnostics of every study of the random-effects fit ``ma``."""
    es = ma.effects
    k = es.k
    if k < 2 or ma.random is None:
        raise ModelError(f"influence diagnostics need at least 2 studies (have {k})")
    p = 1
    theta, vb, tau2, _ = _fitted(ma)
    w = [1.0 / (v + tau2) for v in es.vi]
    sw = math.fsum(w)
    hats = [wi / sw for wi in w]
    baujat = [(y - theta) ** 2 / (tau2 + v) for y, v in zip(es.yi, es.vi)]
    if not all(math.isfinite(x) for x in (theta, vb, sw, *hats)) or any(map(math.isnan, baujat)):
        raise ModelError(f"influence diagnostics {_OVERFLOW}")
    dffits_cut = 3.0 * math.sqrt(p / (k - p))
    hat_cut = 3.0 * p / k
    rows = []
    for i, study in enumerate(es.studies):
        sub = es.subset([j for j in range(k) if j != i])
        y, v, hat = es.yi[i], es.vi[i], hats[i]
        try:
            deleted = fit(sub, ma.options)
        except ModelError as exc:  # e.g. the refit did not converge (metafor: NA)
            rows.append(_empty_row(study, hat, baujat[i], str(exc)))
            continue
        except ArithmeticError:
            rows.append(_empty_row(study, hat, baujat[i], _OVERFLOW))
            continue
        try:
            theta_d, vb_d, tau2_d, s2w_d = _fitted(deleted)
            qe_d = cochran_q(sub.yi, sub.vi).q if sub.k > 1 else 0.0
            diff = theta - theta_d
            resid = y - theta_d
            if abs(resid) < _RESID_ZERO:
                resid = 0.0
            values: dict[str, Any] = {  # (Any: InfluenceRow's other fields are not floats)
                "rstudent": resid / math.sqrt(v * s2w_d + vb_d + tau2_d * s2w_d),
                "dffits": diff / math.sqrt(s2w_d * hat * (tau2_d + v)),
                "dfbetas": diff / math.sqrt(s2w_d / math.fsum(1.0 / (vj + tau2_d) for vj in es.vi)),
                "cook_d": diff * diff / vb,
                "cov_r": vb_d / vb,
                "tau2_del": tau2_d,
                "qe_del": qe_d,
                "baujat_y": diff * diff / vb_d,
            }
        except (ArithmeticError, ValueError):
            rows.append(_empty_row(study, hat, baujat[i], _OVERFLOW))
            continue
        if any(math.isnan(x) for x in values.values()):
            rows.append(_empty_row(study, hat, baujat[i], _OVERFLOW))
            continue
        reasons = []
        if abs(values["dffits"]) > dffits_cut:
            reasons.append("dffits")
        if chi2_sf(values["cook_d"], p) < 0.5:
            reasons.append("cook_d")
        if hat > hat_cut:
            reasons.append("hat")
        if abs(values["dfbetas"]) > 1.0:
            reasons.append("dfbetas")
        rows.append(
            InfluenceRow(
                study=study,
                hat=hat,
                weight=100.0 * hat,
                influential=bool(reasons),
                reasons=tuple(reasons),
                baujat_x=baujat[i],
                **values,
            )
        )
    return Influence(
        full=ma,
        rows=tuple(rows),
        dffits_cutoff=dffits_cut,
        # The median of chi² on 1 df: P(chi²_1 <= D) > 0.5 exactly when D exceeds it.
        cook_d_cutoff=norm_ppf(0.75) ** 2,
        hat_cutoff=hat_cut,
    )
