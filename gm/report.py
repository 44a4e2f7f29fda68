"""``python -m gm.report``: the command line of ``gm.runs.report``, where the code is."""

from gm.runs.report import main

if __name__ == "__main__":
    main()
