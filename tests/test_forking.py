"""ivigmeta.batching.forking.fork_map: the pieces in order; a child's failure raised here with its
class and message (never redone), a child that dies a clear error; a failure here stopping the
children."""

from __future__ import annotations

import os
import signal
import time

import pytest

from ivigmeta.batching import forking


def test_results_come_back_in_order_from_the_children():
    parent = os.getpid()
    got = forking.fork_map(lambda i: (i * i, os.getpid() == parent), list(range(5)))
    assert [g[0] for g in got] == [0, 1, 4, 9, 16]
    assert got[0][1] is True  # the first piece runs here
    if forking.can_fork():
        assert not any(here for _, here in got[1:])


needs_fork = pytest.mark.skipif(not forking.can_fork(), reason="no fork here")


class RowKeyError(Exception):
    """Like batch's NotGrouped: an __init__ that takes other arguments than the message."""

    def __init__(self, row: int, key: tuple) -> None:
        super().__init__(f"row {row}: group {key} appears again")
        self.row = row


@needs_fork
def test_a_child_that_raises_fails_the_run_with_its_error_and_is_not_redone(tmp_path):
    parent = os.getpid()

    def piece(i):
        (tmp_path / f"ran{i}-{os.getpid()}").write_text("")
        if i == 2:
            raise ValueError(f"bad row in piece {i}")
        return i

    with pytest.raises(ValueError, match="^bad row in piece 2$") as caught:
        forking.fork_map(piece, [1, 2, 3])
    runs = sorted(p.name for p in tmp_path.iterdir())
    # piece 2 ran once, in its child, not again here; piece 3's child may have been stopped
    # before it got going (the run had already failed), so it is not counted
    piece2 = [r for r in runs if r.startswith("ran2-")]
    assert len(piece2) == 1 and piece2 != [f"ran2-{parent}"]
    assert f"ran1-{parent}" in runs
    shown = str(caught.value.__cause__)  # the child's traceback, for IVIGMETA_DEBUG=1
    assert shown.count("Traceback (most recent call last)") == 1
    assert "ValueError: bad row in piece 2" in shown


@needs_fork
def test_an_exception_whose_init_takes_other_arguments_comes_back_whole():
    def piece(i):
        if i == 1:
            raise RowKeyError(7, ("G0",))
        return i

    with pytest.raises(RowKeyError, match=r"^row 7: group \('G0',\) appears again$") as caught:
        forking.fork_map(piece, [0, 1])
    assert caught.value.row == 7


@needs_fork
def test_the_first_failing_piece_in_order_is_the_one_reported():
    def piece(i):
        if i >= 2:
            raise RuntimeError(f"piece {i} failed")
        return i

    with pytest.raises(RuntimeError, match="^piece 2 failed$"):
        forking.fork_map(piece, [0, 1, 2, 3, 4])


@needs_fork
def test_a_result_that_cannot_be_pickled_is_an_error_not_a_second_run():
    parent = os.getpid()

    def piece(i):
        if os.getpid() == parent:
            return i
        return lambda: i  # a local function does not pickle

    with pytest.raises(Exception, match="(?i)pickle"):
        forking.fork_map(piece, [0, 1])


@needs_fork
def test_a_child_killed_by_a_signal_is_a_clear_error_not_a_hang():
    def piece(i):
        if i == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return i

    started = time.monotonic()
    with pytest.raises(
        forking.ForkedChildError,
        match="^the forked process for piece 2 of 3 was killed by SIGKILL$",
    ):
        forking.fork_map(piece, [0, 1, 2])
    assert time.monotonic() - started < 20


@needs_fork
def test_a_child_that_exits_by_itself_is_a_clear_error():
    def piece(i):
        if i == 2:
            os._exit(3)
        return i

    with pytest.raises(
        forking.ForkedChildError,
        match="^the forked process for piece 3 of 3 exited with status 3 without a result$",
    ):
        forking.fork_map(piece, [0, 1, 2])


def test_an_error_here_propagates_and_stops_the_children(tmp_path):
    parent = os.getpid()

    def piece(i):
        if os.getpid() == parent:
            raise ValueError("bad piece")
        import time

        time.sleep(30)  # stopped by the parent long before this ends
        (tmp_path / f"done{i}").write_text("")

    with pytest.raises(ValueError, match="bad piece"):
        forking.fork_map(piece, [0, 1])
    assert not list(tmp_path.iterdir())


def test_processes_for_never_exceeds_the_pieces_or_the_request():
    assert forking.processes_for(1) == 1
    assert forking.processes_for(100, 1) == 1
    assert 1 <= forking.processes_for(100) <= min(forking.MAX_PROCESSES, forking.usable_cores())
    if forking.can_fork():
        assert forking.processes_for(100, 3) == 3
