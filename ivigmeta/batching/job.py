"""One ``batch`` run: the input read whole or in spans of whole groups by forked processes, the
results streamed to a staged file (docs/batch.md)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from typing import Any

import numpy as np

from ivigmeta.batching import run as core
from ivigmeta.batching.forking import MAX_PROCESSES, fork_map, processes_for

PARALLEL_MIN_BYTES = 1 << 20
"""Smaller files are pooled in one process (forking would cost more than it saves)."""


class BatchJob:
    """One batch run: the input read whole or in spans of whole groups by forked processes
    (``--jobs``), every result written to ``staged`` in the work directory (moved into place, or
    copied to stdout, at the end: a failed or restarted run never leaves half an output
    behind).

    ``writer`` makes the output writer (``ivigmeta.render.batch.BatchWriter``): formatting is the
    renderer's business, so the CLI hands it in. ``table`` says how the input is read (pool's
    --sep, --sheet, --columns); ``note`` receives the reader's notes about the file.
    """

    def __init__(
        self,
        path: str,
        source: str,
        groups: list[str],
        options: core.BatchOptions,
        fmt: str,
        chunk_rows: int,
        jobs: int,
        work: str,
        writer: Callable[..., Any],
        table: core.TableOptions | None = None,
        note: Callable[[str], None] | None = None,
    ) -> None:
        self.path, self.source, self.groups, self.options = path, source, groups, options
        self.fmt, self.chunk_rows, self.jobs, self.work = fmt, chunk_rows, jobs, work
        self.writer = writer
        self.table = table or core.TableOptions()
        self.note = note
        self.staged = os.path.join(work, "out")
        self.stats = {"groups": 0, "error": 0, "single": 0}

    def run(self, order: str, progress) -> None:
        spans = self._spans(order)
        if spans:
            self._run_spans(spans, order, progress)
        else:
            self._run_whole(order, progress)

    def _write(self, results, out: str, header: bool, processes: int | None, hashes: bool):
        """Write a stream of BatchResults to ``out``: the counts, and the groups' key hashes."""
        counts = dict.fromkeys(self.stats, 0)
        keys = []
        with contextlib.ExitStack() as stack:
            if self.fmt == "parquet":
                writer = self.writer(self.fmt, path=out)
            else:
                stream = stack.enter_context(open(out, "w", encoding="utf-8", newline=""))
                writer = self.writer(self.fmt, stream=stream, header=header, processes=processes)
            try:
                for result in results:
                    writer.write(result)
                    counts["groups"] += len(result)
                    counts["error"] += result.status_count(core.STATUS_ERROR)
                    counts["single"] += result.status_count(core.STATUS_SINGLE)
                    if hashes:
                        keys.append(result.key_hashes())
            finally:
                writer.close(core.BatchResult.empty(self.groups) if header else None)
        return counts, keys

    def _run_whole(self, order: str, progress) -> None:
        reader = core.ChunkReader(
            self.path,
            self.groups,
            self.chunk_rows,
            progress.update,
            name=self.source,
            options=self.table,
            note=self.note,
        )
        if order == "grouped":
            results = core.stream_batch(iter(reader), self.groups, self.options, self.source)
        else:
            parts = core.suggested_partitions(reader.total_bytes(), self.chunk_rows)
            results = core.partition_batch(
                iter(reader),
                self.groups,
                self.options,
                self.source,
                self.chunk_rows,
                parts,
                self.work,
            )
        self.stats, _ = self._write(results, self.staged, True, self.jobs or None, False)

    def _spans(self, order: str) -> list:
        """Spans of whole groups for separate processes, or [] to read the file whole."""
        if order != "grouped" or self.fmt == "parquet" or self.path == "-" or self.jobs == 1:
            return []
        try:
            if os.path.getsize(self.path) < PARALLEL_MIN_BYTES:
                return []
        except OSError:
            return []
        pieces = processes_for(MAX_PROCESSES, self.jobs or None)
        if pieces < 2:
            return []
        return core.split_spans(self.path, self.groups, pieces, self.table)

    def _run_spans(self, spans: list, order: str, progress) -> None:
        size = spans[-1].end
        # --chunk-rows bounds all processes together (below 1 it is the reader's error, as ever)
        per_job = max(1, self.chunk_rows // len(spans)) if self.chunk_rows >= 1 else self.chunk_rows

        # Each process counts the bytes it has read in its slot of a shared page (forked
        # children write theirs; this process sums them into the bar, also while it waits).
        import mmap

        counters = mmap.mmap(-1, 8 * len(spans))

        def total_done() -> int:
            return sum(
                int.from_bytes(counters[8 * j : 8 * j + 8], "little") for j in range(len(spans))
            )

        body = max(size - spans[0].start, 1)  # the bytes the spans hold (not the header)

        def show() -> None:
            progress.update(min(total_done(), body), body)

        def piece(task):
            i, span = task

            def report(done: int, total: int | None) -> None:
                counters[8 * i : 8 * i + 8] = int(done).to_bytes(8, "little")
                if i == 0:
                    show()

            reader = core.ChunkReader(
                self.path,
                self.groups,
                per_job,
                report,
                name=self.source,
                span=span,
                options=self.table,
                note=self.note if i == 0 else None,
            )
            results = core.stream_batch(iter(reader), self.groups, self.options, self.source)
            return self._write(results, self._part(i), i == 0, 1, True)

        try:
            done = fork_map(piece, list(enumerate(spans)), poll=show)
            show()  # every process finished: the whole file
        except core.NotGrouped:
            done = None
        parts = [h for _, keys in done or () for h in keys]
        hashes = np.sort(np.concatenate(parts)) if parts else np.empty(0, np.int64)
        if done is None or np.any(hashes[1:] == hashes[:-1]):  # (np.unique would import numpy.ma)
            # A group comes back, within a span or in another one (or two keys share a hash):
            # the whole file in one pass decides, and says where, exactly as without spans.
            progress.restart(f"batch {self.source}")
            return self._run_whole(order, progress)
        with open(self.staged, "ab") as out:
            for i in range(1, len(spans)):
                with open(self._part(i), "rb") as part:
                    shutil.copyfileobj(part, out, 1 << 20)
                os.remove(self._part(i))
        self.stats = {key: sum(counts[key] for counts, _ in done) for key in self.stats}

    def _part(self, i: int) -> str:
        """Where span i's results go (span 0 writes the output itself)."""
        return self.staged if i == 0 else f"{self.staged}.{i}"
