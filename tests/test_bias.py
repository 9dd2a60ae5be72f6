"""Small-study-effect tests against metafor (ranktest, regtest, trimfill, fsn), against the
published Peters and Harbord formulas computed in R (tests/reference `peters_harbord`), and the
not-applicable cases."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from metafor_ref import unit_case
from sensitivity_ref import block, fitted, parity_records, record_id, rel_tol
from tolerances import BOUNDARY_I2_ABS, CLOSED_FORM, P_VALUE, close

import ivigmeta.methods.bias as bias_module
from ivigmeta.core.effects import compute_effects
from ivigmeta.core.pooling import fit
from ivigmeta.errors import ModelError
from ivigmeta.io.studies import parse_table
from ivigmeta.methods.bias import (
    begg_test,
    bias_analysis,
    default_tests,
    egger_test,
    harbord_test,
    kendall_exact_cdf,
    peters_test,
    weighted_regression_test,
)
from ivigmeta.methods.failsafe import fail_safe_n
from ivigmeta.methods.trimfill import trim_and_fill
from ivigmeta.results import NotApplicable

# ---------------------------------------------------------------------------------------------
# Begg and Mazumdar (metafor's ranktest)

RANK = block("ranktest")


@pytest.mark.parametrize("rec", RANK, ids=[record_id(r, "dataset", "measure") for r in RANK])
def test_ranktest_matches_metafor(rec):
    ma = fitted(rec["dataset"], rec["measure"])
    res = begg_test(ma.effects.yi, ma.effects.vi)
    if rec["dataset"] == "bcg_k2":
        # metafor returns tau = 1, p = 1 for two studies; we report the test as not applicable.
        assert isinstance(res, NotApplicable) and "at least 3" in res.reason
        return
    assert res.exact == rec["exact_used"]
    assert close(res.tau, rec["tau"], CLOSED_FORM)
    assert close(res.p_value, rec["pval"], P_VALUE)


def test_kendall_exact_distribution_by_enumeration():
    """P(T <= q) from the Mahonian recursion equals counting concordant pairs over all n! orders."""
    for n in range(2, 7):
        counts: dict[int, int] = {}
        for perm in itertools.permutations(range(n)):
            conc = sum(1 for i in range(n) for j in range(i + 1, n) if perm[i] < perm[j])
            counts[conc] = counts.get(conc, 0) + 1
        total = math.factorial(n)
        for q in range(n * (n - 1) // 2 + 1):
            expected = sum(c for t, c in counts.items() if t <= q) / total
            assert kendall_exact_cdf(q, n) == pytest.approx(expected, rel=1e-15)


EXTRA = block("ranktest_extra")


@pytest.mark.parametrize("rec", EXTRA, ids=[r["case"] for r in EXTRA])
def test_ranktest_ties_and_large_k_match_metafor(rec):
    """Ties: the normal approximation with tie-corrected variance; k >= 50 without ties: still
    exact, because metafor passes exact = TRUE to cor.test()."""
    res = begg_test(rec["yi"], rec["vi"])
    ties = any("ties" in w for w in rec["warnings"])
    assert res.exact == (not ties)
    assert close(res.tau, rec["tau"], CLOSED_FORM)
    assert close(res.p_value, rec["pval"], P_VALUE)


def test_kendall_float_recursion_matches_integer_counts():
    """Above KENDALL_INTEGER_MAX_N the null distribution is computed in floating point; its lower
    tail (all that p-values use) agrees with exact integer counts."""
    n = bias_module.KENDALL_INTEGER_MAX_N
    counts = bias_module.kendall_counts(n)
    pmf = bias_module.kendall_pmf(n)
    total = n * (n - 1) // 2
    for q in (0, 5, total // 8, total // 3, total // 2, total - 10):
        exact = math.fsum(counts[: q + 1]) / math.factorial(n)
        lower = math.fsum(pmf[: q + 1]) if 2 * q <= total else 1.0 - math.fsum(pmf[: total - q])
        assert lower == pytest.approx(exact, rel=1e-12)


# ---------------------------------------------------------------------------------------------
# Regression tests: the weighted-regression core against metafor's regtest(model = "lm")

REG = [r for r in block("regtest", model="lm") if "error" not in r and r["dataset"] != "bcg_k2"]


def _predictor(ma, name):
    vi = ma.effects.vi
    n = [s.treat_total + s.control_total for s in ma.effects.studies]
    return {
        "sei": [math.sqrt(v) for v in vi],
        "vi": list(vi),
        "ninv": [1.0 / m for m in n],
        "sqrtninv": [1.0 / math.sqrt(m) for m in n],
    }[name]


@pytest.mark.parametrize(
    "rec", REG, ids=[record_id(r, "dataset", "measure", "predictor") for r in REG]
)
def test_weighted_regression_matches_regtest_lm(rec):
    ma = fitted(rec["dataset"], rec["measure"])
    res = weighted_regression_test(
        ma.effects.yi, _predictor(ma, rec["predictor"]), [1 / v for v in ma.effects.vi]
    )
    assert res.df == rec["dfs"]
    assert close(res.t, rec["zval"], CLOSED_FORM)
    assert close(res.p_value, rec["pval"], P_VALUE)
    assert close(res.intercept, rec["coef_est"][0], CLOSED_FORM)
    assert close(res.intercept_se, rec["coef_se"][0], CLOSED_FORM)
    assert close(res.bias, rec["coef_est"][1], CLOSED_FORM)
    assert close(res.se, rec["coef_se"][1], CLOSED_FORM)


def test_egger_is_regtest_with_sei():
    """Egger's test (kept as the paper computed it) equals the weighted regression on sqrt(v)."""
    for rec in (r for r in REG if r["predictor"] == "sei"):
        ma = fitted(rec["dataset"], rec["measure"])
        e = egger_test(ma.effects.yi, ma.effects.vi)
        assert close(e.t, rec["zval"], CLOSED_FORM) and close(e.p_value, rec["pval"], P_VALUE)


def test_paper_egger_unchanged(paper_fit):
    """Results: regression test of Egger, P = 0.362 (also through bias_analysis)."""
    ba = bias_analysis(paper_fit)
    assert f"{ba.egger.p_value:.3f}" == "0.362"


# ---------------------------------------------------------------------------------------------
# Peters and Harbord: the published formulas computed with base R lm() (not a package: Debian
# has no r-cran-meta and metafor has neither test). See make_reference.R, block_peters_harbord.

PH = block("peters_harbord")


@pytest.mark.parametrize("rec", PH, ids=[record_id(r, "dataset", "measure", "test") for r in PH])
def test_peters_harbord_match_formula_in_r(rec):
    assert not rec["warnings"]  # e.g. R's integer overflow would silently drop studies
    ma = fitted(rec["dataset"], rec["measure"])
    res = (peters_test if rec["test"] == "Peters" else harbord_test)(ma)
    if "error" in rec:
        assert isinstance(res, NotApplicable) and "at least 3" in res.reason
        return
    used = [s.study for s in ma.effects.studies if s.study not in {e.study for e in res.excluded}]
    assert used == rec["used"]
    assert res.k == rec["k"] and res.df == rec["df"]
    for ours, ref in [
        (res.bias, "bias"),
        (res.se, "se"),
        (res.t, "t"),
        (res.intercept, "intercept"),
        (res.intercept_se, "intercept_se"),
    ]:
        assert close(ours, rec[ref], CLOSED_FORM), ref
    assert close(res.p_value, rec["pval"], P_VALUE)


def test_harbord_is_eggers_regression_of_the_score(paper_fit):
    """Harbord et al. (2006): OLS of Z / sqrt(V) on sqrt(V); the intercept is tested. Computed
    here from the counts with numpy's least squares, independently of our weighted core."""
    ma = fit(compute_effects(paper_fit.effects.studies, measure="OR"))
    res = harbord_test(ma)
    z, v = [], []
    for s in ma.effects.studies:
        a, n1, c, n2 = s.counts
        n = n1 + n2
        z.append(a - (a + c) * n1 / n)
        v.append(n1 * n2 * (a + c) * (n - a - c) / (n * n * (n - 1)))
    y = np.array(z) / np.sqrt(v)
    X = np.column_stack([np.ones(len(v)), np.sqrt(v)])
    coef, rss, *_ = np.linalg.lstsq(X, y, rcond=None)
    cov = rss[0] / (len(v) - 2) * np.linalg.inv(X.T @ X)
    assert res.bias == pytest.approx(coef[0], rel=1e-12)
    assert res.t == pytest.approx(coef[0] / math.sqrt(cov[0, 0]), rel=1e-12)


def test_measure_rules(paper_fit):
    assert default_tests("RR") == ("egger", "begg", "peters", "trimfill", "failsafe")
    assert default_tests("OR") == ("egger", "begg", "peters", "harbord", "trimfill", "failsafe")
    assert default_tests("RD") == ("egger", "begg", "trimfill", "failsafe")
    harbord = harbord_test(paper_fit)  # RR
    assert isinstance(harbord, NotApplicable) and "OR" in harbord.reason
    rd = fit(compute_effects(paper_fit.effects.studies, measure="RD"))
    assert isinstance(peters_test(rd), NotApplicable)


HEADER = "study,year,treat_events,treat_total,control_events,control_total\n"


def _fit(text, measure="RR"):
    return fit(compute_effects(parse_table(HEADER + text, "t.csv").studies, measure=measure))


def test_two_studies_not_applicable_not_error():
    ma = _fit("A,2000,5,10,3,10\nB,2001,8,20,4,20\n", "OR")
    ba = bias_analysis(ma)
    for name in ("egger", "begg", "peters", "harbord"):
        res = getattr(ba, name)
        assert isinstance(res, NotApplicable) and "at least 3" in res.reason, name
        assert res.to_dict() == {"applicable": False, "reason": res.reason}
    # trim-and-fill cannot choose the side from 2 studies (metafor errors too), but can be told.
    assert isinstance(ba.trimfill, NotApplicable) and "--side" in ba.trimfill.reason
    assert not isinstance(trim_and_fill(ma, side="left"), NotApplicable)
    # metafor: fsn(yi, vi) on these two studies' log odds ratios (`unit_cases`)
    ref = unit_case("fsn_two_studies")
    assert (ref["ai"], ref["n1i"], ref["ci"], ref["n2i"]) == ([5, 8], [10, 20], [3, 4], [10, 20])
    assert ba.failsafe.method == ref["type"] and ba.failsafe.n == ref["fsnum"]
    assert close(ba.failsafe.p_value, ref["pval"], P_VALUE)


def test_peters_leaves_out_studies_without_events():
    ma = _fit("A,2000,0,10,0,12\nB,2001,8,20,4,20\nC,2002,5,15,2,14\nD,2003,9,30,7,31\n")
    res = peters_test(ma)
    assert [e.study for e in res.excluded] == ["A"]
    assert res.k == 3


def test_unknown_test_name(paper_fit):
    with pytest.raises(ModelError, match="unknown test"):
        bias_analysis(paper_fit, tests=["funnel"])


def test_only_requested_tests_are_reported(paper_fit):
    ba = bias_analysis(paper_fit, tests=["begg", "failsafe"])
    assert [name for name, _ in ba.results()] == ["begg", "failsafe"]
    data = ba.to_dict()
    assert data["tests"] == ["begg", "failsafe"] and "egger" not in data


# ---------------------------------------------------------------------------------------------
# Trim-and-fill (metafor's trimfill, refits with the tight control settings)

TF = parity_records("trimfill")


@pytest.mark.parametrize(
    "rec", TF, ids=[record_id(r, "dataset", "method", "estimator", "side_requested") for r in TF]
)
def test_trimfill_matches_metafor(rec):
    ma = fitted(rec["dataset"], rec["measure"], rec["method"])
    side = None if rec["side_requested"] == "default" else rec["side_requested"]
    tf = trim_and_fill(ma, side=side, estimator=rec["estimator"])
    if "error" in rec:  # bcg_k2: metafor cannot fit the side-choosing regression
        assert isinstance(tf, NotApplicable) and "side" in tf.reason
        return
    rel = rel_tol(rec["method"])
    assert tf.side == rec["side"]
    assert tf.k0 == rec["k0"]
    assert close(tf.se_k0, rec["se_k0"], CLOSED_FORM)
    assert close(tf.p_k0, rec["p_k0"], CLOSED_FORM)
    assert tf.analysis.k == rec["k"]
    assert close(tf.theta, rec["beta"], rel)
    assert close(tf.se, rec["se"], rel)
    assert close(tf.p_value, rec["pval"], max(rel, P_VALUE))
    assert close(tf.analysis.random.ci_low_theta, rec["ci_lb"], rel)
    assert close(tf.analysis.random.ci_high_theta, rec["ci_ub"], rel)
    assert close(tf.analysis.heterogeneity.tau2, rec["tau2"], rel)
    assert close(tf.analysis.heterogeneity.q, rec["QE"], rel)
    assert close(tf.analysis.heterogeneity.i2, rec["I2"], rel, BOUNDARY_I2_ABS)
    k = ma.k
    assert list(tf.analysis.effects.yi[:k]) == list(ma.effects.yi)
    assert all(close(o, r, rel) for o, r in zip(tf.filled_yi, rec["yi"][k:]))
    assert list(tf.filled_vi) == pytest.approx(rec["vi"][k:], rel=CLOSED_FORM)
    assert [False] * k + [True] * tf.k0 == rec["fill"]


def test_trimfill_fills_mirror_images(paper_fit):
    tf = trim_and_fill(paper_fit)
    assert tf.k0 > 0 and len(tf.filled_yi) == tf.k0 == len(tf.filled_vi)
    # each imputed study mirrors an observed one about the trimmed estimate: same variance, and
    # the pairs (observed + imputed) / 2 all share one centre
    centres = set()
    for y, v, src in zip(tf.filled_yi, tf.filled_vi, tf.filled_from):
        i = paper_fit.effects.labels.index(src)
        assert v == paper_fit.effects.vi[i]
        centres.add(round((y + paper_fit.effects.yi[i]) / 2, 12))
    assert len(centres) == 1


# ---------------------------------------------------------------------------------------------
# Fail-safe N (metafor's fsn; metafor rounds N up to a whole number, so N is compared exactly)

FSN = block("fsn")


@pytest.mark.parametrize(
    "rec", FSN, ids=[record_id(r, "dataset", "type", "target_label") for r in FSN]
)
def test_fsn_matches_metafor(rec):
    ma = fitted(rec["dataset"], rec["measure"])
    target = None if rec["target_arg"] is None else math.exp(rec["target_arg"])  # reported scale
    res = fail_safe_n(ma, rec["type"], alpha=rec["alpha"], target=target)
    assert res.n == rec["fsnum"]
    assert res.n == math.ceil(res.n_exact) or abs(res.n - res.n_exact) < 1e-7
    assert close(res.p_value, rec["pval"], P_VALUE)
    assert close(res.mean_theta, rec["meanes"], CLOSED_FORM)
    assert close(res.target_theta, rec["target"], CLOSED_FORM)


def test_orwin_target_follows_the_sign_of_the_mean(paper_fit):
    """A target of RR 1.1 and of RR 1/1.1 mean the same trivial distance from the null."""
    a = fail_safe_n(paper_fit, "orwin", target=1.1)
    b = fail_safe_n(paper_fit, "orwin", target=1 / 1.1)
    assert a.n == b.n and a.target_theta == pytest.approx(b.target_theta, rel=1e-15)


def test_orwin_null_target_not_applicable_and_bad_target_error(paper_fit):
    assert isinstance(fail_safe_n(paper_fit, "Orwin", target=1.0), NotApplicable)
    with pytest.raises(ModelError, match="positive"):
        fail_safe_n(paper_fit, "Orwin", target=-1.0)
    with pytest.raises(ModelError, match="unknown fail-safe"):
        fail_safe_n(paper_fit, "Fisher")


def test_identical_studies_are_not_applicable_not_errors():
    """Three identical studies: no regression or rank test is defined; each says why."""
    ma = _fit("A,2000,5,10,3,10\nB,2001,5,10,3,10\nC,2002,5,10,3,10\n", "OR")
    ba = bias_analysis(ma)
    for name in ("egger", "begg", "peters", "harbord", "trimfill"):
        res = getattr(ba, name)
        assert isinstance(res, NotApplicable), name
    assert "same" in ba.harbord.reason and "--side" in ba.trimfill.reason
    assert not isinstance(ba.failsafe, NotApplicable)


def test_effect_only_rows_are_left_out_of_peters_and_harbord():
    """A row that gives only yi, vi has no counts: Peters and Harbord leave it out, saying why;
    the other tests use it."""
    text = (
        "study,year,treat_events,treat_total,control_events,control_total,yi,vi\n"
        "A,2000,5,10,3,10,,\nB,2001,8,20,4,20,,\nC,2002,12,30,5,31,,\n"
        "D,2003,,,,,0.4,0.09\nE,2004,20,40,10,42,,\n"
    )
    ma = fit(compute_effects(parse_table(text, "t.csv").studies, measure="OR"))
    ba = bias_analysis(ma)
    for res in (ba.peters, ba.harbord):
        assert res.k == 4 and [e.study for e in res.excluded] == ["D"]
        assert "effect-only" in res.excluded[0].reason
    assert ba.egger.k == 5 and ba.begg.k == 5
