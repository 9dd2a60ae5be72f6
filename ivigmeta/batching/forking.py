"""Run independent pieces of work in forked processes (batch's input spans, its output slices).

:func:`fork_map` is the one place that forks. This process does the first piece while forked
children do the others, each pickling its result into a temporary file; a child that fails for
any reason is redone here, so an exception (a bad row, input that is not grouped) surfaces
exactly as if nothing had been forked. Where fork is missing, or threads run (forking them is
unsafe), everything runs here one piece after another.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

MAX_PROCESSES = 8


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def can_fork() -> bool:
    """Whether forking is available and safe here (no other Python thread is running)."""
    import os
    import threading

    return hasattr(os, "fork") and threading.active_count() == 1


def processes_for(pieces: int, requested: int | None = None) -> int:
    """How many processes to use for ``pieces`` independent pieces: ``requested`` (None or 0:
    one per usable core), never more than the pieces or MAX_PROCESSES, 1 where forking is not
    possible."""
    if not can_fork():
        return 1
    want = requested if requested else usable_cores()
    return max(1, min(want, pieces, MAX_PROCESSES))


def fork_map(func: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``[func(item) for item in items]``, the items after the first in forked children.

    ``func``'s results travel back pickled; its side effects in a child (files it writes) stay,
    anything it changes in memory does not. Call it only where forking is safe (:func:`can_fork`).
    """
    if len(items) <= 1 or not can_fork():
        return [func(item) for item in items]
    import gc
    import os
    import pickle
    import tempfile

    gc.freeze()  # the objects that exist now are never scanned again: no copy-on-write of them
    children: list = []
    try:
        for item in items[1:]:
            spool = tempfile.TemporaryFile()
            pid = os.fork()
            if pid == 0:  # the child: one piece, never return into the caller's code
                code = 1
                try:
                    pickle.dump(func(item), spool, protocol=pickle.HIGHEST_PROTOCOL)
                    spool.flush()
                    code = 0
                finally:
                    os._exit(code)
            children.append([pid, spool, item])
        results = [func(items[0])]
        for child in children:
            pid, spool, item = child
            _, status = os.waitpid(pid, 0)
            child[0] = None
            result = None
            if status == 0:
                try:
                    spool.seek(0)
                    result = (pickle.load(spool),)
                except Exception:  # noqa: BLE001 - a truncated spool: redo the piece here
                    result = None
            results.append(result[0] if result is not None else func(item))
        return results
    finally:  # this process failed (or was interrupted): stop the children still running
        import signal

        for pid, spool, _ in children:
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGTERM)
                    os.waitpid(pid, 0)
                except OSError:
                    pass
            spool.close()
        gc.unfreeze()
