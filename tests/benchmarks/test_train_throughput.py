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
    # torch's side is n/a where its module has no bf16 kernel on this CPU (oneDNN's LSTM
    # without AVX-512), and the table says why; gm's side always runs.
    rows = re.findall(
        r"^\| (\w+) \| [\d,]+ \| [\d,]+ \| ([\d,]+|n/a) \| \*\*[\d.]+×\*\* "
        r"\| (\*\*[\d.]+×\*\*|n/a) \|$",
        bf16,
        re.M,
    )
    assert [r[0] for r in rows] == ["astra_alpha", "leviathan"]
    assert all((r[1] == "n/a") == (r[2] == "n/a") for r in rows)
    assert rows[0][1] != "n/a"  # torch's GRU has bf16 kernels on every CPU
    assert ("n/a" in rows[1][1]) == ("n/a: torch has no bf16-mixed kernel" in bf16)


def test_the_gpu_check_without_cuda_is_one_sentence() -> None:
    proc = run_script("benchmarks/gpu_check.py")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        "error: this machine has no CUDA device, so there is nothing for the GPU check"
    )
