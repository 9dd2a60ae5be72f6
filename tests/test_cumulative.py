"""Cumulative meta-analysis against metafor's cumul(rma(...), order = year), and the ordering rules."""

from __future__ import annotations

import pytest
from sensitivity_ref import block, fitted, parity_records, record_id, rel_tol
from tolerances import BOUNDARY_I2_ABS, CUMUL_STOPPED_SHORT_REL, P_VALUE, close

from ivigmeta.core.effects import compute_effects
from ivigmeta.core.pooling import fit
from ivigmeta.errors import DataError
from ivigmeta.io.studies import parse_table
from ivigmeta.methods.sensitivity import cumulative, cumulative_order

RECORDS = parity_records("cumul")


@pytest.mark.parametrize("rec", RECORDS, ids=[record_id(r, "dataset", "method") for r in RECORDS])
def test_cumul_matches_metafor(rec):
    cu = cumulative(fitted(rec["dataset"], rec["measure"], rec["method"]), "year")
    # metafor's rows are 1-based dataset rows; our Study.row is the spreadsheet row (header = 1).
    assert [s.added.row - 1 for s in cu.steps] == rec["rows"]
    assert [s.added.study for s in cu.steps] == rec["added"]
    # For REML, rec is the tight-threshold record; where that refit failed, fall back on metafor's
    # default-threshold record (see tolerances.CUMUL_STOPPED_SHORT_REL).
    default = block("cumul", dataset=rec["dataset"], method=rec["method"])[0]
    compared = 0
    for j, step in enumerate(cu.steps):
        out = step.to_dict()
        assert out["k"] == j + 1
        ref, rel = rec, rel_tol(rec["method"])
        if ref["estimate"][j] is None:
            ref, rel = default, CUMUL_STOPPED_SHORT_REL
        if ref["estimate"][j] is None:
            # metafor's fit fails at this step whatever its settings (REML, nielweise2007 steps
            # 8 and 12): nothing to compare; ours may report no fit there too.
            continue
        assert step.analysis is not None, step.note
        compared += 1
        assert close(out["theta"], ref["estimate"][j], rel)
        assert close(out["se"], ref["se"][j], rel)
        assert close(out["statistic"], ref["zval"][j], rel)
        assert close(out["p_value"], ref["pval"][j], max(rel, P_VALUE))
        est = step.analysis.random or step.analysis.study_estimates[0]
        assert close(est.ci_low_theta, ref["ci_lb"][j], rel)
        assert close(est.ci_high_theta, ref["ci_ub"][j], rel)
        if j == 0:
            # A single study: metafor reports tau² = Q = I² = 0; ivigmeta reports heterogeneity as
            # not applicable (None), as everywhere else for k = 1.
            assert out["tau2"] is None and out["i2"] is None and out["q"] is None
            continue
        assert close(out["q"], ref["Q"][j], rel)
        assert close(out["q_p_value"], ref["Qp"][j], max(rel, P_VALUE))
        assert close(out["tau2"], ref["tau2"][j], rel)
        assert close(out["i2"], ref["I2"][j], rel, BOUNDARY_I2_ABS)
        assert close(out["h2"], ref["H2"][j], rel)
    assert compared == sum(v is not None for v in default["estimate"]) or rec is default


def test_last_step_is_the_full_fit(paper_fit):
    last = cumulative(paper_fit).steps[-1].analysis.random
    assert last.theta == pytest.approx(paper_fit.random.theta, rel=1e-15)
    assert last.ci_high_theta == pytest.approx(paper_fit.random.ci_high_theta, rel=1e-15)


HEADER = "study,year,treat_events,treat_total,control_events,control_total,dose\n"


def _fit(text):
    return fit(compute_effects(parse_table(HEADER + text, "t.csv").studies))


def test_ties_keep_file_order_in_both_directions():
    ma = _fit("A,2001,5,10,3,10,\nB,2000,6,10,3,10,\nC,2001,7,10,3,10,\nD,2000,4,10,3,10,\n")
    asc = [s.added.study for s in cumulative(ma).steps]
    desc = [s.added.study for s in cumulative(ma, descending=True).steps]
    assert asc == ["B", "D", "A", "C"]
    assert desc == ["A", "C", "B", "D"]


def test_numeric_text_column_sorted_as_numbers_missing_last():
    ma = _fit("A,2001,5,10,3,10,10\nB,2000,6,10,3,10,9\nC,2001,7,10,3,10,\nD,2000,4,10,3,10,100\n")
    cu = cumulative(ma, "dose")
    assert [s.added.study for s in cu.steps] == ["B", "A", "D", "C"]
    assert cu.missing_order == ("C",)
    assert cu.steps[-1].order_value is None


def test_text_column_sorted_as_text():
    order, values = cumulative_order(
        _fit("A,2001,5,10,3,10,low\nB,2000,6,10,3,10,high\nC,2001,7,10,3,10,mid\n").effects.studies,
        "dose",
    )
    assert values == ["low", "high", "mid"]
    assert order == [1, 0, 2]


def test_column_without_values_is_an_error():
    ma = _fit("A,2001,5,10,3,10,\nB,2000,6,10,3,10,\n")
    with pytest.raises(DataError, match="no values"):
        cumulative(ma, "dose")


def test_a_step_that_fails_is_reported_not_fatal(paper_fit, monkeypatch):
    """As metafor's cumul() (NA for a failed step): the other steps are still computed."""
    from ivigmeta.errors import ModelError
    from ivigmeta.methods import sensitivity

    real_fit = sensitivity.fit

    def failing_fit(es, options):
        if es.k == 3:
            raise ModelError("the REML estimator of tau² did not converge")
        return real_fit(es, options)

    monkeypatch.setattr(sensitivity, "fit", failing_fit)
    cu = cumulative(paper_fit)
    assert [s.analysis is None for s in cu.steps] == [k == 3 for k in range(1, 9)]
    failed = cu.steps[2].to_dict()
    assert failed["k"] == 3 and failed["estimate"] is None and "did not converge" in failed["note"]
    assert cu.steps[3].to_dict()["estimate"] is not None
