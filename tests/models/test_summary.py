"""The seven study models have exactly the study's parameter counts."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from gm.models.summary import model_names, model_table, parameter_count, size_mib

STUDY = {
    "astra_alpha": (65, 86_913, 0.33),
    "astra_beta": (65, 715_713, 2.73),
    "astra_gamma": (65, 4_383_041, 16.72),
    "scribe_alpha": (1000, 1_075_688, 4.10),
    "scribe_beta": (1000, 5_102_056, 19.46),
    "scribe_gamma": (1000, 14_439_400, 55.08),
    "leviathan": (65, 24_248_129, 92.50),
}


def test_every_study_model_has_a_config(conf_dir) -> None:
    assert set(STUDY) <= set(model_names(conf_dir))


@pytest.mark.parametrize("name", sorted(STUDY))
def test_parameter_count_and_size(name: str, conf_dir) -> None:
    vocab, params, mib = STUDY[name]
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        cfg = compose("train", overrides=[f"model={name}", f"model.vocab_size={vocab}"])
    model = instantiate(cfg.model)
    assert parameter_count(model) == params
    assert round(size_mib(model), 2) == mib


def test_readme_table_is_the_generated_one(conf_dir) -> None:
    """The README's table and the models guide's are both the code's numbers."""
    from tests.conftest import ROOT

    for page in ("README.md", "docs/guide/models.md"):
        assert model_table(conf_dir) in (ROOT / page).read_text(), page


@pytest.mark.parametrize("name", ["scribe_alpha", "scribe_beta", "scribe_gamma"])
def test_scribe_counts_with_the_real_trained_tokenizer(name: str, conf_dir, shakespeare, tmp_path):
    from omegaconf import OmegaConf

    from gm.data.datamodule import TextDataModule
    from gm.models import build_model

    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        cfg = compose("train", overrides=[f"model={name}", f"data.path={shakespeare}"])
    data = OmegaConf.to_container(cfg.data)
    tok = TextDataModule(data_dir=tmp_path, **data).prepare()
    model = build_model(OmegaConf.to_container(cfg.model), vocab_size=tok.vocab_size)
    assert parameter_count(model) == STUDY[name][1]
