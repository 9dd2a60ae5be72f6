"""The CR2 cluster-robust inference (``pool``/``metareg --cluster COL --cluster-type CR2``)
against metafor's ``robust(fit, cluster, clubSandwich = TRUE)`` (clubSandwich 0.5.8:
vcovCR type CR2, coef_test / conf_int Satterthwaite, Wald_test HTZ, linear_contrast for
predict()), tests/reference/metafor_robust_cr2.json, written by
tests/reference/make_reference_robust_cr2.R:

    fit <- rma(yi, vi, mods = MODS, method = METHOD, control = list(threshold = 1e-13, ...))
    r <- robust(fit, cluster = CLUSTER, clubSandwich = TRUE); predict(r[, newmods = ...])

on dat.bcg (log RR; clusters alloc, pairs of trials and trial; ~1, ~ablat,
~ablat + factor(alloc), ~first; DL, REML, FE), dat.konstantopoulos2011 (district; ~1, ~year;
REML) and PyMARE's clubSandwich alignment data (study; variances constant and varying within a
study; ~1, ~within, ~within + between; DL, FE), 12 made-up effects where HTZ's denominator
df are negative; metafor's own pins of
tests/testthat/test_misc_robust.r; and the command line's option, JSON keys, tables and errors.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from tolerances import CLOSED_FORM, ITERATIVE, P_VALUE, close

import ivigmeta
from ivigmeta.core.sandwich import cr2_sandwich, restricted_power
from ivigmeta.errors import ModelError
from ivigmeta.methods.robust import robust_fit

REF = json.loads((Path(__file__).parent / "reference" / "metafor_robust_cr2.json").read_text())
RECORDS = REF["robust"]
EXP = math.e


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


def _measure(rec) -> str | None:
    return "RR" if rec["dataset"] == "bcg" else None


def _rel(rec) -> float:
    return CLOSED_FORM if rec["method"] in ("DL", "FE") else ITERATIVE


def _record_id(rec) -> str:
    return f"{rec['dataset']}{rec['mods']}-{rec['method']}-{rec['cluster']}-{rec['test']}"


def _mods(rec) -> list[str]:
    return [m.strip().replace("factor(alloc)", "alloc") for m in rec["mods"][1:].split("+")]


def _check(rob, rec) -> None:
    rel = _rel(rec)
    assert rob.vcov_type == rec["vbest"] == "CR2"
    assert (rob.clusters, rob.k, len(rob.coefficients)) == (rec["n"], rec["k"], rec["p"])
    assert rob.df == rec["n"] - rec["p"]
    assert close(rob.tau2, rec["tau2"], rel)
    for j, c in enumerate(rob.coefficients):
        assert close(c.estimate, rec["beta"][j], rel), (j, "beta")
        assert close(c.se, rec["se"][j], rel), (j, "se")
        assert close(c.statistic, rec["tval"][j], rel), (j, "t")
        assert close(rob.test_dfs[j], rec["df"][j], rel), (j, "df")
        assert close(c.p_value, rec["pval"][j], max(rel, P_VALUE)), (j, "p")
        assert close(c.ci_low, rec["ci_lb"][j], rel), (j, "ci_lb")
        assert close(c.ci_high, rec["ci_ub"][j], rel), (j, "ci_ub")
    for i, row in enumerate(rec["vb"]):
        for j, value in enumerate(row):
            assert close(rob.vcov[i][j], value, rel, 1e-15), ("vb", i, j)
    # metafor: QM = max(0, HTZ F) on (m, its df); t² on (1, df) for the intercept alone
    assert close(rob.qm, rec["QM"], rel)
    assert rob.qm_df == rec["QMdf"][0]
    assert close(rob.qm_df2, rec["QMdf"][1], rel)
    if rec["QMp"] is None:  # HTZ's denominator df not positive (htz0): F = 0, no p-value
        assert rec["QMdf"][1] < 0 and rob.qm == 0 and rob.qm_p_value is None
    else:
        assert close(rob.qm_p_value, rec["QMp"], max(rel, P_VALUE))


POOLED = [r for r in RECORDS if r["mods"] == "~1"]
MODERATED = [r for r in RECORDS if r["mods"] != "~1"]


@pytest.mark.parametrize("rec", POOLED, ids=[_record_id(r) for r in POOLED])
def test_pooled_matches_metafor_clubsandwich(rec):
    assert not rec["warnings"] and "error" not in rec
    method = rec["method"]
    fit = ivigmeta.pool(
        _data(rec["dataset"]),
        measure=_measure(rec),
        tau2="DL" if method == "FE" else method,
        ci="hk" if rec["test"] == "knha" else "z",
    )
    rob = fit.robust(rec["cluster"], cr2=True)
    one = rob.common if method == "FE" else rob.random
    assert one is not None
    _check(one, rec)
    rel = _rel(rec)
    assert close(one.test_df, rec["pred_df"][0], rel)
    if method == "FE":
        assert one.pi_low_theta is None and one.pi_high_theta is None
    else:  # predict(): robust SE and tau², t on the Satterthwaite df
        assert close(one.pi_low_theta, rec["pred_pi_lb"][0], rel)
        assert close(one.pi_high_theta, rec["pred_pi_ub"][0], rel)
    if rec["dataset"] == "bcg":
        assert close(one.ci_high, EXP ** rec["ci_ub"][0], rel)


@pytest.mark.parametrize("rec", MODERATED, ids=[_record_id(r) for r in MODERATED])
def test_metareg_matches_metafor_clubsandwich(rec):
    assert not rec["warnings"] and "error" not in rec
    method = rec["method"]
    fit = ivigmeta.pool(_data(rec["dataset"]), measure=_measure(rec))
    mods = _mods(rec)
    reg = fit.metareg(
        mods,
        refs=["alloc=alternate"] if "alloc" in mods else (),  # R's reference level
        tau2="DL" if method == "FE" else method,
        model="common" if method == "FE" else "random",
        predict=rec["newmods_text"],
        cluster=rec["cluster"],
        cr2=True,
    )
    assert reg.robust is not None
    _check(reg.robust, rec)
    rel = _rel(rec)
    for c, se in zip(reg.coefficients, rec["model_se"]):  # the model-based fit is untouched
        assert close(c.se, se, rel)
    preds = reg.robust.predictions
    assert len(preds) == len(rec["newmods_text"]) > 0
    for i, p in enumerate(preds):
        assert close(p.estimate, rec["pred"][i], rel, 1e-15)
        assert close(p.se, rec["pred_se"][i], rel)
        assert p.df is not None and close(p.df, rec["pred_df"][i], rel)
        assert close(p.ci_low, rec["pred_ci_lb"][i], rel)
        assert close(p.ci_high, rec["pred_ci_ub"][i], rel)
        assert close(p.pi_low, rec["pred_pi_lb"][i], rel)
        assert close(p.pi_high, rec["pred_pi_ub"][i], rel)


def test_metafor_own_pins():
    """metafor's tests/testthat/test_misc_robust.r: robust(rma(yi, vi, data=dat),
    cluster=trial, clubSandwich=TRUE) on dat.bcg: vcov 0.03229357, dfs 11.04125,
    zval -3.97616 (pinned to those digits there)."""
    pin = REF["metafor_pins"][0]
    fit = ivigmeta.pool(_data("bcg"), measure="RR", tau2="REML")
    rob = fit.robust("trial", cr2=True).random
    assert close(rob.vcov[0][0], pin["vb"], 1e-6)
    assert close(rob.test_df, pin["df"], 1e-6)
    assert close(rob.statistic, pin["tval"], 1e-6)


# ---------------------------------------------------------------------------------------------
# The engine


def _brute_force(X, v, tau2, e, ids, C):
    """clubSandwich's P arrays written out over all pairs of clusters (get_GH, get_P_array,
    Satterthwaite, total_variance_mat): the Satterthwaite df of each row of C and HTZ's nu."""
    s = cr2_sandwich(X, v, tau2, e, ids)
    n = s.n_clusters
    q = C.shape[0]
    P = np.zeros((q, q, n, n))
    for a in range(n):
        ga = C @ s.g[:, ids == a]
        P[:, :, a, a] += ga @ ga.T
        for b in range(n):
            P[:, :, a, b] -= (C @ s.h[a]) @ (C @ s.h[b]).T
    dfs = [np.trace(P[i, i]) ** 2 / (P[i, i] ** 2).sum() for i in range(q)]
    omega = np.einsum("staa->st", P)
    on = restricted_power(omega, -0.5)
    B = np.einsum("su,uvab,vt->stab", on, P, on)
    var = sum(
        (B[i, j] * B[j, i]).sum() + (B[i, i] * B[j, j]).sum() for i in range(q) for j in range(q)
    )
    return s, dfs, q * (q + 1) / var


def test_closed_form_pair_sums_equal_clubsandwichs_arrays():
    rng = np.random.default_rng(20021)
    k = 17
    ids = np.array([0, 0, 1, 2, 2, 2, 3, 4, 4, 5, 5, 5, 5, 6, 7, 7, 7])
    X = np.column_stack([np.ones(k), rng.normal(size=k), rng.integers(0, 2, k), rng.normal(size=k)])
    v = rng.uniform(0.02, 0.4, k)
    y = rng.normal(size=k)
    w = 1 / (v + 0.1)
    beta = np.linalg.solve((X.T * w) @ X, (X.T * w) @ y)
    e = y - X @ beta
    C = np.eye(4)[1:]
    s, dfs, nu = _brute_force(X, v, 0.1, e, ids, C)
    for i in range(3):
        assert close(s.satterthwaite(C[i]), dfs[i], 1e-12)
    htz = s.htz(C, beta)
    assert close(htz.df_denom, nu - 3 + 1, 1e-12)
    assert htz.df_num == 3
    # one constraint: HTZ's df are the Satterthwaite df
    assert close(s.htz(C[:1], beta).df_denom, s.satterthwaite(C[0]), 1e-12)


def test_restricted_power_drops_the_null_space():
    a = np.array([[2.0, 0.0], [0.0, 0.0]])
    assert np.allclose(restricted_power(a, -0.5), [[2**-0.5, 0.0], [0.0, 0.0]])


def test_cluster_fitted_exactly_gets_no_adjustment_weight():
    """bcg ~first (1 for trial 1 alone), each trial its own cluster: trial 1 is fitted
    exactly, B_j = 0, A_j = 0 (clubSandwich: adjustment 0); the coefficient still has its
    Satterthwaite df (pinned in the ~first records), but a prediction at first = 1 rests on
    that cluster alone: SE 0 and df NaN in clubSandwich, and metafor's predict() stops."""
    rec = REF["errors"][1]
    assert rec["contrast_se"] == 0 and rec["contrast_df"] is None and "error" in rec
    fit = ivigmeta.pool(_data("bcg"), measure="RR")
    with pytest.raises(ModelError, match=r"--predict 'first=1': .*no Satterthwaite df"):
        fit.metareg("first", cluster="trial", cr2=True, predict="first=1")
    ok = fit.metareg("first", cluster="trial", cr2=True, predict="first=0.5")
    assert ok.robust is not None and ok.robust.predictions[0].df is not None


def test_too_few_clusters_is_metafors_error():
    rec = REF["errors"][0]
    assert "must be larger than the number of fixed effects" in rec["error"]
    fit = ivigmeta.pool(_data("bcg"), measure="RR")
    with pytest.raises(ModelError, match=r"3 clusters.*4 coefficients.*at least 5"):
        fit.metareg(["ablat", "alloc"], cluster="alloc", cr2=True)


def test_coefficient_resting_on_exact_clusters_is_an_error():
    """Four studies, each its own cluster, ~x with x = 0 for study a alone: the intercept is
    study a's effect, fitted exactly; clubSandwich gives it SE 0 and NaN df (metafor reports
    them), here a ModelError naming the coefficient."""
    rec = REF["errors"][2]
    assert rec["se"][0] == 0 and rec["df"][0] is None and rec["df"][1] > 0
    X = [[1.0, x] for x in rec["x"]]
    with pytest.raises(ModelError, match=r"coefficient intercept rests on clusters fitted"):
        robust_fit(rec["yi"], rec["vi"], X, list("abcd"), model="common", cr2=True)


def test_singular_robust_vcov_of_the_moderators_is_metafors_error():
    """~x1 + x2, dummies of studies b and c: both coefficients rest on the intercept's two
    studies; their CR2 Var(b) is singular and metafor stops (no Wald test)."""
    rec = REF["errors"][3]
    assert "Could not obtain the cluster-robust Wald test" in rec["error"]
    X = [[1.0, a, b] for a, b in zip(rec["x1"], rec["x2"])]
    with pytest.raises(ModelError, match=r"robust Var\(b\) of the moderators is singular"):
        robust_fit(rec["yi"], rec["vi"], X, list("abcd"), model="common", cr2=True)


# ---------------------------------------------------------------------------------------------
# The command line


@pytest.fixture
def bcg_csv(tmp_path) -> Path:
    """docs/examples/bcg.csv (counts) with the pairs-of-trials cluster column."""
    src = Path(__file__).resolve().parent.parent / "docs" / "examples" / "bcg.csv"
    rows = list(csv.DictReader(src.open()))
    for i, r in enumerate(rows):
        r["pair"] = f"p{(i + 2) // 2}"
        r["first"] = "1" if i == 0 else "0"
        r["trial"] = f"t{i + 1}"
    path = tmp_path / "bcg_pairs.csv"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def _ref(mods: str, method: str, cluster: str):
    return next(
        r
        for r in RECORDS
        if (r["dataset"], r["mods"], r["method"], r["cluster"], r["test"])
        == ("bcg", mods, method, cluster, "z")
    )


def test_pool_cr2_json(run, bcg_csv):
    result = run("pool", str(bcg_csv), "--cluster", "pair", "--cluster-type", "cr2", "-f", "json")
    assert result.exit_code == 0, result.output
    rob = json.loads(result.stdout)["robust"]
    assert (rob["vcov_type"], rob["adjust"], rob["clusters"], rob["df"]) == ("CR2", False, 7, 6)
    ref, fe = _ref("~1", "DL", "pair"), _ref("~1", "FE", "pair")
    assert close(rob["random"]["se"], ref["se"][0], CLOSED_FORM)
    assert close(rob["random"]["df"], ref["df"][0], CLOSED_FORM)
    assert close(rob["random"]["p_value"], ref["pval"][0], P_VALUE)
    assert close(rob["random"]["pi_high"], EXP ** ref["pred_pi_ub"][0], CLOSED_FORM)
    assert close(rob["common"]["df"], fe["df"][0], CLOSED_FORM)
    assert close(rob["common"]["ci_low"], EXP ** fe["ci_lb"][0], CLOSED_FORM)
    plain = json.loads(run("pool", str(bcg_csv), "-f", "json").stdout)
    data = json.loads(result.stdout)
    data.pop("robust"), plain.pop("robust")
    assert data == plain  # the rest of the output is unchanged


def test_pool_cr2_table_csv_markdown(run, bcg_csv):
    args = ("pool", str(bcg_csv), "--cluster", "pair", "--cluster-type", "CR2")
    table = run(*args)
    assert table.exit_code == 0
    title = "Cluster-robust inference (7 clusters by pair, CR2, t on Satterthwaite df)"
    assert title in table.stdout
    ref = _ref("~1", "DL", "pair")
    row = next(line for line in table.stdout.splitlines() if line.startswith("Random effects (DL)"))
    assert f"{ref['df'][0]:.2f}" in row.split()
    assert "metafor's robust(clubSandwich = TRUE)" in table.stdout
    records = list(csv.DictReader(run(*args, "-f", "csv").stdout.splitlines()))
    robust_random = next(r for r in records if r["row_type"] == "robust_random")
    assert robust_random["vcov_type"] == "CR2"
    assert close(float(robust_random["df"]), ref["df"][0], CLOSED_FORM)
    assert f"### {title}" in run(*args, "-f", "markdown").stdout


def test_metareg_cr2_json_table_csv(run, bcg_csv):
    args = ("metareg", str(bcg_csv), "--mod", "ablat", "--tau2", "REML", "--cluster", "alloc")
    result = run(*args, "--cluster-type", "CR2", "--predict", "ablat=10", "-f", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    rob = data["robust"]
    ref = _ref("~ablat", "REML", "alloc")
    assert rob["vcov_type"] == "CR2" and rob["df"] == 1
    for j, c in enumerate(rob["coefficients"]):
        assert close(c["se"], ref["se"][j], ITERATIVE)
        assert close(c["df"], ref["df"][j], ITERATIVE)
    assert close(rob["qm"], ref["QM"], ITERATIVE)
    assert rob["qm_df"] == 1 and close(rob["qm_df2"], ref["QMdf"][1], ITERATIVE)
    assert close(rob["predictions"][0]["df"], ref["pred_df"][0], ITERATIVE)
    assert close(rob["predictions"][0]["pi_low"], ref["pred_pi_lb"][0], ITERATIVE)
    plain = json.loads(run(*args[:-2], "--predict", "ablat=10", "-f", "json").stdout)
    assert data["coefficients"] == plain["coefficients"]  # model-based results unchanged
    assert "df" not in data["predictions"][0]  # ... and their predictions carry no df
    table = run(*args, "--cluster-type", "CR2").stdout
    assert "Cluster-robust inference (3 clusters by alloc, CR2, t on Satterthwaite df)" in table
    f_text = f"F = {ref['QM']:.2f}, df = (1, {ref['QMdf'][1]:.2f})"
    assert f"Test of moderators (cluster-robust, HTZ): {f_text}" in table
    records = list(
        csv.DictReader(run(*args, "--cluster-type", "CR2", "-f", "csv").stdout.splitlines())
    )
    robust_rows = [r for r in records if r["kind"] == "robust_coefficient"]
    assert [float(r["df"]) for r in robust_rows] == pytest.approx(ref["df"], rel=ITERATIVE)


def test_cr1_robust_coefficients_and_predictions_carry_n_minus_p(run, bcg_csv):
    """The per-coefficient and per-prediction df of the robust block: n - p under CR1/CR0."""
    out = run(
        "metareg",
        str(bcg_csv),
        "--mod",
        "ablat",
        "--cluster",
        "pair",
        "--predict",
        "ablat=10",
        "-f",
        "json",
    )
    rob = json.loads(out.stdout)["robust"]
    assert rob["vcov_type"] == "CR1"
    assert [c["df"] for c in rob["coefficients"]] == [5, 5]
    assert rob["predictions"][0]["df"] == 5 and rob["qm_df2"] == 5


def test_cluster_type_cr0_is_no_cluster_adjust(run, bcg_csv):
    base = ("pool", str(bcg_csv), "--cluster", "pair", "-f", "json")
    by_type = json.loads(run(*base, "--cluster-type", "CR0").stdout)["robust"]
    by_flag = json.loads(run(*base, "--no-cluster-adjust").stdout)["robust"]
    assert by_type == by_flag and by_type["vcov_type"] == "CR0"
    both = json.loads(run(*base, "--cluster-type", "CR0", "--no-cluster-adjust").stdout)
    assert both["robust"] == by_flag
    assert json.loads(run(*base, "--cluster-type", "cr1").stdout)["robust"]["vcov_type"] == "CR1"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--cluster-type", "CR2"), "--cluster-type goes with --cluster COL"),
        (("--cluster", "pair", "--cluster-type", "CR2", "--no-cluster-adjust"), "CR2 has none"),
        (("--cluster", "pair", "--cluster-type", "CR2", "--cluster-adjust"), "CR2 has none"),
        (("--cluster", "pair", "--cluster-type", "CR1", "--no-cluster-adjust"), "contradicts"),
        (("--cluster", "pair", "--cluster-type", "CR0", "--cluster-adjust"), "contradicts"),
        (("--cluster", "pair", "--cluster-type", "CR3"), "'CR3' is not one of"),
    ],
)
def test_cluster_type_usage_errors(run, bcg_csv, extra, message):
    for command in (("pool",), ("metareg", "--mod", "ablat")):
        result = run(command[0], str(bcg_csv), *command[1:], *extra)
        assert result.exit_code == 2, result.output
        assert message in result.stderr


def test_cr2_errors_are_one_line(run, bcg_csv):
    few = run(
        "metareg",
        str(bcg_csv),
        "--mod",
        "ablat",
        "--mod",
        "alloc",
        "--cluster",
        "alloc",
        "--cluster-type",
        "CR2",
    )
    assert few.exit_code == 1 and "Traceback" not in few.output
    assert "at least 5" in few.stderr.strip().splitlines()[-1]
    exact = run(
        "metareg",
        str(bcg_csv),
        "--mod",
        "first",
        "--cluster",
        "trial",
        "--cluster-type",
        "CR2",
        "--predict",
        "first=1",
    )
    assert exact.exit_code == 1 and "Traceback" not in exact.output
    last = exact.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: --predict 'first=1': --cluster trial --cluster-type CR2:")
    assert "no Satterthwaite df" in last
