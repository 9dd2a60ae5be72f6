"""Stouffer's and Fisher's combination tests (``ivigmeta combine``) against R's metap sumz() and
sumlog() (tests/reference/combination.json, written by tests/reference/make_reference_combination.R
on the IVIG studies, dat.bcg and PyMARE's test z values; directed, undirected and concordant
modes; Stouffer weighted by the sample sizes), run through the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from tolerances import CLOSED_FORM, close

from ivigmeta.cli import cli
from ivigmeta.core.combination import combine_z
from ivigmeta.errors import ModelError

REF = json.loads((Path(__file__).parent / "reference" / "combination.json").read_text())
TESTS = REF["tests"]


def _run(*args: str):
    return CliRunner().invoke(cli, ["combine", *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def csvs(tmp_path_factory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("combination")
    out = {}
    for name, d in REF["sets"].items():
        lines = ["study,yi,vi" + (",n" if d["w"] else "")]
        for i, (y, v) in enumerate(zip(d["yi"], d["vi"])):
            lines.append(f"s{i + 1},{y!r},{v!r}" + (f",{d['w'][i]}" if d["w"] else ""))
        path = base / f"{name}.csv"
        path.write_text("\n".join(lines) + "\n")
        out[name] = str(path)
    return out


def _id(t: dict) -> str:
    return f"{t['set']}-{t['method']}-{t['mode']}" + ("-w" if t["weighted"] else "")


@pytest.mark.parametrize("t", TESTS, ids=[_id(t) for t in TESTS])
def test_combination_matches_metap(csvs, t):
    args = [csvs[t["set"]], "--method", t["method"], "--mode", t["mode"], "--format", "json"]
    # yi, vi given: read as log RR, the analysis scale, so z = yi / sqrt(vi) as given
    if t["weighted"]:
        args += ["--weights", "n"]
    out = _run(*args)
    assert out.exit_code == 0, out.output
    d = json.loads(out.stdout)
    assert [s["z"] for s in d["studies"]] == pytest.approx(t["z_in"], rel=1e-14)
    assert d["df"] == t["df"]
    assert close(d["statistic"], t["statistic"], CLOSED_FORM)
    assert close(d["p_value"], t["p_value"], CLOSED_FORM)
    if t["z"] is None:  # p rounds to 1 in double, qnorm gives -Inf: Stouffer's Z is the z
        assert t["p_value"] == 1.0 and t["method"] == "stouffer"
        assert d["z"] == d["statistic"]
    else:
        assert close(d["z"], t["z"], CLOSED_FORM)


def test_pymare_values():
    """PyMARE's own pinned values (test_combination_tests.py), z of its first column."""
    z1 = [2.1, 0.7, -0.2, 4.1, 3.8]
    expected = {
        ("stouffer", "directed"): 4.69574,
        ("stouffer", "undirected"): 4.87462819,
        ("stouffer", "concordant"): 4.55204117,
        ("fisher", "directed"): 5.22413541,
        ("fisher", "undirected"): 5.27449962,
        ("fisher", "concordant"): 5.09434911,
    }
    for (method, mode), value in expected.items():
        assert combine_z(z1, method, mode).z == pytest.approx(value, abs=1e-5)


def test_table_output(csvs):
    out = _run(csvs["ivig"], "--weights", "n")
    assert out.exit_code == 0, out.output
    assert "Stouffer's test (directed): Z = " in out.stdout
    assert "Stouffer weights from column 'n'." in out.stdout
    assert "Weight" in out.stdout


def test_csv_output(csvs):
    out = _run(csvs["pymare_z1"], "--method", "fisher", "--format", "csv")
    assert out.exit_code == 0
    lines = out.stdout.splitlines()
    assert lines[0].startswith("study,row,z,p_one_sided,weight")
    assert lines[-1].startswith("fisher (directed),")
    assert len(lines) == 7


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--method", "fisher", "--weights", "n"), "weights are for Stouffer's test"),
        (("--weights", "nosuch"), "nosuch"),
    ],
)
def test_errors(csvs, args, message):
    out = _run(csvs["ivig"], *args)
    assert out.exit_code == 1, out.output
    last = out.stderr.strip().splitlines()[-1]  # after the notes on reading the table
    assert last.startswith("Error: ") and message in last


def test_engine_refuses_bad_requests():
    with pytest.raises(ModelError, match="unknown combination test"):
        combine_z([1.0], "tippett")
    with pytest.raises(ModelError, match="unknown mode"):
        combine_z([1.0], "stouffer", "sideways")
    with pytest.raises(ModelError, match="no studies"):
        combine_z([], "stouffer")
