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
