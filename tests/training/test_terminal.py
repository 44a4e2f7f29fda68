"""What a run prints: the progress bar's items, the end-of-run summary, the noise filter."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from gm.evaluation import metric_key
from gm.modes import MODES
from gm.training.terminal import ProgressBar, describe_model, print_summary, silence_known_noise

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
    assert "best at epoch 4 of 4" in out and "overfitting from epoch 3" in out
    assert "costs 1.900 nats/token" in out  # stateless - stateful
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
    assert items == {"loss": "1.235", "tok/s": "123k", "val": "1.500 · 1.600 · 3.400"}
    # Before the first validation: no val item, and no number from elsewhere.
    trainer.progress_bar_metrics = {"train/loss": 2.0}
    assert ProgressBar().get_metrics(trainer, None) == {"loss": "2.000"}


@pytest.mark.parametrize(
    "message,shown",
    [
        ("💡 Tip: For seamless cloud logging, try installing [litlogger]", False),
        ("TPU available: False, using: 0 TPU cores", False),
        ("`Trainer.fit` stopped: `max_epochs=3` reached.", False),
        ("`Trainer.fit` stopped: No training batches.", True),  # says something went wrong
        ("GPU available: False, used: False", True),
        ("Seed set to 1337", True),
    ],
)
def test_known_noise_is_dropped_message_by_message(caplog, message: str, shown: bool) -> None:
    silence_known_noise()
    log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
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
