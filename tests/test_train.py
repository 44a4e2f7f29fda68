"""The real `train.py` entry point, run as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gm.evaluation import metric_key
from gm.modes import MODES
from tests.conftest import FAST_TRAIN, run_train


def test_two_batch_fit_writes_metrics_events_and_checkpoints(tmp_path: Path, text_file: Path):
    run = tmp_path / "run"
    proc = run_train(run, f"data.path={text_file}", *FAST_TRAIN)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps"] == 2 and metrics["parameters"] > 0
    for key in ("val/loss", "val/bpc", "val/ppl", "val/loss_chunk", "val/loss_stateless"):
        assert metrics["final"][key] > 0
    assert list(run.glob("events.out.tfevents.*"))  # named by the run directory in TensorBoard
    assert (run / "tokenizer.json").is_file()
    curves = json.loads((run / "loss_by_position.json").read_text())["curves"]
    assert len(curves["chunk"]) == 16 + 1 and (run / "loss_by_position.png").is_file()
    # Checkpoints are named relative to the run directory, so it can be moved.
    assert metrics["checkpoints"]["last"] == "checkpoints/last.ckpt"
    last = run / metrics["checkpoints"]["last"]
    assert last.is_file() and (run / metrics["checkpoints"]["best"]).is_file()
    # Hyperparameters are plain containers: the checkpoint loads without unpickling code.
    ckpt = torch.load(last, weights_only=True, map_location="cpu")
    assert ckpt["hyper_parameters"]["model"]["cell"] == "gru"
    # The summary: the best validation in the three modes, then what to run next.
    out = proc.stdout
    assert "best validation" in out and all(mode in out for mode in MODES)
    assert f"{metrics['best']['val/loss_chunk']:.4f}" in out
    for command in ("python generate.py ckpt=", "tensorboard --logdir", "python -m gm.report"):
        assert command in out
    # Known noise is silenced at its source; a warning about the user's settings is not.
    for noise in ("Tip:", "TPU available", "`Trainer.fit` stopped", "LeafSpec", "FLOPs"):
        assert noise not in out + proc.stderr
    # The run ends with an exported bundle of its best checkpoint.
    assert (run / "export" / "SHA256SUMS").is_file()
    assert (run / "export" / "model.safetensors").is_file()


def test_resume_from_last_checkpoint(tmp_path: Path, text_file: Path):
    first = tmp_path / "first"
    assert run_train(first, f"data.path={text_file}", *FAST_TRAIN).returncode == 0
    last = first / "checkpoints" / "last.ckpt"
    second = tmp_path / "second"
    proc = run_train(
        second, f"data.path={text_file}", *FAST_TRAIN, "trainer.max_epochs=2", f"ckpt_path={last}"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((second / "metrics.json").read_text())
    assert metrics["steps"] == 4  # continued from step 2, not restarted
    assert [h["epoch"] for h in metrics["history"]] == [0, 1]  # the history carries over


@pytest.mark.parametrize(
    "overrides,needle",
    [
        (["data.path=/nonexistent/corpus.txt"], "does not exist"),
        (["data.carry_state=true", "data.shuffle=true"], "carry_state=false"),
        (["ckpt_path=/nonexistent.ckpt"], "not a checkpoint"),
        # The validation batch is eval.batch_size's: the sentence names that setting.
        (["eval.batch_size=100000"], "lower eval.batch_size or data.seq_len"),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(tmp_path, text_file, overrides, needle):
    args = [f"data.path={text_file}", *FAST_TRAIN, *overrides]
    proc = run_train(tmp_path / "run", *args)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert needle in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0


@pytest.mark.slow
def test_astra_alpha_learns_on_the_real_corpus(tmp_path: Path, shakespeare: Path):
    """150 training batches of the study recipe reach val/loss < 2.2 nats/char."""
    run = tmp_path / "run"
    proc = run_train(
        run,
        f"data.path={shakespeare}",
        "model=astra_alpha",
        "trainer.max_steps=150",
        "trainer.limit_val_batches=5",
        "~callbacks.progress_bar",
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps"] == 150
    final = metrics["final"]
    assert final["val/loss"] < 2.2
    # The study's order, with margins: carried state beats a reset every 128 characters
    # (measured 2.177 against 2.185 after these 150 steps; 1.678 against 1.729 after the
    # full recipe), which beats a reset every character by far.
    assert final["val/loss"] + 0.004 < final["val/loss_chunk"] < final["val/loss_stateless"] - 0.3


def test_scribe_alpha_two_batch_fit(tmp_path: Path, text_file: Path):
    run = tmp_path / "run"
    proc = run_train(
        run, "model=scribe_alpha", f"data.path={text_file}", "data.vocab_size=290", *FAST_TRAIN
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["data"]["tokenizer"] == "sentencepiece"
    assert metrics["data"]["vocab_size"] == 290
    assert metrics["data"]["chars_per_token"] > 1
    final = metrics["final"]
    # bpc is per character, loss per token: for subwords bpc < loss / ln 2.
    assert final["val/bpc"] < final["val/loss"] / 0.6931
    assert (run / "tokenizer.model").is_file() and (run / "export" / "tokenizer.model").is_file()


@pytest.mark.parametrize("model", ["ngram", "mlp", "rnn"])
def test_every_family_trains_exports_and_generates(tmp_path: Path, text_file: Path, model: str):
    from gm.artifacts import load_trained
    from gm.generation import generate

    run = tmp_path / "run"
    proc = run_train(run, f"model={model}", f"data.path={text_file}", *FAST_TRAIN)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 < metrics["final"]["val/loss"] < 10
    assert metrics["final"]["val/loss"] <= metrics["final"]["val/loss_stateless"] + 1e-4
    if model == "ngram":  # one counting pass instead of optimizer steps
        assert metrics["steps"] == 0 and metrics["ngrams"] > 0 and metrics["parameters"] == 0
    else:
        assert metrics["steps"] == 2 and metrics["parameters"] > 0
    for source in (run, run / "export"):
        trained = load_trained(source)
        new = generate(trained.model, trained.tokenizer.encode("to be"), 20)
        assert len(new) == 20


@pytest.mark.slow
def test_compiled_training_matches_eager(tmp_path: Path, text_file: Path):
    """compile=true trains the same model to the same loss (compiling takes ~30 s here)."""
    args = [
        f"data.path={text_file}",
        *FAST_TRAIN,
        "model=rnn",
        "model.dropout=0",
        "model.hidden_dim=32",
        "model.emb_dim=16",
    ]
    losses = []
    for name, extra in (("eager", []), ("compiled", ["compile=true"])):
        proc = run_train(tmp_path / name, *args, *extra, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        losses.append(json.loads((tmp_path / name / "metrics.json").read_text())["final"])
    assert losses[1]["val/loss"] == pytest.approx(losses[0]["val/loss"], rel=1e-4)


def test_validation_follows_the_eval_protocol(tmp_path: Path, text_file: Path) -> None:
    """eval.batch_size and eval.warmup reach the run's own validation: it equals the
    protocol computed by hand on the best checkpoint (warmed-up streams, every token)."""
    from gm.artifacts import find_checkpoint, load_checkpoint
    from gm.data.datamodule import TextDataModule
    from gm.data.streams import StreamBatches
    from gm.evaluation import evaluate

    run = tmp_path / "run"
    whole_validation = [o for o in FAST_TRAIN if "limit_val_batches" not in o]
    proc = run_train(
        run, f"data.path={text_file}", *whole_validation, "eval.batch_size=2", "eval.warmup=8"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    best = json.loads((run / "metrics.json").read_text())["best"]
    dm = TextDataModule(data_dir=tmp_path / "data", path=str(text_file), batch_size=4, seq_len=16)
    tok = dm.prepare()
    trained = load_checkpoint(find_checkpoint(run))
    batches = StreamBatches(dm.val_ids, 2, 16, warmup=8, before=dm.train_ids, complete=True)
    ones = torch.ones(tok.vocab_size, dtype=torch.long)
    scores = evaluate(trained.model, batches, ones, 16)
    for mode in MODES:
        expected = scores[mode].compute()["loss"].item()
        assert best[metric_key("loss", mode)] == pytest.approx(expected, rel=1e-5), mode


def test_more_threads_than_cores_are_capped_with_a_warning(tmp_path: Path, text_file: Path):
    from gm.runtime import cores

    proc = run_train(tmp_path / "run", f"data.path={text_file}", *FAST_TRAIN, "threads=1000")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"warning: threads=1000 is more than the {cores()} cores" in proc.stderr
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["threads"] == cores()


def test_a_run_that_ends_before_its_first_validation_says_so(tmp_path: Path, text_file: Path):
    """trainer.max_steps=1 with no epoch bound showed "Epoch 0/-2" and a best of epoch null."""
    args = [f"data.path={text_file}", *FAST_TRAIN, "trainer.max_steps=1", "trainer.max_epochs=null"]
    proc = run_train(tmp_path / "run", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "the run ended at step 1 before its first one" in proc.stdout
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["best"] == {}


@pytest.mark.slow
def test_seed_draws_the_weights_and_train_seed_what_follows(tmp_path: Path, text_file: Path):
    """One seed, one run, bit for bit; ``train_seed`` null is ``train_seed=seed``; another
    ``train_seed`` keeps the initial weights and changes the windows and dropout draws;
    another ``seed`` with the same ``train_seed`` changes the initial weights."""
    from safetensors.torch import load_file

    def train(name: str, *seeds: str) -> tuple[dict, dict[str, torch.Tensor]]:
        run = tmp_path / name
        args = [f"data.path={text_file}", *FAST_TRAIN, "data.carry_state=false", "model=rnn"]
        proc = run_train(run, *args, "model.dropout=0.3", *seeds)
        assert proc.returncode == 0, proc.stderr[-3000:]
        metrics = json.loads((run / "metrics.json").read_text())
        return metrics["initial"], load_file(run / "export" / "model.safetensors")

    def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
        return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    initial, weights = train("a", "seed=3")
    again_initial, again = train("b", "seed=3", "train_seed=3")
    assert again_initial == initial and same(again, weights)
    other_train_initial, other_train = train("c", "seed=3", "train_seed=4")
    assert other_train_initial == initial and not same(other_train, weights)
    other_init_initial, _ = train("d", "seed=4", "train_seed=3")
    assert other_init_initial != initial
