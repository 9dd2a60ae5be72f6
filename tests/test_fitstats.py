"""Fit statistics (metafor's fitstats(): log-likelihood, deviance, AIC, BIC, AICc under ML and
REML) of the pooled models and of meta-regressions, and the meta-regression's interval for the
residual tau², against tests/reference/metafor_fitstats.json (written by
tests/reference/make_reference_fitstats.R) on dat.bcg and the IVIG studies, every estimator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from metafor_ref import effects
from tolerances import CLOSED_FORM, ITERATIVE, close

from ivigmeta.core.pooling import fit
from ivigmeta.methods.metareg import metareg_analysis
from ivigmeta.results import FitOptions

REF = json.loads((Path(__file__).parent / "reference" / "metafor_fitstats.json").read_text())
RECORDS = REF["models"]
REFS = {"alloc": "alternate", "nk_criterion": "no"}
ITERATIVE_METHODS = ("REML", "ML", "PM", "SJ")


def _columns(mods: str) -> list[str]:
    if mods == "~1":
        return []
    return [t.strip().replace("factor(", "").rstrip(")") for t in mods.lstrip("~").split("+")]


def _tol(rec) -> float:
    # ML statistics at a REML estimate (and the reverse) move with tau² at first order: the
    # iterative estimators' tolerance.
    return ITERATIVE if rec["method"] in ITERATIVE_METHODS else CLOSED_FORM


def _model(rec):
    es = effects(rec["dataset"], rec["measure"])
    cols = _columns(rec["mods"])
    if not cols:
        ma = fit(es, FitOptions(tau2_method="DL" if rec["method"] == "FE" else rec["method"]))
        return ma.common if rec["method"] == "FE" else ma.random
    ref = {c: REFS[c] for c in cols if c in REFS}
    model = "common" if rec["method"] == "FE" else "random"
    method = "DL" if model == "common" else rec["method"]
    return metareg_analysis(es, cols, method, ref=ref, model=model)


@pytest.mark.parametrize(
    "rec", RECORDS, ids=[f"{r['dataset']}-{r['mods']}-{r['method']}" for r in RECORDS]
)
def test_fit_statistics_match_metafor(rec):
    fs = _model(rec).fit_statistics
    assert fs is not None
    bad = []
    for block, ours in (("ml", fs.ml_dict), ("reml", fs.reml_dict)):
        for key, value in ours.items():
            if not close(value, rec[block][key], _tol(rec)):
                bad.append(f"{block}.{key}: {value!r} vs {rec[block][key]!r}")
    assert not bad, bad
    # logLik() reports the REML value for a REML fit, the ML one otherwise.
    assert fs.reported == ("REML" if rec["method"] == "REML" else "ML")
    assert close(fs.values["loglik"], rec["logLik"], _tol(rec))


CI_RECORDS = [(r, code) for r in RECORDS if "tau2_ci" in r for code in r["tau2_ci"]]


@pytest.mark.parametrize(
    "rec, code",
    CI_RECORDS,
    ids=[f"{r['dataset']}-{r['mods']}-{r['method']}-{c}" for r, c in CI_RECORDS],
)
def test_metaregression_tau2_interval_matches_metafor(rec, code):
    es = effects(rec["dataset"], rec["measure"])
    cols = _columns(rec["mods"])
    reg = metareg_analysis(
        es, cols, rec["method"], ref={c: REFS[c] for c in cols if c in REFS}, tau2_ci=code
    )
    ci = reg.tau2_interval
    assert ci is not None and ci.code == code
    assert close(reg.tau2, rec["tau2"], _tol(rec))
    if rec["se_tau2"] is not None:
        assert close(reg.tau2_se, rec["se_tau2"], _tol(rec))
    # uniroot's tolerance (1e-12) and the fits' (1e-13 in the log-likelihood) bound the match
    for ours, theirs in (
        (ci.tau2_ci, rec["tau2_ci"][code]["tau2"]),
        (ci.i2_ci, rec["tau2_ci"][code]["i2"]),
        (ci.h2_ci, rec["tau2_ci"][code]["h2"]),
    ):
        for a, b in zip(ours, theirs):
            assert a == pytest.approx(b, rel=1e-7, abs=1e-9), (code, ours, theirs)


def test_common_effect_metaregression_has_no_tau2_interval():
    es = effects("bcg", "RR")
    reg = metareg_analysis(es, ["ablat"], model="common")
    assert reg.tau2_interval is None and reg.tau2_se is None
    assert reg.fit_statistics is not None and reg.fit_statistics.reported == "ML"


BTT = REF["btt"]


@pytest.mark.parametrize("rec", BTT, ids=[f"{r['method']}-{r['test']}-{r['spec']}" for r in BTT])
def test_coefficient_tests_match_metafors_anova_btt(rec):
    es = effects(rec["dataset"], rec["measure"])
    model = "common" if rec["method"] == "FE" else "random"
    reg = metareg_analysis(
        es,
        ["ablat", "alloc"],
        "DL" if model == "common" else rec["method"],
        "hk" if rec["test"] == "knha" else "z",
        ref={"alloc": "alternate"},
        model=model,
        btt=[rec["spec"]],
    )
    (t,) = reg.coefficient_tests
    assert t.coefficients == tuple(rec["btt_names"])
    assert close(t.statistic, rec["QM"], _tol(rec)) and close(t.p_value, rec["QMp"], _tol(rec))
    assert [t.df, t.df2] == rec["QMdf"]


def test_btt_names_only_what_the_model_has():
    from ivigmeta.errors import ModelError

    es = effects("bcg", "RR")
    with pytest.raises(ModelError, match="--btt 'latitude': not a moderator or coefficient"):
        metareg_analysis(es, ["ablat"], btt=["latitude"])


def test_btt_on_the_command_line(run):
    from conftest import ROOT

    bcg = str(ROOT / "docs" / "examples" / "bcg.csv")
    result = run("metareg", bcg, "--mod", "ablat", "--mod", "alloc", "--btt", "alloc", "-f", "json")
    assert result.exit_code == 0, result.stderr
    (t,) = json.loads(result.stdout)["coefficient_tests"]
    assert t["spec"] == "alloc" and t["df"] == 2 and t["df2"] is None
    table = run("metareg", bcg, "--mod", "ablat", "--mod", "alloc", "--btt", "alloc")
    assert "Test of alloc=alternate, alloc=systematic: QM = " in table.stdout
    bad = run("metareg", bcg, "--mod", "ablat", "--btt", "nope")
    assert bad.exit_code == 1 and "Error: --btt 'nope'" in bad.stderr


LRT = REF["lrt"]


@pytest.mark.parametrize(
    "rec", LRT, ids=[f"{r['method']}-{r['full']}-minus-{r['dropped']}" for r in LRT]
)
def test_likelihood_ratio_tests_match_metafors_anova(rec):
    es = effects(rec["dataset"], rec["measure"])
    model = "common" if rec["method"] == "FE" else "random"
    reg = metareg_analysis(
        es,
        _columns(rec["full"]),
        "DL" if model == "common" else rec["method"],
        ref={"alloc": "alternate"} if "alloc" in rec["full"] else None,
        model=model,
        lrt=[rec["dropped"]],
    )
    cmp = reg.comparison
    assert cmp is not None and cmp.dropped == (rec["dropped"],)
    assert (cmp.full.parms, cmp.reduced.parms, cmp.df) == (
        rec["parms_f"],
        rec["parms_r"],
        rec["parms_f"] - rec["parms_r"],
    )
    tol = _tol(rec)
    assert close(cmp.lrt, rec["LRT"], tol) and close(cmp.p_value, rec["pval"], tol)
    for side, key in ((cmp.full, "f"), (cmp.reduced, "r")):
        ll, _dev, aic, bic, aicc = rec[f"fit_stats_{key}"]
        for ours, theirs in (
            (side.loglik, ll),
            (side.aic, aic),
            (side.bic, bic),
            (side.aicc, aicc),
        ):
            assert close(ours, theirs, tol)
        assert close(side.qe, rec[f"QE_{key}"], tol) and close(side.tau2, rec[f"tau2_{key}"], tol)
    if rec["R2"] is None:
        assert cmp.r2 is None
    else:
        assert close(cmp.r2, rec["R2"], tol)
    # metafor warns about REML comparisons of different fixed effects; ivigmeta says so too.
    assert bool(cmp.note) == bool(rec["warnings"])


def test_lrt_names_a_moderator_of_the_model():
    from ivigmeta.errors import ModelError

    with pytest.raises(ModelError, match="--lrt 'alloc': not a moderator"):
        metareg_analysis(effects("bcg", "RR"), ["ablat"], lrt=["alloc"])


VIF = REF["vif"]


@pytest.mark.parametrize("rec", VIF, ids=[r["method"] for r in VIF])
def test_variance_inflation_matches_metafors_vif(rec):
    reg = metareg_analysis(
        effects(rec["dataset"], rec["measure"]),
        ["ablat", "year", "alloc"],
        rec["method"],
        ref={"alloc": "alternate"},
    )
    assert [v.name for v in reg.vif] == rec["coef_names"]
    for v, vif, sif in zip(reg.vif, rec["vif"], rec["sif"]):
        assert v.m == 1 and close(v.vif, vif, _tol(rec)) and close(v.sif, sif, _tol(rec))
    assert [v.name for v in reg.gvif] == rec["set_names"]
    for v, vif, sif in zip(reg.gvif, rec["set_vif"], rec["set_sif"]):
        assert close(v.vif, vif, _tol(rec)) and close(v.sif, sif, _tol(rec))
    assert reg.gvif[2].coefficients == ("alloc=random", "alloc=systematic")


COUNTS = REF["counts"]


@pytest.mark.parametrize(
    "rec", COUNTS, ids=[f"{r['dataset']}-{r['method']}-{r['measure']}" for r in COUNTS]
)
def test_mantel_haenszel_and_peto_fit_statistics_match_metafor(rec):
    ma = fit(effects(rec["dataset"], rec["measure"]), FitOptions(common_method=rec["method"]))
    fs = ma.common.fit_statistics
    assert fs is not None and fs.reported == "ML"
    for block, ours in (("ml", fs.ml_dict), ("reml", fs.reml_dict)):
        for key, value in ours.items():
            assert close(value, rec[block][key], CLOSED_FORM), (block, key, value, rec[block][key])


RATES = REF["rates"]


def _rate_effects(rec):
    from ivigmeta.core.effects import compute_effects
    from ivigmeta.io.studies import parse_table

    d = rec["data"]
    lines = ["study,treat_events,treat_time,control_events,control_time"]
    lines += [
        f"s{i + 1},{a:g},{b:g},{c:g},{e:g}"
        for i, (a, b, c, e) in enumerate(zip(d["x1i"], d["t1i"], d["x2i"], d["t2i"]))
    ]
    return compute_effects(
        parse_table("\n".join(lines) + "\n", "rates.csv").studies, measure=rec["measure"]
    )


@pytest.mark.parametrize("rec", RATES, ids=[f"{r['dataset']}-{r['measure']}" for r in RATES])
def test_mantel_haenszel_rates_match_metafor(rec):
    ma = fit(_rate_effects(rec), FitOptions(common_method="MH"))
    c = ma.common
    for ours, key in (
        (c.theta, "beta"),
        (c.se, "se"),
        (c.ci_low_theta, "ci_lb"),
        (c.ci_high_theta, "ci_ub"),
        (c.p_value, "pval"),
        (c.q, "QE"),
        (c.q_p_value, "QEp"),
        (c.i2, "I2"),
    ):
        assert close(ours, rec[key], CLOSED_FORM), (key, ours, rec[key])
    if rec["measure"] == "IRR":
        assert close(c.cmh.statistic, rec["MH"], CLOSED_FORM)
        assert close(c.cmh.p_value, rec["MHp"], CLOSED_FORM)
    else:
        assert c.cmh is None
    fs = c.fit_statistics
    for block, ours in (("ml", fs.ml_dict), ("reml", fs.reml_dict)):
        for key, value in ours.items():
            assert close(value, rec[block][key], CLOSED_FORM), (block, key)
