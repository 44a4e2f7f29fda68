"""What the entry points share: turning a ``UserError`` into one sentence and exit code 2,
and an ``Interrupted`` run into one line and its signal's exit code."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

from gm.errors import Interrupted, UserError

T = TypeVar("T")


def run_or_exit(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call ``fn``; on a ``UserError`` print ``error: <sentence>`` to stderr and exit 2; on
    an ``Interrupted`` run, ``stopped: <how to continue>`` and exit with its code."""
    try:
        return fn(*args, **kwargs)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except Interrupted as e:
        print(f"stopped: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
