"""Subgroup estimates and both between-subgroup tests against metafor.

* `subgroup_separate` block (ivig by nk_criterion / timing, RR/OR, DL/REML): one rma() per level,
  then rma(beta_g, se_g², method = "FE")$QE as Q-between (meta's subgroup, CMA separate tau²);
* `metareg` block: the default between test is the mixed-effects meta-regression QM with the
  chosen estimator (and F under --ci hk).
"""

from __future__ import annotations

import pytest
from metafor_ref import block, effects, record_id
from tolerances import CLOSED_FORM, METAFOR_STOP_REL, P_VALUE, close

from ivigmeta.core.pooling import fit
from ivigmeta.methods.subgroup import subgroup_by
from ivigmeta.results import FitOptions

SEPARATE = block("subgroup_separate")


@pytest.mark.parametrize(
    "rec", SEPARATE, ids=[record_id(r, ("measure", "method", "by")) for r in SEPARATE]
)
def test_separate_tau2_between_test(rec):
    ma = fit(effects("ivig", rec["measure"]), FitOptions(tau2_method=rec["method"]))
    res = subgroup_by(ma, rec["by"], between="separate")
    # REML fits in the reference used metafor's threshold 1e-10 (see tests/tolerances.py).
    rel = METAFOR_STOP_REL if rec["method"] == "REML" else CLOSED_FORM
    levels = {lv.level: lv for lv in res.levels}
    for g in rec["groups"]:
        a = levels[g["level"]].analysis
        assert a.k == g["k"]
        assert [s.study for s in a.effects.studies] == g["studies"]
        for name, ours, ref in (
            ("beta", a.random.theta, g["beta"]),
            ("se", a.random.se, g["se"]),
            ("tau2", a.random.tau2, g["tau2"]),
            ("QE", a.heterogeneity.q, g["QE"]),
            ("I2", a.heterogeneity.i2, g["I2"]),
        ):
            assert close(ours, ref, rel, 1e-9), (g["level"], name, ours, ref)
    t = res.test
    assert t.df == rec["df_between"]
    assert close(t.statistic, rec["Q_between"], rel)
    assert close(t.p_value, rec["p_between"], max(rel, P_VALUE))
    assert t.method == f"separate-{rec['method']}"


def test_separate_differs_from_metareg_as_in_metafor():
    """ivig RR DL by nk_criterion: p = 0.329 (separate tau²) vs 0.266 (meta-regression; the
    paper's Results), both metafor's (`subgroup_separate` and `metareg` blocks)."""
    ma = fit(effects("ivig", "RR"))
    sep = next(
        r for r in SEPARATE if (r["measure"], r["method"], r["by"]) == ("RR", "DL", "nk_criterion")
    )
    reg = next(
        r
        for r in block("metareg")
        if (r["dataset"], r["method"], r["test"], r["mods"]) == ("ivig", "DL", "z", "~nk_criterion")
    )
    p_sep = subgroup_by(ma, "nk_criterion", "separate").test.p_value
    p_reg = subgroup_by(ma, "nk_criterion").test.p_value
    assert close(p_sep, sep["p_between"], P_VALUE) and close(p_reg, reg["QMp"], P_VALUE)
    assert f"{p_sep:.3f}" == "0.329" and f"{p_reg:.3f}" == "0.266"


BETWEEN = [
    r
    for r in block("metareg")
    if r["dataset"] == "ivig" and r["method"] in ("DL", "PM", "HE", "SJ")
]


@pytest.mark.parametrize(
    "rec", BETWEEN, ids=[record_id(r, ("mods", "method", "test")) for r in BETWEEN]
)
def test_metareg_between_uses_the_chosen_estimator_and_interval(rec):
    column = rec["mods"].lstrip("~")
    ma = fit(
        effects("ivig", "RR"),
        FitOptions(tau2_method=rec["method"], ci_method={"z": "z", "knha": "hk"}[rec["test"]]),
    )
    t = subgroup_by(ma, column).test
    assert close(t.statistic, rec["QM"], 1e-7)
    assert close(t.p_value, rec["QMp"], 1e-7)
    assert close(t.tau2, rec["tau2"], 1e-7, 1e-12)
    if rec["test"] == "knha":
        assert [t.df, t.df2] == rec["QMdf"]
    else:
        assert t.df == rec["QMdf"] and t.df2 is None
