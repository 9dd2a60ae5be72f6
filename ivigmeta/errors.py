"""Exceptions raised by the core. The CLI turns each into a one-line ``Error: ...`` and exit 1."""


class IvigmetaError(Exception):
    """Base class: a problem with the user's data or request, never a bug."""


class DataError(IvigmetaError):
    """The input table cannot be read or fails validation.

    The message names the file, and the 1-based row and the column where it applies.
    """


class ModelError(IvigmetaError):
    """A method does not apply to the data given (too few studies, collinear moderators ...)."""
