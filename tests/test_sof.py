"""``ivigmeta sof``: the summary of findings (GRADE style) from the pooled analysis.

Reference values are computed here by hand from the pooled estimate that ``pool`` prints (and
that tests/test_paper.py pins to metafor): the control risk is the paper's Table 2 control arms."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest
from conftest import ROOT

from ivigmeta.methods.sof import corresponding_risk

STUDIES = str(ROOT / "studies.csv")


def _json(run, *args):
    result = run(*args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _control_risk():
    with open(STUDIES, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return sum(int(r["control_events"]) for r in rows) / sum(int(r["control_total"]) for r in rows)


@pytest.mark.parametrize("measure", ["RR", "OR", "RD"])
def test_risks_follow_from_the_pooled_effect_and_the_control_arms(run, measure):
    pooled = _json(run, "pool", STUDIES, "--measure", measure)["random"]
    sof = _json(run, "sof", STUDIES, "--measure", measure)
    acr = _control_risk()
    row = sof["risks"][0]
    assert math.isclose(row["assumed_risk"], acr, rel_tol=1e-15)
    assert row["assumed_source"] == "pooled control arms"
    est, lo, hi = pooled["estimate"], pooled["ci_low"], pooled["ci_high"]
    if measure == "RR":
        expect = [acr * x for x in (est, lo, hi)]
    elif measure == "OR":
        expect = [acr * x / (1 - acr + acr * x) for x in (est, lo, hi)]
    else:
        expect = [acr + x for x in (est, lo, hi)]
    expect = [min(1.0, max(0.0, e)) for e in expect]
    got = [row["corresponding_risk"], row["corresponding_ci_low"], row["corresponding_ci_high"]]
    assert got == pytest.approx(expect, rel=1e-12)
    assert math.isclose(row["difference"], expect[0] - acr, rel_tol=1e-12)
    assert math.isclose(row["nnt"], 1 / abs(expect[0] - acr), rel_tol=1e-12)
    assert sof["participants"] == 478 and sof["k"] == 8


def test_live_birth_table_with_benefit_and_certainty(run):
    result = run(
        "sof", STUDIES, "--outcome", "Live birth", "--event-desirable", "--certainty", "low"
    )
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    # RR 1.98 [1.44, 2.73] on a pooled control risk of 381 per 1,000
    assert "381 per 1,000 (pooled)" in out and "757 per 1,000" in out
    assert "375 more per 1,000" in out and "NNTB 3 (CI: 2 to 6)" in out
    assert "478 (8 studies)" in out and "Low" in out
    assert "shown at the limit" in out  # the upper bound 2.73 x 381 exceeds 1,000


def test_several_control_risks_and_harm(run):
    data = _json(
        run, "sof", STUDIES, "--control-risk", "0.2", "--control-risk", "0.6",
        "--event-undesirable",
    )  # fmt: skip
    assert [r["label"] for r in data["risks"]] == ["risk 1", "risk 2"]
    assert [r["assumed_source"] for r in data["risks"]] == ["given", "given"]
    assert all(r["nnt_kind"] == "harm" for r in data["risks"])
    assert data["event_desirable"] is False


def test_nnt_interval_through_infinity():
    from ivigmeta.methods.sof import _nnt_ci

    assert _nnt_ci(-0.05, 0.10, True) == "NNTH 20 to ∞ to NNTB 10"
    assert _nnt_ci(-0.05, 0.10, None) == "20 (fewer events) to ∞ to 10 (more events)"
    assert _nnt_ci(0.05, 0.25, True) == "4 to 20"


def test_corresponding_risk_formulas():
    assert corresponding_risk(0.2, 2.0, "RR") == pytest.approx(0.4)
    assert corresponding_risk(0.2, 2.0, "OR") == pytest.approx(0.4 / 1.2)
    assert corresponding_risk(0.2, -0.05, "RD") == pytest.approx(0.15)
    assert corresponding_risk(0.8, 2.0, "RR") == 1.0


def test_continuous_outcome_has_the_pooled_difference_only(run, tmp_path):
    path = tmp_path / "means.csv"
    path.write_text(
        "study,treat_mean,treat_sd,treat_n,control_mean,control_sd,control_n\n"
        "A,10,2,20,12,2,20\nB,11,3,30,12,3,30\nC,9,2,25,11,2.5,25\n"
    )
    data = _json(run, "sof", str(path))
    assert data["measure"] == "MD" and data["risks"] == []
    pooled = _json(run, "pool", str(path))["random"]
    assert data["effect"] == pooled["estimate"] and data["participants"] == 150
    table = run("sof", str(path)).stdout
    assert "MD -1.77" in table or "MD -1.7" in table


def test_csv_rows(run):
    result = run("sof", STUDIES, "--control-risk", "0.3", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 1 and rows[0]["assumed_risk"] == "0.3"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--control-risk", "0"), "strictly between 0 and 1"),
        (("--control-risk", "30"), "strictly between 0 and 1"),
        (("--measure", "AS"), "not AS"),
    ],
)
def test_bad_options_are_one_line_errors(run, args, message):
    result = run("sof", STUDIES, *args)
    assert result.exit_code == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("Error: ") and message in line


def test_an_unknown_certainty_is_a_usage_error(run):
    result = run("sof", STUDIES, "--certainty", "great")
    assert result.exit_code == 2 and "'great' is not one of" in result.stderr
