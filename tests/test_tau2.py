"""tau² estimators: the registry, degenerate cases with known closed forms, convergence reporting.

Parity with metafor for every data set, measure, estimator and interval method is in
test_pooling_parity.py (and with moderators in test_metareg.py).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from metafor_ref import unit_case
from tolerances import CLOSED_FORM, ITERATIVE, close

import ivigmeta.core.tau2 as tau2_module
from ivigmeta.core.pooling import fit, random_effects
from ivigmeta.core.tau2 import TAU2_METHODS, estimate_tau2
from ivigmeta.errors import ModelError
from ivigmeta.results import EffectSizes, FitOptions

Y = [0.10, 0.62, -0.25, 0.41, 0.90, 0.05]
V = [0.04] * 6  # all sampling variances equal


def test_registry_offers_metafor_3_8_1_estimators():
    assert list(TAU2_METHODS) == [
        "DL", "REML", "ML", "PM", "HE", "SJ", "EB", "HS", "HSk", "GENQ", "PMM", "SJIT", "DLIT",
    ]  # fmt: skip


def test_equal_variances_give_the_textbook_closed_forms():
    """With v_i = v: DL = HE = PM = REML = SS/(k-1) - v and ML = SS/k - v (SS about the mean)."""
    k = len(Y)
    ybar = sum(Y) / k
    ss = sum((y - ybar) ** 2 for y in Y)
    moment = ss / (k - 1) - V[0]
    assert moment > 0
    for method in ("DL", "HE", "PM", "REML"):
        assert close(estimate_tau2(Y, V, method).tau2, moment, 1e-12), method
    assert close(estimate_tau2(Y, V, "ML").tau2, ss / k - V[0], 1e-12)


#: the estimators of metafor.json's unit cases; the others: tests/test_univariate_parity.py
FIRST_SIX = ["DL", "REML", "ML", "PM", "HE", "SJ"]


def _weights(method, v):
    return [1.0 / x for x in v] if method == "GENQ" else None


@pytest.mark.parametrize("method", FIRST_SIX)
def test_equal_variances_match_metafor(method):
    """metafor: rma(Y, V, method, control = TIGHT_CTRL) (`unit_cases`, case equal_variances)."""
    rec = unit_case("equal_variances", method=method)
    assert (rec["yi"], rec["vi"]) == (Y, V)
    assert close(estimate_tau2(Y, V, method).tau2, rec["tau2"], ITERATIVE)
    r = fit(EffectSizes("RR", (), tuple(Y), tuple(V), (0.0,) * 6), FitOptions(method)).random
    assert close(r.theta, rec["beta"], ITERATIVE) and close(r.se, rec["se"], ITERATIVE)


@pytest.mark.parametrize("method", list(TAU2_METHODS))
def test_identical_effects_give_zero(method):
    v = [0.1, 0.2, 0.3, 0.4]
    assert estimate_tau2([0.3] * 4, v, method, weights=_weights(method, v)).tau2 == 0.0


@pytest.mark.parametrize("method", list(TAU2_METHODS))
def test_single_study_has_no_tau2(method):
    assert estimate_tau2([0.3], [0.1], method).tau2 == 0.0


def test_unknown_estimator_is_a_clear_error():
    with pytest.raises(ModelError, match="unknown tau² estimator 'XYZ'.*DL, REML, ML, PM, HE, SJ"):
        estimate_tau2(Y, V, "XYZ")


def test_non_convergence_falls_back_to_the_global_search(monkeypatch):
    """Fisher scoring stopped after one step: the grid search still finds the REML optimum."""
    y, v = [0.1, 0.9, -0.4, 0.5], [0.01, 0.2, 0.05, 0.3]
    full = estimate_tau2(y, v, "REML").tau2
    monkeypatch.setattr(tau2_module, "MAX_ITER", 1)
    est = tau2_module.TAU2_METHODS["REML"](y, v)
    assert est.converged
    assert est.tau2 == pytest.approx(full, rel=1e-10)


def test_non_convergence_is_reported(monkeypatch):
    """When neither scoring nor the search succeeds, the estimator says so (ModelError, exit 1)."""
    monkeypatch.setattr(tau2_module, "MAX_ITER", 1)
    monkeypatch.setattr(
        tau2_module, "global_maximum", lambda m, reml: (np.zeros(len(m)), np.zeros(len(m), bool))
    )
    est = tau2_module.TAU2_METHODS["REML"]([0.1, 0.9, -0.4, 0.5], [0.01, 0.2, 0.05, 0.3])
    assert not est.converged and est.iterations == 1
    with pytest.raises(ModelError, match="REML estimator of tau² did not converge in 1 iterations"):
        estimate_tau2([0.1, 0.9, -0.4, 0.5], [0.01, 0.2, 0.05, 0.3], "REML")


def _at(fn, t):
    """A one-model quantity at tau² = t as a float."""
    return float(fn(np.array([t]))[0])


def _rss(d, t):
    """y' P(t) y of a one-model design."""
    return float(d.q(np.array([t]))[0][0])


def _score(d, t, reml):
    """The (RE)ML score equation's value at t: y'PPy - tr P (REML) or - sum w (ML)."""
    return float(d.score(np.array([t]), reml)[0][0])


def _ll(d, t, reml):
    return float(d.loglik(np.array([t]), reml)[0])


def test_iterative_estimators_converge_tightly():
    """REML and ML satisfy their score equations; PM its moment equation, to ~1e-12."""
    from ivigmeta.core.tau2 import make_design

    y = [0.1, 0.9, -0.4, 0.5, 1.2]
    v = [0.01, 0.2, 0.05, 0.3, 0.08]
    d = make_design(y, v)
    t = estimate_tau2(y, v, "REML").tau2
    assert t > 0 and abs(_score(d, t, True)) <= 1e-10 * _at(d.trace_p, t)
    t = estimate_tau2(y, v, "ML").tau2
    assert t > 0 and abs(_score(d, t, False)) <= 1e-10 * sum(1 / (vi + t) for vi in v)
    t = estimate_tau2(y, v, "PM").tau2
    assert close(_rss(d, t), len(y) - 1, 1e-12)


def test_hartung_knapp_with_identical_effects_has_zero_se():
    """metafor sets the HK variance factor to 0 when the weighted residuals vanish:
    rma(rep(0.2, 3), c(0.1, 0.2, 0.3), tau2 = 0, test = "knha") (`unit_cases`)."""
    rec = unit_case("knha_identical_effects")
    r = random_effects(rec["yi"], rec["vi"], "RR", 0.0, ci_method="hk")
    assert rec["se"] == 0 and rec["zval"] is None  # metafor: se 0, z = Inf (JSON null), p 0
    assert r.se == 0.0 and r.p_value == rec["pval"] == 0.0 and math.isinf(r.statistic)
    assert close(r.theta, rec["beta"], CLOSED_FORM)
    assert close(r.ci_low_theta, rec["ci_lb"], CLOSED_FORM)
    assert close(r.ci_high_theta, rec["ci_ub"], CLOSED_FORM)


def test_k2_with_hartung_knapp_uses_one_df():
    """metafor: rma(c(0.1, 0.8), c(0.05, 0.09), method = "REML", test = "knha") (`unit_cases`)."""
    rec = unit_case("k2_knha")
    es = EffectSizes("RR", (), tuple(rec["yi"]), tuple(rec["vi"]), (0.0, 0.0))
    r = fit(es, FitOptions(tau2_method="REML", ci_method="hk")).random
    assert r.df == rec["dfs"] == 1
    for name, ours in (
        ("beta", r.theta),
        ("se", r.se),
        ("zval", r.statistic),
        ("pval", r.p_value),
        ("ci_lb", r.ci_low_theta),
        ("ci_ub", r.ci_high_theta),
        ("pi_lb", r.pi_low_theta),
        ("pi_ub", r.pi_high_theta),
        ("tau2", r.tau2),
    ):
        assert close(ours, rec[name], ITERATIVE), (name, ours, rec[name])
    # t(0.975, 1) = tan(0.475 pi) = 12.706...: the interval is wide
    assert close((r.ci_high_theta - r.theta) / r.se, math.tan(0.475 * math.pi), 1e-9)


def test_fit_options_travel_to_refits():
    """leave-one-out and subgroups refit with the same estimator and interval method."""
    from ivigmeta.methods.sensitivity import leave_one_out

    es = EffectSizes("RR", (), tuple(Y), tuple(V), (0.0,) * 6)
    ma = fit(es, FitOptions(tau2_method="PM", ci_method="hk"))
    for row in leave_one_out(ma).rows:
        r = row.analysis.random
        assert (r.tau2_method, r.ci_method, r.df) == ("PM", "hk", 4)
        assert r.pi_low_theta < r.ci_low_theta < r.theta < r.ci_high_theta < r.pi_high_theta


# Properties on arbitrary data: every estimator solves its own equation (or sits at the boundary
# for the reason the theory gives), and the Q-profile bounds solve theirs.
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ivigmeta.core.confint import qprofile_ci  # noqa: E402
from ivigmeta.core.distributions import chi2_ppf  # noqa: E402
from ivigmeta.core.tau2 import make_design  # noqa: E402

_studies = st.lists(st.tuples(st.floats(-3, 3), st.floats(1e-3, 2.0)), min_size=2, max_size=25)


@settings(max_examples=60, deadline=None)
@given(_studies)
def test_estimators_solve_their_equations(data):
    y = [a for a, _ in data]
    v = [b for _, b in data]
    k = len(y)
    d = make_design(y, v)
    for method in TAU2_METHODS:
        est = tau2_module.tau2_one(y, v, method, weights=_weights(method, v))
        assert est.tau2 >= 0 and math.isfinite(est.tau2)
        assert est.converged or method == "DLIT"  # DLIT may oscillate for ever (as in metafor)
    t = estimate_tau2(y, v, "PM").tau2
    if t == 0:
        assert _rss(d, 0.0) <= k - 1 + 1e-9
    else:
        assert close(_rss(d, t), k - 1, 1e-9)
    for method in ("REML", "ML"):
        t = estimate_tau2(y, v, method).tau2
        scale = _at(d.trace_p, t) if method == "REML" else sum(1 / (vi + t) for vi in v)
        if t == 0:
            # boundary optimum: the (restricted) likelihood at 0 beats every positive tau²
            for trial in (1e-4, 1e-3, 1e-2, 0.1, 1.0):
                assert _ll(d, 0.0, method == "REML") >= _ll(d, trial, method == "REML") - 1e-9
        else:
            assert abs(_score(d, t, method == "REML")) <= 1e-8 * scale


@settings(max_examples=60, deadline=None)
@given(_studies)
def test_qprofile_bounds_solve_their_equations(data):
    y = [a for a, _ in data]
    v = [b for _, b in data]
    df = len(y) - 1
    d = make_design(y, v)
    ci = qprofile_ci(y, v, estimate_tau2(y, v).tau2)
    assert 0 <= ci.tau2_low <= ci.tau2_high
    if ci.lb_sign == "" and ci.tau2_low > 0:
        assert close(_rss(d, ci.tau2_low), chi2_ppf(0.975, df), 1e-9)
    if ci.ub_sign == "" and ci.tau2_high > 0:
        assert close(_rss(d, ci.tau2_high), chi2_ppf(0.025, df), 1e-9)


def test_a_grid_search_maximum_is_reported(tmp_path):
    """REML scoring oscillates on these data (metafor reports non-convergence): the likelihood
    search finds the maximum, and the run says so on stderr and in JSON."""
    import json

    from click.testing import CliRunner

    from ivigmeta.cli import cli

    path = tmp_path / "osc.csv"
    path.write_text("study,yi,vi\na,0,1\nb,0,1\nc,0,1\nd,0,1\ne,1,0.125\n")
    result = CliRunner().invoke(cli, ["pool", str(path), "--tau2", "REML", "-f", "json"])
    assert result.exit_code == 0, result.output
    assert "a search of the likelihood over 16 decades found it" in result.stderr
    random = json.loads(result.stdout)["random"]
    assert random["tau2_algorithm"] == "grid search" and random["converged"] is True
    y, v = [0.0, 0.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0, 0.125]
    d = make_design(y, v)
    assert random["tau2"] > 0
    assert abs(_score(d, random["tau2"], True)) <= 1e-10 * _at(d.trace_p, random["tau2"])
    dl = CliRunner().invoke(cli, ["pool", str(path), "-f", "json"])
    assert json.loads(dl.stdout)["random"]["tau2_algorithm"] == "closed form"
    assert "16 decades" not in dl.stderr
