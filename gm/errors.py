"""The one exception type a user sees as a sentence instead of a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the person running ``gm``: the message says what is wrong and what to do.

    Entry points print it as one line and exit with status 2.
    """
