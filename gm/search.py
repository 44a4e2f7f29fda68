"""``python -m gm.search``: the command line of ``gm.runs.search``, where the code is."""

from gm.runs.search import main

if __name__ == "__main__":
    main()
