"""The one exception type a user sees as a sentence instead of a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the person running ``gm``: the message says what is wrong and what to do.

    Entry points print it as one line and exit with status 2.
    """


class Interrupted(Exception):
    """A run stopped from outside (a scheduler's signal) after saving what it needs to go
    on: the message says how to continue it.

    Entry points print it as one line and exit with ``exit_code`` (128 + the signal).
    """

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
