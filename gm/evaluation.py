"""Evaluation in the study's three inference modes.

Every mode scores the same targets with the same weights; only what the model is
allowed to remember differs:

| mode       | state                                              |
| ---------- | -------------------------------------------------- |
| stateful   | carried across the whole validation stream         |
| chunk      | reset at the start of every chunk of ``T`` tokens   |
| stateless  | reset before every token: the model sees one token |

The validation step of training and ``gm.runs.study`` both score through ``mode_nll``;
generation samples in the same ``MODES`` and the report reads their ``metric_key`` tags.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from gm.metrics import LanguageModelMetrics
from gm.state import State

MODES = ("stateful", "chunk", "stateless")


def metric_key(name: str, mode: str) -> str:
    """The logged tag of metric ``name`` in ``mode``: ``val/loss`` is the stateful loss, the
    other modes carry a suffix (``val/bpc_chunk``); ``LanguageModelTask`` logs them so."""
    return f"val/{name}" if mode == "stateful" else f"val/{name}_{mode}"


def best_key(name: str, mode: str) -> str:
    """The logged tag of metric ``name`` in ``mode`` at the best validation so far (the one
    with the lowest stateful loss): ``best/val_bpc_chunk``."""
    return "best/" + metric_key(name, mode).replace("/", "_")


def mode_nll(
    model: nn.Module, x: Tensor, y: Tensor, mode: str, state: State | None = None
) -> tuple[Tensor, State | None]:
    """Per-token negative log-likelihood ``[B, T]`` of ``y`` given ``x`` in ``mode``.

    Returns the state to pass with the next chunk of the same streams (stateful mode
    only; the other modes return None).
    """
    if mode == "stateful":
        # State: continues from the previous chunk of the same streams.
        logits, state = model(x, state)
    elif mode == "chunk":
        # State: reset at every chunk.
        logits, state = model(x, None)[0], None
    elif mode == "stateless":
        # State: reset before every token; each position is its own length-1 sequence.
        logits, state = model(x.reshape(-1, 1), None)[0].view(*x.shape, -1), None
    else:
        raise ValueError(f"unknown mode {mode!r}; choose one of {MODES}")
    nll = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), reduction="none")
    return nll.view_as(y), state


def evaluate(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    char_lengths: Tensor,
    seq_len: int,
    modes: Iterable[str] = MODES,
) -> dict[str, LanguageModelMetrics]:
    """Score contiguous stream batches in every mode; one metrics object per mode."""
    device = next(iter([*model.parameters(), *model.buffers()])).device
    metrics = {m: LanguageModelMetrics(seq_len).to(device) for m in modes}
    states: dict[str, State | None] = dict.fromkeys(metrics)
    char_lengths = char_lengths.to(device)
    with torch.inference_mode():
        for x, y in batches:
            x, y = x.to(device), y.to(device)
            for mode, metric in metrics.items():
                nll, states[mode] = mode_nll(model, x, y, mode, states[mode])
                metric.update(nll, char_lengths[y].sum())
    return metrics


def scores(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    char_lengths: Tensor,
    seq_len: int,
) -> dict[str, dict[str, float]]:
    """``evaluate`` as plain numbers: loss, ppl and bpc of every mode."""
    metrics = evaluate(model, batches, char_lengths, seq_len)
    return {mode: {k: float(v) for k, v in m.compute().items()} for mode, m in metrics.items()}
