"""RTET, the tetrachoric correlation of a 2x2 table (escalc's measure = "RTET"): the bivariate
normal CDF, the maximum-likelihood root and its variance against the exact values and metafor's own
(tests/reference/metafor_rtet.json, written by make_reference_rtet.R), escalc's edge cases
(excluded with their reasons), the continuity correction, pooling as metafor's rma(), and the CLI.
Batch = pool: tests/test_batch_equals_pool.py::test_batch_equals_pool_rtet."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from conftest import pool_json as _pool_json
from conftest import write_columns as _write

from ivigmeta.core.distributions import bvn_cdf
from ivigmeta.core.effects import undefined_reason
from ivigmeta.core.measures import tetrachoric
from tests.tolerances import (
    BVN_CDF_ABS,
    CLOSED_FORM,
    ITERATIVE,
    METAFOR_RTET_VI_REL,
    METAFOR_RTET_VI_REL_STRONG,
    METAFOR_RTET_YI_ABS,
    RTET_EXACT,
)

REF = json.loads((Path(__file__).parent / "reference" / "metafor_rtet.json").read_text())
TABLES = {t["name"]: t for t in REF["tables"]}
INTERIOR = [name for name, t in TABLES.items() if "exact_yi" in t]
#: tables whose root lies within metafor's finite-difference step (1e-3) of its maxcor 0.9999 or
#: beyond it: there metafor's optimiser and Hessian are artifacts of the clamp (its yi for
#: beyond_max2 is 1.073 > 1), so only the exact values are compared
NEAR_MAXCOR = ("near_perfect", "beyond_max", "beyond_max2")
BCG = REF["pooled"][0]


def _cells(t: dict) -> list[np.ndarray]:
    return [np.array([float(t[c])]) for c in ("ai", "bi", "ci", "di")]


def _counts_csv(tmp_path: Path, tables: list[tuple[float, ...]], name: str = "t.csv") -> str:
    a, b, c, d = (list(x) for x in zip(*tables))
    return _write(
        tmp_path,
        name,
        {
            "treat_events": a,
            "treat_total": [x + y for x, y in zip(a, b)],
            "control_events": c,
            "control_total": [x + y for x, y in zip(c, d)],
        },
    )


# ------------------------------------------------------------------------------------------
# the kernels


def test_bivariate_normal_cdf_is_tvpacks():
    grid = REF["phi2"]
    h, k, rho = (np.array([g[x] for g in grid]) for x in ("h", "k", "rho"))
    want = np.array([g["tvpack"] for g in grid])
    got = bvn_cdf(h, k, rho)
    assert np.max(np.abs(got - want)) <= BVN_CDF_ABS
    # the limits: ρ = ±1, and the orthant at the origin
    phi = NormalDist().cdf
    assert bvn_cdf(0.3, -0.2, 1.0) == pytest.approx(phi(-0.2), abs=1e-15)
    assert bvn_cdf(0.3, 0.2, -1.0) == pytest.approx(phi(0.3) + phi(0.2) - 1, abs=1e-15)
    assert bvn_cdf(-2.0, -1.0, -1.0) == 0.0
    assert bvn_cdf(0.0, 0.0, 0.5) == pytest.approx(0.25 + math.asin(0.5) / (2 * math.pi))


@pytest.mark.parametrize("name", INTERIOR)
def test_root_and_variance_are_the_exact_ones(name):
    t = TABLES[name]
    yi, vi = tetrachoric(*_cells(t))
    assert yi[0] == pytest.approx(t["exact_yi"], abs=RTET_EXACT)
    assert vi[0] == pytest.approx(t["exact_vi"], rel=RTET_EXACT)


@pytest.mark.parametrize("name", [n for n in INTERIOR if n not in NEAR_MAXCOR])
def test_root_and_variance_are_metafors_to_its_optimiser_tolerance(name):
    t = TABLES[name]
    yi, vi = tetrachoric(*_cells(t))
    assert yi[0] == pytest.approx(t["metafor_yi"], abs=METAFOR_RTET_YI_ABS)
    rel = METAFOR_RTET_VI_REL if abs(t["exact_yi"]) < 0.95 else METAFOR_RTET_VI_REL_STRONG
    assert vi[0] == pytest.approx(t["metafor_vi"], rel=rel)


def test_metafors_own_pin_handbook_table():
    """test_misc_escalc.r: escalc(measure = "RTET", ai = 135, bi = 15, ci = 40, di = 10) gives
    yi 0.2603, sei 0.1423 (Handbook of Research Synthesis and Meta-Analysis, Table 13.4), with
    metafor's test tolerance .tol[["est"]] = .01. The exact root is 0.260242 (0.2602 to four
    decimals): metafor's own optimum, 0.260255, rounds up."""
    yi, vi = tetrachoric(*_cells(TABLES["handbook"]))
    assert float(yi[0]) == pytest.approx(0.2603, rel=0.01)
    assert round(float(yi[0]), 4) == 0.2602
    assert round(math.sqrt(vi[0]), 4) == 0.1423


@pytest.mark.parametrize(
    ("name", "vi"),
    [
        ("zero_bc", 0.0),
        ("zero_ad", 0.0),
        ("empty_row1", math.inf),
        ("empty_row2", math.inf),
        ("empty_col1", math.inf),
        ("empty_col2", math.inf),
        # one zero off the diagonal (on it): yi = 1 (-1) as metafor; its vi is whatever its
        # optimiser stopped at (350.4, NA, 1.1e9); the likelihood's maximum is on the boundary
        ("zero_b", math.inf),
        ("zero_c", math.inf),
        ("zero_a", math.inf),
        ("zero_d", math.inf),
    ],
)
def test_edge_cases_are_escalcs(name, vi):
    t = TABLES[name]
    got_yi, got_vi = tetrachoric(*_cells(t))
    assert got_yi[0] == t["rtet_yi"]
    assert got_vi[0] == vi
    if vi == 0.0 or name.startswith("empty"):
        assert t["rtet_vi"] == vi or (vi == math.inf and t["vi_inf"])


def test_variance_grows_without_bound_towards_a_single_zero_cell():
    """Why a single zero cell gets vi = inf: the variance of tables (10, ε, 5, 15) grows as ε -> 0."""
    eps = np.array([1.0, 1e-2, 1e-4, 1e-6])
    _, vi = tetrachoric(np.full(4, 10.0), eps, np.full(4, 5.0), np.full(4, 15.0))
    assert np.all(np.diff(vi[1:]) > 0) and vi[-1] > 10 * vi[1]


def test_a_variance_beyond_double_precision_is_excluded_with_a_reason():
    """Cells so unbalanced that 1 - ρ² underflows: no variance, and a reason (not a crash)."""
    yi, vi = tetrachoric(*(np.array([x]) for x in (1e300, 1.0, 1.0, 1e300)))
    assert yi[0] == pytest.approx(1.0, abs=1e-12) and not np.isfinite(vi[0])
    reason = undefined_reason("RTET", False, 0.0, (1e300, 1.0, 1.0, 1e300))
    assert reason.startswith("RTET has no usable sampling variance")


def test_the_kernel_is_vectorized_row_by_row():
    tabs = [TABLES[n] for n in INTERIOR] * 3
    cols = [np.array([float(t[c]) for t in tabs]) for c in ("ai", "bi", "ci", "di")]
    yi, vi = tetrachoric(*cols)
    for i, t in enumerate(tabs):
        one_y, one_v = tetrachoric(*_cells(t))
        assert yi[i] == one_y[0] and vi[i] == one_v[0]


# ------------------------------------------------------------------------------------------
# pooling and the CLI


def _bcg_csv(tmp_path: Path) -> str:
    return _counts_csv(tmp_path, list(zip(BCG["ai"], BCG["bi"], BCG["ci"], BCG["di"])), "bcg.csv")


@pytest.mark.parametrize("tau2", ["DL", "REML"])
@pytest.mark.parametrize("ci", ["z", "hk"])
def test_pool_is_rma_on_the_exact_effects(run, tmp_path, tau2, ci):
    ref = next(
        f
        for f in BCG["fits_exact"]
        if f["method"] == tau2 and f["test"] == ("knha" if ci == "hk" else "z")
    )
    got = _pool_json(run, _bcg_csv(tmp_path), "--measure", "RTET", "--tau2", tau2, "--ci", ci)
    assert got["measure"] == "RTET" and got["k"] == 13 and got["excluded"] == []
    assert [s["yi"] for s in got["studies"]] == pytest.approx(BCG["exact_yi"], abs=RTET_EXACT)
    assert [s["vi"] for s in got["studies"]] == pytest.approx(BCG["exact_vi"], rel=RTET_EXACT)
    assert {s["cc_added"] for s in got["studies"]} == {0.0}
    tol = CLOSED_FORM if tau2 == "DL" else ITERATIVE
    # the exact effects are themselves known to RTET_EXACT
    tol = max(tol, 10 * RTET_EXACT)
    r = got["random"]
    assert r["estimate"] == r["theta"]  # reported on its own scale
    for key, mine in {
        "estimate": "theta",
        "se": "se",
        "ci_lb": "ci_low",
        "ci_ub": "ci_high",
    }.items():
        assert r[mine] == pytest.approx(ref[key], rel=tol), key
    assert r["tau2"] == pytest.approx(ref["tau2"], rel=tol, abs=1e-12)
    assert got["heterogeneity"]["q"] == pytest.approx(ref["QE"], rel=tol)


def test_pool_is_rma_on_metafors_effects_to_its_optimiser_tolerance(run, tmp_path):
    ref = next(f for f in BCG["fits"] if f["method"] == "REML" and f["test"] == "z")
    got = _pool_json(run, _bcg_csv(tmp_path), "--measure", "RTET", "--tau2", "REML")
    assert [s["yi"] for s in got["studies"]] == pytest.approx(BCG["yi"], abs=METAFOR_RTET_YI_ABS)
    r = got["random"]
    assert r["theta"] == pytest.approx(ref["estimate"], abs=METAFOR_RTET_YI_ABS)
    assert r["se"] == pytest.approx(ref["se"], rel=METAFOR_RTET_VI_REL)


def test_only0_does_not_correct_but_all_does_as_escalc(run, tmp_path):
    rows = [(r["ai"], r["bi"], r["ci"], r["di"]) for r in REF["corrected"]]
    path = _counts_csv(tmp_path, rows)
    plain = _pool_json(run, path, "--measure", "RTET")
    # escalc's RTET has add = 0 unless asked: the zero-cell tables stay as they are, excluded
    assert [e["row"] for e in plain["excluded"]] == [3, 4, 5]
    assert {s["cc_added"] for s in plain["studies"]} == {0.0}
    allc = _pool_json(run, path, "--measure", "RTET", "--cc-policy", "all")
    assert allc["excluded"] == [] and {s["cc_added"] for s in allc["studies"]} == {0.5}
    for study, rec in zip(allc["studies"], REF["corrected"]):
        assert study["yi"] == pytest.approx(rec["exact_yi"], abs=RTET_EXACT)
        assert study["vi"] == pytest.approx(rec["exact_vi"], rel=RTET_EXACT)
        assert study["yi"] == pytest.approx(rec["metafor_yi"], abs=METAFOR_RTET_YI_ABS)


def test_excluded_tables_are_listed_with_their_reasons(run, tmp_path):
    tables = [
        (20, 10, 5, 15),
        (10, 0, 5, 15),  # b = 0
        (10, 5, 15, 0),  # d = 0
        (0, 5, 0, 20),  # empty column (an empty row is an arm without participants: an error)
        (10, 0, 0, 15),  # b = c = 0
        (0, 10, 5, 0),  # a = d = 0
        (30, 10, 10, 30),
        (12, 8, 6, 19),
    ]
    path = _counts_csv(tmp_path, tables)
    out = run("pool", path, "--measure", "RTET", "--format", "json")
    assert out.exit_code == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["k"] == 3
    reasons = {e["row"]: e["reason"] for e in got["excluded"]}
    assert set(reasons) == {3, 4, 5, 6, 7}
    assert set(got["excluded"][0]) >= {"study", "row", "reason"}
    assert "RTET is 1 with no finite sampling variance (b = 0" in reasons[3]
    assert "RTET is -1 with no finite sampling variance (d = 0" in reasons[4]
    assert "an empty margin (a + c = 0)" in reasons[5]
    assert "RTET is 1 with zero sampling variance (b = c = 0" in reasons[6]
    assert "RTET is -1 with zero sampling variance (a = d = 0" in reasons[7]
    # and the notes on stderr name them, never silently
    for row in reasons:
        assert f"row {row}: s{row - 1} excluded: RTET" in out.stderr
    table = run("pool", path, "--measure", "rtet")
    assert table.exit_code == 0 and "Tetrachoric" not in table.stderr
    assert "Excluded: s2 (row 3): RTET is 1" in table.stdout


def test_cli_errors(run, tmp_path):
    path = _counts_csv(tmp_path, [(20, 10, 5, 15), (30, 10, 10, 30)])
    mh = run("pool", path, "--measure", "RTET", "--common", "MH")
    assert mh.exit_code == 1 and "Traceback" not in mh.stderr
    assert "Mantel-Haenszel pools RR, OR and RD: RTET is pooled by inverse variance" in mh.stderr
    usage = run("pool", path, "--measure", "RTETX")
    assert usage.exit_code == 2
    nothing = _counts_csv(tmp_path, [(10, 0, 0, 15), (0, 4, 0, 4)], "none.csv")
    out = run("pool", nothing, "--measure", "RTET")
    assert out.exit_code == 1 and "Traceback" not in out.stderr
    assert out.stderr.count("Error:") == 1


def test_batch_pools_rtet_as_pool(run, tmp_path):
    rows = list(zip(BCG["ai"], BCG["bi"], BCG["ci"], BCG["di"])) + [(10, 0, 5, 15)]
    groups = ["a" if i < 7 else "b" for i in range(len(rows))]
    a, b, c, d = (list(x) for x in zip(*rows))
    cols = {
        "treat_events": a,
        "treat_total": [x + y for x, y in zip(a, b)],
        "control_events": c,
        "control_total": [x + y for x, y in zip(c, d)],
    }
    long = _write(tmp_path, "long.csv", {"g": groups, **cols})
    out = run("batch", long, "-g", "g", "--measure", "RTET", "--format", "csv")
    assert out.exit_code == 0, out.stderr
    frame = pd.read_csv(io.StringIO(out.stdout)).set_index("g")
    assert frame.loc["b", "n_excluded"] == 1 and frame.loc["a", "n_excluded"] == 0
    for name in ("a", "b"):
        idx = [i for i, g in enumerate(groups) if g == name]
        own = _write(tmp_path, f"{name}.csv", {k: [v[i] for i in idx] for k, v in cols.items()})
        ref = _pool_json(run, own, "--measure", "RTET")["random"]
        assert frame.loc[name, "random_estimate"] == pytest.approx(ref["estimate"], rel=1e-12)
        assert frame.loc[name, "tau2"] == pytest.approx(ref["tau2"], rel=1e-12, abs=1e-15)
