"""Study-level quantities against metafor's blup(), ranef(), fitted(), residuals(),
rstandard() and rstudent() (tests/reference/metafor_blup.json, written by
tests/reference/make_reference_blup.R:

    fit <- rma(yi, vi, mods = MODS, method = METHOD, control = list(threshold = 1e-13, ...))
    blup(fit); ranef(fit); fitted(fit); residuals(fit); rstandard(fit); rstudent(fit)

on dat.bcg (~1, ~ablat, ~factor(alloc)) and the IVIG studies (~1, ~nk_criterion), log RR).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from metafor_ref import effects
from tolerances import CLOSED_FORM, ITERATIVE, close

from ivigmeta.cli import cli
from ivigmeta.methods.blup import study_level_analysis

REF = json.loads((Path(__file__).parent / "reference" / "metafor_blup.json").read_text())
REFS = {"~factor(alloc)": {"alloc": "alternate"}, "~nk_criterion": {"nk_criterion": "no"}}
RECORDS = REF["study_level"]


def _columns(mods: str) -> list[str]:
    if mods == "~1":
        return []
    return [mods.lstrip("~").replace("factor(", "").rstrip(")")]


@pytest.mark.parametrize(
    "rec", RECORDS, ids=[f"{r['dataset']}-{r['mods']}-{r['method']}" for r in RECORDS]
)
def test_study_level_matches_metafor(rec):
    assert not rec["warnings"] and "error" not in rec
    es = effects(rec["dataset"], rec["measure"])
    sl = study_level_analysis(es, _columns(rec["mods"]), rec["method"], ref=REFS.get(rec["mods"]))
    rel = CLOSED_FORM if rec["method"] == "DL" else ITERATIVE
    assert sl.k == rec["k"] == len(sl.rows)
    assert close(sl.tau2, rec["tau2"], rel)
    bad = []
    for i, r in enumerate(sl.rows):
        ours = {
            ("blup", "pred"): r.blup,
            ("blup", "se"): r.blup_se,
            ("blup", "pi_lb"): r.blup_pi[0],
            ("blup", "pi_ub"): r.blup_pi[1],
            ("ranef", "pred"): r.ranef,
            ("ranef", "se"): r.ranef_se,
            ("ranef", "pi_lb"): r.ranef_pi[0],
            ("ranef", "pi_ub"): r.ranef_pi[1],
            ("rstandard", "resid"): r.rstandard.resid,
            ("rstandard", "se"): r.rstandard.se,
            ("rstandard", "z"): r.rstandard.z,
            ("rstudent", "resid"): r.rstudent.resid,
            ("rstudent", "se"): r.rstudent.se,
            ("rstudent", "z"): r.rstudent.z,
        }
        for (group, key), value in ours.items():
            if not close(value, rec[group][key][i], rel):
                bad.append(f"{i} {group}.{key}: {value!r} vs {rec[group][key][i]!r}")
        for name, value in (("fitted", r.fitted), ("residuals", r.residual)):
            if not close(value, rec[name][i], rel):
                bad.append(f"{i} {name}: {value!r} vs {rec[name][i]!r}")
    assert not bad, bad


def _run(*args):
    return CliRunner().invoke(cli, ["blup", "studies.csv", *args], catch_exceptions=False)


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)


def test_cli_json_layout():
    res = _run("--mod", "nk_criterion", "--format", "json")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["model"] == "metareg" and d["k"] == 8
    s = d["studies"][0]
    assert set(s) >= {"study", "blup", "ranef", "fitted", "residual", "rstandard", "rstudent"}
    assert set(s["blup"]) == {"pred", "se", "pi_lb", "pi_ub"}
    assert set(s["rstudent"]) == {"resid", "se", "z"}


def test_cli_table_and_csv():
    res = _run()
    assert res.exit_code == 0 and "Study-level quantities" in res.stdout
    res = _run("--format", "csv")
    assert res.exit_code == 0
    assert res.stdout.splitlines()[0].startswith("study,row,blup_pred,blup_se")
    assert len(res.stdout.splitlines()) == 9


@pytest.mark.parametrize(
    "args, message",
    [
        (("--mod", "nope"), "no column 'nope'"),
        (("--ref", "yes"), "--ref applies to moderators"),
        (("--categorical", "timing"), "--categorical timing"),
    ],
)
def test_cli_errors(args, message):
    res = _run(*args)
    assert res.exit_code == 1
    assert res.stderr.startswith("Error: ") and message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_single_study_is_an_error(tmp_path):
    p = tmp_path / "one.csv"
    p.write_text(
        "study,year,treat_events,treat_total,control_events,control_total\nA,2000,3,10,5,10\n"
    )
    res = CliRunner().invoke(cli, ["blup", str(p)], catch_exceptions=False)
    assert res.exit_code == 1 and "at least 2 usable studies" in res.stderr


COMMON = REF["common_level"]


@pytest.mark.parametrize(
    "rec",
    COMMON,
    ids=[f"{r['dataset']}-{r['common']}-{r['measure']}-{r['mods']}" for r in COMMON],
)
def test_common_effect_study_level_matches_metafor(rec):
    from ivigmeta.api import MetaAnalysisFit  # noqa: F401  (the API path is what blup runs)
    from ivigmeta.core.pooling import fit
    from ivigmeta.methods.blup import counts_study_level
    from ivigmeta.results import FitOptions

    assert "error" not in rec
    es = effects(rec["dataset"], rec["measure"])
    if rec["common"] == "IV":
        sl = study_level_analysis(es, _columns(rec["mods"]), "FE", ref=REFS.get(rec["mods"]))
    else:
        sl = counts_study_level(fit(es, FitOptions(common_method=rec["common"])))
    assert sl.model == ("common" if rec["mods"] == "~1" else "metareg")
    bad = []
    for i, r in enumerate(sl.rows):
        ours = {
            ("rstandard", "resid"): r.rstandard.resid,
            ("rstandard", "se"): r.rstandard.se,
            ("rstandard", "z"): r.rstandard.z,
            ("rstudent", "resid"): r.rstudent.resid,
            ("rstudent", "se"): r.rstudent.se,
            ("rstudent", "z"): r.rstudent.z,
        }
        if "blup" in rec:
            ours |= {
                ("blup", "pred"): r.blup,
                ("blup", "se"): r.blup_se,
                ("blup", "pi_lb"): r.blup_pi[0],
                ("blup", "pi_ub"): r.blup_pi[1],
            }
        for (group, key), value in ours.items():
            if not close(value, rec[group][key][i], CLOSED_FORM):
                bad.append(f"{i} {group}.{key}: {value!r} vs {rec[group][key][i]!r}")
        for name, value in (("fitted", r.fitted), ("residuals", r.residual)):
            if not close(value, rec[name][i], CLOSED_FORM):
                bad.append(f"{i} {name}: {value!r} vs {rec[name][i]!r}")
    assert not bad, bad


def test_blup_model_common_on_the_command_line():
    peto = _run("--model", "common", "--common", "PETO", "--measure", "OR", "-f", "json")
    assert peto.exit_code == 0, peto.output
    data = json.loads(peto.stdout)
    assert data["model"] == "common" and len(data["studies"]) == 8
    bad = _run("--model", "common", "--common", "MH", "--mod", "nk_criterion")
    assert bad.exit_code == 1 and "has no moderators" in bad.output
