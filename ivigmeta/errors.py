"""Exceptions raised by the core. The CLI turns each into a one-line ``Error: ...`` and exit 1."""


class IvigmetaError(Exception):
    """Base class: a problem with the user's data or request, never a bug."""


class DataError(IvigmetaError):
    """The input table cannot be read or fails validation.

    The message names the file, and the 1-based row and the column where it applies.
    """


class ModelError(IvigmetaError):
    """A method does not apply to the data given (too few studies, collinear moderators ...)."""


class MissingValueError(DataError):
    """A cell a study's effect needs is missing (empty, ``NA``, ``NaN`` ...).

    ``column`` is the header name of the cell, as the message names it. With ``--missing
    exclude`` the reader leaves such a study out, listed with the reason, instead of stopping.
    """

    def __init__(self, message: str, column: str) -> None:
        super().__init__(message)
        self.column = column
