"""The Poisson-normal model of one group's events over person-time (rma.glmm(measure = "IRLN"))
against metafor 3.8-1, through the engine (ivigmeta.core.glmm) and the CLI (pool and metareg
--glmm UM.FS).

Every record of tests/reference/metafor_glmm_irln.json (tests/reference/make_reference_glmm_irln.R):
the control and treated groups of dat.nielweise2008 (person-time in 1000 catheter-days, as
metafor's test_analysis_example_stijnen2010.r; Stijnen et al. 2010 Table VII), intercept only and
with mods = ~ year, and a constructed homogeneous set with a zero count (tau² at the boundary).
The tolerances are tests/test_glmm.py's for PLO (tests/tolerances.py), compared with the `tight`
lme4 fits; none is loosened.
"""

from __future__ import annotations

import csv
import functools
import json
import math
from pathlib import Path

import pytest
from tolerances import (
    GLMM_CMEL_SE,
    GLMM_LOGLIK,
    GLMM_SAME_OBJECTIVE,
    GLMM_SE,
    GLMM_TAU2_ABS,
    GLMM_TEST,
    GLMM_TIGHT,
    P_VALUE,
    close,
)

from ivigmeta.core.glmm import (
    fit_glmm,
    fit_glmm_regression,
    glmm_fit_statistics,
    loglik_at,
)
from ivigmeta.errors import ModelError

REFERENCE = Path(__file__).resolve().parent / "reference" / "metafor_glmm_irln.json"


@functools.lru_cache(maxsize=1)
def _reference() -> dict:
    return json.loads(REFERENCE.read_text())


RECORDS = _reference()["records"]


def _name(rec: dict) -> str:
    return f"{rec['dataset']}-{rec.get('mods') or 'intercept'}"


IDS = [_name(r) for r in RECORDS]


def _data(rec: dict, scaled: bool = False) -> tuple[list, list, list[list[float]]]:
    """Events, person-time and the design (``scaled``: year centred and divided by its sd, as
    metafor's scaleX, the scale of lme4's parameters)."""
    cols = _reference()["datasets"][rec["dataset"]]["columns"]
    year = [float(v) for v in cols["year"]]
    if scaled:
        mean = sum(year) / len(year)
        sd = math.sqrt(sum((v - mean) ** 2 for v in year) / (len(year) - 1))
        year = [(v - mean) / sd for v in year]
    X = [[1.0, v] if rec.get("mods") else [1.0] for v in year]
    return list(cols["xi"]), list(cols["ti"]), X


@pytest.fixture(scope="module")
def fits() -> dict:
    out = {}
    for rec in RECORDS:
        x, t, X = _data(rec)
        if rec.get("mods"):
            out[_name(rec)] = fit_glmm_regression(
                "IRLN", "UM.FS", x, t, None, None, X, ["intercept", "year"]
            )
        else:
            out[_name(rec)] = fit_glmm("IRLN", "UM.FS", x, t)
    return out


def _coefficients(fit) -> tuple[list[float], list[float]]:
    if hasattr(fit, "beta"):
        return list(fit.beta), list(fit.se)
    return [fit.theta], [fit.se]


@pytest.mark.parametrize("rec", RECORDS, ids=IDS)
def test_estimates_tau2_and_se(rec, fits):
    fit = fits[_name(rec)]
    ref = rec["tight"]
    beta, se = _coefficients(fit)
    for ours, theirs in zip(beta, ref["estimate"]):
        assert close(ours, theirs, GLMM_TIGHT), (ours, theirs)
    for ours, theirs in zip(se, ref["se"]):
        assert close(ours, theirs, GLMM_SE), (ours, theirs)
    assert close(fit.tau2, ref["tau2"], GLMM_TIGHT, GLMM_TAU2_ABS), (fit.tau2, ref["tau2"])
    assert fit.boundary == (ref["tau2"] < 1e-8)
    assert fit.convergence.converged and fit.convergence.nodes == 7
    if not rec.get("mods"):
        half = 1.959963984540054 * ref["se"][0]
        assert abs(fit.ci_low - fit.theta + half) <= GLMM_SE * half
        assert abs(fit.ci_high - fit.theta - half) <= GLMM_SE * half
        assert close(fit.z, ref["zval"][0], GLMM_SE)
        assert close(fit.p_value, ref["pval"][0], 10 * GLMM_SE, 1e-12)
        assert close(fit.p_value, math.erfc(abs(fit.z) / math.sqrt(2)), P_VALUE)


@pytest.mark.parametrize("rec", RECORDS, ids=IDS)
def test_heterogeneity_tests(rec, fits):
    fit = fits[_name(rec)]
    ref = rec["tight"]
    assert fit.qe_df == ref["QE_df"]
    assert close(fit.qe_lrt, ref["QE_LRT"], GLMM_TEST, 1e-9), (fit.qe_lrt, ref["QE_LRT"])
    assert close(fit.qe_lrt_p, ref["QEp_LRT"], GLMM_TEST, 1e-12)
    assert close(fit.qe_wald, ref["QE_Wld"], GLMM_TEST, 1e-9), (fit.qe_wald, ref["QE_Wld"])
    assert close(fit.qe_wald_p, ref["QEp_Wld"], 10 * GLMM_TEST, 1e-12)


@pytest.mark.parametrize("rec", RECORDS, ids=IDS)
def test_common_effect_counterpart(rec, fits):
    """metafor's method = "EE": the same likelihood with tau² = 0."""
    fit = fits[_name(rec)]
    ee = rec["ee"]
    if rec.get("mods"):
        beta, se = list(fit.common_beta), list(fit.common_se)
    else:
        beta, se = [fit.common.theta], [fit.common.se]
        assert close(fit.loglik_fe, ee["ll"], 1e-9)  # no intercepts: ll is the marginal one
    for ours, theirs in zip(beta, ee["estimate"]):
        assert close(ours, theirs, 1e-4), (ours, theirs)
    for ours, theirs in zip(se, ee["se"]):
        assert close(ours, theirs, GLMM_CMEL_SE), (ours, theirs)


@pytest.mark.parametrize("rec", RECORDS, ids=IDS)
def test_optimum_at_least_metafors(rec, fits):
    """ivigmeta's log-likelihood at its optimum >= at lme4's parameters, and there it is lme4's
    own (logLik of the nAGQ = 7 fit, relative to the saturated model)."""
    fit = fits[_name(rec)]
    x, t, X = _data(rec, scaled=True)
    for block in ("tight", "default"):
        params = rec[block]["params"]
        theirs = loglik_at(
            "IRLN", "UM.FS", x, t, None, None, params["fixef"], params["theta"][0], X=X
        )
        assert fit.loglik >= theirs - GLMM_LOGLIK * abs(theirs), (block, fit.loglik, theirs)
        lme4 = rec[block]["ll_lme4"] + fit.loglik_saturated
        assert close(theirs, lme4, GLMM_SAME_OBJECTIVE), (block, theirs, lme4)


def test_moderators_and_fit_statistics(fits):
    """QM of the year slope; metafor's parms (p + 1) and AIC/BIC/AICc formulas on k (one row per
    study) from its ll (ll.QE - deviance()/2 for lme4's AGQ fits: tests/reference README)."""
    for rec in RECORDS:
        fit, ref = fits[_name(rec)], rec["tight"]
        if not rec.get("mods"):
            continue
        assert close(fit.qm, ref["QM"], GLMM_SE) and close(fit.qm_p_value, ref["QMp"], 10 * GLMM_SE)
        assert fit.parameters == ref["parms"] and fit.observations == ref["k"]
        _, _, aic, bic, aicc = glmm_fit_statistics(ref["ll"], 0.0, ref["parms"], fit.observations)
        assert close(aic, ref["AIC"], 1e-12) and close(bic, ref["BIC"], 1e-12)
        assert close(aicc, ref["AICc"], 1e-12)


def test_stijnen_2010_table_vii():
    """metafor's test suite (Stijnen et al. 2010 Table VII): control 1.401 (se 0.231), tau²
    0.317, rate 4.06 [2.58, 6.38]; treated 0.849 (0.330), 0.654, 2.34 [1.22, 4.47]."""
    expected = {
        "nielweise2008_control": (1.401, 0.231, 0.317, 4.06, 2.58, 6.38),
        "nielweise2008_treated": (0.849, 0.330, 0.654, 2.34, 1.22, 4.47),
    }
    for name, (theta, se, tau2, rate, lo, hi) in expected.items():
        cols = _reference()["datasets"][name]["columns"]
        fit = fit_glmm("IRLN", "UM.FS", cols["xi"], cols["ti"])
        assert (round(fit.theta, 3), round(fit.se, 3), round(fit.tau2, 3)) == (theta, se, tau2)
        ci = (math.exp(fit.theta), math.exp(fit.ci_low), math.exp(fit.ci_high))
        assert tuple(round(v, 2) for v in ci) == (rate, lo, hi)


def test_boundary_and_zero_count(fits):
    fit = fits["homogeneous-intercept"]
    assert fit.boundary and fit.tau2 == 0.0 and all(fit.contributes)
    assert fit.theta == fit.common.theta and any("boundary" in n for n in fit.notes)


@pytest.mark.parametrize(("model", "message"), [("UM.RS", "does not apply to IRLN")])
def test_refused_models(model, message):
    with pytest.raises(ModelError, match=message):
        fit_glmm("IRLN", model, [1, 2], [10.0, 10.0])


# ---------------------------------------------------------------------------------------------
# CLI


def _write(tmp_path, dataset: str) -> str:
    cols = _reference()["datasets"][dataset]["columns"]
    path = tmp_path / f"{dataset}.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["study", "events", "time", "year"])
        for row in zip(cols["slab"], cols["xi"], cols["ti"], cols["year"]):
            w.writerow(row)
    return str(path)


def _record(dataset: str, mods: str | None) -> dict:
    return next(r for r in RECORDS if r["dataset"] == dataset and r.get("mods") == mods)


def test_cli_pool(run, tmp_path):
    path = _write(tmp_path, "nielweise2008_control")
    res = run("pool", path, "--measure", "IRLN", "--glmm", "um.fs", "--format", "json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    ref = _record("nielweise2008_control", None)["tight"]
    random, het, m = out["random"], out["heterogeneity"], out["model"]
    assert out["measure"] == "IRLN" and m["type"] == "glmm" and m["glmm"] == "UM.FS"
    assert close(random["theta"], ref["estimate"][0], GLMM_TIGHT)
    assert close(random["ci_low"], math.exp(ref["ci_lb"][0]), GLMM_CMEL_SE)
    assert close(random["ci_high"], math.exp(ref["ci_ub"][0]), GLMM_CMEL_SE)
    assert close(het["tau2"], ref["tau2"], GLMM_TIGHT)
    assert close(het["i2"], ref["I2"], GLMM_TIGHT) and close(het["h2"], ref["H2"], GLMM_TIGHT)
    assert m["k"] == ref["k"] and m["qe_df"] == ref["QE_df"]
    assert close(m["qe_wald"], ref["QE_Wld"], GLMM_TEST) and close(
        m["qe_lrt"], ref["QE_LRT"], GLMM_TEST
    )
    assert out["common"]["method"] == "GLMM UM.FS"
    text = run("pool", path, "--measure", "IRLN", "--glmm", "UM.FS")
    assert text.exit_code == 0 and "Random effects (GLMM UM.FS, ML, z)" in text.stdout


def test_cli_metareg(run, tmp_path):
    path = _write(tmp_path, "nielweise2008_treated")
    args = ("--measure", "IRLN", "--glmm", "UM.FS", "--mod", "year", "--format", "json")
    res = run("metareg", path, *args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    ref = _record("nielweise2008_treated", "year")["tight"]
    assert out["measure"] == "IRLN" and out["k"] == ref["k"]
    for coef, est, se in zip(out["coefficients"], ref["estimate"], ref["se"]):
        assert close(coef["estimate"], est, GLMM_TIGHT) and close(coef["se"], se, GLMM_SE)
    assert close(out["tau2"], ref["tau2"], GLMM_TIGHT) and close(out["qm"], ref["QM"], GLMM_SE)
    assert close(out["qe"], ref["QE_Wld"], GLMM_TEST) and out["qe_df"] == ref["QE_df"]
    assert close(out["i2"], ref["I2"], GLMM_TIGHT)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--measure", "IRLN", "--glmm", "UM.RS"), "does not apply to IRLN"),
        (("--measure", "IR", "--glmm", "UM.FS"), "not IR"),
    ],
)
def test_cli_bad_inputs_are_one_line_errors(run, tmp_path, args, message):
    path = _write(tmp_path, "nielweise2008_control")
    res = run("pool", path, *args)
    assert res.exit_code == 1
    errors = [line for line in res.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], res.stderr
    assert "Traceback" not in res.output
