"""The rest of metafor's univariate model (issue 17, items 1 and 2) against metafor 3.8-1.

Reference values: tests/reference/metafor_univariate.json, written by
``Rscript tests/reference/make_reference_univariate.R`` (its header says how each number was
obtained: tight control, GENQ weights 1 / sqrt(vi), hc() with tightened tolerances, the t(k - 2)
prediction interval computed from the fit in R). Data: dat.bcg (RR), dat.normand1999 (MD),
dat.li2007 (OR) and the repository's studies.csv (IVIG, RR).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from ivigmeta.cli.common import CI_CHOICES, TAU2_CHOICES
from ivigmeta.core.groups import Groups
from ivigmeta.core.pooling import CI_METHODS, pool_groups
from ivigmeta.core.tau2 import ESTIMATORS, estimate_tau2, tau2_one
from ivigmeta.errors import ModelError
from ivigmeta.results import EffectSizes, FitOptions
from tests.tolerances import CLOSED_FORM, ITERATIVE, close

REF = json.loads(
    (Path(__file__).parent / "reference" / "metafor_univariate.json").read_text(encoding="utf-8")
)
SETS = {d["name"]: d for d in REF["datasets"]}
#: closed-form estimators; the others iterate or solve (ITERATIVE); hc integrates numerically
CLOSED = {"DL", "HE", "HS", "HSk", "SJ", "GENQ"}
#: metafor's rma.uni() method names of version 3.8-1 that ivigmeta offers (EE/FE/CE are the
#: common-effect model; GENQM needs the CompQuadForm package and is not offered)
METAFOR_3_8_1 = [
    "DL",
    "HE",
    "HS",
    "HSk",
    "SJ",
    "ML",
    "REML",
    "EB",
    "PM",
    "PMM",
    "GENQ",
    "SJIT",
    "DLIT",
]


def _cases(key: str):
    return [
        pytest.param(d["name"], rec, id=f"{d['name']}-{rec.get('method')}-{rec.get('test', '')}")
        for d in REF["datasets"]
        for rec in d[key]
    ]


def _fit(name: str, method: str, ci: str = "z", pi: str = "z", common_ci: str = "z"):
    d = SETS[name]
    y, v = np.array(d["yi"]), np.array(d["vi"])
    a = np.array(d["genq_weights"]) if method == "GENQ" else None
    return pool_groups(
        y, v, Groups.single(len(y)), method, ci, 0.95, "IV", d["measure"], None, pi, common_ci, a
    )


def test_reference_is_metafor_3_8_1():
    assert REF["metafor_version"] == "3.8.1"
    assert REF["generated_by"] == "tests/reference/make_reference_univariate.R"


def test_registries_are_metafor_names_and_the_cli_offers_them():
    assert sorted(METAFOR_3_8_1) == sorted(ESTIMATORS)
    assert tuple(ESTIMATORS) == TAU2_CHOICES
    assert CI_METHODS == CI_CHOICES == ("z", "hk", "adhoc", "hc", "t")


@pytest.mark.parametrize(("name", "rec"), _cases("estimators"))
def test_estimator_matches_metafor(name, rec):
    """rma(yi, vi, method, control = CTRL): tau², se.tau2, estimate, se, CI and predict()'s PI."""
    method = rec["method"]
    if "error" in rec:  # DLIT on normand1999 and li2007: metafor does not converge either
        assert "did not converge" in rec["error"]
        gf = _fit(name, method)
        assert not gf.tau2.converged[0]
        return
    tol = CLOSED_FORM if method in CLOSED else ITERATIVE
    gf = _fit(name, method)
    assert gf.tau2.converged[0]
    assert close(float(gf.tau2.tau2[0]), rec["tau2"], tol, 1e-10), "tau2"
    assert gf.tau2.se is not None
    assert close(float(gf.tau2.se[0]), rec["se_tau2"], tol), "se_tau2"
    r = gf.random
    for ours, key in (
        (r.theta, "estimate"),
        (r.se, "se"),
        (r.ci_low, "ci_lb"),
        (r.ci_high, "ci_ub"),
        (r.pi_low, "pi_lb"),
        (r.pi_high, "pi_ub"),
    ):
        assert close(float(ours[0]), rec[key], tol), key


@pytest.mark.parametrize(("name", "rec"), _cases("tests"))
def test_intervals_match_metafor(name, rec):
    """rma(method = DL / REML, test = z / knha / adhoc) with predict(), and the t(k - 2) PI."""
    ci = {"z": "z", "knha": "hk", "adhoc": "adhoc"}[rec["test"]]
    tol = CLOSED_FORM if rec["method"] == "DL" else ITERATIVE
    for pi, lo, hi in (("z", "pi_lb", "pi_ub"), ("t", "pi_t_lb", "pi_t_ub")):
        r = _fit(name, rec["method"], ci, pi).random
        for ours, key in (
            (r.theta, "estimate"),
            (r.se, "se"),
            (r.statistic, "zval"),
            (r.p_value, "pval"),
            (r.ci_low, "ci_lb"),
            (r.ci_high, "ci_ub"),
            (r.pi_low, lo),
            (r.pi_high, hi),
        ):
            assert close(float(ours[0]), rec[key], tol), (pi, key)


def test_adhoc_differs_from_knha_where_the_factor_is_below_one():
    """The truncation is exercised: on some reference set knha's se is below the z se."""
    hits = 0
    for d in REF["datasets"]:
        by = {(t["method"], t["test"]): t for t in d["tests"]}
        z, knha, adhoc = by["DL", "z"], by["DL", "knha"], by["DL", "adhoc"]
        if knha["se"] < z["se"]:
            hits += 1
            assert adhoc["se"] == pytest.approx(z["se"], rel=1e-12)
        else:
            assert adhoc["se"] == pytest.approx(knha["se"], rel=1e-12)
    assert hits >= 1


@pytest.mark.parametrize("name", list(SETS))
def test_common_effect_hartung_knapp_matches_metafor(name):
    """rma(yi, vi, method = "EE", test = "knha")."""
    ref = SETS[name]["ee_knha"]
    gf = _fit(name, "DL", common_ci="hk")
    c = gf.common
    assert gf.common_df is not None and gf.common_df[0] == ref["df"]
    for ours, key in (
        (c.theta, "estimate"),
        (c.se, "se"),
        (c.statistic, "tval"),
        (c.p_value, "pval"),
        (c.ci_low, "ci_lb"),
        (c.ci_high, "ci_ub"),
    ):
        assert close(float(ours[0]), ref[key], CLOSED_FORM), key


@pytest.mark.parametrize("name", list(SETS))
def test_henmi_copas_matches_metafor_hc(name):
    """hc(rma(yi, vi, method = "DL")) with tightened uniroot/integrate tolerances (the numerical
    integration agrees to about 1e-9 relative)."""
    ref = SETS[name]["hc"]
    r = _fit(name, "REML", ci="hc").random  # hc's own DL tau², whatever --tau2
    assert close(float(r.theta[0]), ref["estimate"], CLOSED_FORM)
    assert close(float(r.se[0]), ref["se"], CLOSED_FORM)
    assert close(float(r.ci_low[0]), ref["ci_lb"], ITERATIVE)
    assert close(float(r.ci_high[0]), ref["ci_ub"], ITERATIVE)
    assert math.isnan(float(r.pi_low[0])) and math.isnan(float(r.p_value[0]))


def test_ivig_effects_are_the_repositorys():
    """The IVIG record's yi are what ivigmeta computes from studies.csv (RR)."""
    import ivigmeta

    fitted = ivigmeta.pool(Path(__file__).parent.parent / "studies.csv")
    assert np.allclose(fitted.effects.yi, SETS["ivig"]["yi"], rtol=1e-13, atol=0)


def test_fit_carries_tau2_se_and_the_new_options():
    d = SETS["bcg"]
    es = EffectSizes("RR", (), tuple(d["yi"]), tuple(d["vi"]), (0.0,) * d["k"])
    from ivigmeta.core.pooling import fit

    ma = fit(es, FitOptions("PMM", ci_method="adhoc", pi_method="t", common_ci="hk"))
    rec = next(e for e in d["estimators"] if e["method"] == "PMM")
    assert ma.random is not None and ma.heterogeneity is not None and ma.common is not None
    assert close(ma.random.tau2_se, rec["se_tau2"], ITERATIVE)
    assert ma.heterogeneity.tau2_se == ma.random.tau2_se
    assert ma.common.ci_method == "hk" and ma.common.df == d["k"] - 1
    assert ma.random.pi_method == "t"


def test_eb_and_sjit_are_the_paule_mandel_root():
    """Their fixed point is y' P y = k - 1 (module docstring): equal to PM to double precision."""
    d = SETS["li2007"]
    pm = estimate_tau2(d["yi"], d["vi"], "PM").tau2
    assert estimate_tau2(d["yi"], d["vi"], "EB").tau2 == pm
    assert estimate_tau2(d["yi"], d["vi"], "SJIT").tau2 == pm


def test_dlit_not_converging_is_a_one_line_error():
    d = SETS["li2007"]
    with pytest.raises(ModelError, match=r"^the DLIT estimator of tau² did not converge in \d+"):
        estimate_tau2(d["yi"], d["vi"], "DLIT")


def test_genq_without_weights_is_a_model_error():
    d = SETS["bcg"]
    with pytest.raises(ModelError, match="GENQ estimator of tau² needs weights"):
        estimate_tau2(d["yi"], d["vi"], "GENQ")


def test_genq_with_inverse_variance_weights_is_dl():
    """With a = 1 / v the generalized Q estimator is DerSimonian-Laird (DerSimonian & Kacker)."""
    d = SETS["normand1999"]
    w = [1.0 / x for x in d["vi"]]
    genq = tau2_one(d["yi"], d["vi"], "GENQ", weights=w)
    dl = tau2_one(d["yi"], d["vi"], "DL")
    assert genq.tau2 == pytest.approx(dl.tau2, rel=1e-12)
    assert genq.se == pytest.approx(dl.se, rel=1e-12)


@pytest.mark.parametrize("method", ["HS", "HSk", "GENQ", "PMM", "EB", "SJIT", "DL", "REML"])
def test_moderators_give_metafors_intercept_only_values_with_a_column_of_ones(method):
    """The RegressionModels path (metareg) and the grouped path agree with X = 1."""
    d = SETS["bcg"]
    w = d["genq_weights"] if method == "GENQ" else None
    X = np.ones((d["k"], 1))
    a = tau2_one(d["yi"], d["vi"], method, weights=w)
    b = tau2_one(d["yi"], d["vi"], method, X, weights=w)
    assert b.tau2 == pytest.approx(a.tau2, rel=1e-9, abs=1e-12)
    assert b.se == pytest.approx(a.se, rel=1e-9)


# ---------------------------------------------------------------------------------------------
# The command line: plumbing, exit codes and JSON keys (the numbers are tested above).


def _json(run, *args):
    result = run("pool", str(Path(__file__).parent.parent / "studies.csv"), *args, "-f", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_cli_json_carries_the_new_keys_with_metafors_numbers(run):
    ivig = SETS["ivig"]
    d = _json(run, "--tau2", "PMM", "--ci", "adhoc", "--pi", "t", "--common-ci", "hk")
    pmm = next(e for e in ivig["estimators"] if e["method"] == "PMM")
    assert close(d["random"]["tau2_se"], pmm["se_tau2"], ITERATIVE)
    assert d["heterogeneity"]["tau2_se"] == d["random"]["tau2_se"]
    assert d["random"]["pi_method"] == "t" and d["random"]["ci_method"] == "adhoc"
    assert d["common"]["ci_method"] == "hk" and d["common"]["df"] == ivig["k"] - 1
    assert close(math.log(d["common"]["ci_low"]), ivig["ee_knha"]["ci_lb"], CLOSED_FORM)


def test_cli_hc_reports_the_henmi_copas_interval(run):
    ref = SETS["ivig"]["hc"]
    r = _json(run, "--ci", "hc")["random"]
    assert close(r["theta"], ref["estimate"], CLOSED_FORM)
    assert close(math.log(r["ci_low"]), ref["ci_lb"], ITERATIVE)
    assert r["p_value"] is None and r["pi_low"] is None


def test_cli_genq_reads_its_weights_column(run):
    """--tau2-weights year: the tau² of the kernel with those numbers as weights."""
    import ivigmeta

    fitted = ivigmeta.pool(Path(__file__).parent.parent / "studies.csv")
    years = [float(s.year) for s in fitted.effects.studies]
    want = tau2_one(fitted.effects.yi, fitted.effects.vi, "GENQ", weights=years)
    r = _json(run, "--tau2", "GENQ", "--tau2-weights", "year")["random"]
    assert r["tau2_method"] == "GENQ"
    assert close(r["tau2"], want.tau2, CLOSED_FORM) and close(r["tau2_se"], want.se, CLOSED_FORM)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tau2", "XYZ"], "Invalid value for '--tau2': 'XYZ' is not one of 'DL'"),
        (["--ci", "kh"], "Invalid value for '--ci': 'kh' is not one of 'z', 'hk', 'adhoc', 'hc'"),
        (["--pi", "hts"], "Invalid value for '--pi': 'hts' is not one of 'z', 't'"),
        (["--common-ci", "t"], "Invalid value for '--common-ci': 't' is not one of 'z', 'hk'"),
    ],
)
def test_cli_unknown_choice_is_a_usage_error(run, args, message):
    result = run("pool", str(Path(__file__).parent.parent / "studies.csv"), *args)
    assert result.exit_code == 2
    assert message in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tau2", "GENQ"], "Error: the GENQ estimator of tau² needs weights"),
        (["--tau2", "GENQ", "--tau2-weights", "nope"], "Error: "),
        (["--tau2", "GENQ", "--tau2-weights", "timing"], "is not a number (a tau² weight)"),
        (["--common-ci", "hk", "--common", "MH"], "Error: --common-ci hk applies to the"),
    ],
)
def test_cli_bad_model_input_is_a_one_line_error(run, args, message):
    result = run("pool", str(Path(__file__).parent.parent / "studies.csv"), *args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_cli_metareg_refuses_hc_and_takes_adhoc(run):
    path = str(Path(__file__).parent.parent / "studies.csv")
    bad = run("metareg", path, "--mod", "year", "--ci", "hc")
    assert bad.exit_code == 1 and "applies to models without moderators" in bad.stderr
    ok = run("metareg", path, "--mod", "year", "--ci", "adhoc", "-f", "json")
    assert ok.exit_code == 0, ok.output


def test_batch_refuses_genq_in_one_line(run, tmp_path):
    src = tmp_path / "long.csv"
    text = (Path(__file__).parent.parent / "studies.csv").read_text(encoding="utf-8")
    lines = text.splitlines()
    src.write_text("\n".join([lines[0] + ",g"] + [ln + ",a" for ln in lines[1:]]) + "\n")
    result = run("batch", str(src), "-g", "g", "--tau2", "GENQ")
    assert result.exit_code == 1
    assert "Error: --tau2 GENQ and --tau2-weights are not available in batch" in result.stderr


_MR = REF["metareg_bcg_ablat"]


@pytest.mark.parametrize("rec", _MR["estimators"], ids=lambda r: r["method"])
def test_estimators_with_a_moderator_match_metafor(rec):
    """rma(yi, vi, mods = ~ ablat, data = dat.bcg, method, control = CTRL): tau², se.tau2
    through the moderator path (RegressionModels), as metareg uses it."""
    X = np.column_stack([np.ones(len(_MR["yi"])), _MR["ablat"]])
    w = _MR["genq_weights"] if rec["method"] == "GENQ" else None
    est = tau2_one(_MR["yi"], _MR["vi"], rec["method"], X, weights=w)
    tol = CLOSED_FORM if rec["method"] in CLOSED else ITERATIVE
    assert est.converged
    assert close(est.tau2, rec["tau2"], tol, 1e-10)
    assert close(est.se, rec["se_tau2"], tol)


@pytest.mark.parametrize(
    ("args", "note"),
    [(["--ci", "hc"], "Henmi-Copas"), (["--tau2", "GENQ", "--tau2-weights", "year"], "GENQ")],
)
def test_cli_subgroup_without_a_between_test_says_why(run, args, note):
    path = str(Path(__file__).parent.parent / "studies.csv")
    result = run("subgroup", path, "--by", "nk_criterion", *args, "-f", "json")
    assert result.exit_code == 0, result.output
    assert note in json.dumps(json.loads(result.stdout))


def test_cli_metareg_refuses_genq_without_weights_in_one_line(run):
    path = str(Path(__file__).parent.parent / "studies.csv")
    result = run("metareg", path, "--mod", "year", "--tau2", "GENQ")
    assert result.exit_code == 1
    assert result.stderr == "Error: --tau2 GENQ needs its weights: --tau2-weights COLUMN\n"
