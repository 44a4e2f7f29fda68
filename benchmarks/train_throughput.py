"""Training throughput of gm's hand-written recurrence against torch's fused GRU/LSTM.

    python benchmarks/train_throughput.py [--models astra_alpha ...] [--repeats 5] [--smoke]

For each model, gm's RecurrentLM and the same-shaped reference built on
``torch.nn.GRU``/``torch.nn.LSTM`` (cuDNN on a GPU) train on the same batch in the same
process, alternating, one forward + backward + AdamW step at a time after a warm-up.
Prints median tokens/s for both, the ratio, forward and backward time separately,
and achieved GFLOP/s against a measured matmul peak; then, for each mixed precision
asked (``--precisions 32-true bf16-mixed``, the default), gm under autocast against gm's
own fp32 and against torch's modules under the same autocast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch import Tensor, nn
from torch.nn import functional as F

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import STUDY_MODELS, machine, matmul_peak_gflops, median, model_config, timed
from gm.models import build_model
from gm.runtime import keep_freed_memory


class TorchReference(nn.Module):
    """Embedding → dropout → torch.nn.GRU/LSTM → optional LayerNorm → Linear."""

    def __init__(
        self,
        vocab_size: int,
        cell: str,
        emb_dim: int,
        hidden_dim: int,
        num_layers: int,
        dropout: float = 0.0,
        layer_norm: bool = False,
    ) -> None:
        super().__init__()
        rnn = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}[cell]
        self.embedding = nn.Embedding(vocab_size, emb_dim)
        self.dropout = nn.Dropout(dropout)
        self.rnn = rnn(emb_dim, hidden_dim, num_layers, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(hidden_dim) if layer_norm else nn.Identity()
        self.head = nn.Linear(hidden_dim, vocab_size)

    def forward(self, tokens: Tensor, state=None):
        h, state = self.rnn(self.dropout(self.embedding(tokens)), state)
        return self.head(self.norm(h)), state


def matmul_flops(model: nn.Module, tokens: int) -> float:
    """Forward + backward FLOPs of the matrix products: 6 per weight per token."""
    weights = sum(
        p.numel() for n, p in model.named_parameters() if p.dim() == 2 and "embedding" not in n
    )
    return 6.0 * weights * tokens


PRECISIONS = {"32-true": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def step_times(
    model: nn.Module, opt: torch.optim.Optimizer, x: Tensor, y: Tensor, dtype: torch.dtype | None
):
    """(forward, backward + optimizer) seconds of one training step; the forward runs
    under autocast in ``dtype`` when given, as Lightning's ``*-mixed`` precisions do."""
    box = {}

    def forward():
        with torch.autocast(x.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits, _ = model(x)
        box["loss"] = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())

    def backward():
        box["loss"].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return timed(forward), timed(backward)


def bench(
    name: str,
    batch: int,
    seq_len: int,
    repeats: int,
    device: str,
    precisions: list[str],
    vocab: int | None = None,
    spec: dict | None = None,
    compile_mode: str | None = None,
    warmup: int = 1,
) -> dict[tuple[str, str], tuple[float, float, float]]:
    """Median (total, forward, backward) seconds per step of gm and torch in each precision.

    Every variant trains in the same process, the order rotated each round so that no one
    variant always runs first; the first ``warmup`` rounds are dropped. ``compile_mode``
    runs both models through ``torch.compile`` in that mode (``reduce-overhead``: CUDA
    graphs), as ``compile=`` does for training.
    """
    if spec is None:
        cfg, vocab = model_config(name)
        spec = OmegaConf.to_container(cfg.model)
    torch.manual_seed(0)
    args = {k: v for k, v in spec.items() if k not in ("_target_", "vocab_size")}
    models = {
        "gm": build_model(spec, vocab_size=vocab).to(device).train(),
        "torch": TorchReference(vocab, **args).to(device).train(),
    }
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-3) for k, m in models.items()}
    if compile_mode is not None:
        models = {k: torch.compile(m, mode=compile_mode, dynamic=False) for k, m in models.items()}
    x = torch.randint(0, vocab, (batch, seq_len), device=device)
    y = torch.randint(0, vocab, (batch, seq_len), device=device)
    variants = [(impl, p) for p in precisions for impl in models]
    times: dict[tuple[str, str], list[tuple[float, float]]] = {v: [] for v in variants}
    for i in range(warmup + repeats):
        shift = i % len(variants)
        for impl, precision in variants[shift:] + variants[:shift]:
            if (impl, precision) not in times:
                continue
            try:
                fwd, bwd = step_times(models[impl], opts[impl], x, y, PRECISIONS[precision])
            except RuntimeError:
                # torch's oneDNN LSTM has no bf16 kernel on a CPU without AVX-512 ("could not
                # create a primitive descriptor"): that reference is missing here, not gm.
                if impl != "torch":
                    raise
                del times[(impl, precision)]
                opts[impl].zero_grad(set_to_none=True)
                continue
            if i >= warmup:
                times[(impl, precision)].append((fwd, bwd))
    return {
        v: (median([f + b for f, b in t]), median([f for f, _ in t]), median([b for _, b in t]))
        for v, t in times.items()
    }


def throughput_row(name: str, results, tokens: int, peak: float, model: nn.Module) -> str:
    """One row of the fp32 table: gm against torch, speeds, step split, GFLOP/s."""
    cells = []
    for impl in ("gm", "torch"):
        total, fwd, bwd = results[(impl, "32-true")]
        gflops = matmul_flops(model, tokens) / total / 1e9
        cells.append((tokens / total, fwd, bwd, gflops))
    (g, gf, gb, gg), (r, rf, rb, rg) = cells
    return (
        f"| {name} | {g:,.0f} | {r:,.0f} | **{g / r:.2f}×** | {gf * 1e3:.0f} / {gb * 1e3:.0f} "
        f"| {rf * 1e3:.0f} / {rb * 1e3:.0f} | {gg:.1f} ({gg / peak:.0%}) "
        f"| {rg:.1f} ({rg / peak:.0%}) |"
    )


def precision_row(name: str, results, tokens: int, low: str) -> str:
    """One row of the mixed-precision table: gm fp32, gm and torch in ``low``, the ratios."""
    gm32 = tokens / results[("gm", "32-true")][0]
    gm_low = tokens / results[("gm", low)][0]
    if ("torch", low) not in results:  # (no such kernel in torch on this CPU: bench)
        return f"| {name} | {gm32:,.0f} | {gm_low:,.0f} | n/a | **{gm_low / gm32:.2f}×** | n/a |"
    torch_low = tokens / results[("torch", low)][0]
    return (
        f"| {name} | {gm32:,.0f} | {gm_low:,.0f} | {torch_low:,.0f} "
        f"| **{gm_low / gm32:.2f}×** | **{gm_low / torch_low:.2f}×** |"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=STUDY_MODELS)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--precisions",
        nargs="+",
        default=["32-true", "bf16-mixed"],
        choices=list(PRECISIONS),
        help="32-true first; each other one gets a table against gm's fp32 and torch",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny shapes, one repeat: checks the harness runs"
    )
    parser.add_argument(
        "--system-malloc",
        action="store_true",
        help="leave glibc's malloc thresholds as they are (gm's runs raise them: gm.runtime)",
    )
    args = parser.parse_args(argv)
    if not args.system_malloc:
        keep_freed_memory()  # as train.py does; it speeds up both sides alike
    if args.precisions[0] != "32-true":
        parser.error("--precisions must start with 32-true, the baseline")
    if args.smoke:
        args.batch, args.seq_len, args.repeats = 2, 4, 1
    peak = matmul_peak_gflops(n=64 if args.smoke else 2048, device=args.device)
    malloc = "glibc defaults" if args.system_malloc else "malloc keeps freed memory"
    print(
        f"{machine()}; batch {args.batch} × {args.seq_len}, forward + backward + AdamW, "
        f"median of {args.repeats}; fp32 matmul peak {peak:.0f} GFLOP/s; {malloc}\n",
        flush=True,
    )
    tokens = args.batch * args.seq_len
    rows: dict[str, list[str]] = {p: [] for p in args.precisions}
    for name in args.models:
        cfg, vocab = model_config(name)
        spec = OmegaConf.to_container(cfg.model)
        if args.smoke:  # the config's cell and layer norm at a few units wide
            spec |= {"emb_dim": 4, "hidden_dim": 8, "num_layers": 2}
        results = bench(
            name, args.batch, args.seq_len, args.repeats, args.device, args.precisions, vocab, spec
        )
        model = build_model(spec, vocab_size=vocab)
        rows["32-true"].append(throughput_row(name, results, tokens, peak, model))
        for low in args.precisions[1:]:
            rows[low].append(precision_row(name, results, tokens, low))
        print(f"{name} done", file=sys.stderr, flush=True)
    print(
        "| model | gm tok/s | torch tok/s | gm / torch | gm fwd / bwd ms "
        "| torch fwd / bwd ms | gm GFLOP/s | torch GFLOP/s |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(rows["32-true"]))
    for low in args.precisions[1:]:
        print(
            f"\n| model | gm 32-true tok/s | gm {low} tok/s | torch {low} tok/s "
            f"| gm {low} / gm 32-true | gm / torch, both {low} |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        print("\n".join(rows[low]))
        if any("| n/a |" in row for row in rows[low]):
            print(f"\nn/a: torch has no {low} kernel for that module on this CPU (oneDNN's LSTM")
            print("needs AVX-512 for bf16); gm's own cells run there, on torch's matmuls.")


if __name__ == "__main__":
    main()
