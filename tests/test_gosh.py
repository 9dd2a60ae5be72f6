"""``ivigmeta gosh`` against metafor 3.8-1's gosh() (tests/reference/make_reference_gosh.R):
every subset's estimate and I² for the equal-effects and the DL fit of studies.csv."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest
from conftest import ROOT
from tolerances import CLOSED_FORM

from ivigmeta.api import pool

REFERENCE = json.loads((Path(__file__).parent / "reference" / "metafor_gosh.json").read_text())
STUDIES = str(ROOT / "studies.csv")


@pytest.mark.parametrize(("fit", "model"), [(0, "common"), (1, "random")])
def test_every_subset_as_metafor(fit, model):
    ref = REFERENCE["fits"][fit]
    res = pool(STUDIES).gosh(model=model)
    assert res.n_subsets == 2**8 - 1 == len(ref["members"]) and not res.sampled
    ours = {m: (t, i2) for m, t, i2 in zip(res.members, res.thetas, res.i2)}
    assert set(ours) == set(ref["members"])
    for m, est, i2 in zip(ref["members"], ref["estimate"], ref["i2"]):
        t, our_i2 = ours[m]
        assert math.isclose(t, est, rel_tol=CLOSED_FORM, abs_tol=CLOSED_FORM), m
        assert math.isclose(our_i2, i2, rel_tol=CLOSED_FORM, abs_tol=1e-9), m


def test_members_name_the_studies():
    res = pool(STUDIES).gosh()
    full = res.members.index(2**8 - 1)
    assert res.members_of(full) == list(res.labels) and res.sizes[full] == 8
    assert math.isclose(res.estimates[full], pool(STUDIES).analysis.common.estimate, rel_tol=1e-12)


def test_sampled_subsets_above_15_studies_are_repeatable(tmp_path):
    rows = ["study,treat_events,treat_total,control_events,control_total"]
    rows += [f"S{i},{5 + i % 7},{30 + i},{3 + i % 5},{30 + i}" for i in range(18)]
    path = tmp_path / "many.csv"
    path.write_text("\n".join(rows) + "\n")
    a = pool(path).gosh(subsets=500, seed=3)
    b = pool(path).gosh(subsets=500, seed=3)
    assert a.sampled and a.n_subsets == 500 and a.members == b.members
    assert all(m > 0 for m in a.members) and a.estimates == b.estimates


def test_cli_table_csv_json_and_plot(run, tmp_path):
    table = run("gosh", STUDIES)
    assert table.exit_code == 0, table.stderr
    assert "all 255 non-empty subsets of the 8 studies" in table.stdout
    out = run("gosh", STUDIES, "--format", "csv").stdout
    records = list(csv.DictReader(io.StringIO(out)))
    assert len(records) == 255 and records[0]["studies"] == "Ahmadi (2019)"
    data = json.loads(run("gosh", STUDIES, "--format", "json").stdout)
    assert data["n_subsets"] == 255 and len(data["subsets"]["estimate"]) == 255
    assert data["excluded"] == []
    target = tmp_path / "gosh.svg"
    assert run("gosh", STUDIES, "--plot", str(target)).exit_code == 0
    assert 'id="subsets"' in target.read_text()


def test_a_single_study_is_an_error(run, tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("study,treat_events,treat_total,control_events,control_total\nA,1,10,2,10\n")
    result = run("gosh", str(path))
    assert result.exit_code == 1 and "at least 2 studies" in result.stderr
