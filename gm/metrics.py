"""Language-model metrics from summed nats, tokens and characters.

Summing and dividing at the end keeps every batch weighted by its size and is
exact under DDP (sums reduce across ranks). ``torchmetrics.text.Perplexity`` is
not used: it multiplies probabilities and overflows on long validations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from torchmetrics import Metric


class LanguageModelMetrics(Metric):
    """Accumulates nats, tokens and characters, and with ``seq_len`` the loss at each
    position of a chunk; computes loss, ppl, bpc and the loss by position."""

    full_state_update = False
    higher_is_better = False

    def __init__(self, seq_len: int = 0) -> None:
        super().__init__()
        self.add_state("nats", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("tokens", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("chars", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state(
            "position_nats", torch.zeros(seq_len, dtype=torch.float64), dist_reduce_fx="sum"
        )
        self.add_state(
            "position_tokens", torch.zeros(seq_len, dtype=torch.long), dist_reduce_fx="sum"
        )

    def _apply(self, fn: Callable[[Tensor], Tensor], exclude_state: Sequence[str] = ()) -> Metric:
        # The sums keep their dtypes (float64 nats, integer counts) whatever the module's
        # precision: Lightning's bf16-true calls .to(dtype), which torchmetrics would apply
        # to the states too. Only the device follows (reset() moves the defaults to it).
        this = super()._apply(fn, exclude_state=(*exclude_state, *self._defaults))
        for key in self._defaults:
            setattr(this, key, getattr(this, key).to(this.device))
        return this

    def update(self, nll: Tensor, chars: int | Tensor) -> None:
        """Add a batch: per-token losses ``[B, T]`` (or their sum) and the characters the
        targets decode to."""
        nll = nll.detach().double()
        self.nats += nll.sum()
        self.tokens += nll.numel()
        self.chars += torch.as_tensor(chars, device=self.chars.device)
        if nll.dim() == 2 and nll.shape[1] == self.position_nats.numel():
            self.position_nats += nll.sum(0)
            self.position_tokens += nll.shape[0]

    def compute(self) -> dict[str, Tensor]:
        """``loss`` nats/token, ``ppl`` = exp(loss), ``bpc`` = nats / (characters · ln 2)."""
        loss = self.nats / self.tokens.clamp(min=1)
        return {
            "loss": loss.float(),
            "ppl": torch.exp(loss).float(),
            "bpc": (self.nats / (self.chars.clamp(min=1) * math.log(2))).float(),
        }

    def loss_by_position(self) -> list[float]:
        """Mean loss at each position 0..T-1 of a chunk, then the overall mean: T+1 values."""
        # Under DDP the sums are reduced across processes first, as compute() does.
        with self.sync_context():
            by_position = self.position_nats / self.position_tokens.clamp(min=1)
            mean = self.nats / self.tokens.clamp(min=1)
            return [*by_position.tolist(), float(mean)]


def overfitting_onset(
    history: list[dict[str, float | None]], monitor: str = "val/loss", train: str = "train/loss"
) -> dict[str, float] | None:
    """Where overfitting set in: the validation with the lowest ``monitor``, provided a later
    validation has a higher ``monitor`` while the training loss (mean since the previous
    validation) is lower than at the minimum. ``None`` while validation still improves, or
    when its rises come with a rising training loss too (noise or divergence, not
    overfitting). Returns the minimum's epoch and step, its loss, and the rise from it to
    the last validation.
    """
    points = [h for h in history if h.get(monitor) is not None]
    if not points:
        return None
    best = min(points, key=lambda h: h[monitor])
    later = points[points.index(best) + 1 :]
    overfit = [
        h
        for h in later
        if h[monitor] > best[monitor]
        and h.get(train) is not None
        and best.get(train) is not None
        and h[train] < best[train]
    ]
    if not overfit:
        return None
    return {
        "epoch": best["epoch"],
        "step": best["step"],
        monitor: best[monitor],
        "rise": points[-1][monitor] - best[monitor],
    }
