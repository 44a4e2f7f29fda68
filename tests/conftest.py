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


def generated_text(n_chars: int = 6000, seed: int = 0) -> str:
    """Small learnable text: lines of words drawn from a fixed vocabulary."""
    import random

    rng = random.Random(seed)
    words = ["to", "be", "or", "not", "that", "is", "the", "question", "whether", "tis"]
    out: list[str] = []
    size = 0
    while size < n_chars:
        line = " ".join(rng.choice(words) for _ in range(rng.randint(3, 9))).capitalize() + ".\n"
        out.append(line)
        size += len(line)
    return "".join(out)[:n_chars]


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    """A generated UTF-8 corpus on disk."""
    path = tmp_path / "corpus.txt"
    path.write_text(generated_text())
    return path
