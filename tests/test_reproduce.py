"""ivigmeta reproduce: the shipped published.toml, altered copies, bad entries, the path language
and the comparison at printed precision."""

from __future__ import annotations

import csv
import io
import json
import re
from decimal import Decimal

import pytest
from conftest import ROOT

from ivigmeta.audit.compare import compare, parse_printed, round_to
from ivigmeta.audit.paths import PathError, format_path, parse_path, resolve
from ivigmeta.audit.published import PublishedError, parse_published

PUBLISHED = ROOT / "published.toml"
KNOWN_DISCREPANCIES = {
    "Overall I²",
    "Table 3, Timing (after confirmation), I²",
    "Table 3, NK criterion (yes), CI low",
}


@pytest.fixture(scope="module")
def shipped():
    """``ivigmeta reproduce published.toml --format json`` run once for the module."""
    from click.testing import CliRunner

    from ivigmeta.cli import cli

    result = CliRunner().invoke(
        cli, ["reproduce", str(PUBLISHED), "--format", "json"], catch_exceptions=False
    )
    return result


def test_shipped_file_reproduces_except_the_three_known_discrepancies(shipped):
    assert shipped.exit_code == 0, shipped.stderr
    data = json.loads(shipped.stdout)
    summary = data["summary"]
    assert summary["total"] >= 72
    assert summary["differs_expected"] == 3
    assert summary["differs"] == 0 and summary["errors"] == 0 and summary["unexpected"] == 0
    assert summary["reproduced"] == summary["total"] - 3
    differing = {n["label"] for n in data["numbers"] if n["verdict"] != "reproduced"}
    assert differing == KNOWN_DISCREPANCIES
    assert (
        summary["line"]
        == f"{summary['reproduced']} of {summary['total']} reproduce; 3 differ as expected"
    )
    assert shipped.stderr == ""


def test_shipped_file_covers_the_papers_tables(shipped):
    numbers = json.loads(shipped.stdout)["numbers"]
    labels = {n["label"] for n in numbers}
    studies = [
        "Ahmadi",
        "Jafarzadeh",
        "Mahmoud",
        "Moraru",
        "Perricone",
        "Ramos-Medina",
        "Stricker",
        "Winger",
    ]
    for study in studies:
        for what in ("RR", "CI low", "CI high", "p"):
            assert f"Table 2, {study}, {what}" in labels
    table3 = [n for n in numbers if n["label"].startswith("Table 3, ")]
    assert len(table3) == 4 * 7
    for label in (
        "Pooled RR (random effects)",
        "Egger's regression test, p",
        "Overall I²",
        "Meta-regression, NK criterion, p",
        "Meta-regression, timing, p",
        "Women, total",
    ):
        assert label in labels
    # Every number carries what was printed and what the command gave.
    for n in numbers:
        assert n["printed"] and n["rounded"] and n["recomputed"] is not None


def test_known_discrepancies_are_explained(shipped):
    numbers = {n["label"]: n for n in json.loads(shipped.stdout)["numbers"]}
    overall = numbers["Overall I²"]
    assert overall["explanation"].startswith("No standard convention gives the printed 58.9%")
    assert not any(a["status"] == "gives_printed" for a in overall["alternatives"])
    tried = {a["name"]: a for a in overall["alternatives"]}
    assert tried["no continuity correction"]["status"] == "differs"
    assert tried["Q centred on the Mantel-Haenszel estimate"]["status"] == "differs"
    for label in (
        "Table 3, NK criterion (yes), CI low",
        "Table 3, Timing (after confirmation), I²",
    ):
        gives = [
            a["name"] for a in numbers[label]["alternatives"] if a["status"] == "gives_printed"
        ]
        # Truncation explains both; another estimator may also land on the printed value.
        assert "truncation instead of rounding" in gives
        assert "is reproduced by: " in numbers[label]["explanation"]
        assert (
            "truncation instead of rounding (" in numbers[label]["explanation"].split("Not by:")[0]
        )


def _write(tmp_path, text, name="pub.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _altered(label: str, new: str) -> str:
    """published.toml with the printed value of the entry ``label`` replaced by ``new``."""
    text = PUBLISHED.read_text(encoding="utf-8")
    start = text.index(f'label = "{label}"')
    m = re.compile(r'printed = "[^"]*"').search(text, start)
    return text[: m.start()] + f'printed = "{new}"' + text[m.end() :]


def test_one_altered_printed_value_exits_1_and_is_named(run, tmp_path):
    path = _write(tmp_path, _altered("Table 2, Winger, RR", "2.85"))
    (tmp_path / "studies.csv").write_text((ROOT / "studies.csv").read_text())
    result = run("reproduce", str(path), "--format", "json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    bad = [n for n in data["numbers"] if not n["ok"]]
    assert [n["label"] for n in bad] == ["Table 2, Winger, RR"]
    assert (
        bad[0]["verdict"] == "differs"
        and bad[0]["printed"] == "2.85"
        and bad[0]["rounded"] == "2.84"
    )
    assert data["summary"]["differs"] == 1 and data["summary"]["differs_expected"] == 3
    assert "Table 2, Winger, RR" in result.stderr
    table = run("reproduce", str(path), "--no-explain")
    assert table.exit_code == 1
    assert "1 differs unexpectedly" in table.stdout and "Table 2, Winger, RR" in table.stdout


def test_expected_discrepancy_that_reproduces_is_not_ok(run, tmp_path):
    path = _write(tmp_path, _altered("Overall I²", "63.8%"))
    (tmp_path / "studies.csv").write_text((ROOT / "studies.csv").read_text())
    result = run("reproduce", str(path), "--format", "json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    n = next(n for n in data["numbers"] if n["label"] == "Overall I²")
    assert n["verdict"] == "reproduced" and n["ok"] is False
    assert data["summary"]["unexpected"] == 1
    assert "expected to differ" in data["summary"]["line"]


def test_data_option_overrides_the_paper_entry(run, tmp_path):
    rows = (ROOT / "studies.csv").read_text().splitlines()
    rows = [r.replace("Winger,2008,20,37,4,21", "Winger,2008,21,37,4,21") for r in rows]
    data_path = tmp_path / "edited.csv"
    data_path.write_text("\n".join(rows) + "\n")
    result = run(
        "reproduce", str(PUBLISHED), "--data", str(data_path), "--format", "json", "--no-explain"
    )
    assert result.exit_code == 1
    bad = {n["label"] for n in json.loads(result.stdout)["numbers"] if not n["ok"]}
    assert "Table 2, Winger, events, intervention" in bad
    assert "Table 2, Winger, RR" in bad


def test_each_distinct_command_runs_once(run):
    result = run("reproduce", str(PUBLISHED), "--format", "json", "--no-explain")
    data = json.loads(result.stdout)
    distinct = {(n["command"], tuple(n["args"])) for n in data["numbers"]}
    assert data["runs"] == len(distinct)
    assert all(n["alternatives"] == [] for n in data["numbers"])


HEAD = '[paper]\ntitle = "t"\ndata = "studies.csv"\n'


def _entry(label, command="pool", path="random.estimate", printed="1.98", extra=""):
    return (
        f'\n[[number]]\nlabel = "{label}"\ncommand = "{command}"\npath = "{path}"\n'
        f'printed = "{printed}"\n{extra}'
    )


@pytest.fixture
def tmp_study(tmp_path):
    (tmp_path / "studies.csv").write_text((ROOT / "studies.csv").read_text())
    return tmp_path


def _one_error(result):
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_unknown_command_names_the_entry(run, tmp_study):
    path = _write(tmp_study, HEAD + _entry("fine") + _entry("Bad one", command="pol"))
    line = _one_error(run("reproduce", str(path)))
    assert "number 2 ('Bad one')" in line and "unknown command 'pol'" in line and "pool" in line


def test_malformed_path_names_the_entry(run, tmp_study):
    path = _write(tmp_study, HEAD + _entry("Broken path", path="studies[study=Ahmadi.estimate"))
    line = _one_error(run("reproduce", str(path)))
    assert "number 1 ('Broken path')" in line and "not closed" in line


def test_path_that_resolves_to_nothing_is_an_error_for_that_number(run, tmp_study):
    text = HEAD + _entry("fine") + _entry("Nowhere", path="studies[study=Smith].estimate")
    result = run("reproduce", str(_write(tmp_study, text)), "--format", "json")
    assert result.exit_code == 1
    numbers = json.loads(result.stdout)["numbers"]
    assert [n["verdict"] for n in numbers] == ["reproduced", "error"]
    assert "study=Smith" in numbers[1]["explanation"] and "Ahmadi" in numbers[1]["explanation"]
    assert "Error: number 2 ('Nowhere')" in result.stderr
    assert "Traceback" not in result.stderr


def test_failing_command_is_an_error_for_its_numbers(run, tmp_study):
    extra = 'args = ["--by", "dose"]\n'
    text = HEAD + _entry(
        "Dose", command="subgroup", path="by[0].test.p_value", printed="0.5", extra=extra
    )
    result = run("reproduce", str(_write(tmp_study, text)), "--format", "json")
    assert result.exit_code == 1
    n = json.loads(result.stdout)["numbers"][0]
    assert n["verdict"] == "error" and "no column 'dose'" in n["explanation"]


def test_malformed_toml_names_the_entry(run, tmp_study):
    text = HEAD + _entry("fine") + '\n[[number]]\nlabel = "Unclosed"\ncommand = "pool\n'
    line = _one_error(run("reproduce", str(_write(tmp_study, text))))
    assert "not valid TOML" in line and "number 2 ('Unclosed')" in line


@pytest.mark.parametrize(
    "extra, fragment",
    [
        ('expect = "differs"\n', "needs a note"),
        ('expect = "maybe"\n', 'expect must be "match" or "differs"'),
        ('colour = "red"\n', "unknown key(s) colour"),
        ('args = "--by timing"\n', "'args' must be a list of strings"),
    ],
)
def test_invalid_entries_name_the_entry(run, tmp_study, extra, fragment):
    path = _write(tmp_study, HEAD + _entry("Entry", extra=extra))
    line = _one_error(run("reproduce", str(path)))
    assert "number 1 ('Entry')" in line and fragment in line


def test_printed_must_be_a_string(tmp_path):
    text = (
        HEAD + '\n[[number]]\nlabel = "As number"\ncommand = "pool"\npath = "k"\nprinted = 2.50\n'
    )
    with pytest.raises(
        PublishedError, match=r"number 1 \('As number'\): 'printed' must be a string"
    ):
        parse_published(text, "x.toml")


def test_duplicate_labels_and_missing_file(run, tmp_study):
    path = _write(tmp_study, HEAD + _entry("Same") + _entry("Same"))
    assert "label already used by number 1" in _one_error(run("reproduce", str(path)))
    assert "file not found" in _one_error(run("reproduce", str(tmp_study / "nope.toml")))
    missing_data = _write(tmp_study, HEAD.replace("studies.csv", "gone.csv") + _entry("x"))
    assert "gone.csv: data file not found" in _one_error(run("reproduce", str(missing_data)))


@pytest.mark.parametrize("fmt", ["table", "csv", "markdown"])
def test_other_formats(run, fmt):
    result = run("reproduce", str(PUBLISHED), "--format", fmt, "--no-explain")
    assert result.exit_code == 0
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        assert {"label", "printed", "recomputed", "verdict", "expect", "note"} <= set(rows[0])
        assert sum(r["verdict"] == "differs_expected" for r in rows) == 3
    elif fmt == "markdown":
        assert result.stdout.startswith("### Printed numbers of: ")
        assert "| Table 2, Ahmadi, RR | 1.93 |" in result.stdout
    else:
        assert "differs (expected)" in result.stdout
        assert re.search(r"\d+ of \d+ reproduce; 3 differ as expected", result.stdout)


def test_default_published_file_in_current_directory(run, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert run("reproduce", "--no-explain").exit_code == 0


# ---------------------------------------------------------------------------------------------
# The path language

DOC = {
    "k": 3,
    "random": {"estimate": 1.5, "ci": [1.1, 2.2]},
    "studies": [
        {"study": "A", "n": 10, "estimate": 1.0},
        {"study": "B", "n": 20, "estimate": 2.0},
        {"study": "C.1", "n": 30, "estimate": None},
    ],
    "by": [
        {
            "column": "timing",
            "levels": [{"level": "after", "i2": 67.7}, {"level": "before", "i2": 45.2}],
        }
    ],
}


@pytest.mark.parametrize(
    "path, value",
    [
        ("k", 3),
        ("random.estimate", 1.5),
        ("random.ci[1]", 2.2),
        ("random.ci[-1]", 2.2),
        ("studies[0].study", "A"),
        ("studies[study=B].n", 20),
        ("studies[study=C.1].n", 30),
        ("by[column=timing].levels[level=before].i2", 45.2),
        ("studies[*].n", [10, 20, 30]),
        ("sum(studies[*].n)", 60),
        ("sum(studies[study=A].n, studies[study=B].n)", 30),
        ("count(studies)", 3),
        ("count(by[0].levels[*])", 2),
        ("studies[n=20].study", "B"),
    ],
)
def test_resolve(path, value):
    assert resolve(DOC, path) == value
    assert format_path(parse_path(path)) == path


@pytest.mark.parametrize(
    "path, fragment",
    [
        ("random.median", "no key 'median' in random (keys: ci, estimate)"),
        ("studies[study=Z].n", "no element of studies has study=Z (values: A, B, C.1)"),
        ("studies[7]", "index 7 out of range: studies has 3 elements"),
        ("k.value", "k is 3, not an object"),
        ("random[0]", "random is an object, not a list"),
        ("studies[size=1]", "no element of studies has a key 'size'"),
    ],
)
def test_resolve_errors(path, fragment):
    with pytest.raises(PathError) as exc:
        resolve(DOC, path)
    assert fragment in str(exc.value)


def test_ambiguous_selection():
    with pytest.raises(PathError, match="2 elements of x have g=1: ambiguous"):
        resolve({"x": [{"g": 1}, {"g": 1}]}, "x[g=1]")


@pytest.mark.parametrize(
    "path",
    [
        "",
        "a..b",
        ".a",
        "a.",
        "a[",
        "a[]",
        "a]b",
        "a[x]",
        "a[=1]",
        "median(a)",
        "count(a, b)",
        "sum()",
        "a[0]b",
    ],
)
def test_malformed_paths(path):
    with pytest.raises(PathError):
        parse_path(path)


# ---------------------------------------------------------------------------------------------
# Printed values and the comparison


def test_parse_printed():
    p = parse_printed("1.93")
    assert (p.kind, p.value, p.decimals) == ("number", Decimal("1.93"), 2)
    assert parse_printed("< 0.0001").kind == "lt" and parse_printed("< 0.0001").decimals == 4
    assert parse_printed("> 0.05").kind == "gt"
    assert parse_printed("≤ 0.05").kind == "lt"
    pct = parse_printed("58.9%")
    assert pct.percent and pct.value == Decimal("58.9") and pct.decimals == 1
    assert parse_printed("\u22120.5").value == Decimal("-0.5")
    assert parse_printed("Ramos-Medina").kind == "text"
    assert parse_printed("13").decimals == 0
    with pytest.raises(ValueError):
        parse_printed("< many")
    with pytest.raises(ValueError):
        parse_printed("  ")


@pytest.mark.parametrize(
    "printed, value, matches, rounded",
    [
        ("1.93", 1.9298245614035088, True, "1.93"),
        ("1.77", 1.776880192369793, False, "1.78"),
        ("2.50", 2.5013427196401357, True, "2.50"),
        ("0.0", 0.0, True, "0.0"),
        ("0.0", -1e-17, True, "0.0"),
        ("58.9%", 63.84368619410801, False, "63.8"),
        ("< 0.001", 4.488454209750104e-05, True, "< 0.001"),
        ("< 0.001", 0.0012, False, "0.001"),
        ("< 0.0001", 2e-7, True, "< 0.0001"),
        ("> 0.05", 0.3, True, "> 0.05"),
        ("> 0.05", 0.01, False, "0.01"),
        ("8", 8, True, "8"),
        ("Mahmoud", "Mahmoud", True, "Mahmoud"),
        ("Mahmoud", "Moraru", False, "Moraru"),
    ],
)
def test_compare(printed, value, matches, rounded):
    cmp = compare(parse_printed(printed), value)
    assert cmp.matches is matches
    assert cmp.rounded == rounded


def test_compare_truncation_scale_and_null():
    assert compare(parse_printed("1.77"), 1.776880192369793, truncate=True).matches
    assert compare(parse_printed("67.7"), 67.7722161857045, truncate=True).matches
    assert compare(parse_printed("63.8%"), 0.638436, scale=100).matches
    with pytest.raises(ValueError, match="null"):
        compare(parse_printed("1.0"), None)
    with pytest.raises(ValueError, match="list"):
        compare(parse_printed("1.0"), [1, 2])


def test_round_to_is_half_up_on_the_exact_value():
    assert str(round_to(0.125, 2)) == "0.13"  # exactly representable: half up
    assert str(round_to(2.675, 2)) == "2.67"  # binary 2.67499999...: below the half
    assert str(round_to(-0.004, 2)) == "0.00"
    assert str(round_to(1.999, 2, truncate=True)) == "1.99"


def test_help_and_pool_do_not_import_the_heavy_modules():
    """reproduce and report load TOML, Jinja2 and their modules only when they run."""
    import subprocess
    import sys

    code = (
        "import io, sys, contextlib\n"
        "from ivigmeta.cli import cli\n"
        "for args in (['--help'], ['pool', sys.argv[1]]):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        cli.main(args=args, standalone_mode=False)\n"
        "heavy = ('jinja2', 'tomllib', 'tomli', 'pandas', 'scipy.stats', 'matplotlib',\n"
        "         'ivigmeta.audit.reproduce', 'ivigmeta.audit.explain', 'ivigmeta.audit.report',\n"
        "         'ivigmeta.audit.published', 'ivigmeta.audit.paths', 'ivigmeta.audit.compare',\n"
        "         'ivigmeta.audit.runner')\n"
        "print(' '.join(m for m in heavy if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "studies.csv")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.strip() == ""
