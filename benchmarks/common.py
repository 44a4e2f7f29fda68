"""What the benchmarks share: the machine's description, a careful timer, the configs."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from gm.config import CONF_DIR
from gm.models.summary import STUDY_VOCAB, study_models

STUDY_MODELS = study_models()


def machine() -> str:
    """One line: CPU or GPU, threads, torch."""
    if torch.cuda.is_available():
        where = f"CUDA {torch.cuda.get_device_name()}"
    else:
        where = (
            f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
        )
    return f"{where}, torch {torch.__version__}, Python {platform.python_version()}"


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn: Callable[[], object]) -> float:
    """Seconds ``fn`` takes, device work included."""
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def matmul_peak_gflops(n: int = 2048, repeats: int = 5, device: str = "cpu") -> float:
    """Measured fp32 GFLOP/s of an n×n matmul: the ceiling the models are compared with."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    return 2 * n**3 / median([timed(lambda: a @ b) for _ in range(repeats)]) / 1e9


def model_config(name: str) -> tuple[DictConfig, int]:
    """The composed training config of ``name`` and its study vocabulary size."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"model={name}"])
    return cfg, STUDY_VOCAB[cfg.data.tokenizer]
