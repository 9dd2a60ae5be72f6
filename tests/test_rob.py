"""ROBINS-I tables: reading, the paper's overall-judgement rules, the summary and the CLI.

The rules are those of the paper's Methods ("Assessment of risk of bias"), which are ROBINS-I's
(Sterne et al. 2016): low if low in all domains; moderate if moderate in at least one domain but
serious or critical in none; serious if serious in at least one but critical in none; critical if
critical in at least one; no information when nothing indicates serious or critical risk and
information is lacking in a key domain (every domain is key here).
"""

from __future__ import annotations

import csv
import io
import itertools
import json

import pytest
from conftest import ROOT

from ivigmeta.errors import DataError
from ivigmeta.methods.rob import DOMAINS, LEVELS, overall_judgement, parse_level, parse_rob

EXAMPLE = ROOT / "docs" / "examples" / "rob_example.csv"
HEADER = (
    "study,confounding,selection,classification,deviations,missing_data,measurement,reported_result"
)


def table(*rows: str, header: str = HEADER) -> str:
    return header + "\n" + "\n".join(rows) + "\n"


@pytest.mark.parametrize(
    "judgements, expected",
    [
        (["low"] * 7, "low"),
        (["low"] * 6 + ["moderate"], "moderate"),
        (["moderate"] * 7, "moderate"),
        (["low", "moderate", "serious", "low", "low", "moderate", "low"], "serious"),
        (["serious", "critical", "low", "low", "low", "low", "low"], "critical"),
        (["low"] * 6 + ["critical"], "critical"),
        (["low"] * 6 + ["no information"], "no information"),
        (["moderate", "no information", "low", "low", "low", "low", "low"], "no information"),
        # Serious or critical risk is a clear indication: lacking information elsewhere does not matter.
        (["serious", "no information", "low", "low", "low", "low", "low"], "serious"),
        (["critical", "no information", "low", "low", "low", "low", "low"], "critical"),
    ],
)
def test_overall_judgement_rules(judgements, expected):
    assert overall_judgement(judgements) == expected


def test_overall_judgement_every_combination_of_three_domains():
    """Each rule of the paper, checked over every combination of levels in three domains
    (with the other four low)."""
    for combo in itertools.product(LEVELS, repeat=3):
        levels = [*combo, "low", "low", "low", "low"]
        got = overall_judgement(levels)
        if "critical" in combo:
            assert got == "critical"
        elif "serious" in combo:
            assert got == "serious"
        elif "no information" in combo:
            assert got == "no information"
        elif "moderate" in combo:
            assert got == "moderate"
        else:
            assert got == "low" and set(combo) == {"low"}


@pytest.mark.parametrize(
    "text, level",
    [
        ("Low", "low"),
        ("moderate risk", "moderate"),
        ("SERIOUS", "serious"),
        ("Critical risk of bias", "critical"),
        ("No information", "no information"),
        ("NI", "no information"),
        ("no_information", "no information"),
        ("unclear", None),
        ("high", None),
        ("", None),
    ],
)
def test_parse_level(text, level):
    assert parse_level(text) == level


def test_overall_computed_or_given_and_contradictions_reported():
    rob = parse_rob(
        table(
            "A,low,low,low,low,low,low,low",
            "B,moderate,low,low,low,low,low,low,",
            "C,serious,low,low,low,low,low,low,moderate",
            "D,low,low,low,low,low,low,moderate,moderate",
            header=HEADER + ",overall",
        ),
        "rob.csv",
    )
    a, b, c, d = rob.studies
    assert (a.overall, a.overall_given, a.contradicts_rules) == ("low", None, False)
    assert (b.overall, b.overall_rule) == ("moderate", "moderate")
    assert (c.overall, c.overall_rule, c.contradicts_rules) == ("moderate", "serious", True)
    assert not d.contradicts_rules
    assert [s.study for s in rob.contradictions] == ["C"]
    data = rob.to_dict()
    assert data["contradictions"] == [
        {"study": "C", "row": 4, "given": "moderate", "rule": "serious"}
    ]
    assert (
        data["studies"][2]["confounding"] == "serious"
        and data["studies"][2]["overall_rule"] == "serious"
    )


def test_headers_d1_to_d7_and_long_names():
    short = "Study,D1,D2,D3,D4,D5,D6,D7,Overall"
    long = (
        "study,Bias due to confounding,Bias in selection of participants,"
        "Bias in classification of interventions,Bias due to deviations from intended interventions,"
        "Bias due to missing data,Bias in measurement of outcomes,Bias in selection of the reported result"
    )
    for header in (short, long):
        extra = ",critical" if header is short else ""
        rob = parse_rob(table("X,low,critical,low,low,low,low,low" + extra, header=header), "r.csv")
        assert rob.studies[0].judgements[1] == "critical"
        assert rob.studies[0].overall_rule == "critical"
    assert len(rob.domains) == len(DOMAINS) == 7


def test_summary_percentages_unweighted_and_weighted():
    rows = ("A,low,low,low,low,low,low,low,1", "B,serious,low,low,low,low,low,low,3")
    unweighted = parse_rob(table(*(r.rsplit(",", 1)[0] for r in rows)), "u.csv")
    assert not unweighted.weighted
    d1 = unweighted.summary[0]
    assert d1.domain == "confounding"
    assert dict(zip(unweighted.levels, d1.percent)) == {
        "low": 50.0,
        "moderate": 0.0,
        "serious": 50.0,
        "critical": 0.0,
        "no information": 0.0,
    }
    weighted = parse_rob(table(*rows, header=HEADER + ",weight"), "w.csv")
    assert weighted.weighted
    assert weighted.summary[0].percent[:3] == pytest.approx((25.0, 0.0, 75.0))
    assert weighted.summary[-1].domain == "overall"
    assert weighted.summary[-1].percent[2] == pytest.approx(75.0)
    assert all(sum(s.percent) == pytest.approx(100.0) for s in weighted.summary)


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("", ["empty"]),
        (
            "study,D1,D2\nA,low,low\n",
            ["row 1", "missing", "classification", "columns found: study, D1, D2"],
        ),
        (
            table("A,low,low,low,high,low,low,low"),
            ["row 2", "'deviations'", "'high'", "not a ROBINS-I judgement"],
        ),
        (table("A,low,low,low,low,,low,low"), ["row 2", "'missing_data'", "missing judgement"]),
        (
            table("A,low,low,low,low,low,low,low,heavy", header=HEADER + ",weight"),
            ["row 2", "'weight'", "not a number"],
        ),
        (
            table(
                "A,low,low,low,low,low,low,low,1",
                "B,low,low,low,low,low,low,low,",
                header=HEADER + ",weight",
            ),
            ["row 3", "missing weight"],
        ),
        (
            table("A,low,low,low,low,low,low,low,unsure", header=HEADER + ",overall"),
            ["row 2", "'overall'", "'unsure'"],
        ),
        ("study,D1,confounding\n", ["row 1", "'D1'", "'confounding'"]),
    ],
)
def test_bad_tables(text, fragments):
    with pytest.raises(DataError) as err:
        parse_rob(text, "rob.csv")
    message = str(err.value)
    assert message.startswith("rob.csv")
    for fragment in fragments:
        assert fragment in message


def test_example_file():
    from ivigmeta.methods.rob import load_rob

    rob = load_rob(str(EXAMPLE))
    assert len(rob.studies) == 8 and rob.weighted
    assert [s.study for s in rob.contradictions] == ["Hollins (2020)"]
    fairholm = next(s for s in rob.studies if s.study.startswith("Fairholm"))
    assert fairholm.overall_given is None and fairholm.overall == "critical"


# --- CLI ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "markdown"])
def test_rob_command_every_format(run, fmt):
    result = run("rob", str(EXAMPLE), "--format", fmt)
    assert result.exit_code == 0
    out = result.stdout
    if fmt == "json":
        data = json.loads(out)
        assert data["tool"] == "ROBINS-I" and len(data["studies"]) == 8
        assert {
            "study",
            "confounding",
            "reported_result",
            "overall",
            "overall_rule",
            "overall_given",
            "contradicts_rules",
            "weight",
        } <= set(data["studies"][0])
        assert data["contradictions"][0]["study"] == "Hollins (2020)"
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
        assert (
            len(rows) == 8
            and rows[-1]["overall_rule"] == "serious"
            and rows[-1]["overall"] == "moderate"
        )
    elif fmt == "markdown":
        assert out.startswith("### Risk of bias (ROBINS-I, 8 studies)")
    else:
        assert "Moderate (rules: serious)" in out and "Critical (by the rules)" in out
        assert "D5: Bias due to missing data" in out
    assert "Hollins (2020)" in result.stderr and "contradicts" in result.stderr


def test_rob_command_stdin_and_errors(run, tmp_path):
    result = run("rob", "-", "-f", "json", input=EXAMPLE.read_text())
    assert result.exit_code == 0 and json.loads(result.stdout)["source"] == "<stdin>"
    bad = tmp_path / "bad.csv"
    bad.write_text(table("A,low,low,low,maybe,low,low,low"))
    result = run("rob", str(bad))
    assert result.exit_code == 1
    expected = (
        f"Error: {bad}, row 2, column 'deviations': 'maybe' is not a ROBINS-I judgement "
        "(expected low, moderate, serious, critical, no information)"
    )
    assert result.stderr.strip().splitlines() == [expected]
    missing = run("rob", str(tmp_path / "none.csv"))
    assert missing.exit_code == 1 and "file not found" in missing.stderr


def test_weights_from_the_meta_analysis(paper_fit):
    """--weights: each study weighted by its random-effects weight in the fit of the study table."""
    from ivigmeta.methods.rob import weight_by_fit

    rob = parse_rob(
        "study,year,D1,D2,D3,D4,D5,D6,D7\n"
        "Ahmadi,2019,serious,critical,serious,low,low,low,low\n"
        "Stricker,,serious,serious,serious,low,low,low,low\n",  # no year: matched on the name
        "r.csv",
    )
    weighted = weight_by_fit(rob, paper_fit, "studies.csv")
    labels = paper_fit.effects.labels
    w_a = paper_fit.random.weights[labels.index("Ahmadi")]
    w_s = paper_fit.random.weights[labels.index("Stricker")]
    assert [s.weight for s in weighted.studies] == [w_a, w_s]
    assert weighted.weighted and weighted.weight_source == "random-effects weights in studies.csv"
    d2 = dict(zip(weighted.levels, weighted.summary[1].percent))
    assert d2["critical"] == pytest.approx(100 * w_a / (w_a + w_s))
    assert d2["serious"] == pytest.approx(100 * w_s / (w_a + w_s))
    unknown = parse_rob("study,D1,D2,D3,D4,D5,D6,D7\nNobody,low,low,low,low,low,low,low\n", "r.csv")
    with pytest.raises(DataError, match="r.csv, row 2: study 'Nobody' is not in studies.csv"):
        weight_by_fit(unknown, paper_fit, "studies.csv")


def test_rob_command_weights_option(run, studies_path, tmp_path):
    path = tmp_path / "rob.csv"
    path.write_text(
        "study,D1,D2,D3,D4,D5,D6,D7,weight\nAhmadi,low,low,low,low,low,low,low,1\n"
        "Winger,serious,low,low,low,low,low,low,1\n"
    )
    plain = json.loads(run("rob", str(path), "-f", "json").stdout)
    assert plain["summary"][0]["percent"]["low"] == 50.0
    result = run("rob", str(path), "--weights", str(studies_path), "-f", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["summary"][0]["percent"]["low"] > 50.0  # Ahmadi weighs more than Winger
    assert data["weight_source"] == f"random-effects weights in {studies_path}"
    assert "weight column is replaced" in result.stderr
