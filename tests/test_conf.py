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
