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
# A prompt is at most this long: more is not a prompt (and /dev/zero never ends).
MAX_PROMPT_BYTES = 16 * 2**20


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
    if key == "prompt" and value != STDIN:
        return rest, value
    if key == "prompt":
        return rest, _decoded(_bounded(sys.stdin.buffer, "the prompt on standard input"), "stdin")
    return rest, read_prompt_file(Path(value).expanduser())


def _bounded(stream, what: str) -> bytes:
    data = stream.read(MAX_PROMPT_BYTES + 1)
    if len(data) > MAX_PROMPT_BYTES:
        raise UserError(
            f"{what} is longer than {MAX_PROMPT_BYTES // 2**20} MiB; give a shorter one"
        )
    return data


def _decoded(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{where} is not UTF-8 text (bad byte at offset {e.start})") from e


def read_prompt_file(path: Path) -> str:
    """The text of ``path``; a missing, unreadable, endless or non-UTF-8 file is one
    sentence."""
    try:
        with path.open("rb") as f:
            data = _bounded(f, f"prompt_file={path}")
    except FileNotFoundError as e:
        raise UserError(f"prompt_file={path} does not exist") from e
    except IsADirectoryError as e:
        raise UserError(f"prompt_file={path} is a directory, not a text file") from e
    except OSError as e:
        raise UserError(f"cannot read prompt_file={path}: {e.strerror or e}") from e
    return _decoded(data, f"prompt_file={path}")
