"""A run killed with SIGKILL and resumed ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from gm.artifacts import load_trained, read_bundle
from tests.conftest import FAST_TRAIN, kill_at_first_checkpoint, run_script, run_train

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


# A six-batch epoch of a small GRU, validated at its end.
FAST_TRAIN_LONG = [
    *(a for a in FAST_TRAIN if not a.startswith("trainer.limit_train_batches")),
    "trainer.limit_train_batches=6",
    "model.hidden_dim=64",
]


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    return ckpt["state_dict"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "limits",
    [
        [],
        # Killed at the end of a limited epoch: the next epoch starts at its first batch.
        ["trainer.limit_train_batches=7", "callbacks.checkpoint.every_n_train_steps=7"],
        # Stopped by max_steps part-way into an epoch (on the way, killed at step 5).
        ["trainer.max_steps=12"],
    ],
    ids=["whole-epochs", "limit-train-batches", "max-steps"],
)
def test_sigkill_then_resume_is_bit_identical(tmp_path: Path, text_file: Path, limits: list[str]):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(text_file.read_text() * 3)
    keys = {a.split("=")[0] for a in limits}
    args = [f"data.path={corpus}", *(a for a in ARGS if a.split("=")[0] not in keys), *limits]
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


def test_a_kill_before_the_first_validation_leaves_a_checkpoint(tmp_path: Path, text_file: Path):
    """every_n_train_steps saves last.ckpt from step N on, not only once val/loss exists."""
    run = tmp_path / "run"
    args = [
        f"data.path={text_file}",
        *FAST_TRAIN_LONG,
        "callbacks.checkpoint.every_n_train_steps=2",
    ]
    kill_at_first_checkpoint(run, *args)
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 2  # of 6 in the epoch: saved before any validation
    assert not list((run / "checkpoints").glob("best*"))
    proc = run_train(run, f"resume={run}", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((run / "metrics.json").read_text())["steps"] == 6


def test_resuming_a_finished_run_keeps_its_time_and_throughput(tmp_path: Path, text_file: Path):
    run = tmp_path / "run"
    args = [f"data.path={text_file}", *FAST_TRAIN_LONG]
    assert run_train(run, *args).returncode == 0
    before = json.loads((run / "metrics.json").read_text())
    proc = run_train(run, f"resume={run}", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = json.loads((run / "metrics.json").read_text())
    assert after["train_tokens_per_s"] == before["train_tokens_per_s"]  # no new batches
    assert after["wall_time_s"] >= 0.9 * before["wall_time_s"]
    assert after["history"] == before["history"] and after["steps"] == before["steps"]


def test_a_moved_run_directory_works_as_before(tmp_path: Path, text_file: Path):
    """Everything inside a run names its own files relatively: once moved, it generates,
    exports and resumes from itself, even when a new run takes its old place."""
    old, moved = tmp_path / "old", tmp_path / "moved"
    args = [f"data.path={text_file}", *FAST_TRAIN_LONG]
    assert run_train(old, *args).returncode == 0
    shutil.move(old, moved)
    assert run_train(old, *args, "seed=7", "model.hidden_dim=32").returncode == 0  # another run
    trained = load_trained(moved)
    assert trained.source.parent.parent == moved and trained.spec["hidden_dim"] == 64
    proc = run_script("generate.py", f"ckpt={moved}", "max_new_tokens=20")
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = run_train(moved, f"resume={moved}", *args, "trainer.max_epochs=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((moved / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and (moved / metrics["checkpoints"]["best"]).is_file()
    assert read_bundle(moved / "export").spec["hidden_dim"] == 64


def test_resume_without_a_checkpoint_is_refused(tmp_path: Path, text_file: Path):
    proc = run_train(tmp_path / "run", f"data.path={text_file}", f"resume={tmp_path / 'empty'}")
    assert proc.returncode == 2 and "no checkpoints/last.ckpt" in proc.stderr


def test_resume_alone_continues_the_recorded_recipe(tmp_path: Path, text_file: Path):
    """``resume=RUN_DIR`` and nothing else: the recorded overrides (a non-default recipe)
    and the corpus the run read are restored, so the continuation is bit-identical to the
    uninterrupted run (it used to train the default recipe, or stop for want of data.path)."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(text_file.read_text() * 3)
    args = [f"data.path={corpus}", *ARGS]
    whole = tmp_path / "whole"
    assert run_train(whole, *args).returncode == 0
    killed = tmp_path / "killed"
    kill_at_first_checkpoint(killed, *args)
    proc = run_train(killed, f"resume={killed}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "instead of" not in proc.stdout
    a, b = final_weights(whole), final_weights(killed)
    assert all(torch.equal(a[key], b[key]) for key in a)
    ma = json.loads((whole / "metrics.json").read_text())
    mb = json.loads((killed / "metrics.json").read_text())
    assert ma["steps"] == mb["steps"] and ma["history"] == mb["history"]


def test_an_override_on_resume_is_applied_and_said(tmp_path: Path, text_file: Path):
    run = tmp_path / "run"
    assert run_train(run, f"data.path={text_file}", *FAST_TRAIN_LONG).returncode == 0
    proc = run_train(run, f"resume={run}", "trainer.max_epochs=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resuming with trainer.max_epochs=2 instead of trainer.max_epochs=1" in proc.stdout
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 2


@pytest.mark.parametrize(
    "change, says",
    [
        ("seed=7", "a new seed is a new run"),
        ("train_seed=7", "a new train_seed is a new run"),
        ("data.seq_len=8", "data.seq_len=16"),
    ],
    ids=["seed", "train_seed", "data-recipe"],
)
def test_a_resume_that_would_be_another_experiment_is_refused(
    tmp_path: Path, text_file: Path, change: str, says: str
):
    run = tmp_path / "run"
    assert run_train(run, f"data.path={text_file}", *FAST_TRAIN_LONG).returncode == 0
    before = (run / "metrics.json").read_bytes()
    proc = run_train(run, f"resume={run}", change)
    assert proc.returncode == 2 and says in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and (run / "metrics.json").read_bytes() == before


@pytest.mark.parametrize("how", ["move", "copy"])
def test_a_moved_run_resumes_into_its_own_checkpoints(tmp_path: Path, text_file: Path, how: str):
    """After a run directory is moved, a resume wrote last-v1.ckpt beside a stale
    last.ckpt (a second resume went back to before the first), and forgot the best score,
    so metrics.json could name one epoch best and another's weights. Now the moved run's
    checkpoints are its own: last.ckpt moves on, best is judged against the old best."""
    first = tmp_path / "first"
    args = [f"data.path={text_file}", *FAST_TRAIN_LONG]
    assert run_train(first, *args).returncode == 0
    moved = tmp_path / "moved"
    shutil.move(first, moved) if how == "move" else shutil.copytree(first, moved)
    for epochs in (2, 3):
        proc = run_train(moved, f"resume={moved}", f"trainer.max_epochs={epochs}")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert sorted(p.name for p in (moved / "checkpoints").glob("last*")) == ["last.ckpt"]
        ckpt = torch.load(moved / "checkpoints" / "last.ckpt", weights_only=True)
        assert ckpt["epoch"] == epochs - 1  # continued from the previous resume's end
    metrics = json.loads((moved / "metrics.json").read_text())
    best = torch.load(moved / metrics["checkpoints"]["best"], weights_only=True)
    assert best["epoch"] == metrics["best"]["epoch"]  # the scores are the weights'
    assert not Path(metrics["checkpoints"]["best"]).is_absolute()
    assert ".." not in metrics["checkpoints"]["best"]


def test_a_corpus_changed_in_place_is_refused_on_resume(tmp_path: Path, text_file: Path):
    """The same length and alphabet pass every other check; one history would mix two texts."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(text_file.read_text())
    run = tmp_path / "run"
    assert run_train(run, f"data.path={corpus}", *FAST_TRAIN_LONG).returncode == 0
    corpus.write_text(text_file.read_text()[::-1])
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    proc = run_train(run, f"resume={run}", "trainer.max_epochs=2")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert f"the text at {corpus} is not the one" in proc.stderr
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
