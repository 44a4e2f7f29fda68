"""Model families behind the one interface ``forward(tokens, state) -> (logits, state)``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from gm.errors import UserError
from gm.models.mlp_lm import BengioMLP
from gm.models.ngram import KneserNeyLM
from gm.models.recurrent_lm import RecurrentLM
from gm.settings import Setting

# The classes a config (or a checkpoint's saved config) may name. Building through this
# table instead of ``hydra.utils.instantiate`` means a checkpoint cannot make us import
# and call an arbitrary ``_target_``.
MODEL_CLASSES: dict[str, type[nn.Module]] = {
    "gm.models.RecurrentLM": RecurrentLM,
    "gm.models.BengioMLP": BengioMLP,
    "gm.models.KneserNeyLM": KneserNeyLM,
}

_COUNT = Setting(int, low=1)
# What each constructor argument of a model family accepts: checked by training (as
# ``model.*``) and for every model spec read back from a checkpoint or bundle. The cell's
# own choices are RecurrentLM's to refuse.
MODEL_SETTINGS: dict[str, Setting] = {
    "vocab_size": _COUNT,
    "cell": Setting(str),
    "emb_dim": _COUNT,
    "hidden_dim": _COUNT,
    "num_layers": _COUNT,
    "context": _COUNT,
    "order": _COUNT,
    "dropout": Setting(float, low=0, high=1, open_high=True),
    "layer_norm": Setting(bool),
    "direct": Setting(bool),
    "discount": Setting(float, low=0, high=1, open_low=True, open_high=True, choices=("modified",)),
}


def build_model(spec: Mapping[str, Any], **overrides: Any) -> nn.Module:
    """Construct the model a config describes (``_target_`` plus constructor arguments)."""
    kwargs = {k: v for k, v in spec.items() if k != "_target_"} | overrides
    target = spec.get("_target_")
    if not isinstance(target, str) or target not in MODEL_CLASSES:
        raise UserError(f"unknown model class {target!r}; gm builds {sorted(MODEL_CLASSES)}")
    try:
        return MODEL_CLASSES[target](**kwargs)
    except (TypeError, ValueError) as e:
        raise UserError(f"cannot build {target.rsplit('.', 1)[-1]}: {e}") from e


__all__ = [
    "MODEL_CLASSES",
    "MODEL_SETTINGS",
    "BengioMLP",
    "KneserNeyLM",
    "RecurrentLM",
    "build_model",
]
