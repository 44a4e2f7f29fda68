"""One pass of a trained model over a text in every inference mode, kept per token: the
loss of each token, the top predictions before it, and the hidden units after it.

Positions are tokens: position ``i`` is the prediction of token ``i`` from the tokens
before it (token 0 is context only and has no score), scored exactly as a validation
scores (``gm.evaluation.mode_logits`` over chunks of the training length), so the losses of
a mode sum to the mode's loss over the text. ``spans[i]`` is the characters token ``i``
decodes to, so a subword token colours its whole span.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from gm.artifacts import TrainedModel
from gm.evaluation import mode_logits
from gm.modes import MODES
from gm.state import State

TOP = 5  # predictions kept per position and mode


@dataclass
class Trace:
    """What a model did at every token of ``text``."""

    text: str
    spans: list[tuple[int, int]]  # the characters of each token
    nll: dict[str, np.ndarray]  # per mode: [T] nats, NaN at token 0
    top_ids: dict[str, np.ndarray]  # per mode: [T, TOP] the likeliest tokens before token i
    top_probs: dict[str, np.ndarray]  # per mode: [T, TOP] their probabilities
    # Per recurrent layer, its states and gates after each token (``inspect_layers``).
    layers: list[dict[str, np.ndarray]] = field(default_factory=list)


def trace(trained: TrainedModel, text: str, modes: tuple[str, ...] = MODES) -> Trace:
    """Run ``trained`` over ``text`` in each of ``modes``."""
    tokenizer, model = trained.tokenizer, trained.model
    batches = trained.text_batches(text)
    # The one stream holds every token of the text (one row: nothing is cut off).
    ids, seq_len = torch.as_tensor(batches.streams[0], dtype=torch.long), batches.seq_len
    logits: dict[str, list[torch.Tensor]] = {m: [] for m in modes}
    states: dict[str, State | None] = dict.fromkeys(modes)
    with torch.inference_mode():
        for k, (x, _) in enumerate(batches):
            for mode in modes:
                # State: each mode's own, carried from chunk to chunk as a validation does.
                out, states[mode] = mode_logits(model, x, mode, states[mode], k * seq_len, seq_len)
                logits[mode].append(out[0].float())
    targets = ids[1:]
    result = Trace(
        text=text, spans=_spans(tokenizer, ids.tolist()), nll={}, top_ids={}, top_probs={}
    )
    for mode in modes:
        log_probs = torch.log_softmax(torch.cat(logits[mode]), dim=-1)  # [T-1, V]
        nll = -log_probs.gather(1, targets[:, None])[:, 0]
        top = log_probs.topk(min(TOP, log_probs.shape[1]), dim=-1)
        result.nll[mode] = np.concatenate([[np.nan], nll.numpy()])
        pad = np.zeros((1, top.indices.shape[1]))
        result.top_ids[mode] = np.concatenate([pad - 1, top.indices.numpy()]).astype(int)
        result.top_probs[mode] = np.concatenate([pad, top.values.exp().numpy()])
    result.layers = inspect_layers(model, ids[:-1])
    return result


def inspect_layers(model: nn.Module, inputs: torch.Tensor) -> list[dict[str, np.ndarray]]:
    """Each recurrent layer's states and gates after every one of ``inputs`` (the state
    carried through all of them, as the stateful mode does): ``[T, H]`` arrays named as in
    the cell's equations (``h``; ``c`` for the LSTM; the gates). ``h[i]`` is the state after
    reading token ``i``, which predicts token ``i + 1``. Empty for a model without layers."""
    stack = getattr(model, "rnn", None)
    if stack is None or not hasattr(model, "embedding"):
        return []
    found = []
    with torch.inference_mode():
        x = model.embedding(inputs[None])  # (dropout is off in evaluation)
        for layer in stack.layers:
            seen = layer.inspect(x)  # State: from zeros, carried through the whole text
            found.append({k: v[0].numpy() for k, v in seen.items()})
            x = seen["h"]
    return found


def _spans(tokenizer, ids: list[int]) -> list[tuple[int, int]]:
    spans, at = [], 0
    for i in ids:
        width = len(tokenizer.decode([i]))
        spans.append((at, at + width))
        at += width
    return spans
