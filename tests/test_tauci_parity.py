"""Confidence intervals for tau², I² and H² other than the Q-profile (``heterogeneity --tau2-ci``)
against metafor 3.8-1's confint().

Reference values: tests/reference/metafor_tauci.json, written by
tests/reference/make_reference_tauci.R from

    f <- rma(yi, vi, method = M, control = list(threshold = 1e-13, maxiter = 1e5, tol = 1e-13))
    confint(f, type = T, level = L, control = list(tol = 1e-12, maxiter = 1000))

for dat.bcg (RR), dat.normand1999 (MD), dat.hackshaw1998 (log OR) and the IVIG data
(studies.csv, RR), M in DL, REML, ML, T in QP, PL (ML and REML only), Wald, Wald.log,
Wald.sqrt, L in 95 and 90.
metafor's bounds come from uniroot(tol = 1e-12); ours are solved to double precision: compared
at ITERATIVE.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from tolerances import ITERATIVE, close

import ivigmeta
from ivigmeta.cli.common import TAU2_CI_CHOICES
from ivigmeta.core.confint import (
    TAU2_CI_METHODS,
    profile_likelihood_ci,
    qprofile_ci,
    tau2_ci,
    wald_ci,
)
from ivigmeta.core.tau2 import estimate_tau2
from ivigmeta.errors import ModelError

ROOT = Path(__file__).resolve().parent.parent
REF = json.loads((ROOT / "tests" / "reference" / "metafor_tauci.json").read_text(encoding="utf-8"))
SETS = {d["name"]: d for d in REF["datasets"]}
#: ivigmeta's --tau2-ci value for each metafor confint type it offers
TYPE_OF = {
    "QP": "qp",
    "PL": "pl",
    "Wald": "wald",
    "Wald.log": "wald-log",
    "Wald.sqrt": "wald-sqrt",
}


def _cases():
    return [
        pytest.param(
            d["name"],
            f,
            c,
            id=f"{d['name']}-{f['method']}-{c['type']}-{c['level']:g}",
        )
        for d in REF["datasets"]
        for f in d["fits"]
        for c in f["intervals"]
    ]


CASES = _cases()


def test_reference_is_metafor_3_8_1_and_its_types():
    """metafor 3.8-1 offers QP, GENQ, PL, Wald, Wald.log, Wald.sqrt (no BT, no SJ); ivigmeta
    offers all but GENQ, and the CLI spells out the engine's registry."""
    assert REF["metafor_version"] == "3.8.1"
    assert REF["confint_types"] == ["QP", "GENQ", "PL", "Wald", "Wald.log", "Wald.sqrt"]
    assert set(TYPE_OF) <= set(REF["confint_types"])
    assert TAU2_CI_CHOICES == tuple(TAU2_CI_METHODS) == tuple(TYPE_OF.values())
    # every offered type has records at both levels
    seen = {
        (c["type"], c["level"]) for d in REF["datasets"] for f in d["fits"] for c in f["intervals"]
    }
    assert seen == {(t, lv) for t in TYPE_OF for lv in (95, 90)}


@pytest.mark.parametrize(("name", "fitrec", "rec"), CASES)
def test_interval_matches_metafor_confint(name, fitrec, rec):
    d = SETS[name]
    est = estimate_tau2(d["yi"], d["vi"], fitrec["method"])
    assert close(est.tau2, fitrec["tau2"], ITERATIVE)
    assert close(est.se, fitrec["se_tau2"], ITERATIVE)
    ci = tau2_ci(
        TYPE_OF[rec["type"]], d["yi"], d["vi"], est.tau2, fitrec["method"], est.se,
        rec["level"] / 100,
    )  # fmt: skip
    for what, ours, ref in (
        ("tau2_lb", ci.tau2_low, rec["tau2"][1]),
        ("tau2_ub", ci.tau2_high, rec["tau2"][2]),
        ("tau_lb", ci.tau_low, rec["tau"][1]),
        ("tau_ub", ci.tau_high, rec["tau"][2]),
        ("I2_lb", ci.i2_low, rec["I2"][1]),
        ("I2_ub", ci.i2_high, rec["I2"][2]),
        ("H2_lb", ci.h2_low, rec["H2"][1]),
        ("H2_ub", ci.h2_high, rec["H2"][2]),
    ):
        assert close(ours, ref, ITERATIVE), (what, ours, ref)
    assert (ci.lb_sign, ci.ub_sign, ci.ci_null) == (rec["lb_sign"], rec["ub_sign"], rec["ci_null"])
    assert ci.code == TYPE_OF[rec["type"]]
    assert ci.method == TAU2_CI_METHODS[ci.code]
    assert ci.level == rec["level"] / 100


def test_the_types_differ_and_depend_on_the_level():
    """A guard against a type falling back on another: on bcg REML at 95% the five intervals
    are distinct, and each narrows at 90%."""
    d = SETS["bcg"]
    est = estimate_tau2(d["yi"], d["vi"], "REML")
    cis = {
        (m, lv): tau2_ci(m, d["yi"], d["vi"], est.tau2, "REML", est.se, lv)
        for m in TAU2_CI_METHODS
        for lv in (0.95, 0.90)
    }
    highs = {cis[(m, 0.95)].tau2_high for m in TAU2_CI_METHODS}
    assert len(highs) == len(TAU2_CI_METHODS) == 5
    for m in TAU2_CI_METHODS:
        assert cis[(m, 0.90)].tau2_high < cis[(m, 0.95)].tau2_high


def test_wald_is_the_explicit_formula():
    """tau² ± qnorm(0.975) se, the lower bound truncated at 0 (ivig DL: 0.1173 - 1.96 x 0.109 < 0)."""
    d = SETS["ivig"]
    est = estimate_tau2(d["yi"], d["vi"], "DL")
    ci = wald_ci(d["yi"], d["vi"], est.tau2, est.se)
    z = 1.959963984540054
    assert ci.tau2_low == 0.0 and est.tau2 - z * est.se < 0
    assert close(ci.tau2_high, est.tau2 + z * est.se, 1e-15)


def test_transformed_wald_needs_a_positive_tau2():
    """At tau² = 0 the log and square-root scale standard errors are infinite (metafor gives
    NaN / Inf bounds): refused in one line."""
    yi, vi = [0.1, 0.1, 0.1], [0.1, 0.2, 0.3]
    for method in ("wald-log", "wald-sqrt"):
        with pytest.raises(ModelError, match=r"needs tau² > 0 \(tau² = 0\)"):
            tau2_ci(method, yi, vi, 0.0, "DL", 0.05)
    assert tau2_ci("wald", yi, vi, 0.0, "DL", 0.05).tau2_low == 0.0


def test_profile_likelihood_is_refused_for_other_estimators():
    d = SETS["bcg"]
    est = estimate_tau2(d["yi"], d["vi"], "DL")
    with pytest.raises(ModelError, match="--tau2 ML or REML"):
        profile_likelihood_ci(d["yi"], d["vi"], est.tau2, "DL")
    with pytest.raises(ModelError, match="unknown interval type"):
        tau2_ci("bt", d["yi"], d["vi"], est.tau2, "DL")
    with pytest.raises(ModelError, match="standard error"):
        wald_ci(d["yi"], d["vi"], est.tau2, math.nan)


def test_profile_likelihood_at_the_boundary_starts_at_zero():
    """Identical effects: ML tau² = 0, the lower bound 0, the upper bound the root above it."""
    yi, vi = [0.1, 0.1, 0.1, 0.1], [0.1, 0.2, 0.3, 0.4]
    est = estimate_tau2(yi, vi, "ML")
    assert est.tau2 == 0.0
    ci = profile_likelihood_ci(yi, vi, 0.0, "ML")
    assert ci.tau2_low == 0.0 and 0.0 < ci.tau2_high < 100.0
    assert (ci.lb_sign, ci.ub_sign, ci.ci_null) == ("", "", False)


# ---------------------------------------------------------------------------------------------
# The API and the command line (plumbing; the numbers are tested above).


def _ivig_record(method: str, ci_type: str, level: int = 95) -> dict:
    f = next(f for f in SETS["ivig"]["fits"] if f["method"] == method)
    return next(c for c in f["intervals"] if c["type"] == ci_type and c["level"] == level)


def test_api_tau2_ci_and_with_tau2_ci():
    fitted = ivigmeta.pool(ROOT / "studies.csv", tau2="REML")
    assert np.allclose(fitted.effects.yi, SETS["ivig"]["yi"], rtol=1e-13, atol=0)
    assert fitted.tau2_ci("qp") is fitted.heterogeneity.ci
    assert fitted.with_tau2_ci("qp").analysis is fitted.analysis
    pl = fitted.tau2_ci("PL")
    ref = _ivig_record("REML", "PL")
    assert close(pl.tau2_low, ref["tau2"][1], ITERATIVE)
    assert close(pl.tau2_high, ref["tau2"][2], ITERATIVE)
    swapped = fitted.with_tau2_ci("pl")
    assert swapped.heterogeneity.ci == pl
    assert swapped.heterogeneity.tau2 == fitted.heterogeneity.tau2
    assert fitted.heterogeneity.ci.code == "qp"  # the original fit is untouched


def test_api_refusals():
    dl = ivigmeta.pool(ROOT / "studies.csv")
    with pytest.raises(ModelError, match=r"\(--tau2 ML or REML\), not DL"):
        dl.tau2_ci("pl")
    revman = ivigmeta.pool(ROOT / "studies.csv", software="revman")
    with pytest.raises(ModelError, match="RevMan"):
        revman.tau2_ci("wald")
    glmm = ivigmeta.pool(ROOT / "studies.csv", glmm="UM.FS", measure="OR")
    with pytest.raises(ModelError, match="GLMM"):
        glmm.tau2_ci("wald")


def _het_json(run, *args):
    result = run("heterogeneity", str(ROOT / "studies.csv"), *args, "-f", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_cli_default_is_the_q_profile_unchanged(run):
    default = _het_json(run)
    assert default == _het_json(run, "--tau2-ci", "qp")
    assert (default["ci_method"], default["ci_type"]) == ("Q-profile", "qp")
    es = ivigmeta.pool(ROOT / "studies.csv").effects
    ci = qprofile_ci(es.yi, es.vi, default["tau2"])
    assert default["tau2_ci"] == [ci.tau2_low, ci.tau2_high]
    keys = list(default)
    assert keys.index("ci_null") < keys.index("ci_type") < keys.index("k")


@pytest.mark.parametrize(
    ("method", "ci_type", "level"),
    [
        ("ML", "PL", 95),
        ("REML", "PL", 90),
        ("REML", "Wald", 95),
        ("DL", "Wald.log", 90),
        ("ML", "Wald.sqrt", 95),
    ],
)
def test_cli_tau2_ci_json(run, method, ci_type, level):
    out = _het_json(run, "--tau2", method, "--tau2-ci", TYPE_OF[ci_type], "--level", str(level))
    ref = _ivig_record(method, ci_type, level)
    assert out["ci_type"] == TYPE_OF[ci_type]
    assert out["ci_method"] == TAU2_CI_METHODS[TYPE_OF[ci_type]]
    assert out["ci_level"] == level / 100
    for key, name in (("tau2_ci", "tau2"), ("tau_ci", "tau"), ("i2_ci", "I2"), ("h2_ci", "H2")):
        assert close(out[key][0], ref[name][1], ITERATIVE), key
        assert close(out[key][1], ref[name][2], ITERATIVE), key


def test_cli_table_names_the_interval(run):
    result = run("heterogeneity", str(ROOT / "studies.csv"), "--tau2", "REML", "--tau2-ci", "pl")
    assert result.exit_code == 0, result.output
    assert "95% CI (profile likelihood)" in result.stdout
    result = run("heterogeneity", str(ROOT / "studies.csv"), "--tau2-ci", "wald", "--level", "90")
    assert result.exit_code == 0, result.output
    assert "90% CI (Wald)" in result.stdout and "truncated at 0" in result.stdout
    result = run("heterogeneity", str(ROOT / "studies.csv"), "--tau2-ci", "wald-sqrt")
    assert "95% CI (Wald, square-root scale)" in result.stdout
    assert "square-root scale of tau², squared back" in result.stdout
    assert "CI (Q-profile)" in run("heterogeneity", str(ROOT / "studies.csv")).stdout


def test_cli_errors(run):
    result = run("heterogeneity", str(ROOT / "studies.csv"), "--tau2-ci", "pl")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "Error: the profile-likelihood interval for tau² needs a maximum-likelihood fit "
        "(--tau2 ML or REML), not DL"
    ]
    result = run("heterogeneity", str(ROOT / "studies.csv"), "--tau2-ci", "bt")
    assert result.exit_code == 2
    assert "'bt' is not one of 'qp', 'pl', 'wald', 'wald-log', 'wald-sqrt'" in result.stderr
    result = run(
        "heterogeneity", str(ROOT / "studies.csv"), "--software", "revman", "--tau2-ci", "wald"
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: --tau2-ci wald: RevMan")
    assert "Traceback" not in result.output


def test_cli_single_study_is_not_applicable(run):
    one = "study,treat_events,treat_total,control_events,control_total\nA,3,10,1,10\n"
    result = run("heterogeneity", "-", "--tau2", "ML", "--tau2-ci", "pl", "-f", "json", input=one)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["tau2_ci"] is None and out["k"] == 1
