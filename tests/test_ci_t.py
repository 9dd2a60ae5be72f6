"""`--ci t` (metafor's test = "t": Wald standard errors, tests and intervals on t with k - p df,
the omnibus test as F) against tests/reference/metafor_test_t.json (written by
tests/reference/make_reference_test_t.R): rma() with and without moderators, rma.glmm()."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
from metafor_ref import effects
from tolerances import CLOSED_FORM, GLMM_DEFAULT, ITERATIVE, close

from ivigmeta.core.glmm import fit_glmm
from ivigmeta.core.pooling import fit, glmm_on_t
from ivigmeta.methods.metareg import metareg_analysis
from ivigmeta.results import FitOptions

REF = json.loads((Path(__file__).parent / "reference" / "metafor_test_t.json").read_text())


def _tol(rec):
    return ITERATIVE if rec["method"] == "REML" else CLOSED_FORM


@pytest.mark.parametrize("rec", REF["rma"], ids=[f"{r['mods']}-{r['method']}" for r in REF["rma"]])
def test_rma_test_t_matches_metafor(rec):
    es = effects(rec["dataset"], rec["measure"])
    tol = _tol(rec)
    if rec["mods"] == "~1":
        r = fit(es, FitOptions(tau2_method=rec["method"], ci_method="t")).random
        assert r.df == rec["k"] - 1 and r.ci_method == "t"
        ours = [r.theta, r.se, r.statistic, r.p_value, r.ci_low_theta, r.ci_high_theta]
        theirs = [rec[k][0] for k in ("beta", "se", "zval", "pval", "ci_lb", "ci_ub")]
        assert all(close(a, b, tol) for a, b in zip(ours, theirs)), (ours, theirs)
        p = rec["predict"]
        assert close(r.pi_low_theta, p["pi_lb"], tol) and close(r.pi_high_theta, p["pi_ub"], tol)
        return
    reg = metareg_analysis(es, ["ablat", "alloc"], rec["method"], "t", ref={"alloc": "alternate"})
    for j, c in enumerate(reg.coefficients):
        for ours, key in (
            (c.estimate, "beta"),
            (c.se, "se"),
            (c.statistic, "zval"),
            (c.p_value, "pval"),
            (c.ci_low, "ci_lb"),
            (c.ci_high, "ci_ub"),
        ):
            assert close(ours, rec[key][j], tol), (c.name, key, ours, rec[key][j])
    assert close(reg.qm, rec["QM"], tol) and close(reg.qm_p_value, rec["QMp"], tol)
    assert [reg.qm_df, reg.qm_df2] == rec["QMdf"]


@pytest.mark.parametrize("rec", REF["glmm"], ids=[r["model"] for r in REF["glmm"]])
def test_glmm_test_t_is_metafors_t_on_k_minus_1(rec):
    # The t step itself, exactly: metafor's own estimate and se through glmm_on_t give its
    # p-value and interval (the GLMM fits are compared at their own tolerance below).
    measure, *arms = _bcg_counts()
    res = fit_glmm(measure, rec["model"], *arms)
    theirs = replace(
        res,
        theta=rec["beta"],
        se=rec["se"],
        z=rec["zval"],
        common=replace(
            res.common, theta=rec["fe"]["beta"], se=rec["fe"]["se"], z=rec["fe"]["zval"]
        ),
    )
    t = glmm_on_t(theirs, rec["k"], 0.95)
    for ours, key in ((t.p_value, "pval"), (t.ci_low, "ci_lb"), (t.ci_high, "ci_ub")):
        assert close(ours, rec[key], 1e-12), (key, ours, rec[key])
    for ours, key in ((t.common.p_value, "pval"), (t.common.ci_low, "ci_lb")):
        assert close(ours, rec["fe"][key], 1e-12)
    # and end to end, at the GLMM tolerance (not for bcg under UM.RS: lme4's Laplace optimum
    # there is of a slightly different function, tests/test_glmm.py IMPRECISE_LME4)
    ma = fit(effects("bcg", "OR"), FitOptions(glmm=rec["model"], ci_method="t"))
    assert ma.random.df == rec["k"] - 1 and ma.random.ci_method == "t"
    if rec["model"] == "UM.RS":
        return
    assert close(ma.random.ci_low_theta, rec["ci_lb"], GLMM_DEFAULT)
    assert close(ma.random.p_value, rec["pval"], 10 * GLMM_DEFAULT)
    assert close(ma.random.pi_low_theta, rec["predict"]["pi_lb"], GLMM_DEFAULT)


def _bcg_counts():
    es = effects("bcg", "OR")
    a = [s.counts[0] for s in es.studies]
    n1 = [s.counts[1] for s in es.studies]
    c = [s.counts[2] for s in es.studies]
    n2 = [s.counts[3] for s in es.studies]
    return "OR", a, n1, c, n2


def test_ci_t_on_the_command_line(run, studies_path):
    result = run("pool", str(studies_path), "--ci", "t", "-f", "json")
    assert result.exit_code == 0, result.stderr
    r = json.loads(result.stdout)["random"]
    assert r["ci_method"] == "t" and r["df"] == 7
    table = run("pool", str(studies_path), "--ci", "t")
    assert "t = " in table.stdout or " t " in table.stdout
    bad = run("pool", str(studies_path), "--ci", "hk", "--glmm", "UM.FS", "--measure", "OR")
    assert bad.exit_code == 1 and "--ci hk does not apply to --glmm" in bad.stderr
    assert math.isfinite(r["p_value"])
