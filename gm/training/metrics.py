"""Language-model metrics from summed nats, tokens and characters.

Summing and dividing at the end keeps every batch weighted by its size and is
exact under DDP (sums reduce across ranks). ``torchmetrics.text.Perplexity`` is
not used: it multiplies probabilities and overflows on long validations.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torchmetrics import Metric


class LanguageModelMetrics(Metric):
    """Accumulates nats, tokens and characters; computes loss, ppl and bpc."""

    full_state_update = False
    higher_is_better = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("nats", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("tokens", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("chars", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, nats: Tensor, tokens: int | Tensor, chars: int | Tensor) -> None:
        """Add a batch: ``nats`` summed over its targets, their count and their characters."""
        self.nats += nats.detach().double()
        self.tokens += torch.as_tensor(tokens, device=self.tokens.device)
        self.chars += torch.as_tensor(chars, device=self.chars.device)

    def compute(self) -> dict[str, Tensor]:
        """``loss`` nats/token, ``ppl`` = exp(loss), ``bpc`` = nats / (characters · ln 2)."""
        loss = self.nats / self.tokens.clamp(min=1)
        return {
            "loss": loss.float(),
            "ppl": torch.exp(loss).float(),
            "bpc": (self.nats / (self.chars.clamp(min=1) * math.log(2))).float(),
        }
