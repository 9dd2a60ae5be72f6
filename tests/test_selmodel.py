"""Selection models (`ivigmeta selmodel`, fit.selmodel()) against metafor's selmodel()
(tests/reference/metafor_selmodel.json, written by tests/reference/make_reference_selmodel.R),
with metafor's own test values (tests/testthat/test_misc_selmodel.r), and the command line.

Tolerances: metafor's optimum is found by optim's BFGS (reltol 1e-10, finite-difference steps
1e-6), which pins the log-likelihood to ~1e-10 but the parameters of these flat likelihoods only
to ~1e-5 relative; the standard errors come from numerical Hessians (numDeriv's Richardson
extrapolation on both sides, at optima that differ by that much). So: ll at 1e-8, estimates at
LL_PARAM, standard errors at SE_REL (looser where tau² sits near 0, below).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import ivigmeta
from ivigmeta.core.selection import (
    SelectionData,
    check_steps,
    fit_selection,
    integrals_by_quad,
    interval_of,
    one_sided_pvalues,
    weight_spec,
)
from ivigmeta.methods.selmodel import selection_model

REF = json.loads((Path(__file__).parent / "reference" / "metafor_selmodel.json").read_text())
DATA = REF["data"]
RECORDS = [r for r in REF["selmodel"] if not r["mods"]]
MODS = [r for r in REF["selmodel"] if r["mods"]]
MEASURE = {"hackshaw1998": "OR", "baskerville": "RD", "preston": "OR", "cohen1981": "RD",
           "bcg": "RR"}  # fmt: skip
#: the log-likelihood: both optimizers reach the same maximum to ~1e-10
LL_ABS = 1e-8
#: estimates: metafor's BFGS stops within ~1e-5 relative of the optimum of a flat likelihood
PARAM_REL = 2e-5
#: standard errors: numerical Hessians (Richardson, r = 6) at optima ~1e-5 apart
SE_REL = 1e-4
#: continuous weight functions: metafor integrates with R's integrate(rel.tol = 1e-8) (tighter
#: runs for minutes), so its log-likelihood carries ~1e-8 per study and its optimum moves by
#: ~1e-4 relative in the flattest directions
LL_ABS_CONT = 2e-7
PARAM_REL_CONT = 2e-4
SE_REL_CONT = 1e-3
#: the unadjusted ML fit is metafor's rma(method = "ML") at its default convergence threshold
#: (1e-5 on tau²): its log-likelihood is ~1e-7 short of the maximum ours reaches
LL0_ABS = 1e-6


def _fit(dataset: str) -> ivigmeta.MetaAnalysisFit:
    d = DATA[dataset]
    if dataset == "preston":
        cols = {"treat_events": d["ai"], "treat_total": d["n1i"], "control_events": d["ci"],
                "control_total": d["n2i"]}  # fmt: skip
    else:
        cols = {"yi": d["yi"], "vi": d["vi"]}
    k = len(next(iter(cols.values())))
    return ivigmeta.pool({"study": [f"s{i + 1}" for i in range(k)], **cols},
                         measure=MEASURE[dataset], tau2="ML")  # fmt: skip


def _nan(x):
    return math.nan if x is None else x


def _close(ours, ref, rel: float, abs_: float = 1e-9) -> bool:
    ref, ours = _nan(ref), _nan(ours)
    if math.isnan(ref):
        return math.isnan(ours)
    return abs(ours - ref) <= rel * abs(ref) + abs_


def _run(rec):
    fixed = rec["delta_fixed"]
    steps = rec["steps"]
    if rec["type"] != "stepfun" and steps is not None:
        steps = steps[:1]
    return selection_model(
        _fit(rec["data"]).analysis,
        rec["type"],
        steps=steps,
        alternative=rec["alternative"],
        prec=rec["prec"],
        scaleprec=rec["scaleprec"],
        delta=None if fixed is None else [_nan(x) for x in fixed],
        model="common" if rec["method"] == "EE" else "random",
    )


@pytest.mark.parametrize("rec", RECORDS, ids=[r["name"] for r in RECORDS])
def test_selection_model_matches_metafor(rec):
    res = _run(rec)
    cont = rec["type"] != "stepfun"
    ll_abs = LL_ABS_CONT if cont else LL_ABS
    param_rel = PARAM_REL_CONT if cont else PARAM_REL
    near_zero = rec["method"] != "EE" and rec["tau2"] < 1e-4
    if near_zero:
        # tau² ~ 1e-6 (baskerville beta): a likelihood flat towards tau² = 0, where metafor's
        # BFGS stops 3e-5 short of the maximum ours reaches; the estimates agree to ~1e-3
        ll_abs, param_rel = 1e-4, 5e-3
        assert res.ll >= rec["ll"] - LL_ABS
    assert res.k == rec["k"]
    assert abs(res.ll - rec["ll"]) <= ll_abs
    assert abs(res.ll_unadjusted - rec["ll0"]) <= LL0_ABS
    assert res.lrt_df == rec["LRTdf"] and res.parameters == rec["parms"]
    assert abs(res.lrt - rec["LRT"]) <= 2 * (ll_abs + LL0_ABS)
    if rec["LRTdf"]:
        assert _close(res.lrt_p, rec["LRTp"], 1e-4)
    assert _close(res.aic, rec["AIC"], 1e-9, 2 * ll_abs)
    assert _close(res.theta, rec["beta"][0], param_rel, 1e-7)
    tau2_abs = 1e-5 if near_zero else 1e-9
    assert _close(res.tau2, rec["tau2"], param_rel, tau2_abs)
    for ours, ref in zip(res.deltas, rec["delta"]):
        assert _close(ours.estimate, ref, param_rel, 1e-7)
    se_rel = SE_REL_CONT if cont else SE_REL
    if rec["integrate_rel_tol"] < 1e-10:
        se_rel = 1e-5  # metafor with integrate(rel.tol = 1e-12): its Hessian is clean
    elif cont and rec["method"] != "EE":
        # random effects with metafor's integrals at 1e-8: its Richardson Hessian amplifies
        # that noise (se 0.15576 against 0.151875 from the same fit with rel.tol = 1e-12, the
        # "_int12" record, which ours matches to 1e-5)
        se_rel = 5e-2
    if near_zero:
        se_rel = 0.1  # tau² ~ 0: the Hessian's tau² steps (1e-4) cross the floor at 0
    assert _close(res.se, rec["se"][0], se_rel)
    if rec["method"] != "EE":
        assert _close(res.tau2_se, rec["se_tau2"], se_rel, 1e-8)
    for ours, ref in zip(res.deltas, rec["se_delta"]):
        assert _close(ours.se, ref, se_rel)
    for ours, lo, hi in zip(res.deltas, rec["ci_lb_delta"], rec["ci_ub_delta"]):
        if not ours.fixed:
            assert _close(ours.ci_low, lo, se_rel, 1e-7) and _close(ours.ci_high, hi, se_rel)
    if rec["ptable"] is not None and rec["type"] == "stepfun":
        assert [d.k for d in res.deltas] == rec["ptable"]
    assert np.allclose(res.pvalues, rec["pvals"], rtol=1e-12, atol=0)
    if rec["LRT_tau2"] is not None:
        assert abs(res.lrt_tau2 - rec["LRT_tau2"]) <= 4 * ll_abs


def test_moderators_in_the_core():
    # the engine takes a design matrix (metafor's mods = ~ xi); the command fits intercepts only
    for rec in MODS:
        d = DATA[rec["data"]]
        y, v = np.array(d["yi"]), np.array(d["vi"])
        X = np.column_stack([np.ones(len(y)), d["xi"]])
        steps = check_steps(rec["steps"])
        spec = weight_spec(rec["type"], len(steps))
        pv = one_sided_pvalues(y, v, "greater")
        data = SelectionData(y, v, X, "stepfun", "greater", steps, np.ones(len(y)), pv,
                             interval_of(pv, steps), 0.0)  # fmt: skip
        from ivigmeta.core.regression import regression_fit

        ml = regression_fit(y, v, X, "ML")
        est = fit_selection(data, ml.beta, ml.tau2, True, [1.0, math.nan], spec)
        assert abs(est.ll - rec["ll"]) <= LL_ABS
        assert np.allclose(est.beta, rec["beta"], rtol=PARAM_REL, atol=1e-6)


def test_metafor_test_file_values():
    # tests/testthat/test_misc_selmodel.r (its default, looser controls: 6 digits)
    sav = selection_model(_fit("hackshaw1998").analysis, "stepfun", steps=[0.05, 0.10, 0.50, 1])
    assert [round(d.estimate, 5) for d in sav.deltas] == [1, 2.42208, 0.97754, 0.39671]
    assert [round(d.se, 4) for d in sav.deltas[1:]] == [1.6608, 0.8204, 0.4692]
    assert round(sav.lrt, 4) == 7.0661 and sav.lrt_df == 3
    assert round(sav.tau2, 6) == 0.030713
    assert [d.k for d in sav.deltas] == [7, 8, 16, 6]
    preston = _fit("preston").analysis
    got = [
        selection_model(preston, t, alternative="less", model="common").deltas[0].estimate
        for t in ("halfnorm", "negexp", "logistic", "power")
    ]
    assert np.allclose(got, [3.162948, 2.656714, 3.339338, 1.458923], rtol=1e-5)


def test_quadrature_matches_scipy_quad():
    rec = next(r for r in RECORDS if r["name"] == "preston_power_sei_step05")
    res = _run(rec)
    fit = _fit("preston")
    y, v = np.array(fit.effects.yi), np.array(fit.effects.vi)
    for kind, alt, step, pmin, delta in [
        ("power", "less", (0.05,), 1e-5, [res.deltas[0].estimate]),
        ("beta", "two.sided", (), 1e-5, [0.5, 3.0]),
        ("negexppow", "greater", (0.025,), 0.0, [2.0, 1.2]),
    ]:
        from ivigmeta.core.selection import log_likelihood  # noqa: F401 - same module

        prec = np.sqrt(v) / np.sqrt(v).max()
        pv = np.clip(one_sided_pvalues(y, v, alt), pmin, 1 - pmin)
        data = SelectionData(y, v, np.ones((len(y), 1)), kind, alt, step, prec, pv,
                             np.zeros(len(y), dtype=int), pmin)  # fmt: skip
        mu, s = np.full(len(y), -0.3), np.sqrt(v + 0.05)
        from ivigmeta.core import selection

        ours = selection._integrals(data, mu, s, np.array(delta))
        assert np.allclose(ours, integrals_by_quad(data, mu, s, np.array(delta)), rtol=1e-11)


# ---------------------------------------------------------------------------------------------
# The command line


@pytest.fixture
def hack_csv(tmp_path):
    from conftest import write_columns

    d = DATA["hackshaw1998"]
    return write_columns(tmp_path, "hack.csv", {"yi": d["yi"], "vi": d["vi"]})


def test_cli_table_json_csv(run, hack_csv):
    args = ["selmodel", hack_csv, "--measure", "OR", "--type", "stepfun", "--steps",
            "0.05,0.1,0.5"]  # fmt: skip
    table = run(*args)
    assert table.exit_code == 0, table.stderr
    assert "delta 2 (0.05 < p <= 0.1)" in table.stdout and "LRT = 7.0661 on 3 df" in table.stdout
    out = run(*args, "--format", "json")
    data = json.loads(out.stdout)["selmodel"]
    rec = next(r for r in RECORDS if r["name"] == "hackshaw_stepfun_re")
    assert data["steps"] == [0.05, 0.1, 0.5, 1.0] and data["lrt_df"] == 3
    assert abs(data["ll"] - rec["ll"]) <= LL_ABS
    assert [d["k"] for d in data["deltas"]] == [7, 8, 16, 6]
    assert data["deltas"][0]["fixed"] is True and data["deltas"][0]["se"] is None
    csv = run(*args, "--format", "csv")
    lines = csv.stdout.splitlines()
    assert lines[0].startswith("type,alternative,model,k,ll,lrt")
    assert len(lines) == 1 + 2 + 4  # theta, tau2, four deltas


def test_cli_common_model_two_sided_and_a_priori(run, hack_csv):
    out = run("selmodel", hack_csv, "--measure", "OR", "--type", "stepfun", "--steps",
              "0.05,0.1,0.5,1", "--model", "common", "-f", "json")  # fmt: skip
    data = json.loads(out.stdout)["selmodel"]
    rec = next(r for r in RECORDS if r["name"] == "hackshaw_stepfun_ee")
    assert data["model"] == "common" and data["tau2"] == 0 and data["lrt_tau2"] is None
    assert abs(data["ll"] - rec["ll"]) <= LL_ABS
    out = run("selmodel", hack_csv, "--measure", "OR", "--type", "stepfun", "--steps",
              "0.05,0.1,0.5", "--delta", "1,NA,0.8,NA", "-f", "json")  # fmt: skip
    data = json.loads(out.stdout)["selmodel"]
    assert [d["fixed"] for d in data["deltas"]] == [True, False, True, False]
    assert data["lrt_df"] == 2
    out = run("selmodel", hack_csv, "--measure", "OR", "--type", "halfnorm",
              "--alternative", "two-sided", "-f", "json")  # fmt: skip
    assert out.exit_code == 0 and json.loads(out.stdout)["selmodel"]["alternative"] == "two.sided"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--type", "stepfun"], "needs --steps"),
        (["--type", "stepfun", "--steps", "0.05", "--delta", "1,1,1"], "needs 2 values"),
        (["--type", "stepfun", "--steps", "0.001,0.002"], "no study's p-value falls in"),
        (["--type", "stepfun", "--steps", "1.5"], "between 0 and 1"),
        (["--type", "halfnorm", "--steps", "0.05,0.1"], "single --steps value"),
        (["--type", "beta", "--steps", "0.05"], "does not apply to --type beta"),
        (["--type", "stepfun", "--steps", "0.05", "--prec", "sei"], "does not apply"),
        (["--type", "halfnorm", "--prec", "ninv"], "needs each study's sample size"),
        (["--type", "stepfun", "--steps", "0.05", "--delta", "1,-1"], "must be >= 0"),
    ],
)
def test_cli_errors_are_one_line(run, hack_csv, extra, message):
    out = run("selmodel", hack_csv, "--measure", "OR", *extra)
    assert out.exit_code == 1, out.stdout
    errors = [x for x in out.stderr.splitlines() if x.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in out.stderr


def test_cli_usage_errors(run, hack_csv):
    assert run("selmodel", hack_csv).exit_code == 2  # --type is required
    out = run("selmodel", hack_csv, "--type", "stepfun", "--steps", "0.05,x")
    assert out.exit_code == 2 and "separated by commas" in out.stderr
    assert run("selmodel", hack_csv, "--type", "trunc").exit_code == 2


def test_profile_likelihood_intervals_match_metafor_confint():
    rec = next(r for r in RECORDS if r["name"] == "hackshaw_stepfun_re")
    res = selection_model(_fit("hackshaw1998").analysis, "stepfun", steps=rec["steps"],
                          profile=True)  # fmt: skip
    # metafor's uniroot (tol 1e-10) on a likelihood whose own optimum is good to ~1e-5
    # relative in delta; the tau² bounds agree to 1e-10
    assert _close(res.tau2_pl_ci_low, rec["confint_tau2"][1], 1e-7)
    assert _close(res.tau2_pl_ci_high, rec["confint_tau2"][2], 1e-7)
    estimated = [d for d in res.deltas if not d.fixed]
    assert len(estimated) == len(rec["confint_delta"]) == 3
    for d, (est, lo, hi) in zip(estimated, rec["confint_delta"]):
        assert _close(d.estimate, est, PARAM_REL)
        assert _close(d.pl_ci_low, lo, 1e-5) and _close(d.pl_ci_high, hi, 1e-5)
    # metafor's own test file: confint(sav) to 6 digits
    assert [round(x, 4) for x in (res.tau2_pl_ci_low, res.tau2_pl_ci_high)] == [0.0002, 0.1353]
    assert [round(estimated[0].pl_ci_low, 4), round(estimated[0].pl_ci_high, 4)] == [0.6651, 9.9158]


def test_profile_ci_on_the_command_line(run, hack_csv):
    out = run("selmodel", hack_csv, "--measure", "OR", "--type", "stepfun", "--steps",
              "0.05,0.5", "--profile-ci", "-f", "json")  # fmt: skip
    assert out.exit_code == 0, out.stderr
    data = json.loads(out.stdout)["selmodel"]
    assert data["tau2_pl_ci_low"] < data["tau2"] < data["tau2_pl_ci_high"]
    assert data["deltas"][0]["pl_ci_low"] is None
    assert all(d["pl_ci_low"] < d["estimate"] < d["pl_ci_high"] for d in data["deltas"][1:])
    plain = json.loads(run("selmodel", hack_csv, "--measure", "OR", "--type", "stepfun",
                           "--steps", "0.05,0.5", "-f", "json").stdout)["selmodel"]  # fmt: skip
    assert (
        plain["tau2_pl_ci_low"] is None
        and "Profile"
        not in run(
            "selmodel", hack_csv, "--measure", "OR", "--type", "stepfun", "--steps", "0.05,0.5"
        ).stdout
    )
