"""Scoring in the study's inference modes (``gm.modes``): every mode scores the same
targets with the same weights; only what the model is allowed to remember differs.

The validation step of training and ``gm.runs.study`` both score through ``mode_nll``;
the report reads the ``metric_key`` tags training logs.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from gm.metrics import LanguageModelMetrics
from gm.modes import MODES, chunk_mode, context_length
from gm.state import State


def eval_modes(chunk_lens: Iterable[int] = (), seq_len: int | None = None) -> list[str]:
    """``MODES`` plus a chunk mode for every length in ``chunk_lens`` other than ``seq_len``
    (the one ``chunk`` already resets at), in the order given."""
    extra = [chunk_mode(n) for n in dict.fromkeys(chunk_lens) if n != seq_len]
    return ["stateful", "chunk", *extra, "stateless"]


def metric_key(name: str, mode: str) -> str:
    """The logged tag of metric ``name`` in ``mode``: ``val/loss`` is the stateful loss, the
    other modes carry a suffix (``val/bpc_chunk``); ``LanguageModelTask`` logs them so."""
    return f"val/{name}" if mode == "stateful" else f"val/{name}_{mode}"


def best_key(name: str, mode: str) -> str:
    """The logged tag of metric ``name`` in ``mode`` at the best validation so far (the one
    with the lowest stateful loss): ``val_best/bpc_chunk`` (after ``val/`` in TensorBoard's
    alphabetical order of groups)."""
    return "val_best/" + metric_key(name, mode).removeprefix("val/")


def mode_nll(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    mode: str,
    state: State | None = None,
    offset: int = 0,
    seq_len: int | None = None,
) -> tuple[Tensor, State | None]:
    """Per-token negative log-likelihood ``[B, T]`` of ``y`` given ``x`` in ``mode``; ``x``
    is the chunk of the streams that starts at position ``offset`` of each, and ``seq_len``
    the training chunk length (the ``chunk`` mode's context; default ``x``'s width).

    Returns the state to pass with the next chunk of the same streams.
    """
    logits, state = mode_logits(model, x, mode, state, offset, seq_len)
    nll = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), reduction="none")
    return nll.view_as(y), state


def mode_logits(
    model: nn.Module, x: Tensor, mode: str, state: State | None, offset: int, seq_len: int | None
) -> tuple[Tensor, State | None]:
    """The logits ``[B, T, V]`` at every position of ``x`` in ``mode`` (what ``mode_nll``
    scores, and what the explorer shows), with the state for the next chunk."""
    length = context_length(mode, seq_len or x.shape[1])
    if length is None:
        # State: continues from the previous chunk of the same streams.
        logits, state = model(x, state)
    elif length == 1:
        # State: reset before every token; each position is its own length-1 sequence
        # (windows of one token, in one call).
        logits, state = model(x.reshape(-1, 1), None)[0].view(*x.shape, -1), None
    else:
        logits, state = _windows(model, x, length, offset, state)
    return logits, state


def _windows(
    model: nn.Module, x: Tensor, length: int, offset: int, state: State | None
) -> tuple[Tensor, State | None]:
    """A context of ``length`` tokens: windows of ``length`` tokens along each stream, each
    from a zero state, wherever they fall across the batches' chunks (the ``chunk`` mode's
    windows are the chunks themselves)."""
    logits, t, width = [], 0, x.shape[1]
    while t < width:
        into = (offset + t) % length
        if into == 0:
            state = None  # State: reset where a window starts
        end = min(width, t + length - into)
        # State: carried within the window, across the cut between two batches too.
        out, state = model(x[:, t:end], state)
        logits.append(out)
        t = end
    return torch.cat(logits, dim=1), state


def warmed_up(model: nn.Module, warmup: Tensor | None) -> State | None:
    """The stateful mode's starting state: None (zeros), or the state after reading the
    unscored text before each stream (``StreamBatches.warmup``), so that no stream starts
    cold and the score does not depend on how many streams the split is cut into."""
    if warmup is None:
        return None
    device = next(iter([*model.parameters(), *model.buffers()])).device
    # State: built from the text that precedes each stream, then carried into its first chunk.
    _, state = model(warmup.to(device), None)
    return state


def evaluate(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    char_lengths: Tensor,
    seq_len: int,
    modes: Iterable[str] = MODES,
) -> dict[str, LanguageModelMetrics]:
    """Score contiguous stream batches (chunks of ``seq_len``) in every mode; one metrics
    object per mode."""
    device = next(iter([*model.parameters(), *model.buffers()])).device
    metrics = {m: LanguageModelMetrics(seq_len).to(device) for m in modes}
    states: dict[str, State | None] = dict.fromkeys(metrics)
    char_lengths = char_lengths.to(device)
    with torch.inference_mode():
        if "stateful" in states:
            states["stateful"] = warmed_up(model, getattr(batches, "warmup", None))
        for k, (x, y) in enumerate(batches):
            x, y = x.to(device), y.to(device)
            for mode, metric in metrics.items():
                nll, states[mode] = mode_nll(model, x, y, mode, states[mode], k * seq_len, seq_len)
                metric.update(nll, char_lengths[y].sum())
    return metrics


def scores(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    char_lengths: Tensor,
    seq_len: int,
    modes: Iterable[str] = MODES,
) -> dict[str, dict[str, float]]:
    """``evaluate`` as plain numbers: loss, ppl and bpc of every mode."""
    metrics = evaluate(model, batches, char_lengths, seq_len, modes)
    return {mode: {k: float(v) for k, v in m.compute().items()} for mode, m in metrics.items()}
