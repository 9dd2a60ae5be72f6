"""A fixed tau² (``--tau2 VALUE``) against metafor's rma(yi, vi, tau2 = VALUE)
(tests/reference/metafor_fixed_tau2.json, written by tests/reference/make_reference_fixed_tau2.R:

    fit <- rma(yi, vi, mods = MODS, data = es, tau2 = T, test = TEST, control = ...)
    predict(fit); leave1out(fit); fitstats(fit)

on dat.bcg and the IVIG studies, log RR; metafor's default method REML names the
log-likelihood and se.tau2), run through the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import counts_csv
from tolerances import CLOSED_FORM, close

from ivigmeta.cli import cli
from ivigmeta.core.tau2 import check_tau2_method, estimate_tau2, fixed_tau2
from ivigmeta.errors import ModelError

REF = json.loads((Path(__file__).parent / "reference" / "metafor_fixed_tau2.json").read_text())
FITS = REF["fits"]
FIT_STATS = {"ll": "loglik", "dev": "deviance", "AIC": "aic", "BIC": "bic", "AICc": "aicc"}


def _run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def csvs(tmp_path_factory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("fixed")
    return {
        name: counts_csv(base / f"{name}.csv", REF["datasets"][name], (extra,))
        for name, extra in (("bcg", "ablat"), ("ivig", "nk_criterion"))
    }


def _id(rec: dict) -> str:
    return f"{rec['dataset']}{rec['mods']}-{rec['tau2']}-{rec['test']}"


def _args(rec: dict) -> list[str]:
    return ["--measure", "RR", "--tau2", str(rec["tau2"]), "--ci",
            "hk" if rec["test"] == "knha" else "z", "--format", "json"]  # fmt: skip


def _check_fit_stats(got: dict, rec: dict) -> None:
    assert got["reported"] == "REML"
    for ref_key, key in FIT_STATS.items():
        assert close(got["reml"][key], rec["fit_stats"][ref_key], CLOSED_FORM), key


POOLED = [r for r in FITS if r["mods"] == "~1"]


@pytest.mark.parametrize("rec", POOLED, ids=[_id(r) for r in POOLED])
def test_pool_with_fixed_tau2_matches_metafor(csvs, rec):
    assert rec["method"] == "REML" and rec["tau2_fix"]
    out = _run("pool", csvs[rec["dataset"]], *_args(rec))
    assert out.exit_code == 0, out.output
    d = json.loads(out.stdout)
    ran, het = d["random"], d["heterogeneity"]
    assert ran["tau2"] == rec["tau2_value"] == rec["tau2"]
    assert ran["tau2_method"] == repr(float(rec["tau2"]))
    assert ran["tau2_algorithm"] == "fixed by the user"
    for ours, ref in (
        (ran["theta"], rec["beta"][0]),
        (ran["se"], rec["se"][0]),
        (ran["statistic"], rec["zval"][0]),
        (ran["p_value"], rec["pval"][0]),
        (ran["tau2_se"], rec["se_tau2"]),
        (het["i2"], rec["I2"]),
        (het["h2"], rec["H2"]),
        (het["q"], rec["QE"]),
    ):
        assert close(ours, ref, CLOSED_FORM), (ours, ref)
    import math

    assert close(math.log(ran["ci_low"]), rec["ci_lb"][0], CLOSED_FORM)
    assert close(math.log(ran["ci_high"]), rec["ci_ub"][0], CLOSED_FORM)
    if rec["test"] == "z":  # metafor's PI under knha is on t(k - 1), ivigmeta's --pi z default
        assert close(math.log(ran["pi_low"]), rec["pi_lb"], CLOSED_FORM)
        assert close(math.log(ran["pi_high"]), rec["pi_ub"], CLOSED_FORM)
    assert het["tau2_ci"] is None  # metafor's confint() refuses a fixed tau²
    _check_fit_stats(ran["fit_statistics"], rec)


@pytest.mark.parametrize("rec", POOLED, ids=[_id(r) for r in POOLED])
def test_leave_one_out_keeps_tau2_fixed(csvs, rec):
    out = _run("loo", csvs[rec["dataset"]], *_args(rec))
    assert out.exit_code == 0, out.output
    rows = json.loads(out.stdout)["omitted"]
    ref = rec["leave1out"]
    assert len(rows) == rec["k"]
    for i, row in enumerate(rows):
        assert row["tau2"] == ref["tau2"][i] == rec["tau2"]
        assert close(row["theta"], ref["estimate"][i], CLOSED_FORM)
        assert close(row["se"], ref["se"][i], CLOSED_FORM)


MODS = [r for r in FITS if r["mods"] != "~1"]


@pytest.mark.parametrize("rec", MODS, ids=[_id(r) for r in MODS])
def test_metareg_with_fixed_tau2_matches_metafor(csvs, rec):
    mod = rec["mods"].lstrip("~")
    out = _run("metareg", csvs[rec["dataset"]], "--mod", mod, *_args(rec))
    assert out.exit_code == 0, out.output
    d = json.loads(out.stdout)
    assert d["tau2"] == rec["tau2"]
    for j, c in enumerate(d["coefficients"]):
        for key, ref in (("estimate", "beta"), ("se", "se"), ("statistic", "zval")):
            assert close(c[key], rec[ref][j], CLOSED_FORM), (key, c[key], rec[ref][j])
        assert close(c["p_value"], rec["pval"][j], CLOSED_FORM)
        assert close(c["ci_low"], rec["ci_lb"][j], CLOSED_FORM)
    for ours, ref in (
        (d["qm"], rec["QM"]),
        (d["qm_p_value"], rec["QMp"]),
        (d["qe"], rec["QE"]),
        (d["i2"], rec["I2"]),
        (d["h2"], rec["H2"]),
        (d["r2"], rec["R2"]),
        (d["tau2_se"], rec["se_tau2"]),
    ):
        assert close(ours, ref, 1e-7), (ours, ref)  # R² uses the REML tau² of the null model
    assert d["tau2_interval"] is None
    _check_fit_stats(d["fit_statistics"], rec)


def test_engine_parses_and_checks_a_fixed_value():
    assert check_tau2_method("0.10") == "0.1"
    assert check_tau2_method("1e-2") == "0.01"
    assert fixed_tau2("REML") is None and fixed_tau2("0.25") == 0.25
    est = estimate_tau2([0.1, 0.5, 0.3], [0.01, 0.02, 0.03], "0.25")
    assert est.tau2 == 0.25 and est.method == "0.25"
    for bad in ("-0.1", "inf", "nan"):
        with pytest.raises(ModelError, match="non-negative number"):
            check_tau2_method(bad)


@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_cli_refuses_a_bad_fixed_value(value):
    out = _run("pool", "--tau2", value)
    assert out.exit_code == 2
    assert "a fixed tau² must be a non-negative number" in out.stderr


def test_table_names_the_fixed_tau2():
    out = _run("pool", str(Path(__file__).resolve().parent.parent / "studies.csv"), "--tau2", "0.1")
    assert out.exit_code == 0
    assert "Random effects (tau² fixed, z)" in out.stdout
    assert "tau² (fixed) = 0.1000" in out.stdout


def test_batch_equals_pool_with_a_fixed_tau2(tmp_path):
    """The one engine: batch's kernels fix tau² as pool does."""
    rows = REF["datasets"]["bcg"]
    lines = ["grp,study,treat_events,treat_total,control_events,control_total"]
    for i, r in enumerate(rows):
        lines.append(f"{'ab'[i % 2]},{r['slab']},{r['ai']},{r['n1i']},{r['ci']},{r['n2i']}")
    (tmp_path / "all.csv").write_text("\n".join(lines) + "\n")
    out = _run("batch", str(tmp_path / "all.csv"), "-g", "grp", "--tau2", "0.07", "--ci", "hk")
    assert out.exit_code == 0, out.output
    header, *records = out.stdout.splitlines()
    cols = header.split(",")
    for line in records:
        rec = dict(zip(cols, line.split(",")))
        part = [lines[0]] + [x for x in lines[1:] if x.startswith(rec["grp"] + ",")]
        (tmp_path / "one.csv").write_text("\n".join(part) + "\n")
        one = json.loads(
            _run(
                "pool",
                str(tmp_path / "one.csv"),
                "--tau2",
                "0.07",
                "--ci",
                "hk",
                "--format",
                "json",
            ).stdout  # fmt: skip
        )["random"]
        assert float(rec["tau2"]) == one["tau2"] == 0.07
        assert close(float(rec["random_theta"]), one["theta"], 1e-12)
        assert close(float(rec["random_se"]), one["se"], 1e-12)
