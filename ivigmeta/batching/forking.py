"""Run independent pieces of work in forked processes (batch's input spans, its output slices).

:func:`fork_map` is the one place that forks. This process does the first piece while forked
children do the others, each pickling its result into a temporary file. A child that fails is
never redone: its exception is raised here (the same class and message, the child's traceback
as its cause), and a child that dies without a result (killed by a signal, an exit of its own)
raises :class:`ForkedChildError`, so a failure surfaces as it would without children instead of
being hidden by a second run. Where fork is missing, or threads run (forking them is unsafe),
everything runs here one piece after another.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

MAX_PROCESSES = 8


class ForkedChildError(RuntimeError):
    """A forked child ended without a result: killed by a signal, exited by itself, or its
    exception could not be brought back (the message then carries its class and text)."""


class _ChildTraceback(Exception):
    """The traceback of an exception raised in a child, shown as that exception's cause."""

    def __str__(self) -> str:
        return "\n\n" + (self.args[0] if self.args else "")


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


def fork_map(
    func: Callable[[T], R],
    items: Sequence[T],
    poll: Callable[[], None] | None = None,
) -> list[R]:
    """``[func(item) for item in items]``, the items after the first in forked children.

    ``poll`` is called about ten times a second while this process waits for its children
    (a progress bar fed by the children's shared counters keeps moving).

    ``func``'s results travel back pickled; its side effects in a child (files it writes) stay,
    anything it changes in memory does not. Call it only where forking is safe (:func:`can_fork`).

    Raises
    ------
    Exception
        The first failure in item order: an exception of ``func`` here, or the one a child raised
        (rebuilt here with its class and arguments); the children still running are stopped.
    ForkedChildError
        A child died without a result (a signal, ``os._exit``) or its exception could not be
        rebuilt here.
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
                    try:
                        pickle.dump((True, func(item)), spool, protocol=pickle.HIGHEST_PROTOCOL)
                    except BaseException as exc:  # noqa: BLE001 - reported to the parent
                        spool.seek(0)  # (a result that failed to pickle half-way: overwrite it)
                        spool.truncate()
                        pickle.dump((False, _failure(exc)), spool)
                    spool.flush()
                    code = 0
                finally:
                    os._exit(code)
            children.append([pid, spool])
        results = [func(items[0])]
        for number, child in enumerate(children, start=2):
            pid, spool = child
            if poll is None:
                _, status = os.waitpid(pid, 0)
            else:
                import time

                while True:
                    done_pid, status = os.waitpid(pid, os.WNOHANG)
                    if done_pid:
                        break
                    poll()
                    time.sleep(0.1)
            child[0] = None
            where = f"the forked process for piece {number} of {len(items)}"
            if os.WIFSIGNALED(status):
                raise ForkedChildError(f"{where} was killed by {_signal_name(os.WTERMSIG(status))}")
            if status != 0:
                raise ForkedChildError(
                    f"{where} exited with status {os.waitstatus_to_exitcode(status)} "
                    "without a result"
                )
            try:
                spool.seek(0)
                ok, value = pickle.load(spool)
            except Exception as exc:  # noqa: BLE001 - a truncated spool (a full disk ...)
                raise ForkedChildError(f"{where}: its result cannot be read back ({exc})") from None
            if not ok:
                raise _rebuilt(value, where)
            results.append(value)
        return results
    finally:  # this process failed (or was interrupted): stop the children still running
        import signal

        for pid, spool in children:
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGTERM)
                    os.waitpid(pid, 0)
                except OSError:
                    pass
            spool.close()
        gc.unfreeze()


def _failure(exc: BaseException) -> dict:
    """What a child sends back about its exception: enough to raise the same one here.

    The class travels by reference with the arguments and attributes, not as the pickled
    exception: unpickling calls ``cls(*exc.args)``, which fails for an exception whose
    ``__init__`` takes other arguments than its message (batch's NotGrouped takes a row and a key).
    """
    import pickle
    import traceback

    failure: dict = {
        "name": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "text": str(exc),
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    }
    try:
        recipe = (type(exc), exc.args, dict(vars(exc)))
        pickle.loads(pickle.dumps(recipe))
        failure["recipe"] = recipe
    except Exception:  # noqa: BLE001 - the class, an argument or an attribute does not pickle
        pass
    return failure


def _rebuilt(failure: dict, where: str) -> BaseException:
    """The child's exception, rebuilt here, with its traceback as the cause."""
    exc: BaseException | None = None
    if "recipe" in failure:
        cls, args, attributes = failure["recipe"]
        try:
            exc = cls.__new__(cls, *args)
            exc.args = args
            exc.__dict__.update(attributes)
        except Exception:  # noqa: BLE001 - a class that cannot be rebuilt without its __init__
            exc = None
    if exc is None:
        exc = ForkedChildError(f"{where} failed: {failure['name']}: {failure['text']}")
    exc.__cause__ = _ChildTraceback(failure["traceback"])
    return exc


def _signal_name(number: int) -> str:
    import signal

    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
