"""The alternative conventions tried on numbers that differ (ivigmeta/audit/explain.py)."""

from __future__ import annotations

import json
import math

import pytest
from conftest import ROOT, STUDIES

from ivigmeta.audit.explain import (
    Alternative,
    alternatives,
    describe,
    fit_q_mh,
    mantel_haenszel_theta,
    meta_rr_effects,
    random_to_common,
    refit_all,
    try_alternative,
)
from ivigmeta.errors import ModelError
from ivigmeta.results import AlternativeCheck

METAFOR = json.loads((ROOT / "tests" / "reference" / "metafor.json").read_text())


def _rma_mh(measure):
    return next(r for r in METAFOR["rma_mh"] if r["dataset"] == "ivig" and r["measure"] == measure)


def test_meta_rr_rule_changes_only_the_corrected_study(paper_fit):
    es = paper_fit.effects
    alt = meta_rr_effects(es)
    i = es.labels.index("Perricone")  # 12/12 vs 9/12: a zero non-event cell
    # meta's metabin (RR.Cochrane = FALSE): 0.5 added to the events and to the totals.
    assert alt.yi[i] == pytest.approx(math.log(12.5 / 12.5) - math.log(9.5 / 12.5), rel=1e-15)
    assert alt.vi[i] == pytest.approx(1 / 12.5 - 1 / 12.5 + 1 / 9.5 - 1 / 12.5, rel=1e-15)
    assert alt.yi[i] != es.yi[i]
    others = [j for j in range(es.k) if j != i]
    assert [alt.yi[j] for j in others] == [es.yi[j] for j in others]
    assert [alt.vi[j] for j in others] == [es.vi[j] for j in others]


def test_meta_rr_rule_applies_to_risk_ratios_with_a_correction_only(paper_fit):
    from ivigmeta.core.effects import compute_effects

    studies = paper_fit.effects.studies
    with pytest.raises(ModelError, match="risk ratio only"):
        meta_rr_effects(compute_effects(studies, measure="OR"))
    with pytest.raises(ModelError, match="changes nothing"):
        meta_rr_effects(compute_effects(studies, cc_policy="none"))


@pytest.mark.parametrize("measure", ["RR", "OR", "RD"])
def test_exact_mantel_haenszel_matches_metafor_rma_mh(measure):
    """metafor 3.8-1 rma.mh(measure = ...) on the paper's counts (tests/reference/metafor.json)."""
    from ivigmeta.core.effects import compute_effects
    from ivigmeta.io.studies import load_table

    es = compute_effects(load_table(str(STUDIES)).studies, measure=measure)
    ref = _rma_mh(measure)
    assert mantel_haenszel_theta(es, exact=True) == pytest.approx(ref["beta"], rel=1e-12)


def test_q_about_the_exact_mh_estimate_matches_metafor(paper_fit):
    """rma.mh's QE is Cochran's Q about the MH estimate: 26.42 on 7 df, I² = 73.5%."""
    ref = _rma_mh("RR")
    het = fit_q_mh(paper_fit.effects, paper_fit.options, exact=True).heterogeneity
    assert het.q == pytest.approx(ref["QE"], rel=1e-12)
    assert het.p_value == pytest.approx(ref["QEp"], rel=1e-9)
    assert het.i2 == pytest.approx(ref["I2"], rel=1e-12)


def test_corrected_and_exact_mh_agree_without_zero_cells(paper_fit):
    es = paper_fit.effects
    keep = [i for i, a in enumerate(es.cc_added) if not a]
    assert len(keep) == es.k - 1
    sub = es.subset(keep)
    assert mantel_haenszel_theta(sub) == mantel_haenszel_theta(sub, exact=True)
    # With the zero-cell study, RevMan's corrected cells move the estimate.
    assert mantel_haenszel_theta(es) != mantel_haenszel_theta(es, exact=True)


def test_q_mh_fit_uses_dl_on_its_own_q(paper_fit):
    ma = fit_q_mh(paper_fit.effects, paper_fit.options)
    het = ma.heterogeneity
    w = [1 / v for v in ma.effects.vi]
    c = sum(w) - sum(x * x for x in w) / sum(w)
    assert het.tau2 == pytest.approx(max(0.0, (het.q - het.df) / c), rel=1e-12)
    assert het.i2 == pytest.approx(100 * (het.q - het.df) / het.q, rel=1e-12)
    assert ma.random.tau2 == het.tau2
    assert het.q > paper_fit.heterogeneity.q  # the MH centre is not the IV minimiser of Q
    assert ma.common == paper_fit.common


def test_refit_all_reaches_subgroup_levels_and_keeps_the_between_test(paper_fit):
    from ivigmeta.methods.subgroup import subgroup_analysis

    sg = subgroup_analysis(paper_fit, ["timing"])
    alt = refit_all(sg, lambda ma: fit_q_mh(ma.effects, ma.options))
    for old, new in zip(sg.by[0].levels, alt.by[0].levels):
        assert new.analysis.effects == old.analysis.effects
        expected = fit_q_mh(old.analysis.effects, old.analysis.options).heterogeneity
        assert new.analysis.heterogeneity == expected
    assert alt.by[0].test == sg.by[0].test
    assert (
        alt.by[0].levels[0].analysis.heterogeneity.q != sg.by[0].levels[0].analysis.heterogeneity.q
    )


def test_random_to_common_mapping():
    assert random_to_common("random.estimate") == "common.estimate"
    assert random_to_common("range.smallest.estimate") is None
    assert random_to_common("heterogeneity.i2") is None
    assert random_to_common("studies[study=random].estimate") is None


def test_every_convention_the_issue_names_is_tried():
    names = " | ".join(a.name for a in alternatives())
    for fragment in (
        "no continuity correction",
        "events and totals only",
        "Mantel-Haenszel estimate",
        "common-effect instead of random",
        "tau² estimator REML",
        "Hartung-Knapp",
        "truncation instead of rounding",
    ):
        assert fragment in names


@pytest.fixture
def cache():
    from ivigmeta.audit.runner import CommandCache
    from ivigmeta.cli.reproduce import InProcessRunner

    return CommandCache(InProcessRunner(), str(STUDIES))


def _number(label="n", command="heterogeneity", path="i2", printed="58.9%", args=()):
    from ivigmeta.audit.published import PublishedNumber

    return PublishedNumber(1, label, command, tuple(args), path, printed)


def test_an_option_this_version_lacks_is_not_available(cache):
    alt = Alternative("tau² estimator NOPE", "--tau2 NOPE", ("--tau2", "NOPE"))
    got = try_alternative(alt, _number(), 63.84, cache)
    assert got.status == "not_available"
    assert "NOPE" in got.detail


def test_an_option_that_exists_is_run(cache):
    original = cache.get("heterogeneity", [])["i2"]
    hk = try_alternative(Alternative("HK", "--ci hk", ("--ci", "hk")), _number(), original, cache)
    assert hk.status == "unchanged"  # intervals do not move I²
    cc0 = try_alternative(Alternative("cc 0", "--cc 0", ("--cc", "0")), _number(), original, cache)
    assert cc0.status == "differs" and cc0.rounded == f"{cc0.value:.1f}" and cc0.value != original


def test_core_alternative_on_subgroup_numbers(cache):
    number = _number(
        command="subgroup",
        args=("--by", "timing"),
        path="by[column=timing].levels[level=after].i2",
        printed="67.7",
    )
    original = cache.get("subgroup", ["--by", "timing"])["by"][0]["levels"][0]["i2"]
    alts = {a.name: a for a in alternatives()}
    got = try_alternative(
        alts["Q centred on the Mantel-Haenszel estimate"], number, original, cache
    )
    assert got.status == "differs" and got.value > original
    trunc = try_alternative(alts["truncation instead of rounding"], number, original, cache)
    assert trunc.status == "gives_printed"
    common = try_alternative(
        alts["common-effect instead of random-effects"], number, original, cache
    )
    assert common.status == "not_applicable"


def test_describe():
    tried = [
        AlternativeCheck("a", "--a", "differs", 1.0, "1.0"),
        AlternativeCheck("b", "--b", "not_available", detail="no such option"),
        AlternativeCheck("c", "--c", "unchanged", 2.0, "2.0"),
    ]
    text = describe("58.9", "63.8", tried)
    assert text.startswith("No standard convention gives the printed 58.9 (data give 63.8)")
    assert (
        "a (1.0)" in text
        and "Not available in this version: --b" in text
        and "Unchanged by: c" in text
    )
    tried.append(AlternativeCheck("d", "--d", "gives_printed", 58.9, "58.9"))
    assert describe("58.9", "63.8", tried).startswith(
        "Printed 58.9 (data give 63.8) is reproduced by: d (58.9)"
    )


def test_count_conventions_are_not_offered_for_means(run, tmp_path):
    """A mean difference that differs is not explained by continuity corrections or
    Mantel-Haenszel, which do not concern it (nor called 'not available')."""
    (tmp_path / "dur.csv").write_text(
        (ROOT / "docs" / "examples" / "pregnancy_duration.csv").read_text()
    )
    (tmp_path / "paper.toml").write_text(
        '[paper]\ntitle = "t"\ndata = "dur.csv"\n\n[[number]]\nlabel = "MD"\ncommand = "pool"\n'
        'path = "random.estimate"\nprinted = "-0.20"\n'
    )
    result = run("reproduce", str(tmp_path / "paper.toml"), "--format", "json")
    assert result.exit_code == 1, result.output
    number = json.loads(result.stdout)["numbers"][0]
    text = number["explanation"]
    assert "tau² estimator REML" in text
    skipped = {a["name"]: a for a in number["alternatives"] if a["status"] == "not_applicable"}
    assert skipped["no continuity correction"]["detail"] == "does not concern MD"
    for absent in ("continuity correction", "Mantel-Haenszel", "--common MH", "Peto"):
        assert absent not in text, absent
