"""Model bundles: a trained model as files anyone can load without running code.

A bundle is a directory with

    model.safetensors   the weights
    config.yaml         model family and shape, tokenizer kind and file, training summary
    tokenizer.json      the tokenizer (or the SentencePiece model)
    SHA256SUMS          a checksum for each file above

``python -m gm.export RUN_OR_CKPT OUT_DIR`` makes one from a run or a checkpoint;
training makes one in ``<run>/export`` when it ends.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from gm.data.tokenizer import load_tokenizer
from gm.errors import UserError
from gm.loading import TrainedModel, load_trained, load_weights
from gm.models import build_model

FORMAT = "gm-bundle/1"
SUMS = "SHA256SUMS"


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
        seq_len=int(config.get("seq_len") or 128),
        source=directory,
        corpus=dict(config.get("corpus") or {}),
        name=str(config.get("name") or ""),
        carry_state=config.get("carry_state"),
        training=dict(config.get("training") or {}),
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m gm.export RUN_OR_CKPT OUT_DIR``."""
    from gm.cli import run_or_exit

    parser = argparse.ArgumentParser(prog="python -m gm.export", description=__doc__.split("\n")[0])
    parser.add_argument("source", help="a run directory or a .ckpt file")
    parser.add_argument("out_dir", help="a new directory for the bundle")
    args = parser.parse_args(argv)
    out = run_or_exit(lambda: write_bundle(load_trained(args.source), args.out_dir))
    print(f"bundle written to {out}")


if __name__ == "__main__":
    main()
