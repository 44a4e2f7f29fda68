"""``python -m gm.study``: the command line of ``gm.runs.study``, where the code is."""

import sys

from gm.config import CONF_DIR
from gm.help import exit_with_help, wants_help

USAGE = "usage: python -m gm.study runs=[RUN_DIR,...] [key=value ...]"

if __name__ == "__main__":
    if wants_help(sys.argv):  # this command's own keys, not the training groups
        exit_with_help(CONF_DIR / "study.yaml", USAGE)
    from gm.runs.study import main

    main()
