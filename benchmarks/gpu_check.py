"""What gm needs to know about a CUDA machine, in one command (under 10 minutes on one GPU).

    python benchmarks/gpu_check.py [--corpus input.txt] [--repeats 3] [--skip-epoch]

1. The hand-written cells' tests on CUDA: parity with cuDNN, the chunk invariant, every
   mixed precision (``pytest tests/nn`` with ``GM_TEST_DEVICE=cuda``).
2. Training throughput, gm against cuDNN, batch 64 × 128, for every study model in fp32 and
   ``bf16-mixed``, eager; then ``compile=reduce-overhead`` (CUDA graphs) for the models
   named by ``--compile-models``.
3. One epoch of Leviathan in ``bf16-mixed`` through ``train.py``: wall time and the
   validation losses in the three modes.

One table at the end. Without CUDA it says so in one sentence and exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import STUDY_MODELS, machine
from benchmarks.train_throughput import bench
from gm.runtime import keep_freed_memory

ROOT = Path(__file__).resolve().parents[1]
BATCH, SEQ_LEN = 64, 128


def cell_tests() -> str:
    """Run tests/nn on CUDA; the summary line pytest prints."""
    env = os.environ | {"GM_TEST_DEVICE": "cuda"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/nn"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode:
        print(proc.stdout[-4000:], file=sys.stderr)
    return lines[-1] if lines else f"pytest exited {proc.returncode}"


def throughput(models: list[str], repeats: int, compile_mode: str | None) -> list[str]:
    """One row per model: gm and cuDNN tokens/s in fp32 and bf16-mixed, and the ratios."""
    rows = []
    tokens = BATCH * SEQ_LEN
    for name in models:
        results = bench(
            name,
            BATCH,
            SEQ_LEN,
            repeats,
            "cuda",
            ["32-true", "bf16-mixed"],
            compile_mode=compile_mode,
            warmup=3 if compile_mode else 1,
        )
        speed = {k: tokens / v[0] for k, v in results.items()}
        g32, t32 = speed[("gm", "32-true")], speed[("torch", "32-true")]
        g16, t16 = speed[("gm", "bf16-mixed")], speed[("torch", "bf16-mixed")]
        rows.append(
            f"| {name} | {compile_mode or 'eager'} | {g32:,.0f} | {t32:,.0f} | {g32 / t32:.2f}× "
            f"| {g16:,.0f} | {t16:,.0f} | {g16 / t16:.2f}× | {g16 / g32:.2f}× |"
        )
        print(rows[-1], flush=True)
    return rows


def leviathan_epoch(corpus: str | None) -> str:
    """Train Leviathan for one epoch in bf16-mixed; its time and validation losses."""
    run = Path(tempfile.mkdtemp(prefix="gm-gpu-check-")) / "leviathan"
    args = [
        sys.executable,
        str(ROOT / "train.py"),
        f"hydra.run.dir={run}",
        "model=leviathan",
        "trainer=gpu",
        "trainer.precision=bf16-mixed",
        "trainer.max_epochs=1",
        "~callbacks.progress_bar",
        *([f"data.path={corpus}"] if corpus else []),
    ]
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        return f"failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}"
    metrics = json.loads((run / "metrics.json").read_text())
    final = metrics["final"]
    return (
        f"{seconds:.0f} s wall, {metrics.get('train_tokens_per_s', 0):,.0f} tokens/s; "
        f"val/loss {final['val/loss']:.4f}, chunk {final['val/loss_chunk']:.4f}, "
        f"stateless {final['val/loss_stateless']:.4f} ({run})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", help="Tiny Shakespeare on disk (else train.py finds it)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=STUDY_MODELS)
    parser.add_argument("--compile-models", nargs="*", default=["astra_alpha", "leviathan"])
    parser.add_argument("--skip-epoch", action="store_true", help="leave out step 3")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print(
            "error: this machine has no CUDA device, so there is nothing for the GPU check",
            file=sys.stderr,
        )
        sys.exit(2)
    keep_freed_memory()
    print(machine(), flush=True)
    header = [
        "| model | mode | gm fp32 tok/s | cuDNN fp32 tok/s | gm / cuDNN "
        "| gm bf16 tok/s | cuDNN bf16 tok/s | gm / cuDNN | gm bf16 / fp32 |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    tests = cell_tests()
    print(f"cell tests on CUDA: {tests}", flush=True)
    rows = throughput(args.models, args.repeats, None)
    rows += throughput(args.compile_models, args.repeats, "reduce-overhead")
    epoch = "skipped" if args.skip_epoch else leviathan_epoch(args.corpus)
    print(f"\n{machine()}\n\ncell tests on CUDA: {tests}\n")
    print("\n".join(header + rows))
    print(f"\nLeviathan, one epoch, bf16-mixed: {epoch}")


if __name__ == "__main__":
    main()
