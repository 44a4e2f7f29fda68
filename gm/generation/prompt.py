"""Prompts as free text: taken from the command line before Hydra's override grammar sees
them, so commas, quotes, brackets, ``=``, newlines and any Unicode work as typed.

``prompt=TEXT`` is the text after the first ``=``, whatever it holds; ``prompt=-`` reads
standard input; ``prompt_file=PATH`` reads a UTF-8 file.
"""

from __future__ import annotations

import sys
from pathlib import Path

from gm.errors import UserError

STDIN = "-"


def take_prompt(argv: list[str]) -> tuple[list[str], str | None]:
    """``argv`` without its ``prompt=``/``prompt_file=`` arguments, and the prompt they give
    (None when neither is there: the config's default applies)."""
    rest, given = [], []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and key in ("prompt", "prompt_file"):
            given.append((key, value))
        else:
            rest.append(arg)
    if not given:
        return rest, None
    if len(given) > 1:
        raise UserError(
            "give one prompt: prompt=TEXT, prompt=- (standard input) or prompt_file=PATH"
        )
    key, value = given[0]
    if key == "prompt":
        return rest, sys.stdin.read() if value == STDIN else value
    return rest, read_prompt_file(Path(value).expanduser())


def read_prompt_file(path: Path) -> str:
    """The text of ``path``; a missing, unreadable or non-UTF-8 file is one sentence."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise UserError(f"prompt_file={path} does not exist") from e
    except IsADirectoryError as e:
        raise UserError(f"prompt_file={path} is a directory, not a text file") from e
    except UnicodeDecodeError as e:
        raise UserError(
            f"prompt_file={path} is not UTF-8 text (bad byte at offset {e.start})"
        ) from e
    except OSError as e:
        raise UserError(f"cannot read prompt_file={path}: {e.strerror or e}") from e
