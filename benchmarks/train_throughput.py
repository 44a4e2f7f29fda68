"""Training throughput of gm's hand-written recurrence against torch's fused GRU/LSTM.

    python benchmarks/train_throughput.py [--models astra_alpha ...] [--repeats 5]

For each model, gm's RecurrentLM and the same-shaped reference built on
``torch.nn.GRU``/``torch.nn.LSTM`` (cuDNN on a GPU) train on the same batch in the same
process, alternating, one forward + backward + AdamW step at a time after a warm-up.
Prints median tokens/s for both, the ratio, forward and backward time separately,
and achieved GFLOP/s against a measured matmul peak.
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


def step_times(model: nn.Module, opt: torch.optim.Optimizer, x: Tensor, y: Tensor):
    """(forward, backward + optimizer) seconds of one training step."""
    box = {}

    def forward():
        logits, _ = model(x)
        box["loss"] = F.cross_entropy(logits.flatten(0, 1), y.flatten())

    def backward():
        box["loss"].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return timed(forward), timed(backward)


def bench(name: str, batch: int, seq_len: int, repeats: int, device: str, peak: float) -> str:
    cfg, vocab = model_config(name)
    spec = OmegaConf.to_container(cfg.model)
    torch.manual_seed(0)
    ours = build_model(spec, vocab_size=vocab).to(device).train()
    args = {k: v for k, v in spec.items() if k not in ("_target_", "vocab_size")}
    ref = TorchReference(vocab, **args).to(device).train()
    models = {"gm": ours, "torch": ref}
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-3) for k, m in models.items()}
    x = torch.randint(0, vocab, (batch, seq_len), device=device)
    y = torch.randint(0, vocab, (batch, seq_len), device=device)
    times = {k: [] for k in models}
    for i in range(repeats + 1):  # the first round warms up and is dropped
        for key in ("gm", "torch") if i % 2 == 0 else ("torch", "gm"):  # alternate the order
            fwd, bwd = step_times(models[key], opts[key], x, y)
            if i:
                times[key].append((fwd, bwd))
    tokens = batch * seq_len
    cells = []
    for key in ("gm", "torch"):
        fwd = median([f for f, _ in times[key]])
        bwd = median([b for _, b in times[key]])
        total = median([f + b for f, b in times[key]])
        gflops = matmul_flops(models[key], tokens) / total / 1e9
        cells.append((tokens / total, fwd, bwd, gflops))
    (g, gf, gb, gg), (r, rf, rb, rg) = cells
    return (
        f"| {name} | {g:,.0f} | {r:,.0f} | **{g / r:.2f}×** | {gf * 1e3:.0f} / {gb * 1e3:.0f} "
        f"| {rf * 1e3:.0f} / {rb * 1e3:.0f} | {gg:.1f} ({gg / peak:.0%}) "
        f"| {rg:.1f} ({rg / peak:.0%}) |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=STUDY_MODELS)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    peak = matmul_peak_gflops(device=args.device)
    print(
        f"{machine()}; batch {args.batch} × {args.seq_len}, forward + backward + AdamW, "
        f"median of {args.repeats}; fp32 matmul peak {peak:.0f} GFLOP/s\n"
    )
    print(
        "| model | gm tok/s | torch tok/s | gm / torch | gm fwd / bwd ms "
        "| torch fwd / bwd ms | gm GFLOP/s | torch GFLOP/s |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in args.models:
        print(bench(name, args.batch, args.seq_len, args.repeats, args.device, peak), flush=True)


if __name__ == "__main__":
    main()
