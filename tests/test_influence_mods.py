"""Influence diagnostics of meta-regression models against metafor 3.8-1's
influence(rma(yi, vi, mods = ..., method = ..., test = ...)) and baujat() (tests/reference/
metafor_influence_mods.json, written by tests/reference/make_reference_influence_mods.R on the
IVIG studies (~nk_criterion, ~timing, both) and dat.bcg (~ablat, ~alloc, both, ~1 under FE;
~alloc without its 5th study, where one level has a single study),
log RR, DL / REML / ML / PM / HE / SJ / FE, test z and knha)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import test_fuzz as fuzz
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from metafor_ref import effects
from tolerances import ABS_FLOOR, ITERATIVE, close

from ivigmeta.cli import cli
from ivigmeta.errors import ModelError
from ivigmeta.methods.influence_mods import influence_mods_analysis

REF = json.loads((Path(__file__).parent / "reference" / "metafor_influence_mods.json").read_text())
RECORDS = REF["influence_mods"]
FUZZ = fuzz.FUZZ
#: The closed-form estimators (and FE): the same formulas in double precision on both sides;
#: differences of nearly equal refits (DFFITS, DFBETAS) lose a few digits, hence 1e-10 rather
#: than 1e-12. Iterative ones against metafor's tight fits (threshold 1e-13): 1e-8.
CLOSED = 1e-10
ITER = 1e-8
assert ITER < ITERATIVE
FIELDS = {
    "rstudent": "rstudent",
    "dffits": "dffits",
    "cook_d": "cook_d",
    "cov_r": "cov_r",
    "tau2_del": "tau2_del",
    "QE_del": "qe_del",
    "hat": "hat",
    "weight": "weight",
    "baujat_x": "baujat_x",
    "baujat_y": "baujat_y",
}


def _effects(dataset: str, measure: str):
    """``bcg_drop5`` is dat.bcg without its 5th study (the script's ``bcg[-5, ]``)."""
    if dataset == "bcg_drop5":
        es = effects("bcg", measure)
        return es.subset([i for i in range(es.k) if i != 4])
    return effects(dataset, measure)


def _analysis(rec):
    return influence_mods_analysis(
        _effects(rec["dataset"], rec["measure"]),
        rec["columns"],
        rec["method"],
        "hk" if rec["test"] == "knha" else "z",
    )


@pytest.mark.parametrize(
    "rec",
    RECORDS,
    ids=[f"{r['dataset']}-{r['mods']}-{r['method']}-{r['test']}" for r in RECORDS],
)
def test_influence_with_moderators_matches_metafor(rec):
    assert "error" not in rec
    inf = _analysis(rec)
    rel = CLOSED if rec["method"] in ("DL", "HE", "SJ", "FE") else ITER
    assert inf.k == rec["k"] == len(inf.rows)
    assert [r.study.study for r in inf.rows] == rec["slab"]
    assert [e.study for e in inf.excluded] == rec["excluded"]
    assert [name for name, _ in inf.coefficients] == rec["ivigmeta_names"]
    assert close(inf.tau2, rec["tau2"], rel, ABS_FLOOR)
    assert all(close(b, r, rel) for (_, b), r in zip(inf.coefficients, rec["beta"]))
    bad = []
    for ref_key, attr in FIELDS.items():
        for i, (row, ref) in enumerate(zip(inf.rows, rec[ref_key])):
            if not close(getattr(row, attr), ref, rel):
                bad.append(f"{i} {ref_key}: {getattr(row, attr)!r} vs {ref!r}")
    for name, refs in rec["dfbs"].items():
        for i, (row, ref) in enumerate(zip(inf.rows, refs)):
            ours = row.dfbetas_by_coefficient[name]
            if not close(ours, ref, rel):
                bad.append(f"{i} dfbs {name}: {ours!r} vs {ref!r}")
    for i, (row, ref) in enumerate(zip(inf.rows, rec["beta_del"])):
        for name, b in zip(rec["ivigmeta_names"], ref):
            if not close(row.coefficients_del[name], b, rel):
                bad.append(f"{i} beta_del {name}: {row.coefficients_del[name]!r} vs {b!r}")
    assert not bad, bad
    assert [r.influential for r in inf.rows] == [bool(x) for x in rec["is_infl"]]
    assert ["*" if r.influential else "" for r in inf.rows] == rec["inf"]


def test_a_level_with_one_study_leaves_its_deletion_empty():
    """Deleting the only 'alternate' study leaves its dummy inestimable: metafor's coef.na, NA
    values, and the study flagged by its hat value of 1 alone (NA | TRUE)."""
    rec = next(r for r in RECORDS if r["dataset"] == "bcg_drop5" and r["method"] == "DL")
    row = _analysis(rec).rows[4]
    assert rec["rstudent"][4] is None and rec["is_infl"][4] is True
    assert row.rstudent is None and row.note and row.hat == 1.0
    assert row.influential and row.reasons == ("hat",)
    assert row.coefficients_del == dict.fromkeys(rec["ivigmeta_names"])


def test_dfbetas_is_the_largest_in_absolute_value():
    inf = influence_mods_analysis(effects("bcg", "RR"), ["ablat", "alloc"], "REML")
    for row in inf.rows:
        values = list(row.dfbetas_by_coefficient.values())
        assert row.dfbetas == max(values, key=abs)
        assert ("dfbetas" in row.reasons) == any(abs(x) > 1 for x in values)


def test_intercept_only_equals_the_plain_influence():
    """Without moderators the engine is metafor's influence() of the intercept-only model:
    the same numbers as ivigmeta.methods.influence (its own metafor parity is test_influence)."""
    from sensitivity_ref import fitted

    from ivigmeta.methods.influence import influence

    plain = influence(fitted("bcg", "RR", "DL", "z"))
    ours = influence_mods_analysis(effects("bcg", "RR"), (), "DL")
    for a, b in zip(plain.rows, ours.rows):
        for attr in ("rstudent", "dffits", "cook_d", "cov_r", "tau2_del", "qe_del", "hat"):
            assert close(getattr(b, attr), getattr(a, attr), 1e-12), attr
        assert close(b.dfbetas, a.dfbetas, 1e-12)
        assert close(b.baujat_y, a.baujat_y, 1e-12)


def test_a_refit_without_enough_studies_is_empty_as_metafor():
    """k - 1 = p: metafor's refit fails (NA); the hat value and weight remain."""
    es = effects("bcg", "RR").subset([0, 1, 2])
    inf = influence_mods_analysis(es, ["ablat"], "DL")
    assert all(r.dffits is None and r.rstudent is None and r.note for r in inf.rows)
    assert [round(r.hat, 4) for r in inf.rows] == [0.4812, 0.9927, 0.5261]  # metafor's
    assert all(r.dfbetas_by_coefficient == {"intercept": None, "ablat": None} for r in inf.rows)


def test_unsupported_options_are_clear_errors():
    es = effects("bcg", "RR")
    with pytest.raises(ModelError, match="--ci z or hk"):
        influence_mods_analysis(es, ["ablat"], "DL", "hc")
    with pytest.raises(ModelError, match="GENQ"):
        influence_mods_analysis(es, ["ablat"], "GENQ")


# ---------------------------------------------------------------------------------------------
# The command


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)


def _run(*args):
    return CliRunner().invoke(cli, ["influence", "studies.csv", *args], catch_exceptions=False)


def test_cli_json_keys_and_the_excluded_study():
    result = _run("--mod", "timing", "--tau2", "REML", "-f", "json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["model"] == "metareg" and payload["moderators"] == ["timing=before"]
    assert payload["tau2_method"] == "REML"
    assert set(payload["cutoffs"]) == {"dffits", "cook_d", "hat", "dfbetas"}
    assert [e["study"] for e in payload["excluded"]] == ["Jafarzadeh"]
    assert "moderator" in payload["excluded"][0]["reason"]
    assert "Jafarzadeh (row 3) left out" in result.stderr
    studies = payload["studies"]
    assert len(studies) == 7 and "Jafarzadeh" not in [s["study"] for s in studies]
    for key in (
        "study",
        "row",
        "rstudent",
        "dffits",
        "cook_d",
        "cov_r",
        "tau2_del",
        "qe_del",
        "hat",
        "weight",
        "dfbetas",
        "dfbetas_by_coefficient",
        "coefficients_del",
        "influential",
        "influential_by",
        "baujat_x",
        "baujat_y",
        "note",
    ):
        assert all(key in s for s in studies), key
    assert set(studies[0]["dfbetas_by_coefficient"]) == {"intercept", "timing=before"}
    rec = next(
        r for r in RECORDS if r["mods"] == "~timing" and r["method"] == "REML" and r["test"] == "z"
    )
    assert [s["dffits"] for s in studies] == pytest.approx(rec["dffits"], rel=ITER)


def test_cli_without_mod_keeps_the_plain_layout():
    payload = json.loads(_run("-f", "json").stdout)
    assert "dfbetas_by_coefficient" not in payload["studies"][0]
    assert "model" not in payload


@pytest.mark.parametrize("fmt", ["table", "csv", "markdown"])
def test_cli_other_formats(fmt):
    result = _run("--mod", "nk_criterion", "--ref", "no", "-f", fmt)
    assert result.exit_code == 0, result.output
    assert "Ahmadi" in result.stdout
    assert "nk_criterion=yes" in result.stdout


def test_cli_common_effect_meta_regression():
    result = _run("--mod", "nk_criterion", "--model", "common", "-f", "json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    rec = next(
        r
        for r in RECORDS
        if r["mods"] == "~nk_criterion" and r["method"] == "FE" and r["test"] == "z"
    )
    assert payload["tau2_method"] == "FE" and payload["tau2"] == 0
    assert [s["cook_d"] for s in payload["studies"]] == pytest.approx(rec["cook_d"], rel=CLOSED)


def test_cli_unknown_moderator_is_one_error_line():
    result = _run("--mod", "nk_critrion")
    assert result.exit_code == 1
    lines = [x for x in result.stderr.splitlines() if x and not x.startswith("note: ")]
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert "nk_criterion" in lines[0]  # did you mean
    assert "Traceback" not in result.output


def test_cli_categorical_must_be_a_moderator():
    result = _run("--mod", "nk_criterion", "--categorical", "timing")
    assert result.exit_code == 1 and "Error: " in result.stderr


def test_cli_plot_with_moderators(tmp_path):
    for figure in ("baujat", "diagnostics"):
        out = tmp_path / f"{figure}.svg"
        result = _run("--mod", "nk_criterion", "--plot", str(out), "--figure", figure)
        assert result.exit_code == 0, result.output
        assert out.read_text().startswith("<?xml")


# ---------------------------------------------------------------------------------------------
# Random tables (the rules of tests/test_fuzz.py): exit 0 with every row analysed or excluded
# and no NaN, or exit 1 with one `Error:` line; never a traceback.


@FUZZ
@given(
    table=fuzz.tables(),
    extra=fuzz.options,
    common=st.booleans(),
    fmt=st.sampled_from(["json", "table"]),
)
def test_random_tables_with_a_moderator(table, extra, common, fmt):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.csv"
        fuzz.write_csv(path, table)
        args = ["influence", str(path), "--mod", "grp", *[x for g in extra for x in g]]
        if common:
            args += ["--model", "common"]
        with fuzz.nan_guard() as nans:
            result = fuzz.invoke([*args, "-f", fmt])
        fuzz.check(result, len(table) - 1, fmt, nans)


@FUZZ
@given(
    rows=st.lists(st.tuples(fuzz.effects, fuzz.variances, fuzz.groups), min_size=1, max_size=8),
    numeric=st.booleans(),
    extra=fuzz.options,
)
def test_extreme_effects_with_a_moderator(rows, numeric, extra):
    table = [["study", "grp", "yi", "vi"]]
    for i, (y, v, g) in enumerate(rows):
        table.append([f"S{i}", str(i % 3) if numeric else g, str(y), str(v)])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.csv"
        fuzz.write_csv(path, table)
        args = ["influence", str(path), "--mod", "grp", *[x for g in extra for x in g]]
        with fuzz.nan_guard() as nans:
            result = fuzz.invoke([*args, "-f", "json"])
        fuzz.check(result, len(rows), "json", nans)
