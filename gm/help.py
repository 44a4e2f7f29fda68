"""``--help`` of the entry points that are not ``train.py``: their own keys, fast.

Hydra's own help lists every config group under ``conf/`` — the training groups (model,
optimizer, trainer), which do not apply to ``generate.py`` or ``gm.study`` — and takes
seconds, since it imports what the command would run. This one prints the command's own
config file, its comments included, without importing torch.
"""

from __future__ import annotations

import sys
from pathlib import Path

HELP_FLAGS = ("--help", "-h")


def wants_help(argv: list[str]) -> bool:
    """Whether the command line asks for help (Hydra's ``--hydra-help`` stays Hydra's)."""
    return any(arg in HELP_FLAGS for arg in argv[1:])


def config_help(config: Path, usage: str) -> str:
    """``usage``, then the keys of ``config`` with their defaults and comments: the file
    without its ``defaults:`` list and ``hydra:`` block, which are not the user's keys."""
    kept, skipping = [], False
    for line in config.read_text().splitlines():
        top = line[:1] not in ("", " ", "#")
        if top:
            skipping = line.startswith(("defaults:", "hydra:"))
        if not skipping:
            kept.append(line)
    body = "\n".join(kept).strip("\n")
    return (
        f"{usage}\n\nEvery key is set as key=value on the command line (Hydra's syntax); "
        f"the defaults, from {config.parent.name}/{config.name}:\n\n{body}\n"
    )


def exit_with_help(config: Path, usage: str) -> None:
    """Print ``config_help`` and exit 0."""
    sys.stdout.write(config_help(config, usage))
    sys.exit(0)
