"""Every config composes with Hydra's compose API and carries the study's recipe."""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf
from omegaconf.errors import MissingMandatoryValue

from gm.models import MODEL_CLASSES
from gm.models.summary import model_names

RECIPES = {  # epochs, lr, dropout, tokenizer
    "astra_alpha": (10, 3e-3, 0.1, "char"),
    "astra_beta": (15, 2e-3, 0.1, "char"),
    "astra_gamma": (20, 1e-3, 0.1, "char"),
    "scribe_alpha": (10, 2e-3, 0.1, "sentencepiece"),
    "scribe_beta": (15, 1.5e-3, 0.1, "sentencepiece"),
    "scribe_gamma": (20, 1e-3, 0.15, "sentencepiece"),
    "leviathan": (6, 1e-3, 0.2, "char"),
}


def _compose(conf_dir, *overrides: str):
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        return compose("train", overrides=list(overrides))


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_model_config_carries_the_recipe(name: str, conf_dir) -> None:
    cfg = _compose(conf_dir, f"model={name}")
    epochs, lr, dropout, tokenizer = RECIPES[name]
    assert cfg.trainer.max_epochs == epochs
    assert cfg.optimizer.lr == pytest.approx(lr)
    assert cfg.optimizer.weight_decay == pytest.approx(0.01)
    assert cfg.model.dropout == pytest.approx(dropout)
    assert (cfg.data.batch_size, cfg.data.seq_len) == (64, 128)
    assert cfg.data.tokenizer == tokenizer


@pytest.mark.parametrize("name", model_names())
def test_every_model_config_instantiates_behind_the_one_interface(name: str, conf_dir) -> None:
    cfg = _compose(conf_dir, f"model={name}", "model.vocab_size=65")
    model = instantiate(cfg.model)
    assert type(model) in MODEL_CLASSES.values()
    if name in ("astra_gamma", "leviathan", "scribe_beta", "scribe_gamma"):
        return  # large: the interface is the same class as the small ones
    tokens = torch.randint(0, 65, (2, 5))
    logits, state = model(tokens)
    assert logits.shape == (2, 5, 65)
    assert model(tokens, state)[0].shape == (2, 5, 65)


def test_vocab_size_is_not_typed_into_model_files(conf_dir) -> None:
    cfg = _compose(conf_dir, "model=astra_alpha")
    assert OmegaConf.is_missing(cfg.model, "vocab_size")
    with pytest.raises(MissingMandatoryValue):
        _ = cfg.model.vocab_size
    assert instantiate(cfg.model, vocab_size=65).vocab_size == 65


def test_explicit_overrides_beat_the_recipe(conf_dir) -> None:
    cfg = _compose(conf_dir, "model=leviathan", "optimizer.lr=5e-4", "trainer.max_epochs=2")
    assert cfg.optimizer.lr == pytest.approx(5e-4)
    assert cfg.trainer.max_epochs == 2


def _compose_with_hydra(conf_dir, *overrides: str):
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


def test_slurm_launcher_config_composes_with_one_task_per_device(conf_dir) -> None:
    cfg = _compose_with_hydra(
        conf_dir, "hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"
    )
    launcher = cfg.hydra.launcher
    assert "submitit" in launcher._target_.lower() and "Slurm" in launcher._target_
    assert (launcher.tasks_per_node, launcher.nodes, launcher.gpus_per_node) == (4, 2, 4)
    assert cfg.trainer.strategy == "ddp" and cfg.trainer.use_distributed_sampler is False


def test_joblib_launcher_and_the_seven_model_sweep_compose(conf_dir) -> None:
    cfg = _compose_with_hydra(conf_dir, "hydra/launcher=joblib", "+sweep=all_models")
    assert "joblib" in cfg.hydra.launcher._target_.lower()
    assert sorted(cfg.hydra.sweeper.params.model.split(",")) == sorted(RECIPES)
    assert cfg.hydra.callbacks.report._target_ == "gm.runs.sweep.SweepReport"


def test_sweep_job_folders_fit_a_file_name_and_stay_distinct() -> None:
    from gm.config import job_dirname

    assert job_dirname(3, "model=rnn,optimizer.lr=0.001") == "3_model=rnn,optimizer.lr=0.001"
    assert job_dirname(0, "") == "0"
    long_a, long_b = "x=" + "a" * 300 + ",y=1", "x=" + "a" * 300 + ",y=2"
    a, b = job_dirname(12, long_a), job_dirname(12, long_b)
    assert len(a.encode()) <= 200 and a.startswith("12_x=aaa") and a != b
