"""Meta-regression against metafor 3.8-1 beyond the mixed-effects fit (issue 17 item 5):

* the fixed-effects meta-regression, ``rma(yi, vi, mods, method = "FE")`` (``fe_metareg`` in
  tests/reference/metafor_blup.json, written by tests/reference/make_reference_blup.R);
* ``predict(fit, newmods = ...)`` for DL, REML and FE fits (``predict`` there);
* the exact permutation test, ``permutest(fit, exact = TRUE)`` (tests/reference/
  metafor_permutest.json, written by tests/reference/make_reference_permutest.R).

On dat.bcg (~ablat, ~factor(alloc); its first 8 trials for a continuous permutation test) and
the IVIG studies (~nk_criterion), log RR, with metafor's reference levels.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from metafor_ref import effects
from tolerances import CLOSED_FORM, ITERATIVE, close

from ivigmeta.errors import ModelError
from ivigmeta.methods.metareg import meta_regression, metareg_analysis
from ivigmeta.methods.permutest import (
    distinct_permutation_count,
    distinct_permutations,
    permutation_test,
)

HERE = Path(__file__).parent / "reference"
BLUP = json.loads((HERE / "metafor_blup.json").read_text())
PERM = json.loads((HERE / "metafor_permutest.json").read_text())
# metafor's reference level of a factor is its first level alphabetically.
REFS = {"~factor(alloc)": {"alloc": "alternate"}, "~nk_criterion": {"nk_criterion": "no"}}


def _columns(mods: str) -> list[str]:
    return [] if mods == "~1" else [mods.lstrip("~").replace("factor(", "").rstrip(")")]


def _fit(rec, ci="z", **options):
    es = effects(rec["dataset"].removesuffix("8"), rec["measure"])
    if rec["dataset"] == "bcg8":
        es = es.subset(range(8))
    model = "common" if rec["method"] == "FE" else "random"
    method = "DL" if model == "common" else rec["method"]
    return metareg_analysis(
        es, _columns(rec["mods"]), method, ci, ref=REFS.get(rec["mods"]), model=model, **options
    )


def _tol(rec):
    return ITERATIVE if rec["method"] == "REML" else CLOSED_FORM


@pytest.mark.parametrize(
    "rec", BLUP["fe_metareg"], ids=[f"{r['dataset']}-{r['mods']}" for r in BLUP["fe_metareg"]]
)
def test_fixed_effects_metaregression_matches_metafor(rec):
    assert not rec["warnings"] and "error" not in rec
    reg = _fit(rec)
    assert (reg.model, reg.tau2_method, reg.tau2, reg.k) == ("common", "FE", 0.0, rec["k"])
    assert len(reg.coefficients) == len(rec["beta"])
    for j, c in enumerate(reg.coefficients):
        for ours, key in (
            (c.estimate, "beta"),
            (c.se, "se"),
            (c.statistic, "zval"),
            (c.p_value, "pval"),
            (c.ci_low, "ci_lb"),
            (c.ci_high, "ci_ub"),
        ):
            assert close(ours, rec[key][j], CLOSED_FORM), (c.name, key, ours, rec[key][j])
    pairs = (
        (reg.qm, "QM"),
        (reg.qm_p_value, "QMp"),
        (reg.qe, "QE"),
        (reg.qe_p_value, "QEp"),
        (reg.i2, "I2"),
        (reg.h2, "H2"),
    )
    for ours, key in pairs:
        assert close(ours, rec[key], CLOSED_FORM), (key, ours, rec[key])
    assert (reg.qm_df, reg.qe_df) == (rec["QMdf"], rec["QEdf"])
    assert reg.r2 is None


@pytest.mark.parametrize(
    "rec",
    BLUP["predict"],
    ids=[f"{r['dataset']}-{r['mods']}-{r['method']}" for r in BLUP["predict"]],
)
def test_predictions_match_metafor(rec):
    assert not rec["warnings"] and "error" not in rec
    reg = _fit(rec, predict=rec["newmods_text"])
    assert [p.label for p in reg.predictions] == rec["newmods_text"]
    for i, p in enumerate(reg.predictions):
        for ours, key in (
            (p.estimate, "pred"),
            (p.se, "se"),
            (p.ci_low, "ci_lb"),
            (p.ci_high, "ci_ub"),
            (p.pi_low, "pi_lb"),
            (p.pi_high, "pi_ub"),
        ):
            assert close(ours, rec[key][i], _tol(rec)), (p.label, key, ours, rec[key][i])
        assert close(p.reported[0], math.exp(rec["pred"][i]), _tol(rec))


# Exact permutation tests take one refit per permutation: the REML refits are kept to the
# smallest case (IVIG) so that the suite stays quick.
FAST = [r for r in PERM["permutest"] if r["method"] != "REML" or r["dataset"] == "ivig"]


@pytest.mark.parametrize(
    "rec", FAST, ids=[f"{r['dataset']}-{r['mods']}-{r['method']}-{r['test']}" for r in FAST]
)
def test_exact_permutation_test_matches_metafor(rec):
    ci = "hk" if rec["test"] == "knha" else "z"
    if rec["mods"] == "~1":
        es = effects(rec["dataset"], rec["measure"])
        model = "common" if rec["method"] == "FE" else "random"
        reg = meta_regression(
            es.yi, es.vi, np.ones((es.k, 1)), ["intercept"], rec["method"], ci, model=model
        )
    else:
        reg = _fit(rec, ci)
    for c, beta, z in zip(reg.coefficients, rec["beta"], rec["zval"]):
        assert close(c.estimate, beta, _tol(rec)) and close(c.statistic, z, _tol(rec))
    perm = permutation_test(reg, iterations=100_000)
    assert perm.exact and perm.failed == 0 and perm.seed is None
    # Shares of a finite set of permutations: metafor's and ours are the same fractions.
    assert perm.p_values == pytest.approx(rec["pval"], abs=1e-12)
    assert perm.qm_p_value == pytest.approx(rec["QMp"], abs=1e-12)


def test_the_exact_test_counts_distinct_permutations_as_metafor():
    ivig = _fit({"dataset": "ivig", "measure": "RR", "mods": "~nk_criterion", "method": "DL"})
    # 8 studies, some meeting the NK criterion: C(8, n) distinct designs.
    n_yes = sum(row[1] for row in ivig.design)
    assert permutation_test(ivig, 1000).iterations == math.comb(8, int(n_yes))
    # Fewer iterations than distinct permutations: an approximate test of that many.
    approx = permutation_test(ivig, 20, seed=5)
    assert (approx.exact, approx.iterations, approx.seed) == (False, 20, 5)


def test_an_approximate_test_repeats_with_its_seed_and_counts_the_observed_data():
    rec = {"dataset": "bcg", "measure": "RR", "mods": "~ablat", "method": "DL"}
    reg = _fit(rec)
    a = permutation_test(reg, 200, seed=11)
    b = permutation_test(reg, 200, seed=11)
    c = permutation_test(reg, 200, seed=12)
    assert a == b and a != c and not a.exact
    # The observed data is the first of the permutations: no p-value below 1 / iterations.
    assert min(a.p_values) >= 1 / 200 and a.qm_p_value >= 1 / 200
    drawn = permutation_test(reg, 50)
    assert drawn.seed is not None and permutation_test(reg, 50, seed=drawn.seed) == drawn


def test_permutations_are_bounded():
    reg = _fit({"dataset": "ivig", "measure": "RR", "mods": "~nk_criterion", "method": "DL"})
    with pytest.raises(ModelError, match="at least 2"):
        permutation_test(reg, 1)
    with pytest.raises(ModelError, match="at most"):
        permutation_test(reg, 10**9)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=7))
def test_distinct_permutations_are_every_distinct_ordering_once(groups):
    ours = list(distinct_permutations(groups))
    brute = sorted(set(itertools.permutations(groups)))
    assert [tuple(p) for p in ours] == brute
    assert distinct_permutation_count(groups) == len(brute)


def test_predict_refuses_bad_values():
    rec = {"dataset": "bcg", "measure": "RR", "mods": "~factor(alloc)", "method": "DL"}
    for text, message in (
        ("alloc=sometimes", "not a level of 'alloc'"),
        ("ablat=10", "not a moderator"),
        ("alloc", "COL=VALUE"),
        ("alloc=random,alloc=random", "twice"),
    ):
        with pytest.raises(ModelError, match=message):
            _fit(rec, predict=[text])
    rec = {"dataset": "bcg", "measure": "RR", "mods": "~ablat", "method": "DL"}
    with pytest.raises(ModelError, match="not a number"):
        _fit(rec, predict=["ablat=north"])


POOLED = [
    r
    for r in PERM["permutest"]
    if r["mods"] == "~1" and r["method"] != "FE" and (r["method"] == "DL" or r["dataset"] == "ivig")
]


@pytest.mark.parametrize(
    "rec", POOLED, ids=[f"{r['dataset']}-{r['method']}-{r['test']}" for r in POOLED]
)
def test_pooled_permutation_test_matches_metafor(rec):
    from ivigmeta.core.pooling import fit
    from ivigmeta.methods.metareg import pooled_permutation_test
    from ivigmeta.results import FitOptions

    ci = "hk" if rec["test"] == "knha" else "z"
    ma = fit(
        effects(rec["dataset"], rec["measure"]), FitOptions(tau2_method=rec["method"], ci_method=ci)
    )
    perm = pooled_permutation_test(ma, 100_000)
    assert perm.exact and perm.iterations == 2 ** rec["k"]
    assert perm.p_values == pytest.approx(rec["pval"], abs=1e-12)


def test_pool_permutations_on_the_command_line(run, studies_path):
    import json as _json

    result = run("pool", str(studies_path), "--permutations", "1000", "-f", "json")
    assert result.exit_code == 0, result.stderr
    perm = _json.loads(result.stdout)["permutation"]
    assert perm["exact"] and perm["iterations"] == 256 and perm["seed"] is None
    plain = _json.loads(run("pool", str(studies_path), "-f", "json").stdout)
    assert plain["permutation"] is None
    table = run("pool", str(studies_path), "--permutations", "1000")
    assert "Permutation test (exact, all 256 sign flips): p = " in table.stdout
    assert run("pool", str(studies_path), "--seed", "3").exit_code == 2
    bad = run("pool", str(studies_path), "--permutations", "50", "--ci", "hc")
    assert bad.exit_code == 1 and "--permutations refits the normal-normal model" in bad.stderr
