"""Mixed-effects meta-regression against metafor's rma(yi, vi, mods = ...).

Every record of the `metareg` block of tests/reference/metafor.json (bcg ~ablat, ~factor(alloc),
~ablat + year; ivig ~nk_criterion, ~timing; RR; DL/REML/ML/PM/HE/SJ x z/knha), produced by

    rma(yi, vi, mods = MODS, method = METHOD, test = TEST, control = CTRL)

ML/REML are compared strictly with `metareg_tight` (threshold 1e-15); the FE records are the
common-effect meta-regression, which `ivigmeta metareg` does not offer, and are not used.
"""

from __future__ import annotations

import pytest
from metafor_ref import block, effects, record_id
from tolerances import CLOSED_FORM, ITERATIVE, METAFOR_STOP_REL, P_VALUE, close

from ivigmeta.errors import ModelError
from ivigmeta.methods.metareg import build_moderators, meta_regression, metareg_analysis
from ivigmeta.results import Exclusion

IDS = ("dataset", "mods", "method", "test")
CI = {"z": "z", "knha": "hk"}
# metafor's reference levels are alphabetical; ivigmeta's default is the first level in file order.
REFS = {
    "~factor(alloc)": {"alloc": "alternate"},
    "~nk_criterion": {"nk_criterion": "no"},
    "~timing": {"timing": "after"},
}


def _columns(mods: str) -> list[str]:
    return [t.strip().replace("factor(", "").rstrip(")") for t in mods.lstrip("~").split("+")]


def _name(metafor_name: str) -> str:
    if metafor_name == "intrcpt":
        return "intercept"
    for col in ("factor(alloc)", "nk_criterion", "timing"):
        if metafor_name.startswith(col) and metafor_name != col:
            return f"{col.replace('factor(', '').rstrip(')')}={metafor_name[len(col) :]}"
    return metafor_name


def _fit(rec):
    es = effects(rec["dataset"], rec["measure"])
    return metareg_analysis(
        es, _columns(rec["mods"]), rec["method"], CI[rec["test"]], ref=REFS.get(rec["mods"])
    )


def _check(rec, rel, tau2_rel):
    reg = _fit(rec)
    bad = []

    def cmp(name, ours, ref, r, floor=1e-12):
        if not close(ours, ref, r, floor):
            bad.append(f"{name}: ours {ours!r} metafor {ref!r}")

    assert reg.k == rec["k"] == len(rec["studies"])
    by_name = {c.name: c for c in reg.coefficients}
    assert sorted(by_name) == sorted(_name(n) for n in rec["coef_names"])
    for j, n in enumerate(rec["coef_names"]):
        c = by_name[_name(n)]
        cmp(f"{n} beta", c.estimate, rec["beta"][j], rel)
        cmp(f"{n} se", c.se, rec["se"][j], rel)
        cmp(f"{n} stat", c.statistic, rec["zval"][j], rel)
        cmp(f"{n} p", c.p_value, rec["pval"][j], max(rel, P_VALUE), 1e-300)
        cmp(f"{n} ci_lb", c.ci_low, rec["ci_lb"][j], rel)
        cmp(f"{n} ci_ub", c.ci_high, rec["ci_ub"][j], rel)
    cmp("QM", reg.qm, rec["QM"], rel)
    cmp("QMp", reg.qm_p_value, rec["QMp"], max(rel, P_VALUE), 1e-300)
    if rec["test"] == "knha":
        assert [reg.qm_df, reg.qm_df2] == rec["QMdf"]
    else:
        assert reg.qm_df == rec["QMdf"] and reg.qm_df2 is None
    cmp("QE", reg.qe, rec["QE"], CLOSED_FORM)
    cmp("QEp", reg.qe_p_value, rec["QEp"], P_VALUE, 1e-300)
    assert reg.qe_df == rec["QEdf"]
    cmp("tau2", reg.tau2, rec["tau2"], tau2_rel)
    cmp("I2", reg.i2, rec["I2"], tau2_rel)
    cmp("H2", reg.h2, rec["H2"], tau2_rel)
    cmp("R2", reg.r2, rec["R2"], tau2_rel, 1e-9)
    assert not bad, "\n".join(bad)


CLOSED = [r for r in block("metareg") if r["method"] in ("DL", "HE", "SJ", "PM")]


@pytest.mark.parametrize("rec", CLOSED, ids=[record_id(r, IDS) for r in CLOSED])
def test_metareg_closed_form_and_pm(rec):
    rel = ITERATIVE if rec["method"] == "PM" else CLOSED_FORM
    _check(rec, rel, rel)


TIGHT = [r for r in block("metareg_tight") if "error" not in r]


@pytest.mark.parametrize("rec", TIGHT, ids=[record_id(r, IDS) for r in TIGHT])
def test_metareg_ml_reml_tight(rec):
    _check(rec, ITERATIVE, ITERATIVE)


FISHER = [r for r in block("metareg") if r["method"] in ("ML", "REML")]


@pytest.mark.parametrize("rec", FISHER, ids=[record_id(r, IDS) for r in FISHER])
def test_metareg_ml_reml_default_threshold(rec):
    """Including bcg ~ablat + year ML, which metafor cannot refit with threshold 1e-15."""
    _check(rec, METAFOR_STOP_REL, METAFOR_STOP_REL)


def test_paper_between_subgroup_p_values():
    """Results: meta-regression p = 0.266 (NK criterion) and p = 0.071 (timing)."""
    es = effects("ivig", "RR")
    assert f"{metareg_analysis(es, ['nk_criterion']).qm_p_value:.3f}" == "0.266"
    reg = metareg_analysis(es, ["timing"])
    assert f"{reg.qm_p_value:.3f}" == "0.071"
    assert reg.k == 7 and [e.study for e in reg.excluded] == ["Jafarzadeh 2019"]


def test_reference_level_choice_changes_sign_not_fit():
    es = effects("ivig", "RR")
    a = metareg_analysis(es, ["nk_criterion"])  # first level in file order: 'yes'
    b = metareg_analysis(es, ["nk_criterion"], ref={"nk_criterion": "no"})
    assert [c.name for c in a.coefficients] == ["intercept", "nk_criterion=no"]
    assert [c.name for c in b.coefficients] == ["intercept", "nk_criterion=yes"]
    assert close(a.coefficients[1].estimate, -b.coefficients[1].estimate, CLOSED_FORM)
    assert close(a.qm, b.qm, CLOSED_FORM) and close(a.tau2, b.tau2, CLOSED_FORM)


def test_categorical_forces_dummy_coding_of_numbers():
    es = effects("bcg", "RR")
    mods = build_moderators(es, ["year"], categorical=["year"])
    assert mods.kinds == {"year": "categorical"}
    assert len(mods.names) == len({s.year for s in es.studies})


def test_constant_moderator_is_a_clear_error():
    es = effects("ivig_nk", "RR")  # nk_criterion is 'yes' in every study
    with pytest.raises(ModelError, match="constant"):
        metareg_analysis(es, ["nk_criterion"])
    import numpy as np

    X = np.column_stack([np.ones(4), np.full(4, 2.0)])
    with pytest.raises(ModelError, match="constant"):
        meta_regression(es.yi, es.vi, X, ["intercept", "x"])


def test_collinear_moderators_are_a_clear_error():
    import numpy as np

    es = effects("bcg", "RR")
    ablat = np.array([float(s.fields["ablat"]) for s in es.studies])
    X = np.column_stack([np.ones(es.k), ablat, 2.0 * ablat + 1.0])
    with pytest.raises(ModelError, match="collinear"):
        meta_regression(es.yi, es.vi, X, ["intercept", "ablat", "ablat2"])


def test_too_few_studies_and_bad_ref():
    es = effects("bcg_k2", "RR")
    with pytest.raises(ModelError, match="more than 2 studies"):
        metareg_analysis(es, ["ablat"])
    with pytest.raises(ModelError, match="not a level"):
        metareg_analysis(effects("ivig", "RR"), ["nk_criterion"], ref={"nk_criterion": "maybe"})
    with pytest.raises(ModelError, match="continuous"):
        metareg_analysis(effects("bcg", "RR"), ["ablat"], ref={"ablat": "44"})


def test_exclusions_are_listed():
    reg = metareg_analysis(effects("ivig", "RR"), ["timing"], "REML", "hk")
    assert isinstance(reg.excluded[0], Exclusion)
    out = reg.to_dict()
    assert {
        "coefficients",
        "qm",
        "qm_df",
        "qm_p_value",
        "qe",
        "qe_df",
        "qe_p_value",
        "tau2",
        "i2",
        "r2",
    } <= set(out)
    assert set(out["coefficients"][0]) >= {
        "name",
        "estimate",
        "se",
        "statistic",
        "p_value",
        "ci_low",
        "ci_high",
    }
