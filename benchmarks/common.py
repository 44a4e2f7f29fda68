"""What the benchmarks share: the machine's description, a careful timer, the configs."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from gm.config import CONF_DIR
from gm.models.summary import STUDY_VOCAB, study_models

STUDY_MODELS = study_models()


def machine() -> str:
    """One line: CPU (as ``lscpu`` names it, with its vector and matrix extensions) or GPU,
    threads, torch."""
    if torch.cuda.is_available():
        where = f"CUDA {torch.cuda.get_device_name()}"
    else:
        where = f"CPU {cpu_name()}, {torch.get_num_threads()} threads"
    return f"{where}, torch {torch.__version__}, Python {platform.python_version()}"


def cpu_name() -> str:
    """``lscpu``'s model name and which of AVX-512, AVX-512 BF16 and AMX the CPU has: the
    extensions that decide which kernels torch and oneDNN can run."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:  # not Linux: the platform's name alone
        return name
    has = [label for flag, label in CPU_EXTENSIONS if flag in flags]
    return f"{name} ({', '.join(has) or 'no AVX-512'})"


CPU_EXTENSIONS = (("avx512f", "AVX-512"), ("avx512_bf16", "AVX-512 BF16"), ("amx_bf16", "AMX-BF16"))


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
