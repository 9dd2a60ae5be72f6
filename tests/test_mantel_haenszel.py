"""Mantel-Haenszel and Peto common-effect fits against metafor's rma.mh() and rma.peto().

Every record of the `rma_mh` (7 data sets x RR/OR/RD) and `rma_peto` (7 data sets) blocks of
tests/reference/metafor.json, produced with those functions' own defaults:
add = c(1/2, 0), to = c("only0", "none"), drop00 = c(TRUE, FALSE) (raw counts for the estimate;
0.5 only0 and double zeros dropped for the per-study yi/vi behind Q).
"""

from __future__ import annotations

import json
import math

import pytest
from metafor_ref import block, effects, record_id
from tolerances import CLOSED_FORM, P_VALUE, close

from ivigmeta.core.pooling import fit
from ivigmeta.errors import ModelError
from ivigmeta.results import FitOptions

MH = block("rma_mh")
PETO = block("rma_peto")


def _check(c, rec):
    for name, ours, ref in (
        ("beta", c.theta, rec["beta"]),
        ("se", c.se, rec["se"]),
        ("zval", c.statistic, rec["zval"]),
        ("ci_lb", c.ci_low_theta, rec["ci_lb"]),
        ("ci_ub", c.ci_high_theta, rec["ci_ub"]),
        ("QE", c.q, rec["QE"]),
        ("I2", c.i2, rec["I2"]),
        ("H2", c.h2, rec["H2"]),
    ):
        assert close(ours, ref, CLOSED_FORM), (name, ours, ref)
    assert close(c.p_value, rec["pval"], P_VALUE, 1e-300)
    assert close(c.q_p_value, rec["QEp"], P_VALUE, 1e-300)
    assert c.k_yi == rec["k_yi"] and c.q_df == rec["k_yi"] - 1
    assert len(c.weights) == rec["k"]
    for ours, ref in zip(c.weights, rec["weights"]):
        assert close(ours, ref, CLOSED_FORM, 1e-12)


@pytest.mark.parametrize("rec", MH, ids=[record_id(r, ("dataset", "measure")) for r in MH])
def test_mantel_haenszel(rec):
    ma = fit(effects(rec["dataset"], rec["measure"]), FitOptions(common_method="MH"))
    assert ma.common.method == "MH"
    _check(ma.common, rec)


@pytest.mark.parametrize("rec", PETO, ids=[r["dataset"] for r in PETO])
def test_peto(rec):
    ma = fit(effects(rec["dataset"], "OR"), FitOptions(common_method="PETO"))
    assert ma.common.method == "PETO"
    _check(ma.common, rec)


def test_double_zero_study_has_rd_weight_but_no_ratio_weight():
    """nielweise2007: Yucel 2004 (0/118 vs 0/105) weighs 4.47% in MH RD and 0 in MH RR/OR."""
    es = effects("nielweise2007", "RD")
    i = [s.study for s in es.studies].index("Yucel 2004")
    assert f"{fit(es, FitOptions(common_method='MH')).common.weights[i]:.2f}" == "4.47"
    for measure in ("RR", "OR"):
        w = fit(effects("nielweise2007", measure), FitOptions(common_method="MH")).common.weights
        assert w[i] == 0.0


def test_peto_requires_or():
    with pytest.raises(ModelError, match="--measure OR"):
        fit(effects("ivig", "RR"), FitOptions(common_method="PETO"))


def test_unknown_common_method():
    with pytest.raises(ModelError, match="IV, MH, PETO"):
        fit(effects("ivig", "RR"), FitOptions(common_method="XX"))


def test_mh_random_part_is_unchanged():
    """--common only changes the common-effect row: the random-effects fit stays inverse variance."""
    a = fit(effects("ivig", "OR"), FitOptions(common_method="MH"))
    b = fit(effects("ivig", "OR"))
    assert a.random == b.random and not math.isclose(a.common.theta, b.common.theta)


def test_mantel_haenszel_refuses_the_arcsine_difference(run, studies_path):
    # rma.mh pools OR, RR and RD (and rates): an AS analysis would have printed the MH risk
    # difference under the AS label.
    result = run("pool", str(studies_path), "--measure", "AS", "--common", "MH")
    assert result.exit_code == 1
    assert "Mantel-Haenszel pools RR, OR and RD: AS is pooled by inverse variance" in result.stderr


def test_mantel_haenszel_for_rates_in_pool_and_batch(run, tmp_path):
    # Events over person-time: rma.mh's IRR with its MH test; batch gives what pool gives.
    rows = [(9, 413, 19, 398), (8, 263, 19, 245), (0, 112, 2, 120), (4, 300, 6, 310)]
    single = tmp_path / "rates.csv"
    single.write_text(
        "study,treat_events,treat_time,control_events,control_time\n"
        + "".join(f"s{i},{a},{b},{c},{d}\n" for i, (a, b, c, d) in enumerate(rows))
    )
    many = tmp_path / "rates_batch.csv"
    many.write_text(
        "grp,study,treat_events,treat_time,control_events,control_time\n"
        + "".join(f"g,s{i},{a},{b},{c},{d}\n" for i, (a, b, c, d) in enumerate(rows))
    )
    pooled = run("pool", str(single), "--measure", "IRR", "--common", "MH", "-f", "json")
    assert pooled.exit_code == 0, pooled.stderr
    data = json.loads(pooled.stdout)
    common = data["common"]
    assert common["method"] == "MH" and common["cmh"]["df"] == 1
    table = run("pool", str(single), "--measure", "IRR", "--common", "MH")
    assert "Mantel-Haenszel test (IRR = 1, continuity-corrected)" in table.stdout
    batch = run(
        "batch", str(many), "-g", "grp", "--measure", "IRR", "--common", "MH", "-f", "jsonl"
    )
    assert batch.exit_code == 0, batch.stderr
    (row,) = [json.loads(line) for line in batch.stdout.splitlines() if line.strip()]
    assert row["status"] == "ok"
    assert row["common_theta"] == common["theta"] and row["common_se"] == common["se"]
    assert row["q"] == data["heterogeneity"]["q"]
