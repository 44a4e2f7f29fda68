"""What the callbacks write down: the training loss beside each validation, early stopping."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from tests.conftest import FAST_TRAIN, run_train


def test_early_stopping_ends_the_run_and_says_so(tmp_path: Path, text_file: Path):
    """patience 1 with an improvement no run can make: the second validation stops it."""
    run = tmp_path / "run"
    proc = run_train(
        run,
        f"data.path={text_file}",
        *FAST_TRAIN,
        "trainer.max_epochs=5",
        "callbacks=early_stopping",
        "callbacks.early_stopping.patience=1",
        "callbacks.early_stopping.min_delta=100",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["early_stopped_epoch"] == 1 and metrics["epochs"] == 2
    assert [h["epoch"] for h in metrics["history"]] == [0, 1]
    # Each validation records the mean training loss since the one before.
    assert all(
        0 < h["train/loss"] < 10 and math.isfinite(h["train/loss"]) for h in metrics["history"]
    )
    assert "overfitting_onset" in metrics
    assert (run / metrics["checkpoints"]["best"]).is_file()


def test_without_early_stopping_nothing_is_recorded(tmp_path: Path, text_file: Path):
    run = tmp_path / "run"
    assert run_train(run, f"data.path={text_file}", *FAST_TRAIN).returncode == 0
    assert json.loads((run / "metrics.json").read_text())["early_stopped_epoch"] is None


def test_an_overfitting_run_keeps_its_best_checkpoint_and_names_the_onset(tmp_path, text_file):
    """Twelve epochs over the same two batches, wide and without dropout: validation bottoms
    out and rises while training loss keeps falling. The best checkpoint (what generate.py,
    the study and the bundle use) is the minimum's, not the last, and metrics.json names
    the onset there."""
    from gm.artifacts import find_checkpoint

    run = tmp_path / "run"
    proc = run_train(
        run,
        f"data.path={text_file}",
        *FAST_TRAIN,
        "trainer.max_epochs=12",
        "optimizer.lr=0.02",
        "model.hidden_dim=64",
        "model.dropout=0",
        "scheduler.min_lr_ratio=1.0",  # a constant rate, so it keeps overfitting
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    val = [h["val/loss"] for h in metrics["history"]]
    best = val.index(min(val))
    assert best < len(val) - 1  # not vacuous: the last validation is not the best
    # The name counts epochs from 1, as the bar and the summary do; metrics.json from 0.
    assert metrics["checkpoints"]["best"].endswith(f"best-epoch{best + 1:02d}.ckpt")
    assert find_checkpoint(run) == run / metrics["checkpoints"]["best"]
    assert metrics["best"]["epoch"] == best
    onset = metrics["overfitting_onset"]
    assert onset["epoch"] == best and onset["rise"] == val[-1] - val[best]


def test_share_cores_takes_the_setting_or_a_share_that_follows_the_other_runs(
    tmp_path, monkeypatch
) -> None:
    import subprocess
    import sys

    from gm import runtime
    from gm.runtime import TrainingProcesses
    from gm.training import callbacks
    from gm.training.callbacks import ShareCores
    from tests.test_runtime import HOLD

    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(runtime, "cores", lambda: 4)
    monkeypatch.setattr(callbacks, "cores", lambda: 4)  # (the cap on threads= reads it)
    monkeypatch.setattr(callbacks, "TrainingProcesses", lambda: TrainingProcesses(tmp_path))
    try:
        ShareCores(threads=3).setup(None, None, "fit")
        assert torch.get_num_threads() == 3
        share = ShareCores(every_s=0.0)
        share.setup(None, None, "fit")
        assert torch.get_num_threads() == 4  # alone: every core
        other = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert other.stdout.readline().strip() == "ready"
            share.on_train_batch_start(None, None, None, 0)
            assert torch.get_num_threads() == 2  # a second run started: half each
        finally:
            other.kill()
            other.wait()
        share.on_train_batch_start(None, None, None, 1)
        assert torch.get_num_threads() == 4  # it ended: all cores again
        share.teardown(None, None, "fit")
        assert TrainingProcesses(tmp_path).count() == 1
    finally:
        torch.set_num_threads(before)
