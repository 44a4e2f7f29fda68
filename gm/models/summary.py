"""Model size figures: trainable parameters, fp32 MiB, and the README's model table.

``python -m gm.models.summary`` composes every config in ``conf/model`` and prints
the table the README shows, so the numbers there come from the code.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf
from torch import nn

from gm.config import CONF_DIR
from gm.run import count_parameters

# The vocabulary sizes the study counted: Tiny Shakespeare's characters, its subword pieces.
STUDY_VOCAB = {"char": 65, "sentencepiece": 1000}


def parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return count_parameters(model)


def size_mib(model: nn.Module, bytes_per_param: int = 4) -> float:
    """Size of the trainable parameters in MiB (fp32 unless told otherwise)."""
    return parameter_count(model) * bytes_per_param / 2**20


def model_names(conf_dir: Path = CONF_DIR) -> list[str]:
    """Names of the configs in the ``model`` group."""
    return sorted(p.stem for p in (conf_dir / "model").glob("*.yaml"))


def study_models(conf_dir: Path = CONF_DIR) -> list[str]:
    """The seven study models, in the study's order, as ``conf/sweep/all_models.yaml``
    sweeps them (that file is the list)."""
    sweep = OmegaConf.load(conf_dir / "sweep" / "all_models.yaml")
    return str(sweep.hydra.sweeper.params.model).split(",")


def model_table(conf_dir: Path = CONF_DIR) -> str:
    """Markdown table of the recurrent model configs: architecture, parameters, fp32 MiB."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    rows = []
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        for name in model_names(conf_dir):
            cfg = compose("train", overrides=[f"model={name}"])
            if cfg.model._target_ != "gm.models.RecurrentLM":
                continue
            vocab = STUDY_VOCAB[cfg.data.tokenizer]
            m = cfg.model
            model = instantiate(m, vocab_size=vocab)
            n = parameter_count(model)
            cell = m.cell.upper() + (" + LayerNorm" if m.get("layer_norm") else "")
            row = (
                f"| {name} | {cell} | {m.emb_dim} | {m.hidden_dim} | {m.num_layers} | {vocab} "
                f"| {n:,} | {size_mib(model):.2f} |"
            )
            rows.append(((m.cell, cfg.data.tokenizer, n), row))
    header = [
        "| model | cell | emb | hidden | layers | vocab | params | MiB (fp32) |",
        "| --- | --- | --- | --- | --- | --- | ---: | ---: |",
    ]
    # Study order: character GRUs, subword GRUs, then the LSTM; smallest first within each.
    return "\n".join(header + [row for _, row in sorted(rows)])


def main() -> None:
    """``python -m gm.models.summary``: print the README's model table."""
    print(model_table())


if __name__ == "__main__":
    main()
