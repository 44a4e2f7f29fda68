"""The per-step products of every recurrent study model: ATen's ``mm`` against oneDNN's
product with the weight packed once (``gm.nn.products``), in fp32 and bf16.

    python benchmarks/products.py [--models astra_alpha ...] [--batch 64] [--repeats 5]

For each model's recurrent shape, batch × hidden against hidden × gates·hidden (the
forward's ``h W_hhᵀ``) and batch × gates·hidden against gates·hidden × hidden (the
backward's ``δ W_hh``): median GFLOP/s of each backend, the packed one's share of the best
rate seen for that shape, and what one reorder costs in products. The rule
``gm.nn.products.backend_for`` picks for a training call is printed beside it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import STUDY_MODELS, machine, median, model_config
from gm.nn.products import StepWeight, backend_for

GATES = {"rnn": 1, "gru": 3, "lstm": 4}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def seconds_per_call(fn, calls: int, repeats: int) -> float:
    """Median over ``repeats`` of the mean time of ``calls`` back-to-back calls."""
    for _ in range(max(3, calls // 10)):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls)
    return median(times)


def shapes(models: list[str]) -> list[tuple[str, int, int]]:
    """(model, hidden, gates) of each recurrent model, in order, without repeats."""
    seen = []
    for name in models:
        cfg, _ = model_config(name)
        cell = cfg.model.get("cell")
        if cell in GATES:
            seen.append((name, int(cfg.model.hidden_dim), GATES[cell]))
    return seen


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=[*STUDY_MODELS, "rnn"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=100, help="products per timing")
    parser.add_argument("--smoke", action="store_true", help="one tiny shape, one repeat")
    args = parser.parse_args(argv)
    rows = [("smoke", 32, 3)] if args.smoke else shapes(args.models)
    calls, repeats = (5, 1) if args.smoke else (args.calls, args.repeats)
    print(machine())
    print(
        "| model | product | dtype | aten GFLOP/s | packed GFLOP/s | packed / aten "
        "| reorder (products) | rule |"
    )
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | --- |")
    b = args.batch
    for name, hidden, gates in rows:
        for label, dtype in DTYPES.items():
            for product, (k, n) in (("h·W_hhᵀ", (hidden, gates * hidden)),
                                    ("δ·W_hh", (gates * hidden, hidden))):  # fmt: skip
                a, w = torch.randn(b, k).to(dtype), torch.randn(k, n).to(dtype)
                flops = 2 * b * k * n
                aten = StepWeight(w, 128, "aten")
                t_aten = seconds_per_call(lambda: aten(a), calls, repeats)  # noqa: B023
                try:
                    packed = StepWeight(w, 128, "onednn")
                    t_packed = seconds_per_call(lambda: packed(a), calls, repeats)  # noqa: B023
                    t_reorder = seconds_per_call(
                        lambda: StepWeight(w, 128, "onednn"),  # noqa: B023
                        max(1, calls // 10), repeats,
                    )  # fmt: skip
                    cells = (
                        f"{flops / t_packed / 1e9:,.1f} | {t_aten / t_packed:.2f}× | "
                        f"{t_reorder / t_packed:.1f}"
                    )
                except RuntimeError as error:  # oneDNN has no kernel for this dtype here
                    cells = f"n/a | — | — ({str(error).splitlines()[0][:60]})"
                print(
                    f"| {name} | {product} | {label} | {flops / t_aten / 1e9:,.1f} | {cells} "
                    f"| {backend_for(w, 128)} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
