"""Prompts are free text through the real generate.py: as typed, from a file, from stdin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gm.errors import UserError
from gm.generation.prompt import read_prompt_file, take_prompt
from tests.conftest import ROOT, run_script

PROMPTS = [
    "Hello, world",
    "It's",
    "[brackets] and {braces}",
    "a=b, c='d'",
    "two\nlines",
    "Ça, né — ‘quoted’ ünïcode",
    "cost ${oc.env:HOME}",
]


def _kept(run: Path, prompt: str) -> str:
    """The prompt less the characters the run's tokenizer never saw (on_unknown=skip)."""
    chars = set(json.loads((run / "tokenizer.json").read_text())["chars"])
    return "".join(c for c in prompt if c in chars)


@pytest.mark.parametrize("prompt", PROMPTS, ids=range(len(PROMPTS)))
def test_a_prompt_works_as_typed(trained_run: Path, prompt: str) -> None:
    proc = run_script(
        "generate.py",
        f"ckpt={trained_run}",
        f"prompt={prompt}",
        "on_unknown=skip",
        "max_new_tokens=5",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    # Echoed exactly (less what on_unknown=skip dropped), nothing resolved or re-parsed.
    assert proc.stdout.startswith(_kept(trained_run, prompt))


@pytest.mark.parametrize(
    "prompt",
    ["\\${oc.env:GM_TEST_SECRET}", "${oc.env:GM_TEST_SECRET}", "${oc.decode:'7'}x",
     "${now:%Y}", "${hydra:runtime.cwd}", "a \\\\${oc.env:GM_TEST_SECRET} b"],
)  # fmt: skip
@pytest.mark.parametrize("via", ["prompt", "prompt_file"])
def test_a_prompt_is_only_text_and_never_resolved(
    trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prompt: str, via: str
) -> None:
    """No interpolation in a prompt reaches OmegaConf, escaped or not: an environment
    variable, a decoded value, the time or Hydra's state never appear in the output."""
    monkeypatch.setenv("GM_TEST_SECRET", "hunter2")
    if via == "prompt_file":
        (tmp_path / "p.txt").write_text(prompt, encoding="utf-8")
        arg = f"prompt_file={tmp_path / 'p.txt'}"
    else:
        arg = f"prompt={prompt}"
    proc = run_script(
        "generate.py", f"ckpt={trained_run}", arg, "on_unknown=skip", "max_new_tokens=5"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(_kept(trained_run, prompt)), proc.stdout[:200]
    assert "hunter2" not in proc.stdout + proc.stderr


def test_a_prompt_from_a_file_and_from_standard_input(trained_run: Path, tmp_path: Path) -> None:
    prompt = "To be, or not to be:\nthat is the question"
    (tmp_path / "prompt.txt").write_text(prompt, encoding="utf-8")
    args = [f"ckpt={trained_run}", "on_unknown=skip", "max_new_tokens=5"]
    proc = run_script("generate.py", *args, f"prompt_file={tmp_path / 'prompt.txt'}")
    kept = _kept(trained_run, prompt)
    assert proc.returncode == 0 and proc.stdout.startswith(kept), proc.stderr[-2000:]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "generate.py"), *args, "prompt=-"],
        input=prompt,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=os.environ,
        timeout=300,
    )
    assert proc.returncode == 0 and proc.stdout.startswith(kept), proc.stderr[-2000:]


def test_prompt_arguments_are_taken_out_of_hydras_way(tmp_path: Path) -> None:
    argv, prompt = take_prompt(["generate.py", "ckpt=x", "prompt=a, b=c", "seed=1"])
    assert argv == ["generate.py", "ckpt=x", "seed=1"] and prompt == "a, b=c"
    assert take_prompt(["generate.py", "ckpt=x"]) == (["generate.py", "ckpt=x"], None)
    with pytest.raises(UserError, match="give one prompt"):
        take_prompt(["g", "prompt=a", "prompt_file=b"])
    with pytest.raises(UserError, match="does not exist"):
        take_prompt(["g", f"prompt_file={tmp_path / 'missing.txt'}"])
    (tmp_path / "bad.txt").write_bytes(b"ok \xff")
    with pytest.raises(UserError, match="is not UTF-8 text"):
        take_prompt(["g", f"prompt_file={tmp_path / 'bad.txt'}"])


def test_a_bad_prompt_file_is_one_sentence(trained_run: Path, tmp_path: Path) -> None:
    proc = run_script("generate.py", f"ckpt={trained_run}", f"prompt_file={tmp_path / 'no.txt'}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"error: prompt_file={tmp_path / 'no.txt'} does not exist"


def test_an_empty_prompt_says_why(trained_run: Path) -> None:
    """Nothing dropped: the message does not claim characters were."""
    args = [f"ckpt={trained_run}", "max_new_tokens=5"]
    proc = run_script("generate.py", *args, "prompt=")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "error: the prompt is empty; give at least one character" in proc.stderr
    proc = run_script("generate.py", *args, "prompt=\u00a7\u00a7", "on_unknown=skip")
    assert proc.returncode == 2 and "after dropping the characters" in proc.stderr, proc.stderr


def test_an_endless_prompt_file_is_one_sentence() -> None:
    """/dev/zero never ends: at most MAX_PROMPT_BYTES are read, then refused."""
    with pytest.raises(UserError, match=r"^prompt_file=/dev/zero is longer than 16 MiB"):
        read_prompt_file(Path("/dev/zero"))
