"""A full disk at any write of a run's life — its data caches, its first files, a step
checkpoint, a validation's figures, metrics.json, the bundle — is one sentence (exit 2),
leaves every file whole (no empty or half-written file, no temporary left behind), and
the run is resumable, or refused with one sentence, or can simply be run again."""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path

import pytest
import torch

from gm.training.train import refused_write
from tests.conftest import FAST_TRAIN, ROOT, generated_text
from tests.entrypoints import run_entrypoint
from tests.test_settings import assert_exit_0_or_one_sentence

ARGS = [
    *(a for a in FAST_TRAIN if not a.startswith("trainer.limit_train_batches")),
    "trainer.limit_train_batches=6",
    "callbacks.checkpoint.every_n_train_steps=3",  # a step checkpoint before the validation
]


def _train(root: Path, fail_at: int, *extra: str):
    """train.py into ``root/run`` with its data cache in ``root/data``, the disk refusing
    write number ``fail_at`` (0: none); the writes it made are listed in ``root/writes``."""
    env = os.environ | {"GM_DATA_DIR": str(root / "data")}
    argv = ["-m", "tests.faults", str(fail_at), str(root / "writes"), str(ROOT / "train.py")]
    args = [f"hydra.run.dir={root / 'run'}", f"data.path={root.parent / 'corpus.txt'}", *ARGS]
    return run_entrypoint([*argv, *args, *extra], ROOT, env, 300)


def _kind(path: str) -> str | None:
    """What a write is, whatever its process id, time or hash (None: not the run's own)."""
    name = os.path.basename(path)
    if path == os.devnull:
        return None
    if re.fullmatch(r"tmp\w{8}", name):  # fsspec's temporary file: a checkpoint
        return "checkpoint"
    return re.sub(r"\d+", "N", re.sub(r"[0-9a-f]{8,}", "H", name))


@pytest.fixture(scope="module")
def writes(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[int, str]]:
    """Every write of a whole run, in order: (its number, what it writes)."""
    top = tmp_path_factory.mktemp("disk_full")
    (top / "corpus.txt").write_text(generated_text(6000))
    root = top / "whole"
    root.mkdir()
    proc = _train(root, 0)
    assert proc.returncode == 0, proc.stderr[-3000:]
    first: dict[str, int] = {}
    for line in (root / "writes").read_text().splitlines():
        number, path = line.split("\t", 1)
        kind = _kind(path)
        if kind is not None:
            first.setdefault(kind, int(number))
    kinds = set(first)
    # The run's life, start to end (a renamed file would drop out of the test unseen).
    assert {
        ".tokenizer.json.N.tmp",
        ".hydra.yaml.N.tmp",
        "checkpoint",
        ".metrics.json.N.tmp",
    } <= kinds
    assert {"model.safetensors", ".loss_by_position.png.N.tmp"} <= kinds
    return sorted((n, k) for k, n in first.items())


def _assert_whole(root: Path) -> None:
    """No empty, temporary or half-written file anywhere; every checkpoint and JSON loads."""
    for path in root.rglob("*"):
        if path.name == "writes" or not path.is_file():
            continue
        assert path.stat().st_size > 0 or path.suffix == ".log", path
        assert not re.search(r"\.(tmp|raw)$", path.name), path
        assert ".new." not in str(path.relative_to(root)), path
        if path.suffix == ".ckpt":
            torch.load(path, map_location="cpu", weights_only=True)
        if path.suffix == ".json":
            json.loads(path.read_text())


@pytest.mark.slow
def test_a_full_disk_at_every_write_of_a_run(writes, tmp_path_factory) -> None:
    top = next(iter(tmp_path_factory.getbasetemp().glob("disk_full*")))
    seen = []
    for number, kind in writes:
        root = top / f"fail{number}"
        root.mkdir()
        proc = _train(root, number)
        assert_exit_0_or_one_sentence(proc)
        _assert_whole(root)
        run = root / "run"
        # Then, with room again: continue it, or start it again; either works or is one
        # sentence (a run with no checkpoint yet is not resumable, and its folder is taken).
        if (run / "checkpoints" / "last.ckpt").is_file():
            again = _train(root, 0, f"resume={run}")
            assert again.returncode == 0, (kind, again.stderr[-3000:])
        else:
            again = _train(root, 0)
            assert_exit_0_or_one_sentence(again)
        seen.append((kind, proc.returncode, again.returncode))
    # Each write the run cannot do without is refused (not ignored).
    refused = {kind for kind, code, _ in seen if code == 2}
    assert {
        ".tokenizer.json.N.tmp",
        "checkpoint",
        ".metrics.json.N.tmp",
        "model.safetensors",
    } <= refused


def test_the_sentence_says_what_to_do_from_what_the_run_had_written(tmp_path: Path) -> None:
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "run" / "x"))
    run = tmp_path / "run"
    assert (
        refused_write(run, full)
        == f"{run} was removed while the run was writing into it; run it again"
    )
    run.mkdir()
    assert refused_write(run, full).endswith("free some space and run it again")
    (run / "tokenizer.json").write_text("{}")
    assert "no checkpoint to resume yet" in refused_write(run, full)
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
    assert refused_write(run, full).endswith(f"continue with python train.py resume={run}")
