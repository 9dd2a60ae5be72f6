"""The generalized Q estimator with user weights in meta-regression (``metareg --tau2 GENQ
--tau2-weights COL --weights COL``; without moderators ``pool``) against metafor's rma(yi, vi,
mods, method = "GENQ", weights = a) (tests/reference/metafor_genq_metareg.json, written by
tests/reference/make_reference_genq_metareg.R: dat.bcg log RR, a = 1..13 and 1 / sqrt(vi),
test z and t). metafor's weights= weight the coefficients as well as tau²: hence both options."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import counts_csv
from tolerances import CLOSED_FORM, close

from ivigmeta.cli import cli

REF = json.loads((Path(__file__).parent / "reference" / "metafor_genq_metareg.json").read_text())


def _run(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture(scope="module")
def bcg(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("genq") / "bcg.csv"
    return counts_csv(path, REF["data"], ("ablat", "w_index", "w_invse"))


def _args(rec: dict) -> list[str]:
    w = rec["weights"]
    return ["--tau2", "GENQ", "--tau2-weights", w, "--weights", w, "--ci", rec["test"],
            "--format", "json"]  # fmt: skip


METAREG = [r for r in REF["fits"] if r["mods"] != "~1"]
POOLED = [r for r in REF["fits"] if r["mods"] == "~1"]


@pytest.mark.parametrize("rec", METAREG, ids=lambda r: f"{r['weights']}-{r['test']}")
def test_genq_metareg_matches_metafor(bcg, rec):
    out = _run("metareg", bcg, "--mod", "ablat", *_args(rec))
    assert out.exit_code == 0, out.output
    d = json.loads(out.stdout)
    assert close(d["tau2"], rec["tau2"], CLOSED_FORM)
    assert close(d["tau2_se"], rec["se_tau2"], CLOSED_FORM)
    for j, c in enumerate(d["coefficients"]):
        for key, ref in (("estimate", "beta"), ("se", "se"), ("statistic", "zval"),
                         ("p_value", "pval"), ("ci_low", "ci_lb"), ("ci_high", "ci_ub")):  # fmt: skip
            assert close(c[key], rec[ref][j], CLOSED_FORM), (key, c[key], rec[ref][j])
    for ours, ref in ((d["qm"], rec["QM"]), (d["qm_p_value"], rec["QMp"]), (d["qe"], rec["QE"]),
                      (d["i2"], rec["I2"]), (d["h2"], rec["H2"]), (d["r2"], rec["R2"])):  # fmt: skip
        assert close(ours, ref, CLOSED_FORM), (ours, ref)


@pytest.mark.parametrize("rec", POOLED, ids=lambda r: f"{r['weights']}-{r['test']}")
def test_genq_pool_with_the_same_weights_matches_metafor(bcg, rec):
    out = _run("pool", bcg, *_args(rec))
    assert out.exit_code == 0, out.output
    ran = json.loads(out.stdout)["random"]
    assert close(ran["tau2"], rec["tau2"], CLOSED_FORM)
    assert close(ran["theta"], rec["beta"][0], CLOSED_FORM)
    assert close(ran["se"], rec["se"][0], CLOSED_FORM)
    assert close(math.log(ran["ci_low"]), rec["ci_lb"][0], CLOSED_FORM)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--tau2", "GENQ"), "--tau2 GENQ needs its weights: --tau2-weights COLUMN"),
        (("--tau2-weights", "w_index"), "are the GENQ estimator's: not with --tau2 DL"),
        (("--tau2", "GENQ", "--tau2-weights", "nosuch"), "nosuch"),
    ],
)
def test_errors(bcg, args, message):
    out = _run("metareg", bcg, "--mod", "ablat", *args)
    assert out.exit_code == 1, out.output
    assert message in out.stderr.strip().splitlines()[-1]
