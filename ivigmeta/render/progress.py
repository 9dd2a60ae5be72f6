"""A progress bar on standard error for long batch runs (rich, so it lives in render)."""

from __future__ import annotations

import sys
from typing import Any


class Progress:
    """Bytes of input read so far; shown only when stderr is a terminal (a no-op otherwise)."""

    def __init__(self, description: str, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.description = description
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import (
                Progress as RichProgress,
            )

            self._progress = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
                # Redrawn after each chunk rather than by a refresh thread: with no thread running,
                # the writer may fork workers to format the output (render/batch.py).
                auto_refresh=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(self.description, total=None)
        return self

    def update(self, done: int, total: int | None) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=done, total=total, refresh=True)

    def restart(self, description: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=0, description=description, refresh=True)

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
            self._progress = None
