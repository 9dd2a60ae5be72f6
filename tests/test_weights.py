"""`--weights COLUMN` (metafor's rma(weights = w)): user weights for the pooled estimate and
the meta-regression's coefficients, against tests/reference/metafor_weights.json (written by
tests/reference/make_reference_weights.R; dat.bcg, weights = tpos + cpos)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import ROOT
from metafor_ref import effects
from tolerances import CLOSED_FORM, ITERATIVE, close

from ivigmeta.core.pooling import fit
from ivigmeta.errors import ModelError
from ivigmeta.methods.metareg import metareg_analysis
from ivigmeta.results import FitOptions

REF = json.loads((Path(__file__).parent / "reference" / "metafor_weights.json").read_text())
# pool's common-effect interval is z (or --common-ci hk), so metafor's FE fit with test = "t" and
# no moderators has no counterpart there (metareg --model common --ci t covers it with moderators).
RECORDS = [
    r for r in REF["models"] if not (r["mods"] == "~1" and r["method"] == "FE" and r["test"] == "t")
]


def _weighted_bcg():
    es = effects("bcg", "RR")
    studies = tuple(
        replace(s, fields={**s.fields, "w": str(s.treat_events + s.control_events)})
        for s in es.studies
    )
    return replace(es, studies=studies)


def _tol(rec):
    return ITERATIVE if rec["method"] == "REML" else CLOSED_FORM


def _columns(mods):
    return [] if mods == "~1" else [m.strip() for m in mods.lstrip("~").split("+")]


@pytest.mark.parametrize(
    "rec", RECORDS, ids=[f"{r['mods']}-{r['method']}-{r['test']}" for r in RECORDS]
)
def test_user_weights_match_metafor(rec):
    es = _weighted_bcg()
    tol = _tol(rec)
    method = "DL" if rec["method"] == "FE" else rec["method"]
    if rec["mods"] == "~1":
        ma = fit(es, FitOptions(tau2_method=method, ci_method=rec["test"], weights="w"))
        est = ma.common if rec["method"] == "FE" else ma.random
        ours = [est.theta, est.se, est.statistic, est.p_value, est.ci_low_theta, est.ci_high_theta]
        theirs = [rec[k][0] for k in ("beta", "se", "zval", "pval", "ci_lb", "ci_ub")]
        assert all(close(a, b, tol) for a, b in zip(ours, theirs)), (ours, theirs)
        assert all(close(a, b, tol) for a, b in zip(est.weights, rec["weights"]))
        if rec["method"] != "FE":
            assert close(est.tau2, rec["tau2"], tol)
            assert close(est.pi_low_theta, rec["pi_lb"], tol)
            assert close(est.pi_high_theta, rec["pi_ub"], tol)
        fs = est.fit_statistics
        for block, values in (("ml", fs.ml_dict), ("reml", fs.reml_dict)):
            for key, value in values.items():
                assert close(value, rec[block][key], tol), (block, key, value, rec[block][key])
        return
    model = "common" if rec["method"] == "FE" else "random"
    reg = metareg_analysis(
        es,
        _columns(rec["mods"]),
        method,
        rec["test"],
        ref={"alloc": "alternate"} if "alloc" in rec["mods"] else None,
        model=model,
        weights="w",
    )
    for j, c in enumerate(reg.coefficients):
        for ours, key in (
            (c.estimate, "beta"),
            (c.se, "se"),
            (c.statistic, "zval"),
            (c.p_value, "pval"),
            (c.ci_low, "ci_lb"),
            (c.ci_high, "ci_ub"),
        ):
            assert close(ours, rec[key][j], tol), (c.name, key, ours, rec[key][j])
    assert close(reg.qm, rec["QM"], tol) and close(reg.qm_p_value, rec["QMp"], tol)
    assert close(reg.qe, rec["QE"], tol) and close(reg.tau2, rec["tau2"], tol)
    fs = reg.fit_statistics
    for block, values in (("ml", fs.ml_dict), ("reml", fs.reml_dict)):
        for key, value in values.items():
            assert close(value, rec[block][key], tol), (block, key, value, rec[block][key])


def test_weights_are_refused_where_they_do_not_apply(run, tmp_path):
    path = tmp_path / "bcgw.csv"
    lines = (ROOT / "docs" / "examples" / "bcg.csv").read_text().splitlines()
    header = lines[0].split(",")
    i, j = header.index("tpos"), header.index("cpos")
    out = [lines[0] + ",w"]
    for line in lines[1:]:
        cells = line.split(",")
        out.append(line + f",{int(cells[i]) + int(cells[j])}")
    path.write_text("\n".join(out) + "\n")
    ok = run("pool", str(path), "--weights", "w", "-f", "json")
    assert ok.exit_code == 0, ok.stderr
    assert "user weights of column 'w'" in run("pool", str(path), "--weights", "w").stdout
    for command in ("influence", "bias", "gosh", "blup"):
        bad = run(command, str(path), "--weights", "w")
        assert bad.exit_code == 1 and "not with --weights" in bad.stderr, command
    assert run("pool", str(path), "--weights", "w", "--ci", "hk").exit_code == 1
    assert run("pool", str(path), "--weights", "wt").exit_code == 1  # did-you-mean
    assert run("report", str(path), "--weights", "w", "-o", str(tmp_path / "r")).exit_code == 2
    reg = run("metareg", str(path), "--mod", "ablat", "--weights", "w", "-f", "json")
    assert reg.exit_code == 0, reg.stderr
    perm = run("metareg", str(path), "--mod", "ablat", "--weights", "w", "--permutations", "50")
    assert perm.exit_code == 1 and "not offered with --permutations" in perm.stderr


def test_a_bad_weight_names_its_cell():
    es = _weighted_bcg()
    bad = replace(
        es,
        studies=(replace(es.studies[0], fields={**es.studies[0].fields, "w": "-1"}),)
        + es.studies[1:],
    )
    with pytest.raises(Exception, match="a weight must be a non-negative number"):
        fit(bad, FitOptions(weights="w"))
    with pytest.raises(ModelError, match="--weights takes --ci z or t"):
        fit(es, FitOptions(weights="w", ci_method="hk"))
