"""The benchmark harnesses run: the throughput tables in smoke mode, the GPU check's refusal."""

from __future__ import annotations

import re

from benchmarks.train_throughput import main
from tests.conftest import run_script


def test_smoke_mode_prints_the_fp32_and_the_autocast_tables(capsys) -> None:
    main(["--smoke", "--models", "astra_alpha", "leviathan"])
    out = capsys.readouterr().out
    fp32, bf16 = out.split("| model | gm 32-true tok/s | gm bf16-mixed tok/s")
    assert (
        "| gm / torch |" in fp32
        and len(re.findall(r"^\| (astra_alpha|leviathan) \|", fp32, re.M)) == 2
    )
    rows = re.findall(
        r"^\| (\w+) \| [\d,]+ \| [\d,]+ \| [\d,]+ \| \*\*[\d.]+×\*\* \| \*\*[\d.]+×\*\* \|$",
        bf16,
        re.M,
    )
    assert rows == ["astra_alpha", "leviathan"]


def test_the_gpu_check_without_cuda_is_one_sentence() -> None:
    proc = run_script("benchmarks/gpu_check.py")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        "error: this machine has no CUDA device, so there is nothing for the GPU check"
    )
