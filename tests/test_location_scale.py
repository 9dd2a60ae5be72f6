"""Location-scale meta-regression (``metareg --scale``): the engine
(ivigmeta.core.location_scale) against metafor's rma(..., scale = ~ ...)
(tests/reference/metafor_location_scale.json, written by
tests/reference/make_reference_location_scale.R) on dat.bangertdrowns2004: the cases of
metafor's tests/testthat/test_misc_rma_ls.r."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tolerances import (
    ITERATIVE,
    LS_ALPHA_ABS,
    LS_BETA_ABS,
    LS_LOGLIK_ABS,
    LS_SE_REL,
)

from ivigmeta.core.location_scale import (
    location_scale_fit,
    loglik_derivatives,
    profile_alpha_ci,
)
from ivigmeta.errors import ModelError

REF = json.loads((Path(__file__).parent / "reference" / "metafor_location_scale.json").read_text())
FITS = {f["name"]: f for f in REF["fits"]}
DATA = {
    key: np.array([math.nan if x is None else x for x in values], dtype=float)
    for key, values in REF["data"].items()
}


def design(rec: dict, which: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(y, v, X, Z) of a reference fit: its rows, the intercept and its columns (grade as
    indicators of 2, 3, 4 where the fit used factor(grade))."""
    rows = np.asarray(rec["rows_used"]) - 1

    def build(columns: list[str]) -> np.ndarray:
        cols = [np.ones(len(rows))]
        for c in columns:
            x = DATA[c][rows]
            if c == "grade" and rec["grade_categorical"]:
                cols += [(x == level).astype(float) for level in (2.0, 3.0, 4.0)]
            else:
                cols.append(x)
        return np.column_stack(cols)

    return DATA["yi"][rows], DATA["vi"][rows], build(rec["mods"]), build(rec["scale"])


def fitted(name: str):
    rec = FITS[name]
    y, v, X, Z = design(rec, name)
    return rec, location_scale_fit(y, v, X, Z, rec["link"], rec["method"]), (y, v, X, Z)


@pytest.mark.parametrize("name", sorted(FITS))
def test_engine_matches_metafor(name: str) -> None:
    rec, fit, (y, v, X, Z) = fitted(name)
    assert len(y) == rec["k"]
    np.testing.assert_allclose(fit.alpha, rec["alpha"], rtol=0, atol=LS_ALPHA_ABS)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.va)), rec["se_alpha"], rtol=LS_SE_REL)
    np.testing.assert_allclose(fit.va, rec["va"], rtol=LS_SE_REL * 3, atol=1e-9)
    np.testing.assert_allclose(fit.tau2, rec["tau2"], rtol=LS_ALPHA_ABS * 2, atol=1e-10)
    rf = fit.regression
    np.testing.assert_allclose(rf.beta, rec["beta"], rtol=0, atol=LS_BETA_ABS)
    np.testing.assert_allclose(rf.se, rec["se"], rtol=LS_BETA_ABS * 10)
    assert fit.loglik == pytest.approx(rec["fit_stats"][rec["method"]][0], abs=LS_LOGLIK_ABS)
    # ivigmeta's optimum is at least as high as metafor's (the comparisons above are bounded by
    # metafor's optimizer, not by ours)
    at_metafor = loglik_derivatives(
        np.asarray(rec["alpha"]), y, v, X, Z, rec["link"], rec["method"], order=0
    )[0]
    assert at_metafor <= fit.loglik + 1e-12


def test_intercept_only_scale_is_the_plain_reml_fit() -> None:
    # test_misc_rma_ls.r: res1$tau2 == exp(res3$alpha[1]) for scale = ~ 1
    _, fit, _ = fitted("scale_1")
    assert math.exp(fit.alpha[0]) == pytest.approx(REF["plain_reml_tau2"], rel=ITERATIVE)


def test_values_metafor_pins_in_its_own_tests() -> None:
    # test_misc_rma_ls.r: scale = ~ grade (log): beta 0.2220791, alpha (-3.10513013522415,
    # 0.041361925354706); identity link alpha (0.042926535, 0.002729234) with metafor's default
    # optimizer (constrOptim), which stops short: tightly optimized, metafor itself gives
    # (0.0429112, 0.0027344) (the JSON); scale = ~ grade + meta + sqrt(ni): beta 0.1110317,
    # alpha (-1.08826059, -0.03429344, 2.09197456, -0.28439165).
    _, log_fit, _ = fitted("scale_grade_log")
    assert log_fit.regression.beta[0] == pytest.approx(0.2220791, abs=1e-7)
    np.testing.assert_allclose(log_fit.alpha, [-3.10513013522415, 0.041361925354706], atol=1e-7)
    _, id_fit, _ = fitted("scale_grade_identity")
    np.testing.assert_allclose(id_fit.alpha, [0.042926535, 0.002729234], atol=2e-5)
    _, multi, _ = fitted("scale_multi")
    assert multi.regression.beta[0] == pytest.approx(0.1110317, abs=1e-7)
    np.testing.assert_allclose(
        multi.alpha, [-1.08826059, -0.03429344, 2.09197456, -0.28439165], atol=1e-6
    )


def test_two_subgroups_have_their_own_reml_tau2() -> None:
    # mods = scale = ~ meta: tau² of each subgroup is the REML tau² of that subgroup alone
    _, fit, (y, v, X, Z) = fitted("mods_meta_scale_meta")
    sub = REF["predictions"]["subgroup_tau2"]
    got = [math.exp(fit.alpha[0]), math.exp(fit.alpha[0] + fit.alpha[1])]
    np.testing.assert_allclose(got, sub, rtol=1e-7)
    _, ident, _ = fitted("mods_meta_scale_meta_identity")
    np.testing.assert_allclose([ident.alpha[0], ident.alpha.sum()], sub, rtol=1e-7)


@pytest.mark.parametrize("j", [0, 1])
def test_profile_likelihood_interval_of_alpha(j: int) -> None:
    # confint(res, alpha = j) for scale = ~ grade; metafor's test pins (-5.25032, -1.21713) and
    # (-0.65819, 0.69562)
    _, fit, (y, v, X, Z) = fitted("scale_grade_log")
    ref = REF["confint"]["alpha"][j]
    lo, hi = profile_alpha_ci(fit, y, v, X, Z, j)
    assert lo == pytest.approx(ref[1], rel=ITERATIVE)
    assert hi == pytest.approx(ref[2], rel=ITERATIVE)


@pytest.mark.parametrize("link", ["log", "identity"])
@pytest.mark.parametrize("method", ["REML", "ML"])
def test_analytic_derivatives_match_finite_differences(link: str, method: str) -> None:
    rec = FITS["anova_full"]
    y, v, X, Z = design(rec, "anova_full")
    # intercept, grade 2, 3, 4, meta, sqrt(ni): a point away from the optimum
    if link == "log":
        alpha = np.asarray([-2.0, 0.3, -0.2, 0.1, 0.5, -0.01])
    else:
        alpha = np.asarray([0.05, 0.01, 0.0, 0.02, 0.01, 0.0])
    ll, g, H = loglik_derivatives(alpha, y, v, X, Z, link, method)
    assert g is not None and H is not None
    h = 1e-6
    for i in range(len(alpha)):
        e = np.zeros(len(alpha))
        e[i] = h
        up = loglik_derivatives(alpha + e, y, v, X, Z, link, method, order=1)
        down = loglik_derivatives(alpha - e, y, v, X, Z, link, method, order=1)
        assert (up[0] - down[0]) / (2 * h) == pytest.approx(g[i], rel=1e-6, abs=1e-8)
        np.testing.assert_allclose((up[1] - down[1]) / (2 * h), H[:, i], rtol=1e-5, atol=1e-6)


def test_identity_link_refuses_negative_tau2_and_bad_options() -> None:
    rec = FITS["scale_grade_identity"]
    y, v, X, Z = design(rec, "x")
    assert loglik_derivatives(np.array([-0.1, 0.0]), y, v, X, Z, "identity", "REML")[0] == -math.inf
    with pytest.raises(ModelError, match="REML or ML"):
        location_scale_fit(y, v, X, Z, "log", "DL")
    with pytest.raises(ModelError, match="unknown scale link 'logit'"):
        location_scale_fit(y, v, X, Z, "logit")


# ---------------------------------------------------------------------------------------------
# The analysis (ivigmeta.api.location_scale_table): coding, exclusions, tests and fit statistics
# of the whole result, from the study table as the CLI reads it.


def bangert_columns() -> dict[str, list]:
    """dat.bangertdrowns2004 as a study table (meta empty where metafor has NA; sqrt_ni for
    metafor's sqrt(ni))."""
    return {
        "yi": list(REF["data"]["yi"]),
        "vi": list(REF["data"]["vi"]),
        "grade": [int(x) for x in REF["data"]["grade"]],
        "meta": ["" if x is None else int(x) for x in REF["data"]["meta"]],
        "ni": [int(x) for x in REF["data"]["ni"]],
        "sqrt_ni": list(REF["data"]["sqrt_ni"]),
    }


@pytest.fixture(scope="module")
def bangert(tmp_path_factory):
    from conftest import write_columns

    from ivigmeta.api import effect_sizes, read

    path = write_columns(tmp_path_factory.mktemp("ls"), "bangert.csv", bangert_columns())
    table = read(path)
    return table, effect_sizes(table, "RD")


def analysis(bangert, name: str, **kwargs):
    from ivigmeta.api import location_scale_table

    rec = FITS[name]
    table, es = bangert
    # factor(grade): grade 1 is R's reference level (ivigmeta's default is the first in the file)
    coding = {"categorical": ["grade"], "refs": ["grade=1"]} if rec["grade_categorical"] else {}
    return rec, location_scale_table(
        table,
        es,
        rec["mods"],
        rec["scale"],
        link=rec["link"],
        tau2=rec["method"],
        **coding,
        **kwargs,
    )


ANALYSED = [n for n in sorted(FITS) if FITS[n]["scale"]]  # the CLI needs a scale moderator
# R's coefficient order for factor(grade) (levels sorted); ivigmeta's levels are in file order
R_ORDER = ["intercept", "grade=2", "grade=3", "grade=4", "meta", "sqrt_ni"]


def r_order(coefs):
    """The coefficients in metafor's order."""
    if any(c.name.startswith("grade=") for c in coefs):
        return sorted(coefs, key=lambda c: R_ORDER.index(c.name))
    return list(coefs)


@pytest.mark.parametrize("name", ANALYSED)
def test_analysis_matches_metafor(bangert, name: str) -> None:
    rec, reg = analysis(bangert, name)
    sm = reg.scale
    assert sm is not None and reg.k == rec["k"] and reg.tau2_method == rec["method"]
    # metafor drops the rows with a missing moderator; ivigmeta lists them as excluded
    used = set(rec["rows_used"])
    assert {e.row - 1 for e in reg.excluded} == set(range(1, 49)) - used
    assert all("no value for moderator" in e.reason for e in reg.excluded)
    alphas, betas = r_order(sm.coefficients), r_order(reg.coefficients)
    np.testing.assert_allclose([c.estimate for c in alphas], rec["alpha"], atol=LS_ALPHA_ABS)
    np.testing.assert_allclose([c.se for c in alphas], rec["se_alpha"], rtol=LS_SE_REL)
    for c, lo, hi, pv in zip(alphas, rec["ci_lb_alpha"], rec["ci_ub_alpha"], rec["pval_alpha"]):
        assert c.ci_low == pytest.approx(lo, abs=3 * LS_ALPHA_ABS)
        assert c.ci_high == pytest.approx(hi, abs=3 * LS_ALPHA_ABS)
        assert c.p_value == pytest.approx(pv, rel=1e-4)
    if rec["QS"] is None:
        assert sm.qs is None
    else:
        # QS ~ alpha² / Var: relative error about twice that of a small alpha (identity link:
        # alpha_2 = 0.0027 to 5e-8)
        assert sm.qs == pytest.approx(rec["QS"], rel=1e-4)
        assert sm.qs_p_value == pytest.approx(rec["QSp"], rel=1e-4)
        assert sm.qs_df == rec["QSdf"]
    np.testing.assert_allclose(sm.tau2, rec["tau2"], rtol=2 * LS_ALPHA_ABS)
    np.testing.assert_allclose([c.estimate for c in betas], rec["beta"], atol=LS_BETA_ABS)
    np.testing.assert_allclose([c.se for c in betas], rec["se"], rtol=1e-6)
    np.testing.assert_allclose([c.p_value for c in betas], rec["pval"], rtol=1e-5)
    if rec["QM"] is None:
        assert reg.qm is None
    else:
        assert reg.qm == pytest.approx(rec["QM"], rel=1e-6)
        assert reg.qm_p_value == pytest.approx(rec["QMp"], rel=1e-5)
    assert reg.qe == pytest.approx(rec["QE"], rel=1e-12)
    assert reg.qe_p_value == pytest.approx(rec["QEp"], rel=1e-10)
    fs = reg.fit_statistics
    assert fs is not None and fs.reported == rec["method"]
    own, other = (fs.reml, fs.ml) if rec["method"] == "REML" else (fs.ml, fs.reml)
    other_name = "ML" if rec["method"] == "REML" else "REML"
    np.testing.assert_allclose(own, rec["fit_stats"][rec["method"]], rtol=0, atol=LS_LOGLIK_ABS)
    # the other likelihood is not stationary at this optimum: it inherits metafor's alpha error
    # to first order (~1e-7)
    np.testing.assert_allclose(other, rec["fit_stats"][other_name], rtol=1e-7)
    assert math.isnan(reg.tau2) and reg.i2 is None and reg.r2 is None


def test_scale_predictions_match_metafor(bangert) -> None:
    # predict(res, newscale = 0:1), predict(res, newscale = 0:1, transf = exp) and
    # predict(res, newmods = 0:1) for mods = scale = ~ meta; each tau² is its subgroup's REML one
    pred = REF["predictions"]
    _, reg = analysis(
        bangert,
        "mods_meta_scale_meta",
        predict_scale=["meta=0", "meta=1"],
        predict=["meta=0", "meta=1"],
    )
    assert reg.scale is not None
    got = reg.scale.predictions
    np.testing.assert_allclose([p.estimate for p in got], pred["scale"]["pred"], atol=LS_ALPHA_ABS)
    np.testing.assert_allclose([p.se for p in got], pred["scale"]["se"], rtol=LS_SE_REL)
    np.testing.assert_allclose([p.ci_low for p in got], pred["scale"]["ci_lb"], atol=3e-5)
    np.testing.assert_allclose([p.ci_high for p in got], pred["scale"]["ci_ub"], atol=3e-5)
    np.testing.assert_allclose([p.tau2 for p in got], pred["tau2"]["pred"], rtol=LS_ALPHA_ABS)
    np.testing.assert_allclose([p.tau2 for p in got], pred["subgroup_tau2"], rtol=1e-7)
    np.testing.assert_allclose([p.tau2_ci_low for p in got], pred["tau2"]["ci_lb"], rtol=3e-5)
    np.testing.assert_allclose([p.tau2_ci_high for p in got], pred["tau2"]["ci_ub"], rtol=3e-5)
    loc = reg.predictions
    np.testing.assert_allclose(
        [p.estimate for p in loc], pred["location"]["pred"], atol=LS_BETA_ABS
    )
    np.testing.assert_allclose([p.se for p in loc], pred["location"]["se"], rtol=1e-6)
    # mods = scale = ~ meta: each value is also the scale value (predict(newmods, newscale))
    both = pred["location_with_scale"]
    np.testing.assert_allclose([p.pi_low for p in loc], both["pi_lb"], rtol=1e-6)
    np.testing.assert_allclose([p.pi_high for p in loc], both["pi_ub"], rtol=1e-6)
    _, ident = analysis(
        bangert, "mods_meta_scale_meta_identity", predict_scale=["meta=0", "meta=1"]
    )
    assert ident.scale is not None
    got = ident.scale.predictions
    idp = pred["identity_scale"]
    np.testing.assert_allclose([p.tau2 for p in got], idp["pred"], rtol=1e-6)
    np.testing.assert_allclose([p.se for p in got], idp["se"], rtol=LS_SE_REL)
    # metafor sets the negative lower bounds to 0 under the identity link
    assert [p.tau2_ci_low for p in got] == idp["ci_lb"] == [0, 0]
    np.testing.assert_allclose([p.tau2_ci_high for p in got], idp["ci_ub"], rtol=1e-6)


def test_btt_att_and_lrt_match_metafor_anova(bangert) -> None:
    # test_misc_rma_ls.r, mods = scale = ~ factor(grade) + meta + sqrt(ni): anova(res1, res0)
    # LRT = 3.146726, p = 0.6773767; anova(res1, btt = 2:4) QM = 5.286715, p = 0.1519668;
    # anova(res1, att = 2:4) QS = 2.030225, p = 0.5661571 (metafor's default optimizer; the
    # JSON's tightly optimized values are what is compared at full precision)
    ref = REF["anova"]
    _, reg = analysis(bangert, "anova_full", btt=["grade"], att=["grade", "meta"], lrt=True)
    assert reg.scale is not None
    (b,) = reg.coefficient_tests
    assert sorted(b.coefficients) == ["grade=2", "grade=3", "grade=4"]
    assert b.df == ref["btt"]["df"]
    assert b.statistic == pytest.approx(ref["btt"]["QM"], rel=1e-6)
    assert b.p_value == pytest.approx(ref["btt"]["QMp"], rel=1e-6)
    assert round(b.statistic, 3) == round(5.286715, 3)
    a, m = reg.scale.coefficient_tests
    assert a.df == ref["att"]["df"] and a.statistic == pytest.approx(ref["att"]["QS"], rel=1e-5)
    assert a.p_value == pytest.approx(ref["att"]["QSp"], rel=1e-5)
    assert m.statistic == pytest.approx(ref["att_meta"]["QS"], rel=1e-5)
    cmp = reg.scale.comparison
    assert cmp is not None and cmp.df == ref["lrt"]["parms_f"] - ref["lrt"]["parms_r"] == 5
    assert (cmp.full.parms, cmp.reduced.parms) == (ref["lrt"]["parms_f"], ref["lrt"]["parms_r"])
    assert cmp.lrt == pytest.approx(ref["lrt"]["LRT"], rel=1e-9)
    assert cmp.p_value == pytest.approx(ref["lrt"]["pval"], rel=1e-9)
    # metafor's fit.stats of both models: logLik, deviance, AIC, BIC, AICc (REML)
    f_ll, _, f_aic, f_bic, f_aicc = ref["lrt"]["fit_stats_f"]
    r_ll, _, r_aic, r_bic, r_aicc = ref["lrt"]["fit_stats_r"]
    assert [cmp.full.loglik, cmp.full.aic, cmp.full.bic, cmp.full.aicc] == pytest.approx(
        [f_ll, f_aic, f_bic, f_aicc], abs=LS_LOGLIK_ABS
    )
    assert [
        cmp.reduced.loglik,
        cmp.reduced.aic,
        cmp.reduced.bic,
        cmp.reduced.aicc,
    ] == pytest.approx([r_ll, r_aic, r_bic, r_aicc], abs=LS_LOGLIK_ABS)


def test_scale_vif_matches_metafor(bangert) -> None:
    # vif(res) for scale = ~ grade + meta + sqrt(ni): grade 1.3087, meta 1.06, sqrt(ni) 1.2847
    _, reg = analysis(bangert, "scale_multi")
    assert reg.scale is not None
    got = {v.name: v.vif for v in reg.scale.vif}
    assert list(got) == REF["vif"]["names"]
    np.testing.assert_allclose(list(got.values()), REF["vif"]["vifs"], rtol=1e-5)


def test_profile_intervals_through_the_analysis(bangert) -> None:
    _, reg = analysis(bangert, "scale_grade_log", profile=True)
    assert reg.scale is not None
    for pi, ref in zip(reg.scale.profile, REF["confint"]["alpha"]):
        assert pi.ci_low == pytest.approx(ref[1], rel=ITERATIVE)
        assert pi.ci_high == pytest.approx(ref[2], rel=ITERATIVE)


def test_profile_bound_is_nan_where_the_likelihood_stays_flat(bangert) -> None:
    # mods = scale = ~ meta: as alpha_1 -> -inf, tau² of the meta = 0 studies -> 0 and the
    # profile never drops by chi2/2; metafor reports the end of its search (-17.69) there. Its
    # finite bounds are -2.90844698 (alpha_1 upper) and 0.14374013 (alpha_2 lower).
    from ivigmeta.api import location_scale_table

    table, es = bangert
    reg = location_scale_table(table, es, ["meta"], ["meta"], profile=True)
    assert reg.scale is not None
    one, two = reg.scale.profile
    assert math.isnan(one.ci_low) and one.ci_high == pytest.approx(-2.90844698, abs=1e-6)
    assert two.ci_low == pytest.approx(0.14374013, abs=1e-6) and math.isnan(two.ci_high)


def test_analysis_refusals(bangert) -> None:
    from ivigmeta.api import location_scale_table, metareg_table

    table, es = bangert
    with pytest.raises(ModelError, match="--ci hk does not apply"):
        location_scale_table(table, es, [], ["grade"], ci="hk")
    with pytest.raises(ModelError, match="REML or ML"):
        location_scale_table(table, es, [], ["grade"], tau2="DL")
    with pytest.raises(ModelError, match="--att 'nope': not a moderator or coefficient"):
        location_scale_table(table, es, [], ["grade"], att=["nope"])
    with pytest.raises(ModelError, match="--predict-scale 'grade=x'"):
        location_scale_table(table, es, [], ["grade"], predict_scale=["grade=x"])
    for option, kwargs in {
        "--model common": {"model": "common"},
        "--permutations": {"permutations": 10},
        "--weights": {"weights": "ni"},
        "--cluster": {"cluster": "grade"},
        "--lrt": {"lrt": ["meta"]},
        "--tau2-ci": {"tau2_ci": "pl"},
    }.items():
        with pytest.raises(ModelError, match=f"^{option} does not apply to location-scale"):
            metareg_table(table, es, ["meta"], scale=["grade"], tau2="REML", **kwargs)
    with pytest.raises(ModelError, match="--att applies to location-scale models"):
        metareg_table(table, es, ["meta"], att=["grade"])


@pytest.mark.parametrize("link", ["identity", "log"])
def test_a_boundary_optimum_is_said(link: str) -> None:
    # The g = 0 studies are homogeneous: their tau² is 0 at the optimum. metafor (identity):
    # alpha_1 = 0, se.alpha NA (its numerical Hessian cannot be inverted); (log): alpha heading
    # to -infinity with an arbitrary SE. metafor's optimizers stop short of this boundary by
    # ~2e-6 in the log-likelihood (COBYLA) and 6e-4 relative in tau² of g = 1, so ivigmeta is
    # compared by being at least as high, and tau² loosely.
    b = REF["boundary"]
    y, v = np.asarray(b["data"]["yi"]), np.asarray(b["data"]["vi"])
    g = np.asarray(b["data"]["g"], dtype=float)
    X, Z = np.ones((len(y), 1)), np.column_stack([np.ones(len(y)), g])
    fit = location_scale_fit(y, v, X, Z, link)
    assert fit.loglik >= max(b["identity"]["ll"], b["log"]["ll"]) - 1e-9
    assert fit.tau2[0] < 1e-9 and fit.note
    assert fit.tau2[-1] == pytest.approx(b["log"]["tau2"][-1], rel=1e-3)
    assert fit.tau2[-1] == pytest.approx(b["identity"]["tau2"][-1], rel=1e-3)
    if link == "identity":
        assert "no Wald standard errors" in fit.note and np.all(np.isnan(fit.va))
        assert b["identity"]["se_alpha"] == [None, None]
        assert all(math.isnan(x) for x in profile_alpha_ci(fit, y, v, X, Z, 1))
    else:
        assert "no interior maximum" in fit.note and fit.alpha[0] < -20


def test_the_fit_object_offers_the_location_scale_model() -> None:
    import ivigmeta

    fit = ivigmeta.pool(bangert_columns(), measure="RD")
    reg = fit.location_scale("grade", link="identity")
    assert reg.scale is not None and reg.scale.link == "identity"
    np.testing.assert_allclose(
        [c.estimate for c in reg.scale.coefficients],
        FITS["scale_grade_identity"]["alpha"],
        atol=LS_ALPHA_ABS,
    )
    assert reg.to_dict()["scale"]["link"] == "identity"


def test_a_location_prediction_without_scale_values_has_no_interval(bangert) -> None:
    from ivigmeta.api import location_scale_table

    table, es = bangert
    reg = location_scale_table(table, es, ["meta"], ["grade"], predict=["meta=1", "meta=1,grade=2"])
    no_pi, with_pi = reg.predictions
    assert math.isnan(no_pi.pi_low) and math.isnan(no_pi.pi_high)
    assert reg.scale is not None
    alpha = [c.estimate for c in reg.scale.coefficients]
    tau2 = math.exp(alpha[0] + 2 * alpha[1])
    half = 1.959963984540054 * math.sqrt(with_pi.se**2 + tau2)
    assert with_pi.pi_high == pytest.approx(with_pi.estimate + half, rel=1e-12)
    assert (with_pi.estimate, with_pi.se) == (no_pi.estimate, no_pi.se)
    with pytest.raises(ModelError, match="--predict 'grade=2': give a value for every moderator"):
        location_scale_table(table, es, ["meta"], ["grade"], predict=["grade=2"])
    with pytest.raises(ModelError, match="'x' is not a moderator of the model"):
        location_scale_table(table, es, ["meta"], ["grade"], predict=["meta=1,x=2"])


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    k=st.integers(4, 20),
    link=st.sampled_from(["log", "identity"]),
    method=st.sampled_from(["REML", "ML"]),
    spread=st.sampled_from([1.0, 100.0, 1e4]),
    tau2=st.sampled_from([0.0, 0.01, 1.0]),
)
def test_any_data_gives_a_fit_or_a_model_error(seed, k, link, method, spread, tau2) -> None:
    """Homogeneous groups, variances over five orders of magnitude and moderators on large
    scales: the analysis returns (every reported number finite or NaN, never a warning) or
    refuses with a ModelError; tau² driven to 0 or the boundary is said in the note."""
    import warnings

    from ivigmeta.api import effect_sizes, read
    from ivigmeta.methods.location_scale import location_scale_analysis

    rng = np.random.default_rng(seed)
    v = 10 ** rng.uniform(-4, 1, k)
    y = rng.normal(0, np.sqrt(v + tau2))
    x = rng.normal(0, 1, k) * spread
    g = rng.integers(0, 2, k)
    cols = {"yi": list(y), "vi": list(v), "x": list(x), "g": [f"g{a}" for a in g]}
    es = effect_sizes(read(cols), "RD")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            reg = location_scale_analysis(
                es, ["g"] if seed % 2 else [], ["x"], link=link, method=method,
                predict_scale=[f"x={x[0]!r}"], lrt=True, profile=seed % 3 == 0,
            )  # fmt: skip
        except ModelError:
            return
    assert reg.scale is not None and math.isfinite(reg.fit_statistics.values["loglik"])
    assert all(t >= 0 for t in reg.scale.tau2)
