"""Column conventions (ivigmeta.io.columns): recognised names, labels, years and --columns."""

from __future__ import annotations

import pytest

from ivigmeta.errors import DataError
from ivigmeta.io.columns import parse_columns_option
from ivigmeta.io.studies import parse_table

COUNTS = [(5, 10, 3, 10), (4, 12, 2, 11)]


def table(header: str, rows: list[str]) -> str:
    return header + "\n" + "\n".join(rows) + "\n"


@pytest.mark.parametrize(
    "header, row, convention",
    [
        (
            "study,treat_events,treat_total,control_events,control_total",
            "{s},{a},{n1},{c},{n2}",
            None,
        ),
        ("study,ai,n1i,ci,n2i", "{s},{a},{n1},{c},{n2}", "metafor's ai/n1i/ci/n2i"),
        ("study,ai,bi,ci,di", "{s},{a},{b},{c},{d}", "metafor's ai/bi/ci/di"),
        (
            "studlab,event.e,n.e,event.c,n.c",
            "{s},{a},{n1},{c},{n2}",
            "meta's event.e/n.e/event.c/n.c",
        ),
        (
            "Study,Experimental Events,Experimental Total,Control Events,Control Total",
            "{s},{a},{n1},{c},{n2}",
            "RevMan-style names",
        ),
        (
            "Study or Subgroup,Intervention events,Intervention total,Control events,Control total",
            "{s},{a},{n1},{c},{n2}",
            "RevMan-style names",
        ),
        (
            "Study ID,Events 1,Total 1,Events 2,Total 2",
            "{s},{a},{n1},{c},{n2}",
            "RevMan-style names",
        ),
        ("STUDY,AI,N1I,CI,N2I", "{s},{a},{n1},{c},{n2}", "metafor's ai/n1i/ci/n2i"),
    ],
)
def test_conventions_give_the_same_counts(header, row, convention):
    rows = [
        row.format(s=f"S{i}", a=a, n1=n1, c=c, n2=n2, b=n1 - a, d=n2 - c)
        for i, (a, n1, c, n2) in enumerate(COUNTS)
    ]
    t = parse_table(table(header, rows), "f.csv")
    assert [s.counts for s in t.studies] == COUNTS
    assert [s.study for s in t.studies] == ["S0", "S1"]
    recognised = [n for n in t.notes if "columns recognised as" in n]
    if convention is None:
        assert recognised == []  # ivigmeta's own names need no note
    else:
        assert len(recognised) == 1 and convention in recognised[0]


def test_first_complete_convention_wins():
    t = parse_table(table("study,ai,bi,ci,di,n1i,n2i", ["A,1,9,2,8,10,10"]), "f")
    assert t.column_map.convention == "metafor's ai/n1i/ci/n2i"
    assert t.studies[0].counts == (1, 10, 2, 10)


@pytest.mark.parametrize(
    "header, row, label, note",
    [
        (
            "study,author,treat_events,treat_total,control_events,control_total",
            "S,Au,1,5,2,5",
            "S",
            None,
        ),
        (
            "author,treat_events,treat_total,control_events,control_total",
            "Au,1,5,2,5",
            "Au",
            "column 'author'",
        ),
        ("slab,ai,n1i,ci,n2i", "Sl,1,5,2,5", "Sl", "column 'slab'"),
        ("id,name,ai,n1i,ci,n2i", "7,Nm,1,5,2,5", "Nm", "column 'name' (the first text column)"),
        ("ai,n1i,ci,n2i", "1,5,2,5", "row 2", "no study-label column"),
    ],
)
def test_study_label_rule(header, row, label, note):
    t = parse_table(table(header, [row]), "f")
    assert t.studies[0].study == label
    if note:
        assert any(note in n for n in t.notes), t.notes


def test_year_is_any_case_and_optional():
    t = parse_table(table("Study,Year,ai,n1i,ci,n2i", ["A,1999,1,5,2,5", "B,,1,5,2,5"]), "f")
    assert [s.year for s in t.studies] == [1999, None]
    assert t.studies[0].label() == "A (1999)"


def test_explicit_columns():
    text = table("Trial,EvT,NT,EvC,NC,Yr", ["A,1,5,2,6,2001"])
    spec = "treat_events=EvT,treat_total=NT,control_events=EvC,control_total=NC,study=Trial,year=Yr"
    t = parse_table(text, "f", columns=spec)
    assert t.studies[0].counts == (1, 5, 2, 6)
    assert t.studies[0].label() == "A (2001)"
    assert any("columns recognised as --columns" in n for n in t.notes)


def test_explicit_nonevents():
    text = table("Trial,a,b,c,d", ["A,1,4,2,4"])
    spec = "treat_events=a,treat_nonevents=b,control_events=c,control_nonevents=d"
    assert parse_table(text, "f", columns=spec).studies[0].counts == (1, 5, 2, 6)


def test_label_columns_leave_out_recognised_columns():
    t = parse_table(table("author,year,ai,n1i,ci,n2i,dose", ["A,2000,1,5,2,5,high"]), "f")
    assert t.label_columns() == ("dose",)


def test_a_lone_se_column_with_counts_is_text():
    t = parse_table(table("study,ai,n1i,ci,n2i,se", ["A,1,5,2,5,low"]), "f")
    assert t.studies[0].fields["se"] == "low" and t.studies[0].has_counts


def test_parse_columns_option():
    assert parse_columns_option("treat_events = EvT, study=Author,") == {
        "treat_events": "EvT",
        "study": "Author",
    }
    with pytest.raises(DataError, match="unknown role 'foo'"):
        parse_columns_option("foo=bar")
    with pytest.raises(DataError, match="no column name given for 'study'"):
        parse_columns_option("study=")


def test_cli_reports_convention_on_stderr(run, tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(table("study,ai,n1i,ci,n2i", ["A,1,5,2,5", "B,3,9,1,8"]))
    result = run("pool", str(path), "-f", "json")
    assert result.exit_code == 0
    assert f"note: {path}: columns recognised as metafor's ai/n1i/ci/n2i" in result.stderr


def test_cli_columns_option(run, tmp_path):
    path = tmp_path / "c.csv"
    path.write_text(table("Trial,EvT,NT,EvC,NC,grp", ["A,1,5,2,6,x", "B,3,9,1,8,y"]))
    spec = "treat_events=EvT,treat_total=NT,control_events=EvC,control_total=NC"
    for command in ("pool", "heterogeneity", "loo", "bias"):
        assert run(command, str(path), "--columns", spec, "-f", "json").exit_code == 0
    assert run("subgroup", str(path), "--by", "grp", "--columns", spec, "-f", "json").exit_code == 0


def test_metafor_bcg_names_and_an_author_over_a_numeric_trial_id():
    bcg = "trial,author,year,tpos,tneg,cpos,cneg\n1,Aronson,1948,4,119,11,128\n2,Ferguson & Simes,1949,6,300,29,274\n"
    t = parse_table(bcg, "bcg.csv")
    assert [s.counts for s in t.studies] == [(4, 123, 11, 139), (6, 306, 29, 303)]
    assert [s.label() for s in t.studies] == ["Aronson (1948)", "Ferguson & Simes (1949)"]
    assert any("tpos/tneg/cpos/cneg" in n for n in t.notes)
    # a numeric id alone is still the label column when nothing else is named
    only = parse_table("trial,ai,n1i,ci,n2i\n7,1,10,2,10\n", "t.csv")
    assert only.studies[0].label() == "7"
