"""Shared fixtures: the config directory and the real corpus when this machine has it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"
SHARED_CORPUS = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def conf_dir() -> Path:
    return CONF_DIR


@pytest.fixture
def shakespeare() -> Path:
    """The real Tiny Shakespeare corpus; skips when this machine does not have it."""
    if not SHARED_CORPUS.is_file():
        pytest.skip(f"real corpus not found at {SHARED_CORPUS}")
    return SHARED_CORPUS
