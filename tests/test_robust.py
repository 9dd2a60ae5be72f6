"""Cluster-robust inference (``pool --cluster``, ``metareg --cluster``) against metafor's
``robust(fit, cluster, adjust)`` (tests/reference/metafor_robust.json, written by
tests/reference/make_reference_robust.R:

    fit <- rma(yi, vi, mods = MODS, method = METHOD, control = list(threshold = 1e-13, ...))
    r <- robust(fit, cluster = CLUSTER, adjust = ADJUST); predict(r[, newmods = ...])

on dat.bcg (log RR; clusters alloc and pairs of trials; ~1 and ~ablat; DL, REML, FE) and
dat.konstantopoulos2011 (clusters district; ~1 and ~year; REML)), and the command line's
options, JSON key ``robust``, table sections and errors.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from tolerances import CLOSED_FORM, ITERATIVE, P_VALUE, close

import ivigmeta
from ivigmeta.errors import ModelError
from ivigmeta.methods.robust import robust_fit

REF = json.loads((Path(__file__).parent / "reference" / "metafor_robust.json").read_text())
RECORDS = REF["robust"]


def _data(dataset: str) -> dict[str, list]:
    """The data set as a table of given effects (yi, vi) with its moderator and cluster
    columns as text."""
    rows = REF["datasets"][dataset]
    out: dict[str, list] = {"study": [r["slab"] for r in rows]}
    out["yi"] = [r["yi"] for r in rows]
    out["vi"] = [r["vi"] for r in rows]
    for key in rows[0]:
        if key not in ("slab", "yi", "vi"):
            out[key] = [f"{r[key]:g}" if isinstance(r[key], float) else str(r[key]) for r in rows]
    return out


def _rel(rec) -> float:
    return CLOSED_FORM if rec["method"] in ("DL", "FE") else ITERATIVE


def _record_id(rec) -> str:
    return f"{rec['dataset']}{rec['mods']}-{rec['method']}-{rec['cluster']}-adjust{rec['adjust']}"


def _check_coefficients(rob, rec) -> None:
    rel = _rel(rec)
    assert rob.clusters == rec["n"]
    assert rob.df == rec["df"]
    assert rob.k == rec["k"]
    assert rob.vcov_type == rec["vbest"]
    assert close(rob.tau2, rec["tau2"], rel)
    assert len(rob.coefficients) == rec["p"]
    for j, c in enumerate(rob.coefficients):
        assert close(c.estimate, rec["beta"][j], rel), (j, "beta")
        assert close(c.se, rec["se"][j], rel), (j, "se")
        assert close(c.statistic, rec["tval"][j], rel), (j, "t")
        assert close(c.p_value, rec["pval"][j], max(rel, P_VALUE)), (j, "p")
        assert close(c.ci_low, rec["ci_lb"][j], rel), (j, "ci_lb")
        assert close(c.ci_high, rec["ci_ub"][j], rel), (j, "ci_ub")
    for i, row in enumerate(rec["vb"]):
        for j, value in enumerate(row):
            assert close(rob.vcov[i][j], value, rel), ("vb", i, j)
    assert close(rob.qm, rec["QM"], rel)
    assert (rob.qm_df, rob.qm_df2) == tuple(rec["QMdf"])
    assert close(rob.qm_p_value, rec["QMp"], max(rel, P_VALUE))


POOLED = [r for r in RECORDS if r["mods"] == "~1"]
MODERATED = [r for r in RECORDS if r["mods"] != "~1"]


@pytest.mark.parametrize("rec", POOLED, ids=[_record_id(r) for r in POOLED])
def test_pooled_matches_metafor(rec):
    assert not rec["warnings"] and "error" not in rec
    method = rec["method"]
    fit = ivigmeta.pool(
        _data(rec["dataset"]), measure="RR", tau2="DL" if method == "FE" else method
    )
    rob = fit.robust(rec["cluster"], adjust=rec["adjust"])
    one = rob.common if method == "FE" else rob.random
    assert one is not None
    _check_coefficients(one, rec)
    rel = _rel(rec)
    assert close(one.theta, rec["pred"][0], rel)
    assert close(one.se, rec["pred_se"][0], rel)
    if method == "FE":
        assert one.pi_low_theta is None and one.pi_high_theta is None
    else:
        assert close(one.pi_low_theta, rec["pred_pi_lb"][0], rel)
        assert close(one.pi_high_theta, rec["pred_pi_ub"][0], rel)
    # the reported scale: exp of the log RR interval
    assert close(one.ci_low, 2.718281828459045 ** rec["ci_lb"][0], rel)
    # the model's own estimate is unchanged: only its inference is robust
    model = fit.common if method == "FE" else fit.random
    assert close(model.theta, rec["beta"][0], rel)
    assert close(model.se, rec["model_se"][0], rel)


@pytest.mark.parametrize("rec", MODERATED, ids=[_record_id(r) for r in MODERATED])
def test_metareg_matches_metafor(rec):
    assert not rec["warnings"] and "error" not in rec
    method = rec["method"]
    fit = ivigmeta.pool(_data(rec["dataset"]), measure="RR")
    reg = fit.metareg(
        rec["mods"].lstrip("~"),
        tau2="DL" if method == "FE" else method,
        model="common" if method == "FE" else "random",
        predict=rec["newmods_text"],
        cluster=rec["cluster"],
        adjust=rec["adjust"],
    )
    assert reg.robust is not None
    _check_coefficients(reg.robust, rec)
    rel = _rel(rec)
    # the model-based fit is untouched
    for c, se in zip(reg.coefficients, rec["model_se"]):
        assert close(c.se, se, rel)
    preds = reg.robust.predictions
    assert [p.label for p in preds] == rec["newmods_text"]
    for i, p in enumerate(preds):
        assert close(p.estimate, rec["pred"][i], rel)
        assert close(p.se, rec["pred_se"][i], rel)
        assert close(p.ci_low, rec["pred_ci_lb"][i], rel)
        assert close(p.ci_high, rec["pred_ci_ub"][i], rel)
        assert close(p.pi_low, rec["pred_pi_lb"][i], rel)
        assert close(p.pi_high, rec["pred_pi_ub"][i], rel)


def test_too_few_clusters_is_metafor_error():
    rec = REF["errors"][0]
    assert "must be larger than the number of fixed effects" in rec["error"]
    fit = ivigmeta.pool(_data("bcg"), measure="RR")
    with pytest.raises(ModelError, match=r"3 clusters.*4 coefficients.*at least 5"):
        fit.metareg(["ablat", "alloc"], cluster="alloc")


def test_engine_cluster_order_and_sizes():
    rob = robust_fit([0.1, 0.3, -0.2, 0.5], [0.1, 0.2, 0.1, 0.3], [[1.0]] * 4, list("baab"))
    assert rob.cluster_sizes == (("b", 2), ("a", 2))
    assert rob.df == 1
    with pytest.raises(ModelError, match="at least 2"):
        robust_fit([0.1, 0.3], [0.1, 0.2], [[1.0]] * 2, ["a", "a"])


def test_hk_fit_gets_the_z_fits_robust_inference():
    """robust() of the test = "z" fit whatever --ci (metafor 3.8-1 would scale a knha fit's
    sandwich by s⁴; documented in docs/methods.md)."""
    rec = next(
        r for r in POOLED if (r["method"], r["cluster"], r["adjust"]) == ("DL", "alloc", True)
    )
    fit = ivigmeta.pool(_data("bcg"), measure="RR", ci="hk")
    assert close(fit.robust("alloc").random.se, rec["se"][0], CLOSED_FORM)


# ---------------------------------------------------------------------------------------------
# The command line


@pytest.fixture
def bcg_csv(tmp_path) -> Path:
    """docs/examples/bcg.csv (counts) with the pairs-of-trials cluster column."""
    src = Path(__file__).resolve().parent.parent / "docs" / "examples" / "bcg.csv"
    rows = list(csv.DictReader(src.open()))
    for i, r in enumerate(rows):
        r["pair"] = f"p{(i + 2) // 2}"
    path = tmp_path / "bcg_pairs.csv"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def _edit(path: Path, tmp_path: Path, **cells: tuple[int, str]) -> Path:
    """A copy of the CSV at ``path`` with cell (row index, value) set per column."""
    rows = list(csv.DictReader(path.open()))
    for col, (i, value) in cells.items():
        rows[i][col] = value
    out = tmp_path / f"edited_{len(list(tmp_path.iterdir()))}.csv"
    with out.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return out


def _ref(mods: str, method: str, cluster: str, adjust: bool = True):
    return next(
        r
        for r in RECORDS
        if (r["dataset"], r["mods"], r["method"], r["cluster"], r["adjust"])
        == ("bcg", mods, method, cluster, adjust)
    )


def test_pool_cluster_json(run, bcg_csv):
    plain = run("pool", str(bcg_csv), "-f", "json")
    result = run("pool", str(bcg_csv), "--cluster", "alloc", "-f", "json")
    assert plain.exit_code == 0 and result.exit_code == 0, result.output
    before, data = json.loads(plain.stdout), json.loads(result.stdout)
    assert before["robust"] is None
    rob = data.pop("robust")
    before.pop("robust")
    assert data == before  # the rest of the output is unchanged
    assert (rob["cluster"], rob["clusters"], rob["df"], rob["vcov_type"]) == ("alloc", 3, 2, "CR1")
    assert rob["cluster_sizes"] == {"random": 7, "alternate": 2, "systematic": 4}
    ref = _ref("~1", "DL", "alloc")
    assert close(rob["random"]["se"], ref["se"][0], CLOSED_FORM)
    assert close(rob["random"]["p_value"], ref["pval"][0], P_VALUE)
    assert close(rob["random"]["pi_low"], 2.718281828459045 ** ref["pred_pi_lb"][0], CLOSED_FORM)
    fe = _ref("~1", "FE", "alloc")
    assert close(rob["common"]["se"], fe["se"][0], CLOSED_FORM)
    assert rob["common"]["pi_low"] is None


def test_pool_cluster_no_adjust(run, bcg_csv):
    result = run("pool", str(bcg_csv), "--cluster", "pair", "--no-cluster-adjust", "-f", "json")
    assert result.exit_code == 0, result.output
    rob = json.loads(result.stdout)["robust"]
    assert (rob["adjust"], rob["vcov_type"], rob["clusters"]) == (False, "CR0", 7)
    assert close(rob["random"]["se"], _ref("~1", "DL", "pair", False)["se"][0], CLOSED_FORM)


def test_pool_cluster_table_csv_markdown(run, bcg_csv):
    table = run("pool", str(bcg_csv), "--cluster", "alloc")
    assert table.exit_code == 0
    assert "Cluster-robust inference (3 clusters by alloc, CR1, t on 2 df)" in table.stdout
    assert "Random effects (DL)" in table.stdout
    plain = run("pool", str(bcg_csv))
    assert "Cluster-robust" not in plain.stdout
    records = list(
        csv.DictReader(
            run("pool", str(bcg_csv), "--cluster", "alloc", "-f", "csv").stdout.splitlines()
        )
    )
    assert [r["row_type"] for r in records][-2:] == ["robust_common", "robust_random"]
    md = run("pool", str(bcg_csv), "--cluster", "alloc", "-f", "markdown")
    assert "### Cluster-robust inference (3 clusters by alloc, CR1, t on 2 df)" in md.stdout


def test_pool_cluster_mh_common_has_none(run, bcg_csv):
    result = run("pool", str(bcg_csv), "--cluster", "alloc", "--common", "MH", "-f", "json")
    assert result.exit_code == 0, result.output
    rob = json.loads(result.stdout)["robust"]
    assert rob["common"] is None and "MH" in rob["common_note"]
    assert "no cluster-robust common effect" in result.stderr


def test_metareg_cluster_json_and_table(run, bcg_csv):
    args = ("metareg", str(bcg_csv), "--mod", "ablat", "--tau2", "REML")
    plain = json.loads(run(*args, "-f", "json").stdout)
    assert plain["robust"] is None
    result = run(*args, "--cluster", "alloc", "--predict", "ablat=10", "-f", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    rob = data["robust"]
    ref = _ref("~ablat", "REML", "alloc")
    assert [c["name"] for c in rob["coefficients"]] == ["intercept", "ablat"]
    assert close(rob["coefficients"][1]["se"], ref["se"][1], ITERATIVE)
    assert close(rob["qm"], ref["QM"], ITERATIVE)
    assert (rob["qm_df"], rob["qm_df2"]) == (1, 1)
    assert close(rob["predictions"][0]["pi_low"], ref["pred_pi_lb"][0], ITERATIVE)
    assert data["coefficients"] == plain["coefficients"]  # model-based results unchanged
    table = run(*args, "--cluster", "alloc").stdout
    assert "Cluster-robust inference (3 clusters by alloc, CR1, t on 1 df)" in table
    assert "Test of moderators (cluster-robust): F = 24.05, df = (1, 1)" in table
    assert "Cluster-robust" not in run(*args).stdout


def test_unknown_cluster_column(run, bcg_csv):
    for args in (("pool",), ("metareg", "--mod", "ablat")):
        result = run(args[0], str(bcg_csv), *args[1:], "--cluster", "aloc")
        assert result.exit_code == 1
        lines = result.stderr.strip().splitlines()
        assert lines[-1].startswith("Error: ") and "did you mean 'alloc'" in lines[-1]
        assert "Traceback" not in result.output


def test_empty_cluster_value_is_an_error_naming_the_study(run, bcg_csv, tmp_path):
    path = _edit(bcg_csv, tmp_path, alloc=(2, ""))
    for args in (("pool",), ("metareg", "--mod", "ablat")):
        result = run(args[0], str(path), *args[1:], "--cluster", "alloc")
        assert result.exit_code == 1
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith(
            "Error: --cluster alloc: no value for 1 study: Rosenthal et al (1960) (row 4)"
        )


def test_empty_cluster_of_a_study_metareg_leaves_out(run, bcg_csv, tmp_path):
    """A study without a moderator value is not in the meta-regression: it needs no cluster."""
    path = _edit(bcg_csv, tmp_path, alloc=(2, ""), ablat=(2, ""))
    result = run("metareg", str(path), "--mod", "ablat", "--cluster", "alloc", "-f", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["robust"]["k"] == data["k"] == 12
    assert [e["row"] for e in data["excluded"]] == [4]


def test_too_few_clusters_cli(run, bcg_csv, tmp_path):
    result = run("metareg", str(bcg_csv), "--mod", "ablat", "--mod", "alloc", "--cluster", "alloc")
    assert result.exit_code == 1
    assert "at least 5" in result.stderr.strip().splitlines()[-1]
    one = _edit(bcg_csv, tmp_path, pair=(0, "p1"))
    rows = list(csv.DictReader(one.open()))
    for r in rows:
        r["pair"] = "all"
    with one.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    result = run("pool", str(one), "--cluster", "pair")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1].startswith("Error: --cluster pair: 1 cluster;")


def test_cluster_adjust_needs_cluster(run, bcg_csv):
    result = run("pool", str(bcg_csv), "--no-cluster-adjust")
    assert result.exit_code == 2
    assert "--cluster COL" in result.stderr


def test_cluster_with_glmm_is_an_error(run, bcg_csv):
    result = run("pool", str(bcg_csv), "--glmm", "UM.FS", "--measure", "OR", "--cluster", "alloc")
    assert result.exit_code == 1
    assert "--glmm" in result.stderr.strip().splitlines()[-1]
