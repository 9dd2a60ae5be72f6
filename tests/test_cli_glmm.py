"""``ivigmeta pool --glmm``: plumbing, JSON keys, text, refusals (the numbers are tested once, in
tests/test_glmm.py; here the CLI must carry metafor's values through unchanged)."""

from __future__ import annotations

import csv
import json
import math

import pytest
from glmm_ref import columns, record_name, records
from tolerances import GLMM_CMEL_SE, GLMM_TIGHT, close

RECORDS = {record_name(r): r for r in records()}


def _write(tmp_path, dataset: str, names: dict[str, str]) -> str:
    cols = columns(dataset)
    path = tmp_path / f"{dataset}.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["study", *names.values()])
        for i, label in enumerate(cols["slab"]):
            w.writerow([label, *(cols[src][i] for src in names)])
    return str(path)


OR_COLUMNS = {"ai": "ai", "n1i": "n1i", "ci": "ci", "n2i": "n2i"}
IRR_COLUMNS = {"x1i": "x1i", "t1i": "t1i", "x2i": "x2i", "t2i": "t2i"}
PLO_COLUMNS = {"xi": "xi", "ni": "ni"}


def _pool_json(run, path, *args):
    res = run("pool", path, "--format", "json", *args)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.mark.parametrize("model", ["UM.FS", "UM.RS", "CM.EL", "CM.AL"])
def test_pool_glmm_json_carries_the_fit(run, tmp_path, model):
    path = _write(tmp_path, "nielweise2007", OR_COLUMNS)
    out = _pool_json(run, path, "--measure", "OR", "--glmm", model.lower())
    ref = RECORDS[f"nielweise2007-OR-{model}"]["tight"]
    random, het, m = out["random"], out["heterogeneity"], out["model"]
    assert close(random["theta"], ref["estimate"], GLMM_TIGHT)
    assert close(random["ci_low"], math.exp(ref["ci_lb"]), GLMM_CMEL_SE)
    assert close(het["tau2"], ref["tau2"], GLMM_TIGHT)
    assert close(het["i2"], ref["I2"], GLMM_TIGHT)
    assert close(het["h2"], ref["H2"], GLMM_TIGHT)
    assert m["type"] == "glmm" and m["glmm"] == model and m["measure"] == "OR"
    assert m["k"] == ref["k"] == out["k"] and m["double_zero"] == "excluded"
    for key in ("loglik", "qe_wald", "qe_lrt", "qe_lrt_p", "converged", "iterations", "nodes"):
        assert key in m
    assert m["qe_df"] == ref["QE_df"] and m["converged"] is True
    assert het["q"] == m["qe_wald"]
    assert out["random"]["tau2_method"] == "ML"
    assert out["common"]["method"] == f"GLMM {model}"
    assert [e["study"] for e in out["excluded"]] == ["Yucel 2004"]
    assert all(s["weight_random"] is None for s in out["studies"])


def test_glmm_json_only_adds_keys(run, tmp_path):
    """Existing keys are a contract: a GLMM fit adds `model`, renames nothing."""
    path = _write(tmp_path, "nielweise2007", OR_COLUMNS)
    plain = _pool_json(run, path, "--measure", "OR")
    glmm = _pool_json(run, path, "--measure", "OR", "--glmm", "UM.FS")
    assert "model" not in plain
    assert set(glmm) == set(plain) | {"model"}
    for part in ("random", "common", "heterogeneity"):
        assert set(plain[part]) <= set(glmm[part]), part


def test_keep_double_zero_is_metafors_drop00_false(run, tmp_path):
    path = _write(tmp_path, "nielweise2007", OR_COLUMNS)
    res = run(
        "pool", path, "--format", "json", "--measure", "OR", "--glmm", "UM.FS", "--keep-double-zero"
    )
    out = json.loads(res.stdout)
    ref = RECORDS["nielweise2007-OR-UM.FS-keep00"]["tight"]
    assert out["model"]["double_zero"] == "kept" and out["model"]["uninformative"] == ["Yucel 2004"]
    assert out["model"]["qe_df"] == ref["QE_df"] == 17
    assert close(out["random"]["theta"], ref["estimate"], GLMM_TIGHT)
    assert "Yucel 2004" in res.stderr and "does not depend on the effect" in res.stderr


def test_irr_and_plo(run, tmp_path):
    path = _write(tmp_path, "nielweise2008", IRR_COLUMNS)
    out = _pool_json(run, path, "--glmm", "CM.EL")
    ref = RECORDS["nielweise2008-IRR-CM.EL"]["tight"]
    assert out["measure"] == "IRR" and close(out["random"]["theta"], ref["estimate"], GLMM_TIGHT)
    path = _write(tmp_path, "pritz1997", PLO_COLUMNS)
    out = _pool_json(run, path, "--glmm", "UM.FS")
    ref = RECORDS["pritz1997-PLO-UM.FS"]["tight"]
    assert out["measure"] == "PLO" and close(out["random"]["theta"], ref["estimate"], GLMM_TIGHT)
    assert close(out["heterogeneity"]["tau2"], ref["tau2"], GLMM_TIGHT)


def test_text_names_the_model_and_the_boundary(run, tmp_path):
    path = _write(tmp_path, "boundary", OR_COLUMNS)
    res = run("pool", path, "--measure", "OR", "--glmm", "CM.EL")
    assert res.exit_code == 0
    assert "Random effects (GLMM CM.EL, ML, z)" in res.stdout
    assert "conditional model with exact likelihood" in res.stdout
    assert "tau² is at the boundary 0" in res.stdout
    assert "boundary" in res.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--measure", "RR", "--glmm", "UM.FS"), "not RR"),
        (("--measure", "OR", "--glmm", "UM.FS", "--ci", "hk"), "--ci hk does not apply"),
        (("--measure", "OR", "--glmm", "CM.AL", "--common", "MH"), "--common MH does not apply"),
    ],
)
def test_bad_combinations_are_one_line_errors(run, tmp_path, args, message):
    path = _write(tmp_path, "nielweise2007", OR_COLUMNS)
    res = run("pool", path, *args)
    assert res.exit_code == 1
    errors = [line for line in res.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0]
    assert "Traceback" not in res.output


def test_non_count_tables_are_refused(run, tmp_path):
    means = tmp_path / "means.csv"
    means.write_text("study,m1i,sd1i,n1i,m2i,sd2i,n2i\nA,1,1,10,2,1,10\nB,1.5,1,12,2,1,11\n")
    res = run("pool", str(means), "--glmm", "UM.FS")
    assert res.exit_code == 1 and "not MD" in res.stderr
    given = tmp_path / "given.csv"
    given.write_text("study,yi,vi\nA,0.1,0.04\nB,0.3,0.05\n")
    res = run("pool", str(given), "--measure", "OR", "--glmm", "UM.FS")
    assert res.exit_code == 1 and "needs 2x2 event counts" in res.stderr
    assert "Traceback" not in res.output
    res = run("pool", str(given), "--glmm", "UM.XX")
    assert res.exit_code == 2


def test_api_pool_glmm(tmp_path):
    import ivigmeta

    path = _write(tmp_path, "nielweise2007", OR_COLUMNS)
    fit = ivigmeta.pool(path, measure="OR", glmm="um.rs")
    ref = RECORDS["nielweise2007-OR-UM.RS"]["tight"]
    assert fit.glmm is not None and fit.glmm.fit.model == "UM.RS"
    assert close(fit.random.theta, ref["estimate"], GLMM_TIGHT)
    assert fit.to_dict()["model"]["sigma2"] == fit.glmm.fit.sigma2


# ------------------------------------------------------------------------------------------
# loo, cumulative and subgroup refit the GLMM (each refit is pool --glmm on that subset)


def _subset(tmp_path, path: str, keep, name: str) -> str:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    out = tmp_path / name
    with out.open("w", newline="") as fh:
        csv.writer(fh).writerows([rows[0], *(rows[1 + i] for i in keep)])
    return str(out)


@pytest.mark.parametrize("model", ["UM.FS", "CM.EL"])
def test_loo_refits_the_glmm(run, tmp_path, model):
    path = _write(tmp_path, "collins1985a", OR_COLUMNS)
    res = run("loo", path, "--format", "json", "--measure", "OR", "--glmm", model)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    labels = list(columns("collins1985a")["slab"])
    assert len(out["omitted"]) == len(labels) - len(out["excluded"])  # double zeros excluded
    for row in (out["omitted"][0], out["omitted"][-1]):
        keep = [j for j, label in enumerate(labels) if label != row["study"]]
        own = _pool_json(
            run, _subset(tmp_path, path, keep, "l.csv"), "--measure", "OR", "--glmm", model
        )
        assert row["theta"] == pytest.approx(own["random"]["theta"], rel=1e-12)
        assert row["tau2"] == pytest.approx(own["heterogeneity"]["tau2"], abs=1e-12)
    text = run("loo", path, "--measure", "OR", "--glmm", model).stdout
    assert f"GLMM {model}" in text.splitlines()[0]


def test_cumulative_and_subgroup_refit_the_glmm(run, tmp_path):
    path = _write(tmp_path, "collins1985a", OR_COLUMNS)
    res = run("cumulative", path, "--format", "json", "--measure", "OR", "--glmm", "UM.FS",
              "--order", "study")  # fmt: skip
    assert res.exit_code == 0, res.output
    steps = json.loads(res.stdout)["steps"]
    first3 = [s["row"] - 2 for s in steps[:3]]
    own = _pool_json(
        run, _subset(tmp_path, path, first3, "c3.csv"), "--measure", "OR", "--glmm", "UM.FS"
    )
    assert steps[2]["theta"] == pytest.approx(own["random"]["theta"], rel=1e-12)
    # subgroups: each level is the GLMM of its studies, compared by Q between them
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    k = len(rows) - 1
    grouped = tmp_path / "g.csv"
    with grouped.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([*rows[0], "half"])
        for i, r in enumerate(rows[1:]):
            w.writerow([*r, "early" if i < k // 2 else "late"])
    sg = run("subgroup", str(grouped), "--by", "half", "--format", "json", "--measure", "OR",
             "--glmm", "UM.FS")  # fmt: skip
    assert sg.exit_code == 0, sg.output
    assert "compared by Q between their GLMM estimates" in sg.stderr
    data = json.loads(sg.stdout)["by"][0]
    early = _pool_json(
        run, _subset(tmp_path, path, range(k // 2), "e.csv"), "--measure", "OR", "--glmm", "UM.FS"
    )
    level = next(lv for lv in data["levels"] if lv["level"] == "early")
    assert level["theta"] == pytest.approx(early["random"]["theta"], rel=1e-12)
    assert data["test"]["method"] == "separate-GLMM UM.FS"
    refused = run("subgroup", str(grouped), "--by", "half", "--measure", "OR", "--glmm", "UM.FS",
                  "--between", "metareg")  # fmt: skip
    assert refused.exit_code == 2 and "use --between separate" in refused.output
