"""Influence diagnostics against metafor's influence(rma(...)) and baujat(rma(...))."""

from __future__ import annotations

import math

import pytest
from sensitivity_ref import block, fitted, parity_records, record_id, rel_tol
from tolerances import close

from ivigmeta.core.effects import compute_effects
from ivigmeta.core.pooling import fit
from ivigmeta.errors import ModelError
from ivigmeta.io.studies import parse_table
from ivigmeta.methods.influence import influence
from ivigmeta.methods.sensitivity import leave_one_out
from ivigmeta.results import FitOptions

# z (DL; REML from the tight block) and Knapp-Hartung (test = "knha", our --ci hk) fits.
RECORDS = parity_records("influence") + block("influence_knha")
FIELDS = {
    "rstudent": "rstudent",
    "dffits": "dffits",
    "cook_d": "cook_d",
    "cov_r": "cov_r",
    "tau2_del": "tau2_del",
    "QE_del": "qe_del",
    "hat": "hat",
    "weight": "weight",
    "dfbs": "dfbetas",
    "baujat_x": "baujat_x",
    "baujat_y": "baujat_y",
}


@pytest.mark.parametrize(
    "rec", RECORDS, ids=[record_id(r, "dataset", "method", "test") for r in RECORDS]
)
def test_influence_matches_metafor(rec):
    inf = influence(fitted(rec["dataset"], rec["measure"], rec["method"], rec["test"]))
    rel = rel_tol(rec["method"])
    assert len(inf.rows) == len(rec["rstudent"])
    for ref_key, attr in FIELDS.items():
        ours = [getattr(r, attr) for r in inf.rows]
        bad = [
            (i, o, r) for i, (o, r) in enumerate(zip(ours, rec[ref_key])) if not close(o, r, rel)
        ]
        assert not bad, f"{ref_key}: {bad}"
    assert [r.influential for r in inf.rows] == rec["is_infl"]
    assert ["*" if r.influential else "" for r in inf.rows] == rec["inf"]


def test_flags_both_studies_when_k_is_2():
    """metafor flags both studies of bcg_k2; ours must too, and say by which criterion."""
    inf = influence(fitted("bcg_k2"))
    assert all(r.influential for r in inf.rows)
    assert all(r.reasons for r in inf.rows)


def test_reasons_follow_the_cutoffs(paper_fit):
    inf = influence(paper_fit)
    for r in inf.rows:
        expected = set()
        if abs(r.dffits) > inf.dffits_cutoff:
            expected.add("dffits")
        if r.cook_d > inf.cook_d_cutoff:
            expected.add("cook_d")
        if r.hat > inf.hat_cutoff:
            expected.add("hat")
        if abs(r.dfbetas) > 1:
            expected.add("dfbetas")
        assert set(r.reasons) == expected
        assert r.influential == bool(expected)


def test_deleted_fits_are_leave_one_out(paper_fit):
    """tau2_del and the covariance ratio come from the same refits as leave-one-out."""
    inf = influence(paper_fit)
    for row, loo in zip(inf.rows, leave_one_out(paper_fit).rows):
        assert row.tau2_del == pytest.approx(loo.analysis.random.tau2, rel=1e-15, abs=1e-300)
        assert row.cov_r == pytest.approx(
            (loo.analysis.random.se / paper_fit.random.se) ** 2, rel=1e-14
        )
        assert row.qe_del == pytest.approx(loo.analysis.heterogeneity.q, rel=1e-14)
    assert math.fsum(r.weight for r in inf.rows) == pytest.approx(100.0, rel=1e-14)


def test_hartung_knapp_uses_the_hk_variances(studies_path):
    from ivigmeta.io.studies import load_table

    es = compute_effects(load_table(str(studies_path)).studies)
    hk = fit(es, FitOptions(ci_method="hk"))
    inf = influence(hk)
    for i, row in enumerate(inf.rows):
        deleted = fit(es.subset([j for j in range(es.k) if j != i]), hk.options)
        assert row.cov_r == pytest.approx((deleted.random.se / hk.random.se) ** 2, rel=1e-14)
        assert row.cook_d == pytest.approx(
            ((hk.random.theta - deleted.random.theta) / hk.random.se) ** 2, rel=1e-12
        )


def test_single_study_is_an_error():
    es = compute_effects(
        parse_table(
            "study,treat_events,treat_total,control_events,control_total\nA,1,10,2,10\n", "x"
        ).studies
    )
    with pytest.raises(ModelError, match="at least 2 studies"):
        influence(fit(es))


def test_a_refit_that_fails_leaves_that_study_empty(paper_fit, monkeypatch):
    """As metafor (NA for a deleted fit that fails): the other studies are still diagnosed."""
    import ivigmeta.methods.influence as influence_module

    real_fit = influence_module.fit
    first = paper_fit.effects.studies[0]

    def failing_fit(es, options):
        if first not in es.studies:
            raise ModelError("the REML estimator of tau² did not converge")
        return real_fit(es, options)

    monkeypatch.setattr(influence_module, "fit", failing_fit)
    rows = influence(paper_fit).rows
    assert rows[0].rstudent is None and rows[0].cook_d is None and not rows[0].influential
    assert "did not converge" in rows[0].note and rows[0].hat > 0
    assert all(r.rstudent is not None for r in rows[1:])
