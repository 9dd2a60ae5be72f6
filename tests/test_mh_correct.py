"""``--no-mh-correct`` against metafor's rma.mh(correct = FALSE) (and the default correct = TRUE):
the Cochran-Mantel-Haenszel and Cochran tests of OR = 1 (dat.bcg, the IVIG studies) and the
Mantel-Haenszel test of IRR = 1 (dat.nielweise2008); tests/reference/metafor_mh_correct.json,
written by tests/reference/make_reference_mh_correct.R."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import counts_csv
from tolerances import CLOSED_FORM, close

from ivigmeta.cli import cli

REF = json.loads((Path(__file__).parent / "reference" / "metafor_mh_correct.json").read_text())


def _run(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture(scope="module")
def csvs(tmp_path_factory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("mh")
    out = {
        name: counts_csv(base / f"{name}.csv", REF["datasets"][name]) for name in ("bcg", "ivig")
    }
    lines = ["study,treat_events,treat_time,control_events,control_time"]
    lines += [f"{r['slab']},{r['x1i']},{r['t1i']},{r['x2i']},{r['t2i']}"
              for r in REF["datasets"]["nielweise2008"]]  # fmt: skip
    (base / "rates.csv").write_text("\n".join(lines) + "\n")
    out["nielweise2008"] = str(base / "rates.csv")
    return out


@pytest.mark.parametrize(
    "rec", REF["tests"], ids=lambda r: f"{r['dataset']}-{r['measure']}-{r['correct']}"
)
def test_mh_tests_match_metafor(csvs, rec):
    args = ["pool", csvs[rec["dataset"]], "--measure", rec["measure"], "--common", "MH"]
    args += ["--format", "json"] + ([] if rec["correct"] else ["--no-mh-correct"])
    out = _run(*args)
    assert out.exit_code == 0, out.output
    common = json.loads(out.stdout)["common"]
    assert common["cmh_correct"] is rec["correct"]
    assert close(common["theta"], rec["beta"], CLOSED_FORM)  # the estimate does not change
    assert close(common["cmh"]["statistic"], rec["MH"], CLOSED_FORM)
    assert close(common["cmh"]["p_value"], rec["MHp"], CLOSED_FORM)
    if rec["measure"] == "OR":
        assert close(common["cochran"]["statistic"], rec["CO"], CLOSED_FORM)
        assert close(common["cochran"]["p_value"], rec["COp"], CLOSED_FORM)


def test_table_says_which_test(csvs):
    out = _run("pool", csvs["bcg"], "--measure", "OR", "--common", "MH", "--no-mh-correct")
    assert out.exit_code == 0
    assert "Cochran-Mantel-Haenszel test (OR = 1, no continuity correction)" in out.stdout


def test_batch_refuses_it(csvs):
    out = _run("batch", csvs["bcg"], "-g", "study", "--no-mh-correct")
    assert out.exit_code == 2 and "batch does not take --no-mh-correct" in out.stderr
