"""Batch-1 generation speed: stateful vs chunk recompute, as the generated text grows.

    python benchmarks/generation.py [--models astra_alpha astra_gamma] [--lengths 100 1000 5000]

Speed does not depend on the weights, so the models are freshly initialised from their
configs (the study's vocabulary). Prints a Markdown table of tokens/s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, model_config
from gm.generation import SamplingOptions, generate
from gm.models import build_model


def tokens_per_s(model: torch.nn.Module, mode: str, n: int, window: int) -> float:
    g = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    generate(model, [0], n, mode, SamplingOptions(), g, window=window)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["astra_alpha", "astra_gamma"])
    parser.add_argument("--lengths", nargs="+", type=int, default=[100, 1000, 5000])
    parser.add_argument("--modes", nargs="+", default=["stateful", "chunk"])
    parser.add_argument("--window", type=int, default=128)
    args = parser.parse_args()

    print(f"{machine()}; batch 1, one-token prompt, chunk window {args.window}\n")
    print("| model | mode | " + " | ".join(f"{n} tokens" for n in args.lengths) + " |")
    print("| --- | --- | " + " | ".join("---:" for _ in args.lengths) + " |")
    for name in args.models:
        cfg, vocab = model_config(name)
        model = build_model(OmegaConf.to_container(cfg.model), vocab_size=vocab).eval()
        generate(model, [0], 20, "stateful")  # warm-up
        for mode in args.modes:
            speeds = [tokens_per_s(model, mode, n, args.window) for n in args.lengths]
            cells = " | ".join(f"{s:,.0f} tok/s" for s in speeds)
            print(f"| {name} | {mode} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
