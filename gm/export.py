"""``python -m gm.export RUN_OR_CKPT OUT_DIR``: write a run's model as a bundle.

The command line only; bundles themselves are ``gm.artifacts``.
"""

from __future__ import annotations

import argparse

from gm.artifacts import load_trained, write_bundle
from gm.cli import run_or_exit


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments, write the bundle, say where."""
    parser = argparse.ArgumentParser(prog="python -m gm.export", description=__doc__.split("\n")[0])
    parser.add_argument("source", help="a run directory or a .ckpt file")
    parser.add_argument("out_dir", help="a new directory for the bundle")
    args = parser.parse_args(argv)
    out = run_or_exit(lambda: write_bundle(load_trained(args.source), args.out_dir))
    print(f"bundle written to {out}")


if __name__ == "__main__":
    main()
