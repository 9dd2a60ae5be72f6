"""Pooled estimates, tau², heterogeneity and prediction intervals against metafor's rma().

Every record of the `rma` block of tests/reference/metafor.json: 7 data sets x RR/OR/RD x
FE/DL/REML/ML/PM/HE/SJ x z/knha, produced by (tests/reference/make_reference.R)

    rma(yi, vi, method = METHOD, test = TEST, control = list(threshold = 1e-10, maxiter = 1000,
        tol = 1e-12)); predict(fit); weights(fit)

ML and REML are compared strictly with the `rma_tight` block (the same fits with threshold 1e-15);
against the default-threshold `rma` records they agree within the tolerance explained in
tests/tolerances.py.
"""

from __future__ import annotations

import math

import pytest
from metafor_ref import block, effects, record_id
from tolerances import (
    BOUNDARY_H2_ABS,
    BOUNDARY_I2_ABS,
    CLOSED_FORM,
    ITERATIVE,
    METAFOR_STOP_H2_ABS,
    METAFOR_STOP_I2_ABS,
    METAFOR_STOP_P_REL,
    METAFOR_STOP_REL,
    METAFOR_STOP_TAU2_ABS,
    P_VALUE,
    close,
)

from ivigmeta.core.pooling import fit
from ivigmeta.results import FitOptions

RMA = block("rma")
IDS = ("dataset", "measure", "method", "test")
CI = {"z": "z", "knha": "hk"}


def _fit(rec):
    es = effects(rec["dataset"], rec["measure"])
    method = "DL" if rec["method"] == "FE" else rec["method"]
    return fit(es, FitOptions(tau2_method=method, ci_method=CI[rec["test"]]))


def _check_random(
    rec, rel_est, rel_tau2, tau2_abs=1e-12, i2_abs=1e-12, h2_abs=1e-12, p_rel=P_VALUE
):
    ma = _fit(rec)
    r, het = ma.random, ma.heterogeneity
    bad = []

    def cmp(name, ours, ref, rel, floor=1e-12):
        if not close(ours, ref, rel, floor):
            bad.append(f"{name}: ours {ours!r} metafor {ref!r}")

    cmp("tau2", r.tau2, rec["tau2"], rel_tau2, tau2_abs)
    cmp("tau2 (heterogeneity)", het.tau2, rec["tau2"], rel_tau2, tau2_abs)
    cmp("tau", het.tau, rec["tau"], rel_tau2, math.sqrt(tau2_abs))
    cmp("beta", r.theta, rec["beta"], rel_est)
    cmp("se", r.se, rec["se"], rel_est)
    cmp("zval", r.statistic, rec["zval"], rel_est)
    cmp("pval", r.p_value, rec["pval"], max(rel_est, p_rel), 1e-300)
    cmp("ci_lb", r.ci_low_theta, rec["ci_lb"], rel_est)
    cmp("ci_ub", r.ci_high_theta, rec["ci_ub"], rel_est)
    cmp("pi_lb", r.pi_low_theta, rec["pi_lb"], rel_est)
    cmp("pi_ub", r.pi_high_theta, rec["pi_ub"], rel_est)
    cmp("I2", het.i2, rec["I2"], rel_tau2, i2_abs)
    cmp("H2", het.h2, rec["H2"], rel_tau2, h2_abs)
    cmp("QE", het.q, rec["QE"], CLOSED_FORM)
    cmp("QEp", het.p_value, rec["QEp"], P_VALUE, 1e-300)
    assert het.df == rec["k"] - 1
    if rec["test"] == "knha":
        assert r.df == rec["dfs"]
    else:
        assert r.df is None and rec["dfs"] is None
    assert len(r.weights) == len(rec["weights"]) == rec["k"]  # zip() would stop at the shorter
    for i, (ours, ref) in enumerate(zip(r.weights, rec["weights"])):
        cmp(f"weight[{i}]", ours, ref, rel_est)
    assert not bad, "\n".join(bad)


CLOSED = [r for r in RMA if r["method"] in ("DL", "HE", "SJ", "PM")]


@pytest.mark.parametrize("rec", CLOSED, ids=[record_id(r, IDS) for r in CLOSED])
def test_random_effects_closed_form_and_pm(rec):
    rel = ITERATIVE if rec["method"] == "PM" else CLOSED_FORM
    _check_random(rec, rel, rel)


TIGHT = block("rma_tight")


@pytest.mark.parametrize("rec", TIGHT, ids=[record_id(r, IDS) for r in TIGHT])
def test_ml_reml_against_tight_metafor(rec):
    _check_random(rec, ITERATIVE, ITERATIVE, 1e-12, BOUNDARY_I2_ABS, BOUNDARY_H2_ABS)


FISHER = [r for r in RMA if r["method"] in ("ML", "REML")]


@pytest.mark.parametrize("rec", FISHER, ids=[record_id(r, IDS) for r in FISHER])
def test_ml_reml_against_default_threshold_metafor(rec):
    """metafor stopped when the tau² step fell below 1e-10 (see tests/tolerances.py)."""
    _check_random(
        rec,
        METAFOR_STOP_REL,
        METAFOR_STOP_REL,
        METAFOR_STOP_TAU2_ABS,
        METAFOR_STOP_I2_ABS,
        METAFOR_STOP_H2_ABS,
        METAFOR_STOP_P_REL,
    )


FE = [r for r in RMA if r["method"] == "FE"]


@pytest.mark.parametrize("rec", FE, ids=[record_id(r, IDS) for r in FE])
def test_common_effect_inverse_variance(rec):
    ma = _fit(rec)
    c = ma.common
    assert c.method == "IV"
    for name, ours, ref in (
        ("beta", c.theta, rec["beta"]),
        ("se", c.se, rec["se"]),
        ("zval", c.statistic, rec["zval"]),
        ("ci_lb", c.ci_low_theta, rec["ci_lb"]),
        ("ci_ub", c.ci_high_theta, rec["ci_ub"]),
    ):
        assert close(ours, ref, CLOSED_FORM), (name, ours, ref)
    assert close(c.p_value, rec["pval"], P_VALUE, 1e-300)
    assert len(c.weights) == len(rec["weights"]) == rec["k"]
    for ours, ref in zip(c.weights, rec["weights"]):
        assert close(ours, ref, CLOSED_FORM)
    # metafor's FE I² and H² are the Q-based ones: ivigmeta's i2_q, and Q / df.
    het = ma.heterogeneity
    assert close(het.i2_q, rec["I2"], CLOSED_FORM)
    assert close(het.q / het.df, rec["H2"], CLOSED_FORM)
