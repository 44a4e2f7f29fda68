"""Choosing the next token from logits: temperature, top-k, top-p, greedy."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gm.errors import UserError


@dataclass(frozen=True)
class SamplingOptions:
    """``temperature`` 0 means greedy argmax; ``top_k``/``top_p`` None mean no truncation."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None

    def check(self, vocab_size: int) -> None:
        """Refuse out-of-range options with one sentence each."""
        if not self.temperature >= 0:
            raise UserError(f"temperature must be >= 0 (0 is greedy), got {self.temperature}")
        if self.top_k is not None and not 1 <= self.top_k <= vocab_size:
            raise UserError(
                f"top_k must be between 1 and the vocabulary size {vocab_size}, got {self.top_k}"
            )
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise UserError(f"top_p must be in (0, 1], got {self.top_p}")


def sample_next(logits: Tensor, options: SamplingOptions, generator: torch.Generator) -> Tensor:
    """One token id per row of ``logits [B, V]``, drawn with ``generator``."""
    if options.temperature == 0:
        return logits.argmax(-1)
    # Shifted so the largest logit is 0, and scaled in float64 on the CPU (where any
    # positive temperature is above 0): a tiny temperature gives -inf for the others,
    # greedy in the limit, never 0/0 or inf - inf. The draw is on the CPU anyway.
    device, logits = logits.device, logits.cpu().double()
    logits = (logits - logits.amax(-1, keepdim=True)) / options.temperature
    if options.top_k is not None and options.top_k < logits.shape[-1]:
        kth = torch.topk(logits, options.top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if options.top_p is not None and options.top_p < 1:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        # Drop a token when the tokens before it already hold top_p of the mass.
        drop = (cumulative - sorted_logits.softmax(-1)) >= options.top_p
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), float("-inf"))
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1).to(device)
