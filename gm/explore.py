"""``python -m gm.explore``: the command line of ``gm.explorer.run``, where the code is."""

from gm.explorer.run import main

if __name__ == "__main__":
    main()
