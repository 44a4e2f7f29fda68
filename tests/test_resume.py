"""A run killed with SIGKILL and resumed ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.conftest import kill_at_first_checkpoint, run_train

# Small enough for seconds, long enough to be killed part-way; dropout makes the RNG matter.
ARGS = [
    "model=rnn",
    "model.emb_dim=16",
    "model.hidden_dim=64",
    "model.dropout=0.3",
    "data.batch_size=4",
    "data.seq_len=16",
    "trainer.max_epochs=2",
    "trainer.limit_val_batches=2",
    "trainer.num_sanity_val_steps=0",
    "callbacks.checkpoint.every_n_train_steps=5",
    "~callbacks.progress_bar",
]


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    return ckpt["state_dict"]


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(tmp_path: Path, text_file: Path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(text_file.read_text() * 3)
    args = [f"data.path={corpus}", *ARGS]
    whole = tmp_path / "whole"
    proc = run_train(whole, *args)
    assert proc.returncode == 0, proc.stderr[-3000:]

    killed = tmp_path / "killed"
    kill_at_first_checkpoint(killed, *args)
    assert not (killed / "metrics.json").exists()

    proc = run_train(killed, f"resume={killed}", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = final_weights(whole), final_weights(killed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    ma = json.loads((whole / "metrics.json").read_text())
    mb = json.loads((killed / "metrics.json").read_text())
    assert ma["steps"] == mb["steps"]
    assert ma["final"] == mb["final"] and ma["history"] == mb["history"]


def test_resume_without_a_checkpoint_is_refused(tmp_path: Path, text_file: Path):
    proc = run_train(tmp_path / "run", f"data.path={text_file}", f"resume={tmp_path / 'empty'}")
    assert proc.returncode == 2 and "no checkpoints/last.ckpt" in proc.stderr
