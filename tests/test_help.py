"""``--help`` of generate.py and gm.study: their own keys, no training group, no torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gm.help import config_help
from tests.conftest import ROOT, run_script

TRAINING_GROUPS = ("optimizer:", "trainer:", "scheduler:", "astra_alpha, astra_beta")


@pytest.mark.parametrize(
    "target,own",
    [
        ("generate.py", ("ckpt:", "max_new_tokens:", "on_unknown:", "mode: stateful")),
        ("gm.study", ("runs:", "chunk_len:", "warmup:", "allow_changed_corpus:")),
    ],
)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_the_commands_own_keys_and_no_training_group(target, own, flag) -> None:
    proc = run_script(target, flag)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: python ")
    for key in own:
        assert key in proc.stdout, key
    for group in TRAINING_GROUPS:
        assert group not in proc.stdout, group
    assert "hydra:" not in proc.stdout and "defaults:" not in proc.stdout


@pytest.mark.parametrize("argv", [["generate.py", "--help"], ["gm/study.py", "--help"]])
def test_help_does_not_import_torch(argv) -> None:
    """What makes it fast: nothing heavy is imported before the help is printed."""
    code = (
        "import runpy, sys\n"
        f"sys.argv = {argv!r}\n"
        "try:\n"
        f"    runpy.run_path({argv[0]!r}, run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_the_help_keeps_comments_and_drops_the_defaults_and_hydra_blocks(tmp_path) -> None:
    config = tmp_path / "x.yaml"
    config.write_text(
        "# what x does\ndefaults:\n  - paths: default\n  - _self_\n\n"
        "runs: ???   # run directories\nsamples:\n  seed: 1\nhydra:\n  run:\n    dir: .\n"
    )
    text = config_help(config, "usage: x")
    assert text.startswith("usage: x\n")
    assert "# what x does" in text and "runs: ???   # run directories" in text
    assert "samples:\n  seed: 1" in text
    assert "paths: default" not in text and "dir: ." not in text
