"""`ivigmeta batch` across processes: a grouped file cut into spans of whole groups
(ivigmeta.io.chunks.split_spans), each read, pooled and formatted by its own process.

Whatever the cut, the output must be byte for byte the one-process output, with the same row
numbers in messages; input that is not grouped must be found and reported exactly as without
spans.
"""

from __future__ import annotations

import numpy as np
import pytest

from ivigmeta.batching import job as batch_job
from ivigmeta.batching import run as core
from ivigmeta.batching.forking import can_fork

HEADER = "meta,study,treat_events,treat_total,control_events,control_total"


def long_table(groups: int = 300, seed: int = 5, newline: str = "\n") -> str:
    """Groups of 1 to 7 studies with zero cells, double zeros, a bad row and blank lines."""
    rng = np.random.default_rng(seed)
    lines = [HEADER]
    for g in range(groups):
        for s in range(int(rng.integers(1, 8))):
            n1, n2 = int(rng.integers(1, 60)), int(rng.integers(1, 60))
            a, c = int(rng.integers(0, n1 + 1)), int(rng.integers(0, n2 + 1))
            if g % 37 == 5 and s == 0:
                a = c = 0
            lines.append(f"G{g:04d},s{s},{a},{n1},{c},{n2}")
        if g % 50 == 7:
            lines.append("")
        if g % 61 == 11:
            lines.append(f"G{g:04d},bad,x,10,1,10")
    return newline.join(lines) + newline


def line_keys(data: bytes, start: int, end: int) -> set[str]:
    return {ln.split(b",")[0].decode() for ln in data[start:end].splitlines() if ln.strip(b", \r")}


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("pieces", [2, 3, 7])
def test_spans_cover_the_body_and_never_split_a_group(tmp_path, pieces, newline):
    path = tmp_path / "long.csv"
    path.write_bytes(long_table(newline=newline).encode())
    data = path.read_bytes()
    spans = core.split_spans(str(path), ["meta"], pieces)
    assert 2 <= len(spans) <= pieces
    assert spans[0].start == data.index(b"\n") + 1 and spans[-1].end == len(data)
    for before, after in zip(spans, spans[1:]):
        assert before.end == after.start
        assert data[after.start - 1 : after.start] == b"\n"
    for span in spans:
        assert span.first_row == data[: span.start].count(b"\n") + 1
    keys = [line_keys(data, s.start, s.end) for s in spans]
    for i in range(len(keys)):
        for j in range(i + 1, len(keys)):
            assert not keys[i] & keys[j]


def write(tmp_path, text: str, name: str = "long.csv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "text",
    [
        HEADER + "\n" + "A,s,1,10,1,10\n" * 40,  # one group: nothing to cut
        HEADER + "\n" + "".join(f"G{i},s,1,10,1,10\n" for i in range(40)).replace("G3,", '"G3",'),
        HEADER + "\n" + "".join(f"G{i},s,1,10,1,10\r" for i in range(40)),  # bare CR line ends
        HEADER.replace("meta", "group") + "\n" + "".join(f"G{i},s,1,10,1,10\n" for i in range(40)),
        # a repeated column name
        HEADER + ",study\n" + "".join(f"G{i},s,1,10,1,10,x\n" for i in range(40)),
    ],
    ids=["one group", "a quote", "bare CR", "no group column", "duplicate column"],
)
def test_files_that_are_not_cut(tmp_path, text):
    assert core.split_spans(write(tmp_path, text), ["meta"], 4) == []


def test_reading_the_spans_gives_the_rows_of_the_whole_file(tmp_path):
    path = write(tmp_path, long_table())
    whole = core.Rows.concat(list(core.ChunkReader(path, ["meta"], 97)))
    spans = core.split_spans(path, ["meta"], 3)
    parts = [core.Rows.concat(list(core.ChunkReader(path, ["meta"], 97, span=s))) for s in spans]
    joined = core.Rows.concat(parts)
    np.testing.assert_array_equal(joined.row, whole.row)
    np.testing.assert_array_equal(joined.values, whole.values)
    assert joined.keys["meta"].tolist() == whole.keys["meta"].tolist()
    assert joined.error.tolist() == whole.error.tolist()
    assert any(e and ", row " in e for e in joined.error.tolist())


needs_fork = pytest.mark.skipif(not can_fork(), reason="no fork here")


@pytest.fixture
def small_files_cut(monkeypatch):
    """Cut files of any size (the CLI otherwise keeps files under 1 MB whole)."""
    monkeypatch.setattr(batch_job, "PARALLEL_MIN_BYTES", 0)


@needs_fork
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("tau2", ["DL", "REML"])
def test_output_with_spans_is_the_one_process_output(run, tmp_path, small_files_cut, fmt, tau2):
    path = write(tmp_path, long_table())
    args = ["batch", path, "-g", "meta", "-f", fmt, "--tau2", tau2]
    one = run(*args, "-j", "1")
    assert one.exit_code == 0, one.output
    for jobs in ("2", "3", "5"):
        many = run(*args, "-j", jobs, "--chunk-rows", "50")
        assert many.exit_code == 0, many.output
        assert many.stdout == one.stdout
        assert many.stderr == one.stderr
    assert "failed (status error)" in one.stderr


@needs_fork
def test_a_group_that_comes_back_in_another_span_is_found(run, tmp_path, small_files_cut):
    lines = [HEADER, "G0,s0,1,10,2,10"] + [f"G{i},s,{i % 5},20,1,20" for i in range(1, 200)]
    lines.append("G0,s1,3,10,2,10")  # G0 again, at the end: in the last span
    path = write(tmp_path, "\n".join(lines) + "\n")
    assert len(core.split_spans(path, ["meta"], 2)) == 2
    auto_one = run("batch", path, "-g", "meta", "-j", "1")
    auto_two = run("batch", path, "-g", "meta", "-j", "2")
    assert auto_two.exit_code == auto_one.exit_code == 0
    assert auto_two.stdout == auto_one.stdout
    assert auto_two.stderr == auto_one.stderr
    assert "row 202: groups are not contiguous" in auto_two.stderr
    grouped_one = run("batch", path, "-g", "meta", "-j", "1", "--input-order", "grouped")
    grouped_two = run("batch", path, "-g", "meta", "-j", "2", "--input-order", "grouped")
    assert grouped_two.exit_code == grouped_one.exit_code == 1
    assert grouped_two.stderr == grouped_one.stderr
    assert "row 202: group (G0) appears again" in grouped_two.stderr


@needs_fork
def test_a_group_that_comes_back_within_a_later_span_is_reported_as_without_spans(
    run, tmp_path, small_files_cut
):
    lines = [HEADER] + [f"G{i},s,{i % 5},20,1,20" for i in range(200)]
    lines[150] = "G100,s9,1,20,1,20"  # G100 again, well inside the second half
    path = write(tmp_path, "\n".join(lines) + "\n")
    one = run("batch", path, "-g", "meta", "-j", "1", "--input-order", "grouped")
    two = run("batch", path, "-g", "meta", "-j", "2", "--input-order", "grouped")
    assert two.exit_code == one.exit_code == 1
    assert two.stderr == one.stderr


@needs_fork
def test_quotes_after_the_last_cut_are_read_by_that_spans_reader(run, tmp_path, small_files_cut):
    """A quoted cell (here with a comma and a line break) after the last cut does not stop the
    cutting; the last span's reader takes the csv rules from there, as the whole-file reader."""
    text = (
        long_table(groups=120) + 'G9998,"s, quoted\nover two lines",3,10,1,10\nG9999,s,x,10,1,10\n'
    )
    path = write(tmp_path, text)
    spans = core.split_spans(path, ["meta"], 2)
    assert len(spans) == 2 and text.index('"') > spans[-1].start
    one = run("batch", path, "-g", "meta", "-j", "1")
    two = run("batch", path, "-g", "meta", "-j", "2")
    assert two.exit_code == one.exit_code == 0
    assert two.stdout == one.stdout and two.stderr == one.stderr
    assert "G9999" in two.stdout and "'x' is not a number" in two.stdout


@needs_fork
def test_the_progress_bar_counts_every_process(tmp_path, small_files_cut, monkeypatch):
    """With --jobs, each process counts its bytes in a shared page and the bar shows their sum:
    it reaches the whole file, beyond what the first span alone holds."""
    from ivigmeta.batching.job import BatchJob
    from ivigmeta.render.batch import BatchWriter

    path = write(tmp_path, long_table(groups=2000))
    size = len((tmp_path / "long.csv").read_bytes())

    class Recorder:
        def __init__(self):
            self.updates = []

        def update(self, done, total):
            self.updates.append((done, total))

        def restart(self, description):
            self.updates.append(("restart", description))

    work = tmp_path / "work"
    work.mkdir()
    job = BatchJob(
        path, path, ["meta"], core.BatchOptions().checked(), "csv", 200, 3, str(work), BatchWriter
    )
    spans = job._spans("grouped")
    assert len(spans) >= 2
    first = spans[0].end - spans[0].start
    rec = Recorder()
    job.run("grouped", rec)
    assert "restart" not in [u[0] for u in rec.updates]
    done = [d for d, _ in rec.updates]
    total = rec.updates[-1][1]
    assert total == spans[-1].end - spans[0].start and spans[-1].end <= size
    assert max(done) > first  # the children's bytes are in the bar
    assert done == sorted(done)  # it never goes back
    assert done[-1] == total  # and it ends full
