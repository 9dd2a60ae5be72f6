"""Property-based tests: random tables and random bytes through every subcommand, in-process.

The only outcomes allowed are exit 0 with valid output (JSON that parses, every input row either
analysed or listed as excluded, no NaN anywhere in the result) or exit 1 with exactly one
``Error: ...`` line on stderr (notes aside). Never a traceback (the runner re-raises), never
"internal error".

Examples per property: 60 by default; IVIGMETA_FUZZ_EXAMPLES=2000 for a longer run.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ivigmeta.render as render_module
from ivigmeta.cli import cli

EXAMPLES = int(os.environ.get("IVIGMETA_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Extra arguments a command needs to run on a fuzzed table (the table always has a 'grp' column).
EXTRA_ARGS = {
    "subgroup": ["--by", "grp"],
    "metareg": ["--mod", "grp"],
    "batch": ["-g", "grp"],
    "aggregate": ["--cluster", "grp", "--rho", "0.5"],
    "selmodel": ["--type", "stepfun", "--steps", "0.05"],
    "rve": ["--cluster", "grp"],
}
# batch writes rows, not documents: JSON lines for json, CSV for table (its own formats).
BATCH_FORMATS = {"json": "jsonl", "table": "csv"}


# reproduce reads a published-numbers TOML file and report writes a directory: neither takes a
# study table alone (tests/test_reproduce.py and tests/test_report.py cover their bad input).
# config takes a command name, transf a function's name and numbers (tests/test_transf.py).
NOT_TABLE_COMMANDS = ("reproduce", "report", "config", "transf")


def commands() -> list[str]:
    return sorted(c for c in cli.commands if c not in NOT_TABLE_COMMANDS)


@contextmanager
def nan_guard():
    """Fail on NaN anywhere in a JSON payload (JSON writes inf and NaN as null, hiding them)."""
    found: list[str] = []
    original = render_module.json_safe

    def checking(value, path="$"):
        if isinstance(value, float) and math.isnan(value):
            found.append(path)
        elif isinstance(value, dict):
            for k, v in value.items():
                checking(v, f"{path}.{k}")
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                checking(v, f"{path}[{i}]")
        return value

    def wrapped(value):
        checking(value)
        return original(value)

    with mock.patch.object(render_module, "json_safe", wrapped):
        yield found


def invoke(args: list[str]):
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.split("\n") if line and not line.startswith("note: ")]


def accounted(payload: dict, n_rows: int) -> None:
    """Every input row is analysed or excluded, in any command's JSON."""
    assert "excluded" in payload, sorted(payload)
    excluded = payload["excluded"]
    if "studies" in payload and isinstance(payload["studies"], list):
        rows = sorted([s["row"] for s in payload["studies"]] + [e["row"] for e in excluded])
        assert rows == list(range(2, 2 + n_rows)), rows
    elif "by" in payload:
        for by in payload["by"]:
            analysed = sum(level["k"] for level in by["levels"])
            assert analysed + len(by["excluded"]) == n_rows
    elif "k" in payload:
        assert payload["k"] + len(excluded) == n_rows


def check(result, n_rows: int | None, fmt: str, nans: list[str]) -> None:
    assert "Traceback" not in result.output
    errors = error_lines(result)
    if result.exit_code == 0:
        assert errors == []
        assert not nans, f"NaN in output at {nans}"
        if fmt == "json":
            payload = json.loads(result.stdout)
            if n_rows is not None:
                accounted(payload, n_rows)
        elif (
            fmt == "jsonl"
        ):  # batch: one object per group; every row analysed, excluded or in error
            records = [json.loads(line) for line in result.stdout.splitlines()]
            assert records and all(r["status"] in ("ok", "single", "error") for r in records)
            if n_rows is not None:
                pooled = sum(r["k"] + r["n_excluded"] for r in records if r["k"] is not None)
                assert pooled <= n_rows
                assert pooled == n_rows or any(r["status"] == "error" for r in records)
        else:
            assert result.stdout.strip()
    else:
        assert result.exit_code == 1, (result.exit_code, result.output)
        assert len(errors) == 1 and errors[0].startswith("Error: "), errors
        assert "internal error" not in errors[0]


def accepted(command: str, extra: list[list[str]]) -> list[str]:
    """The option groups of ``extra`` that ``command`` accepts (metareg has no --common)."""
    names = {opt for p in cli.commands[command].params for opt in getattr(p, "opts", [])}
    return [x for group in extra if group[0] in names for x in group]


def run_all(path: Path, n_rows: int | None, extra: list[list[str]], formats=("json",)) -> None:
    for command in commands():
        args = accepted(command, extra)
        for fmt in formats:
            if command == "batch":
                fmt = BATCH_FORMATS[fmt]
            with nan_guard() as nans:
                result = invoke(
                    [command, str(path), *EXTRA_ARGS.get(command, []), *args, "-f", fmt]
                )
            check(result, n_rows, fmt, nans)


# ---------------------------------------------------------------------------------------------
# Strategies

labels = st.one_of(
    st.sampled_from(["Smith", "Jones", "Lee", "", "Müller", "O'Brien, J"]),
    st.text(alphabet="abcXYZ é,;\"'", max_size=8),
)
groups = st.sampled_from(["a", "b", "", "c"])


@st.composite
def count_row(draw):
    hi = draw(st.sampled_from([60, 60, 10**9, 2**53]))
    n1 = draw(st.integers(1, hi))
    n2 = draw(st.integers(1, hi))
    a = draw(st.one_of(st.sampled_from([0, n1]), st.integers(0, n1)))
    c = draw(st.one_of(st.sampled_from([0, n2]), st.integers(0, n2)))
    return [str(a), str(n1), str(c), str(n2), "", "", ""]


@st.composite
def effect_row(draw):
    est = draw(st.floats(min_value=1e-6, max_value=1e6))
    lo_f = draw(st.floats(min_value=1e-3, max_value=1.0))
    hi_f = draw(st.floats(min_value=1.0, max_value=1e3))
    return ["", "", "", "", repr(est * lo_f), repr(est), repr(est * hi_f)]


@st.composite
def messy_cell(draw):
    return draw(
        st.one_of(
            st.sampled_from(
                [
                    "",
                    "0",
                    "1",
                    "-1",
                    "1.5",
                    "1,5",
                    "nan",
                    "inf",
                    "-inf",
                    "x",
                    "1e9",
                    "1e400",
                    "9007199254740993",
                    " 3 ",
                    "0.0",
                    "1e-320",
                    '"',
                    "2,0",
                ]
            ),
            st.integers(-5, 10**9).map(str),
            st.floats(allow_nan=True, allow_infinity=True).map(repr),
            st.text(max_size=4),
        )
    )


HEADER = [
    "study",
    "grp",
    "treat_events",
    "treat_total",
    "control_events",
    "control_total",
    "ci_low",
    "estimate",
    "ci_high",
]


@st.composite
def tables(draw):
    rows = draw(st.lists(st.one_of(count_row(), effect_row()), min_size=1, max_size=7))
    lines = [HEADER]
    for cells in rows:
        lines.append([draw(labels), draw(groups), *cells])
    return lines


def write_csv(
    path: Path, rows: list[list[str]], delimiter: str = ",", encoding: str = "utf-8"
) -> None:
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding, errors="replace"))


options = st.lists(
    st.sampled_from(
        [
            ["--measure", "OR"],
            ["--measure", "RD"],
            ["--keep-double-zero"],
            ["--cc-policy", "none"],
            ["--cc-policy", "all"],
            ["--ci", "hk"],
            ["--tau2", "REML"],
            ["--tau2", "ML"],
            ["--tau2", "PM"],
            ["--tau2", "HE"],
            ["--tau2", "SJ"],
            ["--common", "MH"],
            ["--common", "PETO"],
        ]
    ),
    max_size=3,
)


# Tables are rendered for half of the examples: the JSON run checks the accounting, the table
# run the views; both for every example would double the time for little more coverage.
formats = st.sampled_from([("json",), ("json", "table")])


@FUZZ
@given(table=tables(), extra=options, fmts=formats)
def test_random_tables(table, extra, fmts):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.csv"
        write_csv(path, table)
        run_all(path, len(table) - 1, extra, formats=fmts)


@st.composite
def mostly_valid_row(draw):
    """A valid count or effect row with one or two cells replaced by messy text."""
    cells = [draw(labels), draw(groups), *draw(st.one_of(count_row(), effect_row()))]
    for _ in range(draw(st.integers(0, 2))):
        cells[draw(st.integers(0, len(cells) - 1))] = draw(messy_cell())
    return cells


@FUZZ
@given(
    cells=st.lists(
        st.one_of(st.lists(messy_cell(), min_size=9, max_size=9), mostly_valid_row()),
        min_size=1,
        max_size=5,
    ),
    delimiter=st.sampled_from([",", ";", "\t"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "latin-1"]),
    extra=options,
)
def test_messy_cells(cells, delimiter, encoding, extra):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.csv"
        write_csv(path, [HEADER, *cells], delimiter, encoding)
        # Rows whose cells are all blank are not studies, so accounting is checked on the rest.
        n_rows = None if any(not any(c.strip() for c in r) for r in cells) else len(cells)
        run_all(path, n_rows, extra)


@FUZZ
@given(
    data=st.one_of(
        st.binary(max_size=400),
        st.binary(max_size=200).map(
            lambda b: b"study,treat_events,treat_total,control_events,control_total\n" + b
        ),
    )
)
def test_random_bytes(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.csv"
        path.write_bytes(data)
        run_all(path, None, [], formats=("json", "table"))


@pytest.mark.parametrize("count", ["1000000000", "999999999"])
def test_counts_up_to_a_billion(tmp_path, count):
    """Huge arms, events close to the total and extreme risk ratios stay finite."""
    path = tmp_path / "big.csv"
    rows = [
        HEADER,
        ["A", "a", count, count, "1", count, "", "", ""],
        ["B", "b", "1", count, count, count, "", "", ""],
        ["C", "a", "999999998", "1000000000", "3", "1000000000", "", "", ""],
    ]
    write_csv(path, rows)
    for measure in ("RR", "OR", "RD"):
        with nan_guard() as nans:
            result = invoke(["pool", str(path), "--measure", measure, "-f", "json"])
        check(result, 3, "json", nans)
        assert result.exit_code == 0
        data = json.loads(result.stdout)
        assert data["k"] == 3 and all(s["vi"] > 0 for s in data["studies"])


# The limits data.py accepts for effects given directly, and values at and inside them.
variances = st.one_of(
    st.floats(min_value=1e-40, max_value=1e40),
    st.sampled_from(["1e-40", "1e40", "1e-12", "0.04"]),
)
effects = st.one_of(
    st.floats(min_value=-1e10, max_value=1e10),
    st.sampled_from(["0", "0.5", "-700", "710", "1e10", "-1e10"]),
)


@FUZZ
@given(
    rows=st.lists(st.tuples(effects, variances, groups), min_size=1, max_size=8),
    equal=st.booleans(),
    kind=st.sampled_from([("yi", "vi"), ("theta", "se")]),
    extra=options,
    fmts=formats,
)
def test_extreme_effects_on_the_analysis_scale(rows, equal, kind, extra, fmts):
    """Tiny and huge variances, huge and all-equal effects: no overflow, no NaN, no crash."""
    table = [["study", "grp", *kind]]
    for i, (y, v, g) in enumerate(rows):
        y = rows[0][0] if equal else y
        table.append([f"S{i}", g, str(y), str(v)])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.csv"
        write_csv(path, table)
        run_all(path, len(rows), extra, formats=fmts)
