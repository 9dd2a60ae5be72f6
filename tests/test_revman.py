"""RevMan 5 files: reading (.rm5 and the CSV export), hostile and bad files, --analysis on the
commands, ``ivigmeta revman`` and ``ivigmeta reproduce FILE.rm5`` against the numbers RevMan
stored (tests/data/revman/README.md says where each file comes from)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import ROOT

from ivigmeta.api import audit_revman, read, read_revman
from ivigmeta.errors import DataError

DATA = ROOT / "tests" / "data" / "revman"
FLEISS = DATA / "Fleiss1993.rm5"
FLEISS_CSV = DATA / "Fleiss93_CR.csv"


def test_fleiss_rm5_is_read_with_its_settings():
    review = read_revman(FLEISS)
    assert review.id == "861409081811071967"
    assert review.title == "Examples from Fleiss 1993"
    assert review.numbers() == ["1.1", "1.2"]
    a = review.analysis("1.1")
    assert (a.data_type, a.measure, a.method, a.model) == ("dichotomous", "OR", "MH", "fixed")
    assert a.k == 7 and a.studies == 7
    assert a.labels["group_1"] == "Aspirin" and a.labels["graph_2"] == "Favours control"
    assert [r.study for r in a.rows][:2] == ["MRC-1", "CDP"]
    assert a.rows[0].year == "1974"
    b = review.analysis("1.2")
    assert (b.data_type, b.measure, b.has_results) == ("continuous", "SMD", False)


def test_every_number_revman_stored_in_fleiss_is_reproduced():
    result = audit_revman(FLEISS)
    s = result.summary
    # 7 studies x 6 numbers + 10 pooled numbers (tau² of a fixed-effect analysis among them);
    # outcome 1.2 was saved without RevMan's results: only its df is stored
    assert s.total == 7 * 6 + 10 + 1
    assert s.reproduced == s.total and s.ok
    labels = {n.label for n in result.numbers}
    assert "1.1 estimate" in labels and "1.1 ISIS-2: weight" in labels
    assert [n.label for n in result.numbers if not n.label.startswith("1.1")] == ["1.2 df"]


def test_every_number_of_the_csv_export_is_reproduced_including_the_md_analysis():
    result = audit_revman(FLEISS_CSV)
    assert result.summary.ok
    md = [n for n in result.numbers if n.label.startswith("1.2")]
    # 5 studies x 5 numbers (the export has no variance column) + 10 pooled numbers
    assert len(md) == 5 * 5 + 10
    est = next(n for n in md if n.label == "1.2 estimate")
    assert math.isclose(est.recomputed, -0.70938839, rel_tol=1e-7)


def test_a_changed_stored_number_is_caught(tmp_path, run):
    text = FLEISS.read_text(encoding="latin-1")
    changed = text.replace('EFFECT_SIZE="0.8968655609130709"', 'EFFECT_SIZE="0.8968665609130709"')
    assert changed != text
    path = tmp_path / "changed.rm5"
    path.write_text(changed, encoding="latin-1")
    result = run("reproduce", str(path), "--format", "json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    bad = [n for n in data["numbers"] if not n["ok"]]
    assert [n["label"] for n in bad] == ["1.1 estimate"]
    assert "relative 1e-6" in bad[0]["explanation"]
    assert "differs: number" in result.stderr and "1.1 estimate" in result.stderr


def test_reproduce_rm5_table_and_exit_status(run):
    result = run("reproduce", str(FLEISS))
    assert result.exit_code == 0, result.stderr
    assert "53 of 53 reproduce" in result.stdout


def test_pool_reads_an_analysis_with_its_settings(run):
    result = run("pool", str(FLEISS), "--analysis", "1.1", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    # RevMan's MH odds ratio (no zero cells here, so raw and corrected counts agree)
    assert math.isclose(data["common"]["estimate"], 0.8968655609130709, rel_tol=1e-12)
    assert data["common"]["method"] == "MH"
    assert "RevMan's settings are the defaults (OR, MH, fixed effect, 95% CI)" in result.stderr
    # an option given on the command line wins over the file's setting
    rr = json.loads(
        run("pool", str(FLEISS), "--analysis", "1.1", "--measure", "RR", "--format", "json").stdout
    )
    assert rr["measure"] == "RR"


def test_pool_reads_the_csv_export_and_a_continuous_analysis(run):
    result = run("pool", str(FLEISS_CSV), "--analysis", "1.2", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert math.isclose(data["common"]["estimate"], -0.7093883888456183, rel_tol=1e-12)


def test_revman_lists_the_analyses(run):
    result = run("revman", str(FLEISS), "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["review"] == {
        "id": "861409081811071967",
        "doi": "",
        "title": "Examples from Fleiss 1993",
    }
    first = data["analyses"][0]
    assert first["number"] == "1.1" and first["k"] == 7 and first["revman"]["df"] == 6
    assert first["revman"]["estimate"] == 0.8968655609130709
    table = run("revman", str(FLEISS))
    assert "1.1" in table.stdout and "0.90 [0.84, 0.96]" in table.stdout
    assert "not stored" in table.stdout
    csv_out = run("revman", str(FLEISS_CSV), "--format", "csv")
    assert csv_out.stdout.splitlines()[0].startswith("number,name,")


# ---------------------------------------------------------------------------------------------
# Bad and hostile files: one line, exit 1, nothing read from elsewhere.


def _error(run, *args):
    result = run(*args)
    assert result.exit_code == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: ")
    assert "Traceback" not in result.stderr
    return lines[-1]


def test_an_unknown_analysis_lists_the_valid_ones(run):
    msg = _error(run, "pool", str(FLEISS), "--analysis", "3.1")
    assert "no analysis '3.1' (analyses: 1.1, 1.2)" in msg


def test_several_analyses_need_one_chosen(run):
    msg = _error(run, "pool", str(FLEISS))
    assert "choose one with --analysis" in msg and "1.1, 1.2" in msg


def test_analysis_on_a_plain_table_is_an_error(run):
    msg = _error(run, "pool", str(ROOT / "studies.csv"), "--analysis", "1.1")
    assert "--analysis 1.1 applies to RevMan files" in msg


BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<COCHRANE_REVIEW><COVER_SHEET><TITLE>&lol3;</TITLE></COVER_SHEET></COCHRANE_REVIEW>
"""
EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<COCHRANE_REVIEW><COVER_SHEET><TITLE>&x;</TITLE></COVER_SHEET></COCHRANE_REVIEW>
"""


@pytest.mark.parametrize("text", [BOMB, EXTERNAL], ids=["entity-expansion", "external-entity"])
def test_hostile_xml_is_refused(tmp_path, run, text):
    path = tmp_path / "hostile.rm5"
    path.write_text(text)
    for command in (("revman",), ("reproduce",), ("pool", "--analysis", "1.1")):
        msg = _error(run, command[0], str(path), *command[1:])
        assert "refused" in msg and "root:" not in msg


def test_truncated_file(tmp_path, run):
    data = FLEISS.read_bytes()
    path = tmp_path / "cut.rm5"
    path.write_bytes(data[: len(data) // 2])
    msg = _error(run, "revman", str(path))
    assert "malformed or truncated" in msg and "line" in msg


def test_xml_that_is_not_revman_and_binary_garbage(tmp_path, run):
    other = tmp_path / "other.rm5"
    other.write_text('<?xml version="1.0"?><html><body/></html>')
    assert "the XML root is <html>" in _error(run, "revman", str(other))
    garbage = tmp_path / "garbage.rm5"
    garbage.write_bytes(bytes(range(256)) * 40)
    assert "not a readable RevMan file" in _error(run, "reproduce", str(garbage))


def test_an_unsupported_outcome_type_is_named_and_the_rest_read(tmp_path, run):
    text = FLEISS.read_text(encoding="latin-1")
    ipd = '<IPD_OUTCOME NO="3"><NAME>Time to death</NAME></IPD_OUTCOME>\n</COMPARISON>'
    path = tmp_path / "ipd.rm5"
    path.write_text(text.replace("</COMPARISON>", ipd), encoding="latin-1")
    result = run("revman", str(path), "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert [a["number"] for a in data["analyses"]] == ["1.1", "1.2"]
    assert data["unsupported"][0]["number"] == "1.3"
    assert "IPD outcomes (Time to death) are not supported" in result.stderr
    msg = _error(run, "pool", str(path), "--analysis", "1.3")
    assert "analysis 1.3 cannot be read" in msg


def test_not_estimable_rows_are_listed_not_dropped_silently(tmp_path):
    text = FLEISS.read_text(encoding="latin-1")
    text = text.replace(
        'ESTIMABLE="YES" EVENTS_1="32" EVENTS_2="38"', 'ESTIMABLE="NO" EVENTS_1="0" EVENTS_2="0"'
    )
    path = tmp_path / "zero.rm5"
    path.write_text(text, encoding="latin-1")
    table = read(path, analysis="1.1")
    assert len(table.studies) == 6
    assert any("study 'GASP' excluded" in n and "no events in either arm" in n for n in table.notes)


def test_read_rejects_an_analysis_for_in_memory_tables():
    with pytest.raises(DataError, match="RevMan files only"):
        read({"study": ["a"], "yi": ["1"], "vi": ["1"]}, analysis="1.1")


def test_fixture_files_exist():
    assert isinstance(FLEISS, Path) and FLEISS.exists() and FLEISS_CSV.exists()


SYNTHETIC = {
    # file: (analyses read, stored numbers checked)
    "synthetic_dichotomous.rm5": (14, 890),
    "synthetic_continuous.rm5": (5, 215),
    "synthetic_generic.rm5": (3, 219),
}


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_synthetic_files_every_stored_number_reproduced(name):
    """Files in RevMan's schema whose numbers tests/reference/make_reference_revman.R computed
    in R (metafor's rma.mh with corrected counts, rma.peto, rma with DL tau² from the method's
    Chi², the subgroup test by rma(..., method = "FE")): random and fixed, MH / IV / Peto, RR /
    OR / RD, MD / SMD, generic log RR, O - E, zero cells, a double zero, subgroups."""
    review = read_revman(DATA / name)
    analyses, numbers = SYNTHETIC[name]
    assert len(review.analyses) == analyses
    result = audit_revman(DATA / name)
    bad = [(n.label, n.printed, n.recomputed) for n in result.numbers if not n.ok]
    assert bad == []
    assert result.summary.total == numbers


def test_synthetic_double_zero_is_not_estimable_and_subgroup_test_is_checked():
    review = read_revman(DATA / "synthetic_dichotomous.rm5")
    a = review.analysis("2.1")
    assert a.k == 17 and len(a.rows) == 18
    assert [r.study for r in a.rows if not r.estimable] == ["Yucel"]
    labels = {n.label for n in audit_revman(DATA / "synthetic_dichotomous.rm5").numbers}
    assert {"1.1 subgroup differences Chi²", "1.1.2 Tau²", "1.1.3 estimate"} <= labels


def test_a_subgroup_analysis_reads_only_its_studies(run):
    result = run(
        "pool", str(DATA / "synthetic_dichotomous.rm5"), "--analysis", "1.2.2", "--format", "json"
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert len(data["studies"]) == 2
    whole = read(DATA / "synthetic_dichotomous.rm5", analysis="1.1")
    assert "subgroup" in whole.columns
    assert {s.fields["subgroup"] for s in whole.studies} == {
        "Random allocation",
        "Alternate allocation",
        "Systematic allocation",
    }


def _with_results():
    for name in ("Fleiss1993.rm5", *sorted(SYNTHETIC)):
        for a in read_revman(DATA / name).analyses:
            if a.has_results:
                yield pytest.param(name, a.number, a.model, id=f"{name}:{a.number}")


@pytest.mark.parametrize(("name", "number", "model"), list(_with_results()))
def test_pool_with_revmans_methods_gives_the_stored_pooled_result(run, name, number, model):
    """``pool FILE.rm5 --analysis N`` (RevMan's methods by default) gives the estimate and Chi²
    RevMan stored, for the analysis's own model, through the ordinary engine path."""
    a = read_revman(DATA / name).analysis(number)
    result = run("pool", str(DATA / name), "--analysis", number, "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    pooled = data["random" if model == "random" else "common"]
    assert math.isclose(pooled["estimate"], a.stored["EFFECT_SIZE"], rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(pooled["ci_low"], a.stored["CI_START"], rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(data["heterogeneity"]["q"], a.stored["CHI2"], rel_tol=1e-9)
    if model == "random":
        assert math.isclose(
            data["heterogeneity"]["tau2"], a.stored["TAU2"], rel_tol=1e-9, abs_tol=1e-12
        )


def test_software_metafor_on_a_revman_file_uses_metafors_conventions(run):
    """Zero cells: RevMan's MH uses the corrected counts, metafor's rma.mh the raw ones."""
    path = str(DATA / "synthetic_dichotomous.rm5")
    revman = json.loads(run("pool", path, "--analysis", "2.1", "--format", "json").stdout)
    metafor = json.loads(
        run("pool", path, "--analysis", "2.1", "--software", "metafor", "--format", "json").stdout
    )
    stored = read_revman(path).analysis("2.1").stored["EFFECT_SIZE"]
    assert math.isclose(revman["common"]["estimate"], stored, rel_tol=1e-12)
    assert not math.isclose(metafor["common"]["estimate"], stored, rel_tol=1e-4)


def test_software_revman_refuses_other_estimators(run):
    msg = _error(run, "pool", str(FLEISS), "--analysis", "1.1", "--tau2", "REML")
    assert "--software revman takes --tau2 DL and --ci z" in msg
    ok = run("pool", str(FLEISS), "--analysis", "1.1", "--tau2", "REML", "--software", "metafor")
    assert ok.exit_code == 0, ok.stderr


def test_software_revman_on_a_csv_table(run):
    result = run("pool", str(ROOT / "studies.csv"), "--software", "revman", "--format", "json")
    assert result.exit_code == 0, result.stderr
    plain = json.loads(run("pool", str(ROOT / "studies.csv"), "--format", "json").stdout)
    data = json.loads(result.stdout)
    # inverse variance: RevMan's DL is metafor's
    assert math.isclose(data["random"]["estimate"], plain["random"]["estimate"], rel_tol=1e-12)


# ---------------------------------------------------------------------------------------------
# batch over RevMan files


def _csv_rows(text):
    import csv
    import io

    return list(csv.DictReader(io.StringIO(text)))


def test_batch_over_a_folder_gives_one_row_per_analysis(run, tmp_path):
    for name in ("Fleiss1993.rm5", "synthetic_dichotomous.rm5"):
        (tmp_path / name).write_bytes((DATA / name).read_bytes())
    result = run("batch", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    rows = _csv_rows(result.stdout)
    assert len(rows) == 2 + 14
    assert "16 analyses of 2 RevMan files: 16 pooled, 0 with a changed conclusion" in result.stderr
    by_key = {(r["review_id"], r["analysis"]): r for r in rows}
    fleiss = by_key[("861409081811071967", "1.1")]
    # RevMan's methods by default: the recomputed estimate is the stored one
    assert math.isclose(float(fleiss["estimate"]), float(fleiss["revman_estimate"]), rel_tol=1e-12)
    assert fleiss["software"] == "revman" and fleiss["conclusion_changed"] == "false"
    for r in rows:
        if r["revman_estimate"]:
            assert math.isclose(
                float(r["estimate"]), float(r["revman_estimate"]), rel_tol=1e-9, abs_tol=1e-12
            ), r["analysis"]


def test_batch_reanalysis_with_other_methods_flags_changed_conclusions(run):
    result = run("batch", str(DATA), "--tau2", "REML", "--ci", "hk", "--revman-model", "random")
    assert result.exit_code == 0, result.stderr
    rows = _csv_rows(result.stdout)
    assert {r["software"] for r in rows} == {"metafor"}
    changed = [r for r in rows if r["conclusion_changed"] == "true"]
    assert changed, "REML + Hartung-Knapp changes some conclusions of these analyses"
    for r in changed:
        assert r["significant"] != r["revman_significant"]
    # a changed conclusion is computed, not assumed: the CI and the null decide it
    r = changed[0]
    log = r["measure"] in ("RR", "OR")
    null = 1.0 if log else 0.0
    excludes = float(r["ci_low"]) > null or float(r["ci_high"]) < null
    assert (r["significant"] == "true") == excludes


def test_batch_revman_jsonl_and_a_bad_file_in_the_folder(run, tmp_path):
    (tmp_path / "a.rm5").write_bytes(FLEISS.read_bytes())
    (tmp_path / "broken.rm5").write_text("<COCHRANE_REVIEW><ANALYSES")
    result = run("batch", str(tmp_path), "-f", "jsonl")
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["analysis"] for r in rows] == ["1.1", "1.2", None]
    assert rows[1]["revman_estimate"] is None and rows[1]["status"] == "ok"
    broken = rows[2]
    assert broken["file"].endswith("broken.rm5") and broken["status"] == "error"
    assert "malformed or truncated" in broken["reason"]
    assert "3 analyses of 2 RevMan files: 2 pooled" in result.stderr


def test_batch_of_a_plain_table_still_needs_a_group(run):
    result = run("batch", str(ROOT / "studies.csv"))
    assert result.exit_code == 2
    assert "Missing option '-g' / '--group'" in result.stderr


def test_a_plain_doctype_is_read_but_entities_are_not(tmp_path):
    text = FLEISS.read_text(encoding="latin-1")
    head, rest = text.split("\n", 1)
    path = tmp_path / "doctype.rm5"
    path.write_text(f"{head}\n<!DOCTYPE COCHRANE_REVIEW>\n{rest}", encoding="latin-1")
    assert audit_revman(path).summary.total == 53
    bad = tmp_path / "entity.rm5"
    bad.write_text(
        f'{head}\n<!DOCTYPE COCHRANE_REVIEW [<!ENTITY e "x">]>\n{rest}', encoding="latin-1"
    )
    with pytest.raises(DataError, match="refused"):
        read_revman(bad)


def test_subgroup_of_a_revman_outcome_uses_its_subgroups_as_revman_compares_them(run):
    path = str(DATA / "synthetic_dichotomous.rm5")
    result = run("subgroup", path, "--analysis", "1.1", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    by = data["by"][0] if "by" in data else data
    text = json.dumps(by)
    assert "Alternate allocation" in text
    # random-effects outcome: Q between the subgroups' DL estimates is RevMan's test
    stored = read_revman(path).analysis("1.1").stored["Q"]
    assert f"{stored:.6f}"[:6] in text or any(
        isinstance(v, float) and math.isclose(v, stored, rel_tol=1e-9) for v in _floats_in(by)
    )
    plain = run("subgroup", str(ROOT / "studies.csv"))
    assert plain.exit_code == 2 and "Missing option '--by'." in plain.stderr


def _floats_in(obj):
    if isinstance(obj, float):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _floats_in(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _floats_in(v)


def test_pool_json_says_revmans_methods_were_used(run):
    data = json.loads(run("pool", str(FLEISS), "--analysis", "1.1", "--format", "json").stdout)
    assert data["software"] == "revman"
    plain = json.loads(run("pool", str(ROOT / "studies.csv"), "--format", "json").stdout)
    assert "software" not in plain


def test_report_of_a_revman_analysis(run, tmp_path):
    out = tmp_path / "rep"
    result = run(
        "report", str(DATA / "synthetic_dichotomous.rm5"), "--analysis", "1.1", "-o", str(out)
    )
    assert result.exit_code == 0, result.stderr
    text = (out / "report.md").read_text()
    assert "Mantel-Haenszel common-effect model" in text
    assert "RevMan 5's statistical methods" in text
    assert "## Subgroup analysis" in text
