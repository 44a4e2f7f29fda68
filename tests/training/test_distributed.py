"""Two-process DDP on CPU (gloo) through train.py: whole streams per rank, the same
losses as one process, one run directory, and only rank 0 writing."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from gm.state import state_tensors
from gm.training.distributed import is_global_zero
from tests.conftest import FAST_TRAIN, kill_at_first_checkpoint, run_multirun, run_train

# No dropout: each process draws masks for its own rows, so the runs would differ.
TINY_RNN = ["model=rnn", "model.dropout=0", "model.hidden_dim=32", "model.emb_dim=16"]


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tmp_path: Path, text_file: Path) -> None:
    args = [f"data.path={text_file}", *FAST_TRAIN, *TINY_RNN, "trainer.accelerator=cpu"]
    single, ddp = tmp_path / "runs" / "single", tmp_path / "runs" / "ddp"
    assert run_train(single, *args).returncode == 0
    proc = run_train(ddp, *args, "trainer=ddp", "trainer.devices=2", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]

    one = json.loads((single / "metrics.json").read_text())
    two = json.loads((ddp / "metrics.json").read_text())
    # Rank r trains on its block of the global batch's streams and the gradients are
    # averaged, so two processes take the single process's steps; the validation sums
    # are reduced across ranks, so every mode scores the whole split.
    assert two["steps"] == one["steps"] == 2
    for key in ("val/loss", "val/loss_chunk", "val/loss_stateless", "val/bpc"):
        assert two["final"][key] == pytest.approx(one["final"][key], rel=1e-4), key
    curves = json.loads((ddp / "loss_by_position.json").read_text())["curves"]
    single_curves = json.loads((single / "loss_by_position.json").read_text())["curves"]
    assert curves["stateful"] == pytest.approx(single_curves["stateful"], rel=1e-4)

    # The checkpoint carries the state of every stream, gathered from both processes in
    # rank order, so a resumed run (with any number of processes) continues them all.
    states = [
        torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["gm"]["train_state"]
        for run in (single, ddp)
    ]
    for one_h, two_h in zip(*(state_tensors(s) for s in states), strict=True):
        assert two_h.shape == one_h.shape and two_h.shape[0] == 4  # data.batch_size=4
        assert torch.allclose(two_h, one_h, atol=1e-5)

    # The second process ran in the launching run's directory: no other run directory
    # (data/ is the shared cache), its own log file there, and one bundle from rank 0.
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["data", "ddp", "single"]
    assert (ddp / "train_ddp_process_1.log").is_file()
    assert (ddp / "export" / "SHA256SUMS").is_file()


def test_global_zero_is_read_from_the_launchers_environment(monkeypatch) -> None:
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK"):
        monkeypatch.delenv(var, raising=False)
    assert is_global_zero()
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert not is_global_zero()
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("NODE_RANK", "1")
    assert not is_global_zero()
    monkeypatch.setenv("RANK", "0")  # torchrun's global rank wins
    assert is_global_zero()


@pytest.mark.slow
def test_in_a_multirun_ddp_is_refused_and_ddp_spawn_trains(tmp_path: Path, text_file: Path):
    """`ddp` re-runs train.py for its extra processes, which would restart the sweep;
    `ddp_spawn` starts them from inside the job, so sweeps use that."""
    sweep = tmp_path / "sweep"
    proc = run_multirun(
        sweep,
        f"data.path={text_file}",
        *FAST_TRAIN,
        *TINY_RNN,
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.strategy=ddp,ddp_spawn",
    )
    assert proc.returncode == 1  # one job failed
    assert "error: job 0" in proc.stderr and "which a multirun (-m) cannot do" in proc.stderr
    rows = list(csv.DictReader((sweep / "report.csv").open()))
    assert [r["status"] for r in rows] == ["failed", "finished"]
    assert float(rows[1]["final_bpc_stateful"]) > 0


@pytest.mark.slow
def test_a_run_killed_on_one_process_resumes_on_two(tmp_path: Path, text_file: Path) -> None:
    """The checkpoint holds every stream's state; two processes split it by rank and end
    where the uninterrupted single-process run ends."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(text_file.read_text() * 3)
    args = [
        f"data.path={corpus}",
        *TINY_RNN,
        "data.batch_size=4",
        "data.seq_len=16",
        "trainer.accelerator=cpu",
        "trainer.max_epochs=1",
        "trainer.limit_val_batches=2",
        "trainer.num_sanity_val_steps=0",
        "callbacks.checkpoint.every_n_train_steps=5",
        "~callbacks.progress_bar",
    ]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert run_train(whole, *args).returncode == 0
    kill_at_first_checkpoint(killed, *args)
    proc = run_train(killed, f"resume={killed}", *args, "trainer=ddp", "trainer.devices=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = json.loads((whole / "metrics.json").read_text())
    two = json.loads((killed / "metrics.json").read_text())
    assert two["steps"] == one["steps"] > 5
    for key in ("val/loss", "val/loss_chunk", "val/loss_stateless"):
        assert two["final"][key] == pytest.approx(one["final"][key], rel=1e-4), key
