"""The bad-input catalogue (docs/errors.md): one sentence, a non-zero exit, no traceback,
and nothing on disk lost. One test per row; the ids match the table."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import pytest
import torch

from gm.errors import UserError
from gm.training.checkpoint_io import AtomicCheckpointIO
from tests.conftest import FAST_TRAIN, ROOT, generated_text, run_train


def one_sentence(proc, needle: str, code: int = 2) -> None:
    assert proc.returncode == code, proc.stderr[-2000:]
    assert needle in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(generated_text(6000))
    return path


def bad_corpus(tmp_path: Path, kind: str) -> str:
    if kind == "missing":
        return str(tmp_path / "missing.txt")
    if kind == "directory":
        return str(tmp_path)
    path = tmp_path / f"{kind}.txt"
    content = {"empty": b"", "binary": b"\x89PNG\r\n\x1a\n\xff\xfe", "tiny": b"to be\n" * 20}
    path.write_bytes(content[kind])
    return str(path)


@pytest.mark.parametrize(
    "kind,needle",
    [
        ("missing", "does not exist"),
        ("directory", "is not a file"),
        ("empty", "is empty"),
        ("binary", "is not UTF-8"),
        ("tiny", "fewer than one batch needs"),
    ],
)
def test_bad_corpus(tmp_path: Path, kind: str, needle: str) -> None:
    proc = run_train(tmp_path / "run", f"data.path={bad_corpus(tmp_path, kind)}")
    one_sentence(proc, needle)


def test_validation_split_too_small(tmp_path: Path, corpus: Path) -> None:
    proc = run_train(
        tmp_path / "run", f"data.path={corpus}", "data.batch_size=16", "data.seq_len=64"
    )
    one_sentence(proc, "the validation split has")


def test_unknown_model(tmp_path: Path, corpus: Path) -> None:
    proc = run_train(tmp_path / "run", f"data.path={corpus}", "model=astra_delta")
    one_sentence(proc, "Could not find 'model/astra_delta'", code=1)  # Hydra's own message


@pytest.mark.parametrize(
    "override,needle",
    [
        ("optimizer.lr=-1e-3", "optimizer.lr must be a number > 0, got -0.001"),
        ("optimizer.lr=0", "optimizer.lr must be a number > 0"),
        ("optimizer.weight_decay=abc", "optimizer.weight_decay must be a number >= 0, got 'abc'"),
        ("optimizer.betas=[0.9]", "optimizer.betas must be a list of 2 items"),
        ("data.batch_size=0", "data.batch_size must be an integer >= 1"),
        ("data.batch_size=2.5", "data.batch_size must be an integer >= 1, got 2.5"),
        ("data.seq_len=1e1", "data.seq_len must be an integer >= 1, got 10.0"),
        ("data.carry_state=yes", "data.carry_state must be true or false"),
        ("model.hidden_dim=0", "model.hidden_dim must be an integer >= 1"),
        ("model.dropout=1", "model.dropout must be a number in [0, 1)"),
        ("seed=abc", "seed must be an integer in [0, 4294967295], got 'abc'"),
        ("scheduler.min_lr_ratio=5", "scheduler.min_lr_ratio must be a number in [0, 1]"),
        ("scheduler.warmup_steps=-5", "scheduler.warmup_steps must be an integer >= 0"),
        ("trainer.limit_train_batches=0", "trainer.limit_train_batches must be a number > 0"),
        ("trainer.max_epochs=0", "trainer.max_epochs must be at least 1"),
    ],
)
def test_settings_of_the_wrong_type_or_range(
    tmp_path: Path, corpus: Path, override: str, needle: str
) -> None:
    """One rule for every key (gm/training/settings.py), and Lightning's own refusals of the
    keys it owns, each as one sentence before the run directory gets anything."""
    run = tmp_path / "run"
    one_sentence(run_train(run, f"data.path={corpus}", override), needle)
    assert not run.exists() or not any(run.iterdir())


@pytest.mark.parametrize(
    "override", ["trainer.accelerator=abacus", "+callbacks.checkpoint.foo=1", "trainer.devices=0"]
)
def test_settings_lightning_refuses(tmp_path: Path, corpus: Path, override: str) -> None:
    run = tmp_path / "run"
    proc = run_train(run, f"data.path={corpus}", *FAST_TRAIN, override)
    one_sentence(proc, "the trainer, callbacks or logger settings are refused")
    assert not run.exists() or not any(run.iterdir())


def test_carried_state_with_shuffling(tmp_path: Path, corpus: Path) -> None:
    proc = run_train(tmp_path / "run", f"data.path={corpus}", "data.shuffle=true")
    one_sentence(proc, "would break the carried hidden state")


@pytest.fixture
def finished_run(tmp_path: Path, corpus: Path) -> Path:
    run = tmp_path / "finished"
    proc = run_train(run, f"data.path={corpus}", *FAST_TRAIN)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return run


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes: what "changes no byte" compares."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    "overrides,needle",
    [
        ([], "already holds a training run"),
        (["model.hidden_dim=32"], "holds another model"),
        (["OTHER_CORPUS"], "another vocabulary"),
        (["data.batch_size=2"], "was trained with data.batch_size=4, not 2"),
        (["data.seq_len=8"], "was trained with data.seq_len=16, not 8"),
        (["data.carry_state=false"], "was trained with data.carry_state=True, not False"),
        (["data.batch_size=2.5"], "data.batch_size must be an integer"),
        (["callbacks.checkpoint.monitor=val/nosuch"], "monitor=val/nosuch is not a metric"),
        (["trainer.val_check_interval=100000"], "val_check_interval=100000 is more than the"),
    ],
    ids=[
        "new-run",
        "architecture",
        "vocabulary",
        "batch-size",
        "seq-len",
        "regime",
        "bad-value",
        "monitor",
        "val-interval",
    ],
)
def test_a_refused_command_changes_no_byte_of_the_run(
    tmp_path: Path, corpus: Path, finished_run: Path, overrides: list[str], needle: str
) -> None:
    """Neither Hydra's .hydra/ nor the tokenizer is written before gm refuses: the files a
    user reads to resume correctly stay as the run left them."""
    (finished_run / "train.log").write_text("the run's own log\n")
    before = tree(finished_run)
    resume = [] if not overrides else [f"resume={finished_run}"]
    if overrides == ["OTHER_CORPUS"]:
        other = tmp_path / "other.txt"
        other.write_text(generated_text(6000).upper())
        overrides = [f"data.path={other}"]
    else:
        overrides = [f"data.path={corpus}", *overrides]
    fast = [a for a in FAST_TRAIN if a.split("=")[0] not in {o.split("=")[0] for o in overrides}]
    proc = run_train(finished_run, *fast, *resume, *overrides)
    one_sentence(proc, needle)
    assert tree(finished_run) == before


def test_a_run_directory_in_use_is_refused(tmp_path: Path, corpus: Path) -> None:
    """The claim is a lock held for the whole run: a second run into the same directory
    (the same hydra.run.dir, or the same second with the default name) is refused."""
    from gm.training.run_dir import claim_run_dir

    run = tmp_path / "run"
    with claim_run_dir(run):
        proc = run_train(run, f"data.path={corpus}", *FAST_TRAIN)
    one_sentence(proc, "another gm run is writing into")
    assert list(run.iterdir()) == []
    proc = run_train(run, f"data.path={corpus}", *FAST_TRAIN)  # released: now it may
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_a_resume_never_writes_into_another_runs_directory(
    tmp_path: Path, corpus: Path, finished_run: Path
) -> None:
    """resume=A hydra.run.dir=B with B another finished run was accepted and overwrote B's
    metrics, bundle and log with A's continuation. Now refused; neither run changes, and
    nothing is written into a B that did not exist (Hydra makes its empty folder)."""
    other = tmp_path / "other"
    assert run_train(other, f"data.path={corpus}", *FAST_TRAIN).returncode == 0
    before, before_other = tree(finished_run), tree(other)
    for target in (other, tmp_path / "new"):
        proc = run_train(target, f"resume={finished_run}", "trainer.max_epochs=2")
        one_sentence(proc, f"resume={finished_run} continues that run in its own directory")
    assert tree(finished_run) == before and tree(other) == before_other
    assert list((tmp_path / "new").iterdir()) == []


def test_truncated_checkpoint(tmp_path: Path, corpus: Path, finished_run: Path) -> None:
    last = finished_run / "checkpoints" / "last.ckpt"
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    proc = run_train(tmp_path / "run", f"data.path={corpus}", *FAST_TRAIN, f"ckpt_path={broken}")
    one_sentence(proc, "is not a PyTorch checkpoint gm can load safely")


def test_disk_full_while_saving_keeps_the_old_checkpoint(tmp_path: Path, monkeypatch) -> None:
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"step": 1}, path)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(UserError, match=r"No space left on device.*previous checkpoint is intact"):
        io.save_checkpoint({"step": 2}, path)
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_no_code_path_unpickles_user_files() -> None:
    """Every torch.load in the package and entry points passes weights_only=True."""
    sources = [*(ROOT / "gm").rglob("*.py"), ROOT / "train.py", ROOT / "generate.py"]
    for path in sources:
        text = path.read_text()
        for i, chunk in enumerate(text.split("torch.load(")[1:]):
            call = chunk.split(")")[0]
            assert "weights_only=True" in call, f"{path.name}: torch.load #{i + 1} {call!r}"
        assert "weights_only=False" not in text, path


def test_same_seed_same_weights(tmp_path: Path, corpus: Path) -> None:
    args = [f"data.path={corpus}", *FAST_TRAIN, "trainer.limit_train_batches=20", "model=rnn"]
    runs = [tmp_path / "a", tmp_path / "b"]
    for run in runs:
        assert run_train(run, *args).returncode == 0
    a, b = (torch.load(r / "checkpoints" / "last.ckpt", weights_only=True) for r in runs)
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    shutil.rmtree(tmp_path / "data", ignore_errors=True)


def test_kill_during_a_checkpoint_write_leaves_the_old_one_loadable(tmp_path, monkeypatch):
    """Until the final rename the target is untouched; a kill before it changes nothing."""
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"step": 1}, path)

    def killed(src, dst):
        Path(src).write_bytes(Path(src).read_bytes()[:20])  # a half-written new file...
        raise KeyboardInterrupt  # ...and the process dies before the rename

    monkeypatch.setattr("gm.training.checkpoint_io.os.replace", killed)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"step": 2}, path)
    assert torch.load(path, weights_only=True) == {"step": 1}
