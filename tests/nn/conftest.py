"""The tests of ``gm.nn`` run on ``GM_TEST_DEVICE`` (default ``cpu``);
``benchmarks/gpu_check.py`` runs them with ``GM_TEST_DEVICE=cuda``. On a CPU each runs
twice, once through each per-step product."""

from __future__ import annotations

import os

import pytest
import torch

from gm.nn.products import BACKEND_VARIABLE, BACKENDS

DEVICE = torch.device(os.environ.get("GM_TEST_DEVICE", "cpu"))


@pytest.fixture(autouse=True, params=BACKENDS if DEVICE.type == "cpu" else ("aten",))
def step_product(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs through each per-step product, ATen's and oneDNN's packed one
    (``gm.nn.products``; forced even for short sequences, wherever oneDNN has kernels)."""
    monkeypatch.setenv(BACKEND_VARIABLE, request.param)
    return request.param


@pytest.fixture(autouse=True)
def _on_device():
    """Every tensor and module a test makes is created on ``DEVICE``."""
    if DEVICE.type == "cpu":
        yield
        return
    # Parity with cuDNN at 1e-5 needs full fp32 products on both sides.
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    with torch.device(DEVICE):
        yield
