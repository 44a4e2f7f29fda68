"""A trained model's files: find a run's checkpoint, load it, and write, verify and read
bundles.

A bundle is a directory with

    model.safetensors   the weights
    config.yaml         model family and shape, tokenizer kind and file, training summary
    tokenizer.json      the tokenizer (or the SentencePiece model)
    SHA256SUMS          a checksum for each file above

Training writes one into ``<run>/export`` when it ends; ``python -m gm.export`` makes one
from any run or checkpoint. Nothing here unpickles code: checkpoints load with
``torch.load(weights_only=True)``, bundles are safetensors plus YAML read with
``yaml.safe_load``, and the model class comes from ``gm.models.MODEL_CLASSES``, never from
a string in the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from gm.data.streams import SEQ_LEN
from gm.data.tokenizer import Tokenizer, load_tokenizer, tokenizer_from_state
from gm.errors import UserError
from gm.models import build_model

FORMAT = "gm-bundle/1"
SUMS = "SHA256SUMS"


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
        seq_len=int(hparams.get("seq_len") or SEQ_LEN),
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
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"{path} does not exist; pass ckpt= a run directory, .ckpt or bundle")
    if path.is_dir():
        if is_bundle(path):
            return read_bundle(path)
        return load_checkpoint(find_checkpoint(path))
    return load_checkpoint(path)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def is_bundle(directory: Path) -> bool:
    """Whether ``directory`` looks like a bundle (it has checksums and a config)."""
    return (directory / SUMS).is_file() and (directory / "config.yaml").is_file()


def write_bundle(trained: TrainedModel, out_dir: str | Path, training: dict | None = None) -> Path:
    """Write ``trained`` as a bundle into ``out_dir``, which must not exist or be empty.

    The files are written to a temporary directory beside it and moved into place at
    the end, so an interrupted export leaves no half bundle.
    """
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UserError(f"{out_dir} already exists and is not empty; choose a new directory")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        weights = {k: v.detach().cpu().contiguous() for k, v in trained.model.state_dict().items()}
        save_file(weights, tmp / "model.safetensors")
        tokenizer_file = trained.tokenizer.save(tmp).name
        config = {
            "format": FORMAT,
            "model": trained.spec,
            "tokenizer": {
                "kind": trained.tokenizer.kind,
                "file": tokenizer_file,
                "vocab_size": trained.tokenizer.vocab_size,
                "fingerprint": trained.tokenizer.fingerprint,
            },
            "seq_len": trained.seq_len,
            "name": trained.name,
            "carry_state": trained.carry_state,
            "corpus": trained.corpus,
            "training": training if training is not None else trained.training,
        }
        (tmp / "config.yaml").write_text(
            yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
        )
        files = sorted(p.name for p in tmp.iterdir())
        (tmp / SUMS).write_text("".join(f"{_sha256(tmp / f)}  {f}\n" for f in files))
        if out_dir.exists():
            out_dir.rmdir()  # empty, checked above
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def verify_bundle(directory: Path) -> None:
    """Check every file listed in ``SHA256SUMS``; a mismatch is a ``UserError``."""
    listed: dict[str, str] = {}
    for line in (directory / SUMS).read_text().splitlines():
        digest, _, name = line.partition("  ")
        if not name or os.sep in name or name.startswith("."):
            raise UserError(f"{directory / SUMS} is malformed; re-export the bundle")
        listed[name] = digest
    for required in ("config.yaml", "model.safetensors"):
        if required not in listed:
            raise UserError(f"{directory / SUMS} does not cover {required}; re-export the bundle")
    for name, digest in listed.items():
        path = directory / name
        if not path.is_file():
            raise UserError(f"bundle {directory} is missing {name}")
        if _sha256(path) != digest:
            raise UserError(
                f"bundle {directory}: {name} does not match its checksum in {SUMS}; "
                "the file was changed or corrupted, re-export or re-download it"
            )


def read_bundle(directory: str | Path) -> TrainedModel:
    """Load a bundle after verifying its checksums; nothing is unpickled."""
    directory = Path(directory)
    verify_bundle(directory)
    try:
        config: dict[str, Any] = yaml.safe_load((directory / "config.yaml").read_text())
        spec, tok = dict(config["model"]), config["tokenizer"]
    except (yaml.YAMLError, KeyError, TypeError) as e:
        raise UserError(f"{directory}/config.yaml is not a gm bundle config") from e
    if config.get("format") != FORMAT:
        raise UserError(f"{directory} is a bundle of format {config.get('format')!r}, not {FORMAT}")
    model = build_model(spec)
    try:
        weights = load_file(directory / "model.safetensors")
    except (SafetensorError, OSError) as e:
        raise UserError(f"{directory}/model.safetensors cannot be read: {e}") from e
    load_weights(model, weights, directory)
    return TrainedModel(
        model=model.eval(),
        tokenizer=load_tokenizer(directory / tok["file"]),
        spec=spec,
        seq_len=int(config.get("seq_len") or SEQ_LEN),
        source=directory,
        corpus=dict(config.get("corpus") or {}),
        name=str(config.get("name") or ""),
        carry_state=config.get("carry_state"),
        training=dict(config.get("training") or {}),
    )


def is_trained_model(path: Path) -> bool:
    """Whether ``load_trained`` takes ``path``: a checkpoint file, a run directory or a bundle."""
    return path.is_file() or (path / "checkpoints").is_dir() or (path / SUMS).is_file()
