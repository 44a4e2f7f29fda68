"""Loading a trained model from a run directory, a ``.ckpt`` file or an exported bundle.

Nothing here unpickles code: checkpoints load with ``torch.load(weights_only=True)``,
bundles are safetensors plus YAML read with ``yaml.safe_load``, and the model class
comes from ``gm.models.MODEL_CLASSES``, never from a string in the file.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gm.data.tokenizer import Tokenizer, tokenizer_from_state
from gm.errors import UserError
from gm.models import build_model


@dataclass
class TrainedModel:
    """A model ready for inference, with what is needed to feed it."""

    model: nn.Module
    tokenizer: Tokenizer
    spec: dict[str, Any]  # the model config (``_target_`` and constructor arguments)
    seq_len: int  # the training chunk length: the window of the `chunk` mode
    source: Path
    corpus: dict[str, Any] = field(default_factory=dict)  # path and sha256 of the training text
    name: str = ""  # the model config it was trained from (e.g. astra_alpha), when known
    carry_state: bool | None = None  # the training regime: carried state or windows
    training: dict[str, Any] = field(default_factory=dict)  # summary of the run that made it


def find_checkpoint(run_dir: Path) -> Path:
    """The best checkpoint of a run directory (lowest val/loss), else its last one."""
    metrics = run_dir / "metrics.json"
    if metrics.is_file():
        try:
            best = json.loads(metrics.read_text()).get("checkpoints", {}).get("best")
        except ValueError:
            best = None
        if best and Path(best).is_file():
            return Path(best)
    ckpts = run_dir / "checkpoints"
    candidates = sorted(ckpts.glob("best*.ckpt")) or sorted(ckpts.glob("last*.ckpt"))
    if not candidates:
        raise UserError(f"{run_dir} has no checkpoints/ with a .ckpt file; is it a training run?")
    return candidates[-1]


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A training checkpoint's contents; anything else (truncated, foreign) is a UserError."""
    try:
        # weights_only: a checkpoint is data; nothing in it may run code.
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, zipfile.BadZipFile, EOFError, ValueError) as e:
        raise UserError(f"{path} is not a PyTorch checkpoint gm can load safely") from e
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from e
    if not isinstance(ckpt, dict) or not {"state_dict", "hyper_parameters"} <= ckpt.keys():
        raise UserError(f"{path} is not a gm training checkpoint")
    return ckpt


def load_checkpoint(path: Path) -> TrainedModel:
    """Load a Lightning checkpoint written by ``train.py``."""
    ckpt = read_checkpoint(path)
    hparams, extra = ckpt["hyper_parameters"], ckpt.get("gm") or {}
    if "model" not in hparams or "tokenizer" not in extra:
        raise UserError(f"{path} is not a gm training checkpoint (no model or tokenizer)")
    spec = dict(hparams["model"])
    model = build_model(spec)
    prefix = "model."
    weights = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    load_weights(model, weights, path)
    tokenizer = tokenizer_from_state(extra["tokenizer"])
    return TrainedModel(
        model=model.eval(),
        tokenizer=tokenizer,
        spec=spec,
        seq_len=int(hparams.get("seq_len") or 128),
        source=path,
        corpus=dict(extra.get("corpus") or {}),
        name=str(extra.get("model_name") or ""),
        carry_state=hparams.get("carry_state"),
        training={"epoch": ckpt.get("epoch"), "global_step": ckpt.get("global_step")},
    )


def load_weights(model: nn.Module, weights: dict[str, torch.Tensor], source: Path) -> None:
    """Load ``weights`` into ``model``; a shape or name mismatch is a ``UserError``."""
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[1:2] or [str(e)]
        raise UserError(
            f"the weights in {source} do not fit the model they describe ({first[0].strip()})"
        ) from e


def load_trained(path: str | Path) -> TrainedModel:
    """Load a run directory (its best checkpoint), a ``.ckpt`` file or a bundle directory."""
    from gm.export import is_bundle, read_bundle

    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"{path} does not exist; pass ckpt= a run directory, .ckpt or bundle")
    if path.is_dir():
        if is_bundle(path):
            return read_bundle(path)
        return load_checkpoint(find_checkpoint(path))
    return load_checkpoint(path)
