"""What a run prints: the progress bar's items, the end-of-run summary, the noise filter;
and what a real run shows at 80 columns and keeps in train.log."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from gm.evaluation import metric_key
from gm.modes import MODES
from gm.training.terminal import ProgressBar, describe_model, print_summary, silence_known_noise
from tests.conftest import FAST_TRAIN, generated_text, run_train

_ANSI = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]")
_THREE = r"\d+\.\d\d/\d+\.\d\d/\d+\.\d\d"  # the bar's val: three modes


@pytest.fixture(scope="module")
def shown(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A two-epoch run with the real progress bar on an 80-column colour terminal: its
    directory and every distinct line the terminal showed (each frame of the bar)."""
    tmp = tmp_path_factory.mktemp("terminal")
    corpus = tmp / "corpus.txt"
    corpus.write_text(generated_text(20000))
    run = tmp / "run"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("COLUMNS", "80")
        env.setenv("FORCE_COLOR", "1")  # rich draws the live bar as on a terminal
        overrides = [o for o in FAST_TRAIN if o != "~callbacks.progress_bar"]
        proc = run_train(
            run, f"data.path={corpus}", *overrides, "trainer.max_epochs=2",
            "trainer.limit_train_batches=30", "callbacks.samples.tokens=40",
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in re.split(r"[\r\n]", _ANSI.sub("", proc.stdout)) if line.strip()]
    return run, list(dict.fromkeys(lines))


def test_the_bar_fits_80_columns_with_the_three_modes(shown) -> None:
    _, lines = shown
    bars = [line for line in lines if line.startswith("epoch ")]
    assert bars and all(len(line) <= 80 for line in bars), max(bars, key=len)
    # A frame after the first validation shows loss, throughput and all three modes.
    assert any(re.search(rf"loss: \d\.\d{{3}} .*tok/s: \S+ .*val: {_THREE}$", b) for b in bars)


def test_one_epoch_numbering_in_the_bar_checkpoint_figure_and_summary(shown) -> None:
    run, lines = shown
    metrics = json.loads((run / "metrics.json").read_text())
    last = metrics["history"][-1]["epoch"]  # Lightning's index, from 0
    assert last == 1 and metrics["best"]["epoch"] == 1  # (not vacuous: it keeps improving)
    assert any(line.startswith("epoch 2/2 ") for line in lines)
    assert not any(line.startswith(("epoch 0", "epoch 3", "Epoch")) for line in lines)
    assert any(line.startswith("step 60 · epoch 2/2 · val ") for line in lines)
    assert metrics["checkpoints"]["best"] == "checkpoints/best-epoch02.ckpt"
    assert "(epoch 2)" in json.loads((run / "loss_by_position.json").read_text())["title"]
    assert any("best at epoch 2 of 2" in line for line in lines)


def test_lightnings_device_and_seed_lines_give_way_to_the_header(shown) -> None:
    _, lines = shown
    assert not any(line.startswith("INFO:") for line in lines), lines[:3]
    assert any(line.startswith("train  cpu · precision 32-true") and "seed 1337" in line
               for line in lines)  # fmt: skip


def test_train_log_holds_the_header_each_validation_the_samples_and_the_summary(shown) -> None:
    run, lines = shown
    log = (run / "train.log").read_text()
    for needle in ("RecurrentLM (cell gru", "train  cpu", "data   char tokenizer",
                   "step 0 · epoch 1/2 · val", "step 30 · epoch 1/2 · val",
                   "step 60 · epoch 2/2 · val", "  │ ", "best validation", "nats/token",
                   "best at epoch 2 of 2", "python generate.py ckpt="):  # fmt: skip
        assert needle in log, needle
    # A sample at each of the three validations, on the terminal and in the log.
    assert sum(line.startswith("step ") for line in lines) == 3
    assert log.count("step ") == 3 and "\x1b[" not in log


def test_samples_every_0_prints_none(tmp_path: Path, text_file: Path) -> None:
    run = tmp_path / "run"
    proc = run_train(run, f"data.path={text_file}", *FAST_TRAIN, "callbacks.samples.every=0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "step 2 · epoch 1/1 · val" in proc.stdout and "  │ " not in proc.stdout


METRICS = {
    "best": {
        "epoch": 3,
        **{metric_key("loss", m): v for m, v in zip(MODES, (1.5, 1.6, 3.4), strict=True)},
        **{metric_key("bpc", m): v for m, v in zip(MODES, (2.1, 2.3, 4.9), strict=True)},
    },
    "epochs": 4,
    "steps": 480,
    "train_tokens_per_s": 12345.0,
    "wall_time_s": 61.2,
    "overfitting_onset": {"epoch": 3},
}


def test_the_summary_gives_three_modes_and_whole_next_commands(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", "40")  # a narrow terminal must not break a command
    run = tmp_path / "outputs" / "astra_alpha" / "2026-11-29_10-00-00"
    print_summary(METRICS, run)
    out = capsys.readouterr().out
    for mode in MODES:
        assert mode in out
    for value in ("1.5000", "1.6000", "3.4000", "2.1000", "2.3000", "4.9000"):
        assert value in out
    flat = " ".join(out.split())  # sentences wrap at words on a narrow terminal
    # metrics.json counts epochs from 0; the summary from 1.
    assert "best at epoch 4 of 4" in flat and "overfitting from epoch 4" in flat
    assert "costs 1.900 nats/token" in flat  # stateless - stateful
    assert f"python generate.py ckpt={run} mode=compare" in out
    assert f"tensorboard --logdir {run.parent}\n" in out
    assert f"python -m gm.report {run}\n" in out


def test_the_bar_shows_loss_throughput_and_the_three_modes_only() -> None:
    bar_metrics = {
        "train/loss": 1.23456,
        "train/tokens_per_s": 123456.0,
        "train/grad_norm": 0.5,
        "step": 10.0,
        **{metric_key("loss", m): v for m, v in zip(MODES, (1.5, 1.6, 3.4), strict=True)},
        "val/bpc": 2.0,
    }
    trainer = SimpleNamespace(progress_bar_metrics=bar_metrics)
    items = ProgressBar().get_metrics(trainer, None)
    assert items == {"loss": "1.235", "tok/s": "123k", "val": "1.50/1.60/3.40"}
    # Before the first validation: no val item, and no number from elsewhere.
    trainer.progress_bar_metrics = {"train/loss": 2.0}
    assert ProgressBar().get_metrics(trainer, None) == {"loss": "2.000"}


@pytest.mark.parametrize(
    "max_epochs,shown", [(10, "epoch 10/10"), (-1, "epoch 10"), (None, "epoch 10")]
)
def test_the_bar_counts_epochs_from_1_and_shows_no_bound_it_lacks(max_epochs, shown) -> None:
    bar = ProgressBar()
    bar._trainer = SimpleNamespace(max_epochs=max_epochs)  # (only steps bound the run: -1)
    assert bar._get_train_description(9) == shown


@pytest.mark.parametrize(
    "message,shown",
    [
        ("💡 Tip: For seamless cloud logging, try installing [litlogger]", False),
        ("TPU available: False, using: 0 TPU cores", False),
        ("`Trainer.fit` stopped: `max_epochs=3` reached.", False),
        ("`Trainer.fit` stopped: No training batches.", True),  # says something went wrong
        ("GPU available: False, used: False", False),  # the header names the device
        ("Seed set to 1337", False),  # and the seeds
        # Logged by Lightning's checkpoint *save* alone (a count-based model's last.ckpt).
        ("`weights_only` was not set, defaulting to `False`.", False),
    ],
)
def test_known_noise_is_dropped_message_by_message(caplog, message: str, shown: bool) -> None:
    silence_known_noise()
    name = (
        "lightning.pytorch.trainer.connectors.checkpoint_connector"
        if "weights_only" in message
        else "lightning.pytorch.utilities.rank_zero"
    )
    log = logging.getLogger(name)
    with caplog.at_level(logging.INFO, logger=log.name):
        log.info(message)
    assert (message in caplog.text) is shown


def test_the_model_is_described_from_its_config() -> None:
    gru = {"_target_": "gm.models.RecurrentLM", "cell": "gru", "num_layers": 3,
           "hidden_dim": 512, "emb_dim": 256, "dropout": 0.1}  # fmt: skip
    assert describe_model(gru) == (
        "RecurrentLM (cell gru, layers 3, hidden 512, embedding 256, dropout 0.1)"
    )
    assert describe_model({"_target_": "gm.models.NGramLM", "order": 6}) == "NGramLM (order 6)"


def test_a_sweep_jobs_directory_is_quoted_so_hydra_reads_it_whole(capsys, tmp_path) -> None:
    run = tmp_path / "multirun" / "0_model=rnn,optimizer.lr=0.001"
    print_summary(METRICS, run)
    assert f"python generate.py \"ckpt='{run}'\" mode=compare" in capsys.readouterr().out


def test_a_count_based_model_gets_the_header_and_no_checkpoint_notice(
    tmp_path: Path, text_file: Path
) -> None:
    run = tmp_path / "run"
    proc = run_train(run, "model=ngram", f"data.path={text_file}", *FAST_TRAIN)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "ngram  KneserNeyLM (order" in out and "data   char tokenizer" in out
    assert "weights_only" not in out and "INFO:" not in out
    assert "n-grams counted" in (run / "train.log").read_text()
