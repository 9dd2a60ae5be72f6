"""Outcome types recognised by column names, in ivigmeta's, metafor's, meta's and RevMan's naming."""

from __future__ import annotations

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
