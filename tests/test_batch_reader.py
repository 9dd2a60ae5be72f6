"""The pandas-free batch reader (ivigmeta.io.chunks) and the parallel CSV/JSON writer.

The reader takes numpy's fast path for plain lines and the csv module for quoted ones; either
way each row must be accepted or rejected exactly as `pool` accepts or rejects it, with pool's
message. Checked here group by group against `pool` on random messy tables (hypothesis), and
the fast and csv paths against each other. The writer formats big results in forked processes:
its output must be byte for byte the serial one.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fuzz import EXAMPLES

from ivigmeta.batching import forking
from ivigmeta.batching import run as core
from ivigmeta.core.effects import compute_effects
from ivigmeta.core.pooling import fit
from ivigmeta.errors import IvigmetaError
from ivigmeta.io.studies import parse_table
from ivigmeta.render import batch as writer
from ivigmeta.results import FitOptions

HEADER = ["grp", "study", "year", "treat_events", "treat_total", "control_events", "control_total"]


def read(text: str, chunk_rows: int = 1000, groups=("grp",)) -> core.Rows:
    reader = core.ChunkReader("-", list(groups), chunk_rows, name="b.csv")
    return core.Rows.concat(list(reader._chunks(io.BytesIO(text.encode("utf-8")))))


def pooled(text: str, chunk_rows: int = 1000) -> dict[str, dict]:
    rows = read(text, chunk_rows)
    result = core.pool_rows(rows, ["grp"], core.BatchOptions(keep_double_zero=False), "b.csv")
    out = {}
    for i, key in enumerate(result.keys["grp"].tolist()):
        out[key] = {name: result.values[name][i] for name in core.RESULT_COLUMNS}
    return out


def unlocated(message: str) -> str:
    """A message without its file and row numbers (they differ between the batch file and a
    group's own file, also in the "row N" that stands for a study without a label)."""
    return re.sub(r"row \d+", "row N", re.sub(r"^[^,]*, row \d+(, |: )", "", message))


def pool_on(lines: list[list[str]]):
    """pool on one group's rows written as their own CSV: a fit, or the error pool gives."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([HEADER, *lines])
    try:
        table = parse_table(buf.getvalue(), "group.csv")
        es = compute_effects(table.studies, measure="RR", keep_double_zero=False)
        return fit(es, FitOptions())
    except IvigmetaError as exc:
        return exc


def assert_like_pool(row: dict, ma) -> None:
    if isinstance(ma, IvigmetaError):
        assert row["status"] == "error"
        assert unlocated(row["reason"]) == unlocated(str(ma))
        return
    assert row["status"] in ("ok", "single"), row["reason"]
    assert row["k"] == ma.k
    assert row["n_excluded"] == len(ma.effects.excluded)
    if ma.pooled:
        for name, want in (("random_theta", ma.random.theta), ("q", ma.heterogeneity.q)):
            assert math.isclose(row[name], want, rel_tol=1e-10, abs_tol=1e-14), (
                name,
                row[name],
                want,
            )


CELLS = st.one_of(
    st.sampled_from(
        [
            "",
            "0",
            "1",
            "3",
            "12",
            " 7 ",
            "12.0",
            "1e1",
            "1_0",
            "-1",
            "2.5",
            "x",
            "nan",
            "inf",
            "1e400",
            "9007199254740992",
            "9007199254740993",
            "00012",
            "+4",
            "１２",
            "12abc",
        ]
    ),
    st.integers(0, 60).map(str),
)
YEARS = st.sampled_from(["", "2008", " 1999 ", "20x", "1e4", "2008.0", "-5"])
KEYS = st.sampled_from(["a", "b", " c", "d ", "é", "x,y", 'q"u', ""])
LABELS = st.sampled_from(["", "Smith 2008", "O'Brien, J", "Lee"])


@st.composite
def messy_tables(draw):
    rows = []
    for _ in range(draw(st.integers(1, 12))):
        counts = [draw(CELLS) for _ in range(4)]
        if draw(st.booleans()):  # mostly valid counts, so that groups get pooled
            n1, n2 = draw(st.integers(1, 60)), draw(st.integers(1, 60))
            counts = [
                str(draw(st.integers(0, n1))),
                str(n1),
                str(draw(st.integers(0, n2))),
                str(n2),
            ]
        rows.append([draw(KEYS), draw(LABELS), draw(YEARS), *counts])
    return rows


def to_csv(rows: list[list[str]], quote_all: bool) -> str:
    buf = io.StringIO()
    quoting = csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
    csv.writer(buf, lineterminator="\n", quoting=quoting).writerows([HEADER, *rows])
    return buf.getvalue()


@settings(max_examples=EXAMPLES, deadline=None)
@given(messy_tables(), st.booleans(), st.sampled_from([1, 3, 1000]))
def test_every_group_is_what_pool_gives_for_it(rows, quote_all, chunk_rows):
    """Messy cells, quoted or not, in chunks of any size: batch == pool group by group."""
    got = pooled(to_csv(rows, quote_all), chunk_rows)
    by_group: dict[str, list[list[str]]] = {}
    for r in rows:
        by_group.setdefault(r[0].strip(), []).append(r)
    assert set(got) == set(by_group)
    for key, lines in by_group.items():
        assert_like_pool(got[key], pool_on(lines))


def test_fast_and_csv_paths_read_the_same_rows():
    """Plain lines (numpy's reader) and the same lines quoted (the csv module) give equal Rows."""
    rng = np.random.default_rng(7)
    rows = []
    for g in range(300):
        for s in range(int(rng.integers(1, 6))):
            n1, n2 = int(rng.integers(1, 90)), int(rng.integers(1, 90))
            rows.append(
                [
                    f"G{g}",
                    f"s{s}",
                    "",
                    str(int(rng.integers(0, n1 + 1))),
                    str(n1),
                    str(int(rng.integers(0, n2 + 1))),
                    str(n2),
                ]
            )
    rows[5][3] = "x"  # a bad cell: that chunk goes cell by cell
    rows[17] = ["", "", "", "", "", "", ""]  # a blank row: skipped, still counted
    plain, quoted = read(to_csv(rows, False), 97), read(to_csv(rows, True), 97)
    for name in ("values", "row"):
        np.testing.assert_array_equal(getattr(plain, name), getattr(quoted, name))
    assert plain.keys["grp"].tolist() == quoted.keys["grp"].tolist()
    assert plain.error.tolist() == quoted.error.tolist()
    assert plain.row.tolist() == [r for r in range(2, len(rows) + 2) if r != 19]


@pytest.mark.parametrize(
    "line, message",
    [
        (
            "a,s,,1,10,2,10,extra",
            "b.csv, row 2: 8 fields but the header has 7 (value 'extra' has no column)",
        ),
        (
            "a,s,,1,10",
            "b.csv, row 2, column 'control_events': missing value (expected a whole number of participants)",
        ),
        ("a,s,,1,10,2,10,,,", None),  # empty surplus fields are fine, as in pool
        (
            "a,s,20x,1,10,2,10",
            "b.csv, row 2, column 'year': '20x' is not a year (expected a whole number such as 2008, or an empty cell)",
        ),
        (
            "a,s,,9007199254740993,9007199254740993,2,10",
            "b.csv, row 2, column 'treat_events': '9007199254740993' is too large (expected at most 2^53 = 9007199254740992)",
        ),
    ],
)
def test_short_long_and_odd_lines(line, message):
    text = ",".join(HEADER) + "\n" + line + "\na,t,,3,10,2,10\n"
    rows = read(text)
    assert rows.error.tolist()[0] == message
    assert rows.error.tolist()[1] is None


def test_characters_that_crash_numpys_integer_parser_are_a_row_error():
    # numpy 2.4's integer parser crashes the interpreter on U+DE12B (and others beyond the Basic
    # Multilingual Plane); the reader must never hand it such a cell. Run in a child process so
    # that a regression shows as a failed test, not a crashed test run.
    import subprocess
    import sys

    code = (
        "import io, json\n"
        "from ivigmeta.batching import run as core\n"
        "text = 'grp,study,year,treat_events,treat_total,control_events,control_total\\n'"
        " 'a,s,,\\U000de12b,10,2,10\\na,t,,3,10,2,10\\n'\n"
        "reader = core.ChunkReader('-', ['grp'], 1000, name='b.csv')\n"
        "rows = core.Rows.concat(list(reader._chunks(io.BytesIO(text.encode()))))\n"
        "print(json.dumps(rows.error.tolist()))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    first, second = json.loads(done.stdout)
    assert first.startswith("b.csv, row 2, column 'treat_events': ")
    assert second is None


def test_keys_and_labels_are_stripped_as_pool_strips_cells():
    text = ",".join(HEADER) + "\n a ,Smith 2008 ,,1,10,2,10\na,\tLee,,3,10,2,10\n"
    rows = read(text)
    assert rows.keys["grp"].tolist() == ["a", "a"]
    assert rows.label.tolist() == ["Smith 2008", "Lee"]


# ------------------------------------------------------------------------------------------
# the writer


@pytest.fixture
def big_result():
    rng = np.random.default_rng(3)
    lines = [",".join(HEADER)]
    for g in range(5000):
        for s in range(3):
            n1, n2 = int(rng.integers(5, 90)), int(rng.integers(5, 90))
            lines.append(
                f"G{g},s{s},,{rng.integers(0, n1 + 1)},{n1},{rng.integers(0, n2 + 1)},{n2}"
            )
    lines.append("Gbad,s,,x,10,1,10")
    lines.append('"G,quoted",s,,1,10,1,10')
    rows = read("\n".join(lines) + "\n", 100_000)
    return core.pool_rows(rows, ["grp"], core.BatchOptions(), "b.csv")


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_parallel_formatting_is_byte_for_byte_the_serial_output(big_result, fmt, monkeypatch):
    def write(workers: int) -> str:
        monkeypatch.setattr(writer, "worker_count", lambda n, processes=None: workers)
        out = io.StringIO()
        w = writer.BatchWriter(fmt, stream=out)
        w.write(big_result)
        w.close()
        return out.getvalue()

    serial = write(1)
    assert write(2) == serial
    assert write(3) == serial
    assert serial.count("\n") == len(big_result) + (fmt == "csv")


@pytest.mark.skipif(not forking.can_fork(), reason="no fork here")
def test_a_failed_worker_fails_the_output_with_its_error(monkeypatch):
    import os

    parent = os.getpid()

    def text(lo, hi):
        if os.getpid() != parent:
            raise RuntimeError(f"worker failure at {lo}")
        return f"{lo}-{hi};"

    monkeypatch.setattr(writer, "worker_count", lambda n, processes=None: 3)
    with pytest.raises(RuntimeError, match="^worker failure at 3$"):
        writer.in_parallel(9, text)


def test_the_default_worker_count_is_one_for_small_results():
    assert writer.worker_count(writer.PARALLEL_MIN_ROWS) == 1


def test_text_output_carries_every_value_exactly(big_result):
    """CSV cells parse back to the very floats computed; JSON lines are json.dumps' own layout."""
    import json

    out = io.StringIO()
    writer.BatchWriter("csv", stream=out).write(big_result)
    records = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["grp"] for r in records] == big_result.keys["grp"].tolist()
    for name in core.FLOAT_COLUMNS:
        got = np.array([float(r[name]) if r[name] else np.nan for r in records])
        np.testing.assert_array_equal(got, big_result.values[name])
    for name in core.INT_COLUMNS:
        want = [
            "" if m else str(v)
            for v, m in zip(big_result.values[name].tolist(), big_result.missing[name])
        ]
        assert [r[name] for r in records] == want
    out = io.StringIO()
    writer.BatchWriter("jsonl", stream=out).write(big_result)
    lines = out.getvalue().splitlines()
    assert len(lines) == len(big_result)
    for line in lines[:50] + lines[-3:]:
        assert json.dumps(json.loads(line), ensure_ascii=False) == line
    last = json.loads(lines[-2])
    assert last["grp"] == "Gbad" and last["status"] == "error" and last["k"] is None


@pytest.mark.parametrize(
    "chunk_rows, flags", [(2, [False, False, True]), (5, [False]), (6, [True]), (1, [False] * 5)]
)
def test_the_reader_marks_the_chunk_that_meets_the_end(chunk_rows, flags):
    """stream_batch pools the last group of a chunk marked last at once (nothing can follow);
    a chunk that ends exactly at the end of the file is not marked, and its last group is
    pooled after the reader finds nothing more: the same results either way."""
    text = ",".join(HEADER) + "\n" + "".join(f"G{i // 2},s,,1,10,2,10\n" for i in range(5))
    reader = core.ChunkReader("-", ["grp"], chunk_rows, name="b.csv")
    chunks = list(reader._chunks(io.BytesIO(text.encode())))
    assert [c.last for c in chunks] == flags
    results = list(core.stream_batch(iter(chunks), ["grp"], core.BatchOptions(), "b.csv"))
    assert [k for r in results for k in r.keys["grp"].tolist()] == ["G0", "G1", "G2"]
    assert [int(v) for r in results for v in r.values["k"]] == [2, 2, 1]
