"""Model families behind the one interface ``forward(tokens, state) -> (logits, state)``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from gm.errors import UserError
from gm.models.mlp_lm import BengioMLP
from gm.models.ngram import KneserNeyLM
from gm.models.recurrent_lm import RecurrentLM

# The classes a config (or a checkpoint's saved config) may name. Building through this
# table instead of ``hydra.utils.instantiate`` means a checkpoint cannot make us import
# and call an arbitrary ``_target_``.
MODEL_CLASSES: dict[str, type[nn.Module]] = {
    "gm.models.RecurrentLM": RecurrentLM,
    "gm.models.BengioMLP": BengioMLP,
    "gm.models.KneserNeyLM": KneserNeyLM,
}


def build_model(spec: Mapping[str, Any], **overrides: Any) -> nn.Module:
    """Construct the model a config describes (``_target_`` plus constructor arguments)."""
    kwargs = {k: v for k, v in spec.items() if k != "_target_"} | overrides
    target = spec.get("_target_")
    if target not in MODEL_CLASSES:
        raise UserError(f"unknown model class {target!r}; gm builds {sorted(MODEL_CLASSES)}")
    try:
        return MODEL_CLASSES[target](**kwargs)
    except (TypeError, ValueError) as e:
        raise UserError(f"cannot build {target.rsplit('.', 1)[-1]}: {e}") from e


__all__ = ["MODEL_CLASSES", "BengioMLP", "KneserNeyLM", "RecurrentLM", "build_model"]
