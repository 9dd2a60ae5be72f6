"""``ivigmeta rve`` against robumeta 2.0-3's ``robu()`` (tests/reference/robumeta_rve.json,
written by tests/reference/make_reference_rve.R):

    robu(y ~ MODS, data, studynum = CLUSTER, var.eff.size = VARIANCES,
         modelweights = "CORR" | "HIER", rho = RHO, small = TRUE | FALSE)

on robumeta's own corrdat (CORR, rho 0, 0.4, 0.8, 1; males + college + binge, the intercept
alone, a text moderator) and hierdat (HIER; binge + followup + sreport + age, the intercept
alone; and CORR), and the grid of PyMARE's robumeta alignment test (intercept, within,
within + between x rho x a variance constant or varying within a study; HIER too), through the
engine (:func:`ivigmeta.core.rve.rve_fit`) and the command line; and the command's errors.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from tolerances import ROBUMETA, ROBUMETA_P_ABS, close

import ivigmeta
from ivigmeta.api import effect_sizes, read, rve_table
from ivigmeta.core.rve import rve_fit

REF = json.loads((Path(__file__).parent / "reference" / "robumeta_rve.json").read_text())
CASES = {c["name"]: c for c in REF["cases"]}
#: robumeta's HIER small-sample adjustment drops every eigenvalue when the variances are small
#: (SE 0, df NaN): compared through the unscaled case instead (test_hier_correction_is_scale_free)
DEGENERATE_IN_ROBUMETA = {"hierdat_scaled_binge_sreport_small"}
MATCHED = sorted(set(CASES) - DEGENERATE_IN_ROBUMETA)
#: dataset -> (effect column, cluster column); the variance column is the case's
COLUMNS = {
    "corrdat": ("effectsize", "studyid"),
    "hierdat": ("effectsize", "studyid"),
    "hierdat_scaled": ("effectsize", "studyid"),
    "pymare": ("effect", "study"),
}
MODEL = {"CORR": "correlated", "HIER": "hierarchical"}
#: robumeta codes a text moderator against its first level in sorted order
REFS = {"setting": "college"}


def _cell(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def write_case_data(case: dict, path: Path) -> Path:
    """The case's data as ivigmeta reads it: a study label per row, yi, vi (the case's
    variance column), the cluster as ``cluster`` and the other columns."""
    cols = REF["data"][case["data"]]
    y, g = COLUMNS[case["data"]]
    others = [c for c in cols if c not in (y, g, "row")]
    n = len(cols[y])
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["study", "yi", "vi", "cluster", *others])
        for i in range(n):
            w.writerow(
                [
                    f"e{i + 1}",
                    _cell(cols[y][i]),
                    _cell(cols[case["variances"]][i]),
                    _cell(cols[g][i]),
                ]
                + [_cell(cols[c][i]) for c in others]
            )
    return path


def cli_args(case: dict) -> list[str]:
    args = ["--cluster", "cluster", "--model", MODEL[case["model"]], "--rho", str(case["rho"])]
    for m in case["mods"]:
        args += ["--mod", m]
        if m in REFS:
            args += ["--ref", f"{m}={REFS[m]}"]
    args.append("--small" if case["small"] else "--no-small")
    return args


def design(case: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """y, v, X (R's model matrix) and the clusters as 0..N-1, from the reference data."""
    cols = REF["data"][case["data"]]
    y, g = COLUMNS[case["data"]]
    parts = [np.ones(len(cols[y]))]
    for m in case["mods"]:
        if m in REFS:
            parts.append(np.asarray([float(x != REFS[m]) for x in cols[m]]))
        else:
            parts.append(np.asarray(cols[m], dtype=float))
    _, ids = np.unique(np.asarray(cols[g]), return_inverse=True)
    return (
        np.asarray(cols[y], dtype=float),
        np.asarray(cols[case["variances"]], dtype=float),
        np.column_stack(parts),
        ids,
    )


def assert_close(ours, ref, what: str, rel: float = ROBUMETA, abs_floor: float = 1e-14) -> None:
    ours, ref = np.ravel(ours), np.ravel(ref)
    assert len(ours) == len(ref), what
    for a, b in zip(ours, ref):
        assert close(float(a), float(b), rel, abs_floor), f"{what}: {a!r} vs robumeta {b!r}"


def test_reference_covers_the_grid() -> None:
    """A case dropped from the R script would otherwise look like a passing suite."""
    names = set(CASES)
    assert len(names) == len(REF["cases"])
    for small in ("small", "large"):
        for rho in ("0", "0.4", "0.8", "1"):
            assert f"corrdat_mods_rho{rho}_{small}" in names
            assert f"corrdat_intercept_rho{rho}_{small}" in names
        assert {f"hierdat_mods_{small}", f"hierdat_intercept_{small}"} <= names
    for v in ("var_constant_within_study", "var_within_study"):
        for d in ("intercept", "within", "both"):
            for rho in ("0", "0.4", "0.8", "1"):
                assert f"pymare_{d}_rho{rho}_{v}" in names
            assert {f"pymare_{d}_hier_{v}_small", f"pymare_{d}_hier_{v}_large"} <= names


@pytest.mark.parametrize("name", MATCHED)
def test_engine_matches_robumeta(name: str) -> None:
    case = CASES[name]
    y, v, X, ids = design(case)
    est = rve_fit(y, v, X, ids, MODEL[case["model"]], case["rho"], case["small"])
    assert_close(est.tau2, case["tau2"], "tau2")
    if case["model"] == "HIER":
        assert_close(est.omega2, case["omega2"], "omega2")
        assert est.i2 is None
    else:
        assert est.omega2 is None
        assert_close(est.i2, case["I2"], "I2", abs_floor=1e-12)
    assert_close(est.qe, case["QE"], "QE")
    assert_close(est.beta, case["b"], "beta")
    assert_close(est.se, case["se"], "se")
    assert_close(est.df, case["df"], "df")
    # robumeta's VR.r leaves out the factor N / (N - p) its SEs carry (small = FALSE); ours
    # is the Var(beta) of the SEs reported
    p = X.shape[1]
    factor = 1.0 if case["small"] else case["N"] / (case["N"] - p)
    assert_close(est.vcov, np.asarray(case["vcov"]) * factor, "vcov", abs_floor=1e-16)
    assert est.n_clusters == case["N"]


@pytest.mark.parametrize("name", MATCHED)
def test_cli_matches_robumeta(run, tmp_path, name: str) -> None:
    case = CASES[name]
    path = write_case_data(case, tmp_path / "data.csv")
    result = run("rve", str(path), *cli_args(case), "--format", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    coefs = out["coefficients"]
    assert [c["name"] for c in coefs][0] == "intercept"
    assert len(coefs) == len(case["labels"])
    for key, ref_key in [
        ("estimate", "b"),
        ("se", "se"),
        ("statistic", "t"),
        ("df", "df"),
        ("ci_low", "ci_lb"),
        ("ci_high", "ci_ub"),
    ]:
        assert_close([c[key] for c in coefs], case[ref_key], key)
    assert_close([c["p_value"] for c in coefs], case["p"], "p", abs_floor=ROBUMETA_P_ABS)
    assert_close(out["tau2"], case["tau2"], "tau2")
    assert_close(out["qe"], case["QE"], "QE")
    if case["model"] == "HIER":
        assert out["model"] == "hierarchical" and out["rho"] is None and out["i2"] is None
        assert_close(out["omega2"], case["omega2"], "omega2")
    else:
        assert out["model"] == "correlated" and out["rho"] == case["rho"]
        assert out["omega2"] is None
        assert_close(out["i2"], case["I2"], "I2", abs_floor=1e-12)
    assert out["small"] is case["small"]
    assert (out["n_clusters"], out["k"]) == (case["N"], case["M"])
    sizes = out["effects_per_cluster"]
    assert (sizes["min"], sizes["median"], sizes["max"]) == (
        case["k_min"],
        case["k_median"],
        case["k_max"],
    )
    assert sizes["mean"] == pytest.approx(case["k_mean"], rel=1e-14)
    assert out["measure"] == "GEN"


def test_hier_correction_is_scale_free(run, tmp_path) -> None:
    """The effects / 1000 with variances / 1e6: robumeta's SEs are 0 (its eigenvalue threshold
    is absolute, every eigenvalue of Theta^(1/2) (I - H) Theta^(3/2) falls below it); ours are
    robumeta's unscaled SEs / 1000 with the same df."""
    scaled, plain = (
        CASES["hierdat_scaled_binge_sreport_small"],
        CASES["hierdat_binge_sreport_small"],
    )
    assert scaled["se"] == [0, 0, 0] and scaled["df"] == [None, None, None]
    path = write_case_data(scaled, tmp_path / "data.csv")
    result = run("rve", str(path), *cli_args(scaled), "--format", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    coefs = out["coefficients"]
    assert_close([c["estimate"] for c in coefs], [b / 1000 for b in plain["b"]], "b", ROBUMETA, 0.0)
    assert_close([c["se"] for c in coefs], [x / 1000 for x in plain["se"]], "se", ROBUMETA, 0.0)
    assert_close([c["df"] for c in coefs], plain["df"], "df", ROBUMETA, 0.0)
    assert_close(out["tau2"], plain["tau2"] / 1e6, "tau2", ROBUMETA, 0.0)
    assert_close(out["omega2"], plain["omega2"] / 1e6, "omega2", ROBUMETA, 0.0)


def test_pymare_grid_agrees_with_its_robumeta_pin() -> None:
    """The grid is PyMARE's: our R run (robumeta 2.0-3) reproduces the values PyMARE pinned
    from robumeta 2.1 (pymare/tests/data/robumeta_reference.json, one case pasted here)."""
    case = CASES["pymare_both_rho0.8_var_within_study"]
    assert_close(case["tau2"], 0.25396662569107431, "tau2", rel=1e-12)
    assert_close(
        case["df"], [2.6785181647604874, 3.9078721964279026, 1.6272497948928502], "df", 1e-12
    )


def test_table_and_csv(run, tmp_path) -> None:
    case = CASES["hierdat_mods_small"]
    path = write_case_data(case, tmp_path / "data.csv")
    result = run("rve", str(path), *cli_args(case))
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "hierarchical effects model" in text and "omega²" in text and "Satterthwaite" in text
    assert "68 effects in 15 clusters" in text
    result = run("rve", str(path), *cli_args(case), "--format", "csv")
    rows = list(csv.DictReader(result.stdout.splitlines()))
    assert [r["name"] for r in rows] == [
        "intercept",
        "binge",
        "followup",
        "sreport",
        "age",
        "tau2",
        "omega2",
        "qe",
    ]
    assert close(float(rows[1]["df"]), case["df"][1], ROBUMETA)
    assert close(float(rows[5]["estimate"]), case["tau2"], ROBUMETA)


def test_api_is_what_the_cli_prints(run, tmp_path) -> None:
    case = CASES["corrdat_setting_small"]
    path = write_case_data(case, tmp_path / "data.csv")
    table = read(str(path))
    es = effect_sizes(table)
    rv = rve_table(table, es, "cluster", ["setting", "males"], refs=["setting=college"])
    result = run("rve", str(path), *cli_args(case), "--format", "json")
    assert json.loads(result.stdout) == json.loads(json.dumps(rv.to_dict()))
    assert [c.name for c in rv.coefficients] == ["intercept", "setting=community", "males"]
    fitted = ivigmeta.pool(str(path)).rve("cluster", ["setting", "males"], refs=["setting=college"])
    assert fitted == rv


# ---------------------------------------------------------------------------------------------
# What robu() refuses, and what ivigmeta refuses on top


def _small_table(tmp_path, rows: list[tuple]) -> str:
    path = tmp_path / "small.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["study", "yi", "vi", "cluster", "x", "z"])
        w.writerows(rows)
    return str(path)


ROWS = [
    ("a1", 0.1, 0.04, "A", 1, 0.2),
    ("a2", 0.3, 0.05, "A", 2, 0.1),
    ("b1", 0.5, 0.03, "B", 3, 0.7),
    ("c1", -0.2, 0.06, "C", 4, 0.3),
    ("c2", 0.0, 0.02, "C", 5, 0.9),
    ("d1", 0.4, 0.05, "D", 6, 0.5),
]


def _error(run, *args) -> str:
    result = run("rve", *args)
    assert result.exit_code == 1, result.output
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("Error: ")
    assert "Traceback" not in result.output
    return message


def test_rho_outside_zero_one_is_refused(run, tmp_path) -> None:
    assert REF["errors"][0]["error"] == "Rho must be a value between 0 and 1."
    path = _small_table(tmp_path, ROWS)
    for rho in ("1.5", "-0.1"):
        assert "outside [0, 1]" in _error(run, path, "--cluster", "cluster", "--rho", rho)


def test_a_row_without_a_cluster_names_file_row_and_column(run, tmp_path) -> None:
    rows = [*ROWS]
    rows[2] = ("b1", 0.5, 0.03, "", 3, 0.7)
    path = _small_table(tmp_path, rows)
    message = _error(run, path, "--cluster", "cluster")
    assert "small.csv" in message and "row 4" in message and "column 'cluster'" in message


def test_a_single_cluster_and_too_few_clusters_are_refused(run, tmp_path) -> None:
    one = _small_table(tmp_path, [(s, y, v, "A", x, z) for s, y, v, _, x, z in ROWS])
    assert "one cluster" in _error(run, one, "--cluster", "cluster")
    path = _small_table(tmp_path, ROWS[:5])  # 3 clusters
    message = _error(run, path, "--cluster", "cluster", "--mod", "x", "--mod", "z")
    assert "3 clusters for 3 coefficients" in message


def test_a_variance_of_zero_names_its_row(run, tmp_path) -> None:
    rows = [*ROWS]
    rows[3] = ("c1", -0.2, 0, "C", 4, 0.3)
    path = _small_table(tmp_path, rows)
    message = _error(run, path, "--cluster", "cluster", "--model", "hierarchical")
    assert "row 5" in message and "variance" in message


def test_hierarchical_with_one_effect_per_cluster_is_refused(run, tmp_path) -> None:
    rows = [(s, y, v, s, x, z) for s, y, v, _, x, z in ROWS]
    path = _small_table(tmp_path, rows)
    message = _error(run, path, "--cluster", "cluster", "--model", "hierarchical")
    assert "not identified" in message


def test_a_row_without_a_moderator_is_listed(run, tmp_path) -> None:
    rows = [*ROWS]
    rows[1] = ("a2", 0.3, 0.05, "A", "", 0.1)
    path = _small_table(tmp_path, rows)
    result = run("rve", path, "--cluster", "cluster", "--mod", "x", "--format", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["k"] == 5
    assert out["excluded"] == [{"study": "a2", "reason": "no value for moderator(s) 'x'", "row": 3}]
    assert "a2 (row 3) left out" in result.stderr


def test_rho_with_the_hierarchical_model_is_noted(run, tmp_path) -> None:
    path = _small_table(tmp_path, ROWS)
    result = run("rve", path, "--cluster", "cluster", "--model", "hierarchical", "--rho", "0.5")
    assert result.exit_code == 0, result.output
    assert "--rho is not used by --model hierarchical" in result.stderr
