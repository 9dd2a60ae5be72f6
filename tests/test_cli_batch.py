"""`ivigmeta batch` plumbing: formats, -o, stdin, input order, chunking, errors and exit codes.

The numbers are tested in test_batch.py; here the CLI must carry them through unchanged.
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pandas as pd
import pytest

from ivigmeta.batching import run as core

HEADER = "review,analysis,study,treat_events,treat_total,control_events,control_total"
ROWS = [
    "R1,A,s1,12,40,6,41",
    "R1,A,s2,15,44,20,43",
    "R1,A,s3,3,30,9,31",
    "R1,B,s1,0,20,4,21",
    "R1,B,s2,5,25,3,29",
    "R2,A,s1,7,30,2,28",
    "R2,B,s1,2,10,x,12",
    "R2,B,s2,2,10,1,12",
]
CSV = HEADER + "\n" + "\n".join(ROWS) + "\n"
KEYS = ["review", "analysis"]


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text(CSV)
    return path


def expected() -> pd.DataFrame:
    frame = core.Rows.concat(
        list(core.ChunkReader("-", KEYS)._chunks(io.BytesIO(CSV.encode())))
    ).to_frame()
    return core.batch_pool(frame, KEYS)


def assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Same rows: numbers exactly (CSV keeps full precision), NaN where empty; same statuses."""
    for col in ("k", "random_theta", "random_pi_low", "tau2", "q", "df"):
        np.testing.assert_array_equal(
            pd.to_numeric(got[col]).to_numpy(dtype=float, na_value=np.nan),
            pd.to_numeric(want[col]).to_numpy(dtype=float, na_value=np.nan),
        )
    assert got["status"].tolist() == want["status"].tolist()


def read_csv_output(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_to_stdout_has_the_contract_columns_and_full_precision(run, table):
    result = run("batch", str(table), "-g", "review", "-g", "analysis")
    assert result.exit_code == 0, result.output
    rows = read_csv_output(result.stdout)
    assert list(rows[0]) == [*KEYS, *core.RESULT_COLUMNS]
    want = expected()
    assert [(r["review"], r["analysis"]) for r in rows] == list(
        zip(want["review"], want["analysis"])
    )
    assert [r["status"] for r in rows] == ["ok", "ok", "single", "error"]
    assert float(rows[0]["random_estimate"]) == want["random_estimate"].iloc[0]  # repr round-trips
    assert "row 8, column 'control_events'" in rows[3]["reason"]
    assert (
        "4 meta-analyses: 2 pooled, 1 with a single study, 1 failed (status error)" in result.stderr
    )


def test_jsonl_output(run, table):
    result = run("batch", str(table), "-g", "review", "-g", "analysis", "-f", "jsonl")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 4
    assert list(records[0]) == [*KEYS, *core.RESULT_COLUMNS]
    assert records[2]["status"] == "single" and records[2]["random_theta"] is None
    assert records[2]["df"] is None and records[0]["df"] == 2
    assert records[0]["tau2"] == expected()["tau2"].iloc[0]


def test_jsonl_keeps_one_object_per_line_whatever_the_keys_hold(run, tmp_path):
    # U+0085, U+2028 and U+2029 are line ends to str.splitlines and JavaScript: escaped.
    keys = ["a\x85b", "c\u2028d", "e\u2029f"]
    lines = [HEADER] + [f"{k},A,s{i},{3 + i},20,5,20" for k in keys for i in range(2)]
    path = tmp_path / "odd.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run("batch", str(path), "-g", "review", "-g", "analysis", "-f", "jsonl")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["review"] for r in records] == keys
    assert all(r["status"] == "ok" for r in records)


def test_parquet_output_to_file(run, table, tmp_path):
    pytest.importorskip("pyarrow")
    out = tmp_path / "out.parquet"
    result = run(
        "batch", str(table), "-g", "review", "-g", "analysis", "-f", "parquet", "-o", str(out)
    )
    assert result.exit_code == 0, result.output
    got = pd.read_parquet(out)
    assert list(got.columns) == [*KEYS, *core.RESULT_COLUMNS]
    assert got["q"].tolist()[:2] == pytest.approx(expected()["q"].tolist()[:2], rel=0, abs=0)


def test_parquet_needs_an_output_file(run, table):
    result = run("batch", str(table), "-g", "review", "-f", "parquet")
    assert result.exit_code == 2
    assert "-o FILE" in result.output


def test_output_file_and_stdin(run, tmp_path):
    out = tmp_path / "res.csv"
    result = run("batch", "-", "-g", "review", "-g", "analysis", "-o", str(out), input=CSV)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    rows = read_csv_output(out.read_text())
    assert len(rows) == 4 and "<stdin>, row 8" in rows[3]["reason"]


@pytest.mark.parametrize("order", ["auto", "grouped", "unsorted"])
@pytest.mark.parametrize("chunk_rows", ["2", "100"])
def test_chunking_and_input_orders_give_the_same_rows(run, table, order, chunk_rows):
    result = run(
        "batch",
        str(table),
        "-g",
        "review",
        "-g",
        "analysis",
        "--chunk-rows",
        chunk_rows,
        "--input-order",
        order,
    )
    assert result.exit_code == 0, result.output
    got = pd.read_csv(io.StringIO(result.stdout), dtype={"review": str, "analysis": str})
    got = got.sort_values(KEYS, ignore_index=True)
    want = expected().sort_values(KEYS, ignore_index=True)
    assert_same(got, want)


def test_unsorted_input(run, tmp_path):
    shuffled = HEADER + "\n" + "\n".join(ROWS[i] for i in (0, 3, 1, 5, 4, 2, 7, 6)) + "\n"
    path = tmp_path / "shuffled.csv"
    path.write_text(shuffled)
    grouped = run("batch", str(path), "-g", "review", "-g", "analysis", "--input-order", "grouped")
    assert grouped.exit_code == 1
    assert "not grouped" in grouped.stderr and "Traceback" not in grouped.output
    auto = run("batch", str(path), "-g", "review", "-g", "analysis", "--chunk-rows", "2")
    assert auto.exit_code == 0, auto.output
    assert "not contiguous" in auto.stderr
    got = pd.read_csv(io.StringIO(auto.stdout)).sort_values(KEYS, ignore_index=True)
    assert_same(got, expected().sort_values(KEYS, ignore_index=True))


def test_unsorted_standard_input_is_spooled_and_pooled_again(run):
    shuffled = HEADER + "\n" + "\n".join(ROWS[i] for i in (0, 3, 1, 5, 4, 2, 7, 6)) + "\n"
    result = run(
        "batch", "-", "-g", "review", "-g", "analysis", "--chunk-rows", "3", input=shuffled
    )
    assert result.exit_code == 0, result.output
    assert "not contiguous" in result.stderr
    got = pd.read_csv(io.StringIO(result.stdout)).sort_values(KEYS, ignore_index=True)
    assert_same(got, expected().sort_values(KEYS, ignore_index=True))
    assert "<stdin>, row" in got.loc[got["status"] == "error", "reason"].iloc[0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.csv", "-g", "review"], "missing.csv: file not found"),
        (["{table}", "-g", "nope"], "no group column 'nope'"),
        (
            ["{table}", "-g", "review", "--measure", "RR", "--common", "PETO"],
            "estimates an odds ratio",
        ),
        (["{table}", "-g", "review", "--chunk-rows", "0"], "--chunk-rows must be at least 1"),
    ],
)
def test_bad_requests_are_one_line_errors(run, table, args, message):
    result = run("batch", *[a.format(table=table) for a in args])
    assert result.exit_code == 1
    assert message in result.stderr
    assert result.stderr.startswith("Error: ")


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "<stdin>: the file is empty"),
        (HEADER + "\n\n", "<stdin>: the file has a header but no study rows"),
    ],
)
def test_empty_input_is_an_error_naming_stdin(run, text, message):
    result = run("batch", "-", "-g", "review", input=text)
    assert result.exit_code == 1
    assert message in result.stderr


def test_a_file_without_count_columns_is_an_error(run, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("review,a,b\nR1,1,2\n")
    result = run("batch", str(path), "-g", "review")
    assert result.exit_code == 1
    # batch resolves the header with pool's code, so it refuses it with pool's message
    assert "row 1: required columns missing: expected event counts" in result.stderr
    assert result.stderr == run("pool", str(path)).stderr


def test_the_progress_bar_runs_no_thread():
    """No refresh thread: the CSV writer may then fork workers even in a terminal."""
    import threading

    from ivigmeta.render.progress import Progress

    before = threading.active_count()
    with Progress("batch", enabled=True) as progress:
        progress.update(10, 100)
        assert threading.active_count() == before
