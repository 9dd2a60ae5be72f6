"""Output paths for figures: the format comes from the extension. No matplotlib here."""

from __future__ import annotations

import errno
import os

from ivigmeta.errors import DataError

FIGURE_FORMATS = ("png", "svg", "pdf")


def figure_format(path: str) -> str:
    """The figure format named by ``path``'s extension, or a :class:`DataError`."""
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in FIGURE_FORMATS:
        shown = f"'.{ext}'" if ext else "no extension"
        raise DataError(
            f"{path}: cannot write a figure with {shown} "
            f"(use one of {', '.join('.' + f for f in FIGURE_FORMATS)})"
        )
    return ext


def check_target(path: str) -> str:
    """Check that a figure can be written to ``path`` before any work is done; returns the format.

    The directory must exist and be writable, and ``path`` must not be a directory; each problem
    is a :class:`DataError` naming ``path``.
    """
    fmt = figure_format(path)
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise DataError(f"{path}: is a directory, not a figure file")
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise DataError(f"{path}: {os.strerror(errno.ENOTDIR)} ({directory} is a file)")
    if not os.path.isdir(directory):
        raise DataError(f"{path}: cannot write the figure (directory {directory} does not exist)")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise DataError(f"{path}: cannot write the figure (directory {directory} is not writable)")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise DataError(f"{path}: cannot write the figure (the file is read-only)")
    return fmt
