"""Bundles: round trip to identical logits, checksums enforced, nothing overwritten."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from gm.artifacts import find_checkpoint, load_checkpoint, load_trained, read_bundle, write_bundle
from gm.errors import UserError
from tests.conftest import run_script


def test_round_trip_gives_identical_logits(trained_run: Path, tmp_path: Path) -> None:
    original = load_checkpoint(find_checkpoint(trained_run))
    bundle = read_bundle(write_bundle(original, tmp_path / "bundle"))
    tokens = torch.randint(0, original.tokenizer.vocab_size, (2, 50))
    with torch.no_grad():
        assert torch.equal(original.model(tokens)[0], bundle.model(tokens)[0])
    assert bundle.tokenizer.fingerprint == original.tokenizer.fingerprint
    assert bundle.seq_len == original.seq_len and bundle.spec == original.spec


def test_training_exports_a_bundle_of_the_best_checkpoint(trained_run: Path) -> None:
    bundle = load_trained(trained_run / "export")
    best = load_checkpoint(find_checkpoint(trained_run))
    for (k, a), (_, b) in zip(
        bundle.model.state_dict().items(), best.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), k
    assert bundle.training["best"]["val/loss"] > 0


def test_tampered_bundle_is_refused(trained_run: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(trained_run / "export", bundle)
    data = bytearray((bundle / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (bundle / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(UserError, match="does not match its checksum"):
        read_bundle(bundle)


def test_export_cli_makes_a_bundle_and_never_overwrites(trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "shared"
    proc = run_script("gm.export", str(trained_run), str(out))
    assert proc.returncode == 0, proc.stderr
    assert load_trained(out).tokenizer.vocab_size > 0
    before = (out / "SHA256SUMS").read_bytes()
    proc = run_script("gm.export", str(trained_run), str(out))
    assert proc.returncode == 2 and "not empty" in proc.stderr and "Traceback" not in proc.stderr
    assert (out / "SHA256SUMS").read_bytes() == before


def _resign(bundle: Path) -> None:
    """Rewrite SHA256SUMS as a hostile sender would after editing a file."""
    import hashlib

    lines = (bundle / "SHA256SUMS").read_text().splitlines()
    names = [line.split("  ", 1)[1] for line in lines]
    sums = "".join(f"{hashlib.sha256((bundle / n).read_bytes()).hexdigest()}  {n}\n" for n in names)
    (bundle / "SHA256SUMS").write_text(sums)


FOREIGN = "builtins.exec"  # what a file could name to have code run


def test_a_bundle_naming_a_foreign_class_is_refused(trained_run: Path, tmp_path: Path) -> None:
    """Checksums that match do not make a foreign ``_target_`` acceptable: the model class
    comes from gm's own table, never from the file."""
    bundle = tmp_path / "bundle"
    shutil.copytree(trained_run / "export", bundle)
    config = (bundle / "config.yaml").read_text()
    assert "_target_: gm.models.RecurrentLM" in config
    (bundle / "config.yaml").write_text(config.replace("gm.models.RecurrentLM", FOREIGN))
    _resign(bundle)
    with pytest.raises(UserError, match=f"unknown model class '{FOREIGN}'"):
        load_trained(bundle)


def test_a_checkpoint_naming_a_foreign_class_is_refused(trained_run: Path, tmp_path: Path) -> None:
    ckpt = torch.load(find_checkpoint(trained_run), map_location="cpu", weights_only=True)
    ckpt["hyper_parameters"]["model"]["_target_"] = FOREIGN
    path = tmp_path / "foreign.ckpt"
    torch.save(ckpt, path)
    with pytest.raises(UserError, match=f"unknown model class '{FOREIGN}'"):
        load_trained(path)
    proc = run_script("generate.py", f"ckpt={path}")
    assert proc.returncode == 2 and "unknown model class" in proc.stderr
    assert "Traceback" not in proc.stderr
