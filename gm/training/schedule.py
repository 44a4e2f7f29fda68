"""Learning-rate schedule: linear warmup, then cosine annealing, stepped every batch."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine(
    optimizer: Optimizer, total_steps: int, warmup_steps: int = 0, min_lr_ratio: float = 0.0
) -> LambdaLR:
    """Scale the lr from 0 to its peak over ``warmup_steps``, then down a cosine to
    ``min_lr_ratio`` × peak at ``total_steps``."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    warmup_steps = min(max(0, warmup_steps), total_steps - 1)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
