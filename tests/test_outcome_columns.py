"""Outcome types recognised by column names, in ivigmeta's, metafor's, meta's and RevMan's naming."""

from __future__ import annotations

import re

import pytest

from ivigmeta.errors import DataError
from ivigmeta.io.outcome_columns import default_measure, detect_outcome, measure_for


@pytest.mark.parametrize(
    ("header", "kind", "convention"),
    [
        (
            [
                "study",
                "treat_mean",
                "treat_sd",
                "treat_n",
                "control_mean",
                "control_sd",
                "control_n",
            ],
            "continuous",
            "ivigmeta's",
        ),
        (["Study", "M1I", "sd1i", "n1i", "m2i", "sd2i", "n2i"], "continuous", "metafor's"),
        (["studlab", "mean.e", "sd.e", "n.e", "mean.c", "sd.c", "n.c"], "continuous", "meta's"),
        (
            [
                "Study",
                "Experimental Mean",
                "Experimental SD",
                "Experimental Total",
                "Control Mean",
                "Control SD",
                "Control Total",
            ],
            "continuous",
            "RevMan",
        ),
        (
            ["Study", "Mean 1", "SD 1", "Total 1", "Mean 2", "SD 2", "Total 2"],
            "continuous",
            "RevMan",
        ),
        (
            ["study", "treat_events", "treat_time", "control_events", "control_time"],
            "incidence",
            "ivigmeta's",
        ),
        (["trial", "x1i", "t1i", "x2i", "t2i"], "incidence", "metafor's"),
        (["study", "events", "total"], "proportion", "ivigmeta's"),
        (["study", "xi", "ni"], "proportion", "metafor's"),
    ],
)
def test_detects_kind_and_convention(header: list[str], kind: str, convention: str) -> None:
    found = detect_outcome(header)
    assert found is not None
    assert found[0] == kind and found[1].name == convention
    assert set(found[2].values()) <= set(header)


def test_two_by_two_counts_are_not_an_outcome_convention() -> None:
    assert (
        detect_outcome(["study", "treat_events", "treat_total", "control_events", "control_total"])
        is None
    )


def test_defaults_and_mismatch() -> None:
    assert [default_measure(k) for k in ("continuous", "incidence", "proportion", "counts")] == [
        "MD",
        "IRR",
        "PLO",
        "RR",
    ]
    assert measure_for("continuous", "smd") == "SMD"
    with pytest.raises(DataError, match=r"--measure RR does not fit .* continuous data"):
        measure_for("continuous", "RR")
    with pytest.raises(DataError, match=r"--measure MD .* proportion data"):
        measure_for("proportion", "MD")


def test_measure_names_agree_with_the_engine() -> None:
    from ivigmeta.core import measures
    from ivigmeta.io.outcome_columns import KIND_MEASURES

    assert set(KIND_MEASURES["continuous"]) == set(measures.CONTINUOUS)
    assert set(KIND_MEASURES["incidence"]) == set(measures.INCIDENCE)
    assert set(KIND_MEASURES["proportion"]) == set(measures.PROPORTION)


CONT = dict(
    zip(
        ("treat_mean", "treat_sd", "treat_n", "control_mean", "control_sd", "control_n"),
        ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"),
    )
)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        (
            "sd1i",
            "0",
            r"row 3, column 'sd1i': '0' is not allowed \(a standard deviation must be > 0\)",
        ),
        ("n2i", "1", r"row 3, column 'n2i': '1' .*at least 2"),
        ("m1i", "", r"row 3, column 'm1i': missing value"),
        ("m2i", "abc", r"row 3, column 'm2i': 'abc' is not a number"),
    ],
)
def test_bad_continuous_rows_name_row_and_column(column: str, value: str, message: str) -> None:
    from ivigmeta.io.outcome_columns import parse_outcome_row

    row = {"m1i": "5.5", "sd1i": "1.2", "n1i": "20", "m2i": "4", "sd2i": "1", "n2i": "21"}
    assert parse_outcome_row(row, CONT, "x.csv", 3)["treat_mean"] == 5.5
    row[column] = value
    with pytest.raises(DataError, match=message):
        parse_outcome_row(row, CONT, "x.csv", 3)


def test_bad_incidence_and_proportion_rows() -> None:
    from ivigmeta.io.outcome_columns import parse_outcome_row

    inc = {
        "treat_events": "x1i",
        "treat_time": "t1i",
        "control_events": "x2i",
        "control_time": "t2i",
    }
    with pytest.raises(DataError, match=r"row 2, column 't2i': '0' .*person-time"):
        parse_outcome_row({"x1i": "1", "t1i": "10", "x2i": "2", "t2i": "0"}, inc, "y.csv", 2)
    with pytest.raises(DataError, match=r"row 4, column 'xi': 12 events among 10"):
        parse_outcome_row({"xi": "12", "ni": "10"}, {"events": "xi", "total": "ni"}, "z.csv", 4)


# ------------------------------------------------------------------------------------------
# --columns for means, rates and proportions

OWN = "Trial,Yr,MeanT,SDT,NT,MeanC,SDC,NC\nA,2001,10,2,20,9,2.5,22\nB,2003,11,3,30,9.5,2,28\n"
SPEC = (
    "treat_mean=MeanT,treat_sd=SDT,treat_n=NT,control_mean=MeanC,control_sd=SDC,control_n=NC,"
    "study=Trial,year=Yr"
)


def test_columns_names_the_columns_of_means() -> None:
    from ivigmeta.io.studies import parse_table

    t = parse_table(OWN, "own.csv", columns=SPEC)
    assert [s.label() for s in t.studies] == ["A (2001)", "B (2003)"]
    assert t.studies[1].outcome == {
        "treat_mean": 11.0, "treat_sd": 3.0, "treat_n": 30.0,
        "control_mean": 9.5, "control_sd": 2.0, "control_n": 28.0,
    }  # fmt: skip
    same = parse_table(
        "study,year,m1i,sd1i,n1i,m2i,sd2i,n2i\nA,2001,10,2,20,9,2.5,22\nB,2003,11,3,30,9.5,2,28\n",
        "metafor.csv",
    )
    assert [s.outcome for s in t.studies] == [s.outcome for s in same.studies]


def test_columns_roles_not_named_come_from_a_convention() -> None:
    from ivigmeta.io.studies import parse_table

    t = parse_table(
        "study,x1i,PT1,x2i,PT2\na,3,100,5,120\n", "r.csv", columns="treat_time=PT1,control_time=PT2"
    )
    assert t.studies[0].outcome_kind == "incidence"
    assert t.studies[0].outcome == {
        "treat_events": 3.0,
        "treat_time": 100.0,
        "control_events": 5.0,
        "control_time": 120.0,
    }


@pytest.mark.parametrize(
    "spec, message",
    [
        ("treat_mean=MeanT,treat_sd=SDT", "treat_n, control_mean, control_sd, control_n not given"),
        ("treat_mean=MeanX", "no column 'MeanX' (did you mean 'MeanT'?)"),
        ("treat_mean=MeanT,treat_sd=MeanT", "given for both treat_mean and treat_sd"),
        ("mean1=MeanT", "unknown role 'mean1'"),
    ],
)
def test_columns_errors_for_means(spec: str, message: str) -> None:
    from ivigmeta.io.studies import parse_table

    with pytest.raises(DataError, match=re.escape(message)):
        parse_table(OWN, "own.csv", columns=spec)
