"""The few lines printed when a run ends."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from lightning.pytorch.utilities import rank_zero_only
from rich.console import Console


@rank_zero_only
def print_summary(metrics: dict[str, Any], run_dir: str | os.PathLike) -> None:
    """Best validation loss and bpc, where the run is, and how to look at its curves."""
    console = Console(stderr=False, highlight=False)
    best = metrics.get("best", {})
    run_dir = Path(run_dir)
    if best.get("val/loss") is not None:
        loss, bpc = best["val/loss"], best.get("val/bpc", math.nan)
        if "ngrams" in metrics:
            how = f"{metrics['ngrams']:,} n-grams counted"
        else:
            how = (
                f"epoch {best.get('epoch')}, {metrics.get('steps')} steps, "
                f"{metrics.get('train_tokens_per_s') or 0:,.0f} tokens/s"
            )
        console.print(
            f"[bold]best val/loss {loss:.4f} nats/token, val/bpc {bpc:.4f}[/bold] "
            f"({how}, {metrics.get('wall_time_s', 0):.0f} s)"
        )
    console.print(f"run:         {run_dir}")
    console.print(f"metrics:     {run_dir / 'metrics.json'}")
    console.print(f"tensorboard: tensorboard --logdir {run_dir.parent}")
