"""``python -m gm.study``: the command line of ``gm.runs.study``, where the code is."""

from gm.runs.study import main

if __name__ == "__main__":
    main()
