"""Q-profile confidence intervals for tau², I² and H² against metafor's confint().

Every record of the `confint` block of tests/reference/metafor.json (7 data sets x RR/OR/RD x
DL/REML/ML/PM/HE/SJ), produced by

    confint(rma(yi, vi, method = METHOD, control = CTRL), control = list(tol = 1e-12))

metafor finds the bounds with uniroot(tol = 1e-12); ours are solved to double precision.
"""

from __future__ import annotations

import pytest
from metafor_ref import block, effects, record_id
from tolerances import ITERATIVE, METAFOR_STOP_REL, close

from ivigmeta.core.confint import qprofile_ci
from ivigmeta.core.distributions import chi2_cdf, chi2_ppf, chi2_sf
from ivigmeta.core.pooling import fit
from ivigmeta.results import FitOptions

CONFINT = block("confint")
IDS = ("dataset", "measure", "method")


@pytest.mark.parametrize("rec", CONFINT, ids=[record_id(r, IDS) for r in CONFINT])
def test_qprofile_bounds(rec):
    ma = fit(effects(rec["dataset"], rec["measure"]), FitOptions(tau2_method=rec["method"]))
    ci = ma.heterogeneity.ci
    # The bounds do not depend on the estimator; the I² and H² bounds use the typical variance.
    for name, ours, ref in (
        ("tau2_lb", ci.tau2_low, rec["tau2"][1]),
        ("tau2_ub", ci.tau2_high, rec["tau2"][2]),
        ("I2_lb", ci.i2_low, rec["I2"][1]),
        ("I2_ub", ci.i2_high, rec["I2"][2]),
        ("H2_lb", ci.h2_low, rec["H2"][1]),
        ("H2_ub", ci.h2_high, rec["H2"][2]),
    ):
        assert close(ours, ref, ITERATIVE), (name, ours, ref)
    assert (ci.lb_sign, ci.ub_sign, ci.ci_null) == (rec["lb_sign"], rec["ub_sign"], rec["ci_null"])
    # The point estimates in confint() are the fit's (ML/REML: metafor's threshold, see tolerances).
    rel = METAFOR_STOP_REL if rec["method"] in ("ML", "REML") else ITERATIVE
    assert close(ma.heterogeneity.tau2, rec["tau2"][0], rel, 1e-9)
    out = ma.heterogeneity.to_dict()
    assert out["tau2_ci"] == [ci.tau2_low, ci.tau2_high]
    assert out["i2_ci"] == [ci.i2_low, ci.i2_high]
    assert out["h2_ci"] == [ci.h2_low, ci.h2_high]


def test_bcg_k2_upper_bound_is_the_search_limit():
    """metafor: bcg (k = 2) RR gives tau² in [0, >100] (the search stops at max(100, 10 tau²))."""
    es = effects("bcg_k2", "RR")
    ci = qprofile_ci(es.yi, es.vi, 0.0)
    assert (ci.tau2_low, ci.tau2_high, ci.ub_sign) == (0.0, 100.0, ">")


def test_null_set_when_q_is_below_the_lower_quantile():
    """Identical effects give Q(0) = 0 < chi²_{0.025}: the interval is the single point 0."""
    ci = qprofile_ci([0.1, 0.1, 0.1], [0.1, 0.2, 0.3], 0.0)
    assert ci.ci_null and (ci.tau2_low, ci.tau2_high) == (0.0, 0.0)
    assert (ci.lb_sign, ci.ub_sign) == ("<", "<")


@pytest.mark.parametrize("df", [1, 2, 7, 17, 32])
@pytest.mark.parametrize("p", [0.025, 0.5, 0.975, 1e-6])
def test_chi2_quantile_inverts_the_tails(df, p):
    """The pure-Python quantile agrees with scipy's and inverts our own cdf."""
    from scipy.special import chdtri

    x = chi2_ppf(p, df)
    assert close(x, float(chdtri(df, 1.0 - p)), 1e-9)
    tail = chi2_cdf(x, df) if p < 0.5 else chi2_sf(x, df)
    assert close(tail, p if p < 0.5 else 1.0 - p, 1e-12)
