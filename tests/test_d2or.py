"""escalc's D2ORL, D2ORN and D2OR (a standardized mean difference as a log odds ratio) against
metafor (tests/reference/metafor_d2or.json, written by tests/reference/make_reference_d2or.R:
escalc on dat.normand1999 and a hand-typed set, rma() DL and REML of dat.normand1999), run
through the CLI; the pooled odds ratio is reported as exp of the pooled log odds ratio."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from tolerances import CLOSED_FORM, ITERATIVE, close

from ivigmeta.cli import cli

REF = json.loads((Path(__file__).parent / "reference" / "metafor_d2or.json").read_text())
COLUMNS = ("treat_mean", "treat_sd", "treat_n", "control_mean", "control_sd", "control_n")
KEYS = ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")


@pytest.fixture(scope="module")
def csvs(tmp_path_factory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("d2or")
    out = {}
    for name, rows in REF["datasets"].items():
        lines = ["study," + ",".join(COLUMNS)]
        lines += [f"s{i + 1}," + ",".join(str(r[k]) for k in KEYS) for i, r in enumerate(rows)]
        (base / f"{name}.csv").write_text("\n".join(lines) + "\n")
        out[name] = str(base / f"{name}.csv")
    return out


def _pool(path: str, *args: str) -> dict:
    out = CliRunner().invoke(cli, ["pool", path, "--format", "json", *args])
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


@pytest.mark.parametrize("rec", REF["escalc"], ids=lambda r: f"{r['dataset']}-{r['measure']}")
def test_effects_match_escalc(csvs, rec):
    d = _pool(csvs[rec["dataset"]], "--measure", rec["measure"])
    assert [s["yi"] for s in d["studies"]] == pytest.approx(rec["yi"], rel=CLOSED_FORM)
    assert [s["vi"] for s in d["studies"]] == pytest.approx(rec["vi"], rel=CLOSED_FORM)


@pytest.mark.parametrize("rec", REF["rma"], ids=lambda r: f"{r['measure']}-{r['method']}")
def test_pooled_log_odds_ratio_matches_rma(csvs, rec):
    d = _pool(csvs["normand1999"], "--measure", rec["measure"], "--tau2", rec["method"])
    ran = d["random"]
    rel = CLOSED_FORM if rec["method"] == "DL" else ITERATIVE
    assert close(ran["theta"], rec["beta"], rel) and close(ran["se"], rec["se"], rel)
    assert close(ran["estimate"], math.exp(rec["beta"]), rel)  # reported as an odds ratio
    assert close(math.log(ran["ci_low"]), rec["ci_lb"], rel)
    assert close(ran["tau2"], rec["tau2"], rel)
    assert close(d["heterogeneity"]["q"], rec["QE"], CLOSED_FORM)
