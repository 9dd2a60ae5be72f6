"""Unweighted estimation (``--unweighted``) against metafor's rma(yi, vi, weighted = FALSE)
(tests/reference/metafor_unweighted.json, written by tests/reference/make_reference_unweighted.R:

    fit <- rma(yi, vi, mods = MODS, method = METHOD, test = TEST, weighted = FALSE, ...)
    predict(fit); fitstats(fit); weights(fit); weights / hatvalues(fit, type = "matrix")
    vcov(fit); vcov(fit, type = "fitted" | "resid")

on dat.bcg and the IVIG studies, log RR), run through the CLI.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import counts_csv
from tolerances import CLOSED_FORM, ITERATIVE, close

from ivigmeta.cli import cli

REF = json.loads((Path(__file__).parent / "reference" / "metafor_unweighted.json").read_text())
FITS = REF["fits"]
FIT_STATS = {"ll": "loglik", "dev": "deviance", "AIC": "aic", "BIC": "bic", "AICc": "aicc"}


def _run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def csvs(tmp_path_factory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("unweighted")
    return {
        name: counts_csv(base / f"{name}.csv", REF["datasets"][name], (extra,))
        for name, extra in (("bcg", "ablat"), ("ivig", "nk_criterion"))
    }


def _id(rec: dict) -> str:
    return f"{rec['dataset']}{rec['mods']}-{rec['method']}-{rec['test']}"


def _model(rec: dict) -> list[str]:
    args = ["--measure", "RR", "--unweighted", "--ci", rec["test"]]
    if rec["method"] == "FE":
        return [*args, "--model", "common"]
    return [*args, "--tau2", rec["method"]]


def _rel(rec: dict) -> float:
    return ITERATIVE if rec["method"] == "REML" else CLOSED_FORM


POOLED = [r for r in FITS if r["mods"] == "~1" and r["method"] != "FE"]


@pytest.mark.parametrize("rec", POOLED, ids=[_id(r) for r in POOLED])
def test_pool_unweighted_matches_metafor(csvs, rec):
    out = _run("pool", csvs[rec["dataset"]], "--measure", "RR", "--unweighted", "--ci",
               rec["test"], "--tau2", rec["method"], "--format", "json")  # fmt: skip
    assert out.exit_code == 0, out.output
    d = json.loads(out.stdout)
    ran, rel = d["random"], _rel(rec)
    for ours, ref in (
        (ran["theta"], rec["beta"][0]),
        (ran["se"], rec["se"][0]),
        (ran["statistic"], rec["zval"][0]),
        (ran["p_value"], rec["pval"][0]),
        (ran["tau2"], rec["tau2"]),
        (math.log(ran["ci_low"]), rec["ci_lb"][0]),
        (math.log(ran["ci_high"]), rec["ci_ub"][0]),
        (d["heterogeneity"]["i2"], rec["I2"]),
        (d["heterogeneity"]["q"], rec["QE"]),
    ):
        assert close(ours, ref, rel), (ours, ref)
    if rec["test"] == "z":
        assert close(math.log(ran["pi_low"]), rec["pi_lb"], rel)
        assert close(math.log(ran["pi_high"]), rec["pi_ub"], rel)
    weights = [s["weight_random"] for s in d["studies"]]
    assert all(close(a, b, CLOSED_FORM) for a, b in zip(weights, rec["weights_percent"]))
    stats = ran["fit_statistics"]
    block = stats["reml" if rec["method"] == "REML" else "ml"]
    for ref_key, key in FIT_STATS.items():
        assert close(block[key], rec["fit_stats"][ref_key], rel), key


MODS = [r for r in FITS if r["mods"] != "~1"]


@pytest.mark.parametrize("rec", MODS, ids=[_id(r) for r in MODS])
def test_metareg_unweighted_matches_metafor(csvs, rec):
    mod = rec["mods"].lstrip("~")
    out = _run("metareg", csvs[rec["dataset"]], "--mod", mod, *_model(rec), "--format", "json")
    assert out.exit_code == 0, out.output
    d = json.loads(out.stdout)
    rel = _rel(rec)
    for j, c in enumerate(d["coefficients"]):
        for key, ref in (("estimate", "beta"), ("se", "se"), ("statistic", "zval"),
                         ("p_value", "pval"), ("ci_low", "ci_lb"), ("ci_high", "ci_ub")):  # fmt: skip
            assert close(c[key], rec[ref][j], rel), (key, c[key], rec[ref][j])
    assert close(d["qm"], rec["QM"], rel) and close(d["qm_p_value"], rec["QMp"], rel)
    assert close(d["qe"], rec["QE"], CLOSED_FORM)
    assert close(d["tau2"], rec["tau2"], rel, abs_floor=1e-12)


MATRIX_FITS = [r for r in FITS if r["test"] == "z"]


@pytest.mark.parametrize("rec", MATRIX_FITS, ids=[_id(r) for r in MATRIX_FITS])
@pytest.mark.parametrize("kind", ["coef", "fitted", "resid", "hat", "weights"])
def test_matrices_of_an_unweighted_fit_match_metafor(csvs, rec, kind):
    args = ["matrix", csvs[rec["dataset"]], "--type", kind, *_model(rec), "--format", "json"]
    mod = rec["mods"].lstrip("~")
    if mod != "1":
        args += ["--mod", mod]
    out = _run(*args)
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout)["matrix"]
    ref = rec["vcov" if kind == "coef" else kind]
    scale = max(abs(x) for row in ref for x in row)
    rel = _rel(rec)
    for row_a, row_b in zip(got, ref, strict=True):
        for a, b in zip(row_a, row_b, strict=True):
            assert close(a, b, rel) or abs(a - b) <= rel * scale, (kind, a, b)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("pool", "--unweighted", "--weights", "year"), "--weights and --unweighted exclude"),
        (("pool", "--unweighted", "--ci", "hk"), "--unweighted takes --ci z or t"),
        (("influence", "--unweighted"), "not with --unweighted"),
        (
            ("metareg", "--mod", "nk_criterion", "--unweighted", "--permutations", "10"),
            "--unweighted is not offered with --permutations",
        ),  # fmt: skip
        (
            ("metareg", "--mod", "nk_criterion", "--unweighted", "--ci", "hk"),
            "--unweighted takes --ci z or t",
        ),  # fmt: skip
    ],
)
def test_unweighted_refusals(args, message):
    studies = str(Path(__file__).resolve().parent.parent / "studies.csv")
    out = _run(args[0], studies, *args[1:])
    assert out.exit_code == 1, out.output
    assert out.stderr.startswith("Error: ") and message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_batch_refuses_unweighted():
    studies = str(Path(__file__).resolve().parent.parent / "studies.csv")
    out = _run("batch", studies, "-g", "nk_criterion", "--unweighted")
    assert out.exit_code == 2
    assert "batch does not take --unweighted" in out.stderr


def test_table_says_unweighted():
    studies = str(Path(__file__).resolve().parent.parent / "studies.csv")
    out = _run("pool", studies, "--unweighted")
    assert out.exit_code == 0
    assert "Pooled unweighted, every study weighing the same" in out.stdout
    assert out.stdout.count("12.5%") == 16  # both weight columns: 1/8 each
