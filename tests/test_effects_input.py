"""Rows that report only an effect, mixed tables, and the double-zero rule (ivigmeta.core.effects)."""

from __future__ import annotations

import json
import math

import pytest

from ivigmeta.core.distributions import z_crit
from ivigmeta.core.effects import compute_effects
from ivigmeta.core.pooling import fit, study_estimate
from ivigmeta.errors import DataError
from ivigmeta.io.studies import load_table, parse_table

Z = z_crit(0.95)


def test_effect_from_a_ci_on_the_ratio_scale():
    t = parse_table("study,estimate,ci_low,ci_high\nA,2.0,1.25,3.2\n", "f")
    es = compute_effects(t.studies, "RR")
    assert es.yi[0] == pytest.approx(math.log(2.0), rel=1e-15)
    assert es.vi[0] == pytest.approx(((math.log(3.2) - math.log(1.25)) / (2 * Z)) ** 2, rel=1e-14)
    assert es.sources == ("ci",) and not es.has_counts


def test_effect_from_a_ci_on_the_difference_scale():
    t = parse_table("study,estimate,ci_low,ci_high\nA,0.1,-0.05,0.25\n", "f")
    es = compute_effects(t.studies, "RD")
    assert es.yi[0] == 0.1
    assert es.vi[0] == pytest.approx((0.3 / (2 * Z)) ** 2, rel=1e-14)


def test_theta_se_and_yi_vi():
    t = parse_table("study,theta,se\nA,0.3,0.2\n", "f")
    es = compute_effects(t.studies)
    assert (es.yi[0], es.vi[0], es.sources) == (0.3, pytest.approx(0.04), ("se",))
    t = parse_table("study,yi,vi\nA,0.3,0.05\n", "f")
    es = compute_effects(t.studies)
    assert (es.yi[0], es.vi[0], es.sources) == (0.3, 0.05, ("vi",))


def test_full_precision_cis_reproduce_the_paper(studies_path, paper_fit):
    """Table 2 given as each study's RR and 95% CI (not counts) pools to the same estimates."""
    rows = ["study,year,estimate,ci_low,ci_high"]
    for s, est in zip(paper_fit.effects.studies, paper_fit.study_estimates):
        rows.append(f"{s.study},{s.year},{est.estimate!r},{est.ci_low!r},{est.ci_high!r}")
    es = compute_effects(parse_table("\n".join(rows) + "\n", "ci.csv").studies)
    ma = fit(es)
    assert ma.random.estimate == pytest.approx(paper_fit.random.estimate, rel=1e-12)
    assert ma.random.ci_low == pytest.approx(paper_fit.random.ci_low, rel=1e-12)
    assert ma.heterogeneity.q == pytest.approx(paper_fit.heterogeneity.q, rel=1e-10)
    assert set(es.sources) == {"ci"}


def test_mixed_table_counts_win_when_both_given():
    text = (
        "study,treat_events,treat_total,control_events,control_total,estimate,ci_low,ci_high\n"
        "A,5,10,3,10,9,8,10\n"
        "B,,,,,1.5,1.1,2.0\n"
    )
    t = parse_table(text, "f")
    es = compute_effects(t.studies)
    assert es.sources == ("counts", "ci")
    assert es.yi[0] == pytest.approx(math.log(0.5 / 0.3))
    assert [s.has_counts for s in t.studies] == [True, False]
    assert t.studies[1].n is None


def test_counts_only_helper_for_methods_that_need_counts():
    text = "study,ai,n1i,ci,n2i,yi,vi\nA,5,10,3,10,,\nB,,,,,0.2,0.04\nC,4,9,2,9,,\n"
    es = compute_effects(parse_table(text, "f").studies)
    assert not es.has_counts
    sub = es.counts_only("Mantel-Haenszel")
    assert sub.has_counts and sub.labels == ("A", "C")
    assert [(e.study, e.row) for e in sub.excluded] == [("B", 3)]
    assert "Mantel-Haenszel needs event counts" in sub.excluded[0].reason


def test_measure_column_must_match():
    t = parse_table("study,estimate,ci_low,ci_high,measure\nA,1.5,1.1,2.0,or\n", "f")
    assert compute_effects(t.studies, "OR").k == 1
    with pytest.raises(
        DataError, match=r"f, row 2, column 'measure': 'OR' but the analysis measure is RR"
    ):
        compute_effects(t.studies, "RR")


# ---------------------------------------------------------------------------------------------
# Double zeros

H = "study,treat_events,treat_total,control_events,control_total\n"
DZ = H + "A,5,10,3,10\nB,0,12,0,11\nC,4,9,2,9\nD,7,7,9,9\n"


def test_double_zero_excluded_from_ratio_measures():
    studies = parse_table(DZ, "f").studies
    rr = compute_effects(studies, "RR", keep_double_zero=False)
    assert rr.labels == ("A", "C", "D")
    assert [(e.study, e.row) for e in rr.excluded] == [("B", 3)]
    assert "no events in either arm" in rr.excluded[0].reason
    odds = compute_effects(studies, "OR", keep_double_zero=False)
    assert odds.labels == ("A", "C")
    assert [e.study for e in odds.excluded] == ["B", "D"]
    assert "events in every participant of both arms" in odds.excluded[1].reason


def test_double_zero_kept_for_rd_and_on_request():
    studies = parse_table(DZ, "f").studies
    assert compute_effects(studies, "RD", keep_double_zero=False).k == 4
    kept = compute_effects(studies, "RR", keep_double_zero=True)
    assert kept.k == 4 and kept.cc_added[1] == 0.5
    # metafor escalc(measure = "RR", ai = 0, n1i = 12, ci = 0, n2i = 11) (`unit_cases`)
    from metafor_ref import unit_case

    ref = unit_case("escalc_double_zero")
    assert (ref["ai"], ref["n1i"], ref["ci"], ref["n2i"]) == (0, 12, 0, 11)
    assert kept.studies[1].counts == (0, 12, 0, 11)
    assert kept.yi[1] == pytest.approx(ref["yi"], rel=1e-14)
    assert kept.vi[1] == pytest.approx(ref["vi"], rel=1e-14)


def test_cli_double_zero_default_and_flag(run, tmp_path):
    path = tmp_path / "dz.csv"
    path.write_text(DZ)
    data = json.loads(run("pool", str(path), "-f", "json").stdout)
    assert data["k"] == 3
    assert (
        data["excluded"] == [{"study": "B", "row": 3, "reason": data["excluded"][0]["reason"]}]
        and "double zero" in data["excluded"][0]["reason"]
    )
    table = run("pool", str(path)).stdout
    assert "Excluded: B (row 3): no events in either arm (double zero)" in table
    kept = json.loads(run("pool", str(path), "--keep-double-zero", "-f", "json").stdout)
    assert kept["k"] == 4 and kept["excluded"] == []
    for command, args in (
        ("heterogeneity", []),
        ("loo", []),
        ("bias", []),
        ("subgroup", ["--by", "study"]),
    ):
        out = json.loads(run(command, str(path), *args, "-f", "json").stdout)
        assert [e["study"] for e in out["excluded"]] == ["B"], command


def test_cli_marks_rows_derived_from_a_ci(run, tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text(
        "study,year,treat_events,treat_total,control_events,control_total,estimate,ci_low,ci_high\n"
        "A,2001,5,10,3,10,,,\nB,2002,,,,,1.5,1.1,2.0\nC,2003,4,9,2,9,,,\n"
    )
    result = run("pool", str(path), "-f", "json")
    assert "the effects given in row(s) 3 are read as RR (--measure)" in result.stderr
    data = json.loads(result.stdout)
    assert [s["source"] for s in data["studies"]] == ["counts", "ci", "counts"]
    assert data["studies"][1]["treat_events"] is None
    assert data["studies"][1]["estimate"] == pytest.approx(1.5)
    out = run("pool", str(path)).stdout
    assert "B (2002) [from CI]" in out
    assert "NR: events not reported" in out
    # The pooled rows print no event totals when a pooled study has none.
    common = next(line for line in out.splitlines() if line.startswith("Common effect"))
    assert "(" not in common.split("Common effect (IV)")[1].split("[")[0]
    csv_out = run("pool", str(path), "-f", "csv").stdout
    assert "source" in csv_out.splitlines()[0] and ",ci," in csv_out


def test_single_study_estimate_matches_the_given_ci():
    """A row given as RR 1.5 [1.1, 2.0] prints back its own estimate and, approximately, its CI."""
    t = parse_table("study,estimate,ci_low,ci_high\nA,1.5,1.1,2.0\n", "f")
    es = compute_effects(t.studies)
    est = study_estimate(es.yi[0], es.vi[0], "RR")
    assert est.estimate == pytest.approx(1.5)
    # The CI is rebuilt symmetric on the log scale around log(1.5) with the given width.
    assert est.ci_high / est.ci_low == pytest.approx(2.0 / 1.1, rel=1e-12)
    assert est.ci_low * est.ci_high == pytest.approx(1.5**2, rel=1e-12)


def test_load_table_from_path(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("study,yi,vi\nA,0.1,0.2\n")
    assert load_table(str(path)).studies[0].given.kind == "vi"


DZ_ALL = (
    H.rstrip("\n")
    + ",grp,x\n"
    + ("A,5,10,3,10,a,1\nB,0,12,0,11,a,2\nC,4,9,2,9,b,3\nD,7,17,9,19,b,4\nE,3,17,9,19,a,5\n")
)


@pytest.mark.parametrize(
    "command, args",
    [
        ("pool", []),
        ("heterogeneity", []),
        ("loo", []),
        ("bias", []),
        ("subgroup", ["--by", "grp"]),
        ("metareg", ["--mod", "x"]),
    ],
)
def test_every_command_accounts_for_the_excluded_study(run, tmp_path, command, args):
    """Table footnote, JSON ``excluded`` and a stderr note for the double-zero study, everywhere."""
    path = tmp_path / "dz.csv"
    path.write_text(DZ_ALL)
    table = run(command, str(path), *args)
    assert table.exit_code == 0, table.output
    assert "Excluded: B (row 3): no events in either arm (double zero)" in table.stdout
    assert f"{path}, row 3: B excluded" in table.stderr
    data = json.loads(run(command, str(path), *args, "-f", "json").stdout)
    assert [(e["study"], e["row"]) for e in data["excluded"]] == [("B", 3)]


@pytest.mark.parametrize("method", ["MH", "PETO"])
def test_methods_that_need_counts_refuse_effect_only_rows(run, tmp_path, method):
    path = tmp_path / "mixed.csv"
    path.write_text(
        "study,treat_events,treat_total,control_events,control_total,estimate,ci_low,ci_high\n"
        "A,5,10,3,10,,,\nB,,,,,1.5,1.1,2.0\nC,4,9,2,9,,,\n"
    )
    result = run("pool", str(path), "--common", method, "--measure", "OR")
    assert result.exit_code == 1
    line = result.stderr.strip().split("\n")[-1]
    assert line.startswith("Error: ") and "needs event counts" in line and "B (row 3)" in line
    assert run("pool", str(path), "--measure", "OR").exit_code == 0  # IV uses every row
