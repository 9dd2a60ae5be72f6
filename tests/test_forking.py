"""ivigmeta.batching.forking.fork_map: the pieces in order, a failed child redone here, a failure here
stopping the children."""

from __future__ import annotations

import os

import pytest

from ivigmeta.batching import forking


def test_results_come_back_in_order_from_the_children():
    parent = os.getpid()
    got = forking.fork_map(lambda i: (i * i, os.getpid() == parent), list(range(5)))
    assert [g[0] for g in got] == [0, 1, 4, 9, 16]
    assert got[0][1] is True  # the first piece runs here
    if forking.can_fork():
        assert not any(here for _, here in got[1:])


def test_a_child_that_fails_is_redone_here():
    parent = os.getpid()

    def piece(i):
        if os.getpid() != parent:
            raise RuntimeError("child failure")
        return i

    assert forking.fork_map(piece, [1, 2, 3]) == [1, 2, 3]


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
