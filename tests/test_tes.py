"""The test of excess significance (`bias --test tes`) against metafor's tes()
(tests/reference/metafor_tes.json, written by tests/reference/make_reference_tes.R) on
dat.dorn2007 (metafor's own test case), dat.bcg and the IVIG studies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from metafor_ref import effects
from tolerances import CLOSED_FORM, close

from ivigmeta.core.effects import compute_effects
from ivigmeta.core.pooling import fit
from ivigmeta.io.studies import parse_table
from ivigmeta.methods.tes import excess_significance

REF = json.loads((Path(__file__).parent / "reference" / "metafor_tes.json").read_text())
RECORDS = REF["tes"]
# dat.dorn2007 (x.a, n.a, x.p, n.p), as metafor ships it (written by the reference script)
DORN = list(zip(*(REF["data"]["dorn2007"][k] for k in ("ai", "n1i", "ci", "n2i"))))


def _effects(dataset):
    if dataset != "dorn2007":
        return effects(dataset, "RR")
    lines = ["study,treat_events,treat_total,control_events,control_total"]
    lines += [f"s{i},{a},{b},{c},{d}" for i, (a, b, c, d) in enumerate(DORN)]
    return compute_effects(parse_table("\n".join(lines) + "\n", "dorn.csv").studies)


@pytest.mark.parametrize("rec", RECORDS, ids=[f"{r['dataset']}-{r['test']}" for r in RECORDS])
def test_excess_significance_matches_metafor(rec):
    res = excess_significance(fit(_effects(rec["dataset"])))
    assert (res.k, res.observed) == (rec["k"], rec["O"])
    assert close(res.expected, rec["E"], CLOSED_FORM) and close(
        res.theta, rec["theta"], CLOSED_FORM
    )
    assert all(close(a, b, CLOSED_FORM) for a, b in zip(res.powers, rec["power"]))
    ours = {"chi2": res.p_chi2, "binom": res.p_binom, "exact": res.p_exact}[rec["test"]]
    assert close(ours, rec["pval"], CLOSED_FORM)
    if rec["test"] == "chi2":
        assert close(res.x2, rec["X2"], CLOSED_FORM)
    assert res.test == rec["default_test"]
    if rec["test"] == res.test:  # the limit estimate belongs to the chosen test
        assert res.theta_lim == pytest.approx(rec["theta_lim_tight"], rel=1e-9)
        assert res.p_value == ours


def test_dorn2007_values_metafor_pins():
    # metafor's tests/testthat/test_misc_tes.r: O = 10, E = 4.923333, X2 = 7.065648,
    # p = 0.003928794 (chi2), 0.01159554 (binom), 0.007778529 (exact)
    res = excess_significance(fit(_effects("dorn2007")))
    assert res.observed == 10 and round(res.expected, 6) == 4.923333
    assert round(res.x2, 6) == 7.065648 and round(res.p_chi2, 9) == 0.003928794
    assert round(res.p_binom, 8) == 0.01159554 and round(res.p_exact, 9) == 0.007778529


def test_tes_on_the_command_line(run, studies_path):
    result = run("bias", str(studies_path), "--test", "tes", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["tests"] == ["tes"] and data["tes"]["observed"] == 5
    table = run("bias", str(studies_path), "--test", "tes")
    assert "Excess significance" in table.stdout and "5 significant of 8" in table.stdout
    default = json.loads(run("bias", str(studies_path), "-f", "json").stdout)
    assert "tes" not in default["tests"]  # on request only, as regtest
