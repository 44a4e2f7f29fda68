"""Generating tokens in the study's inference modes (``gm.modes``): the stateful mode
carries the state from the prompt through every new token (one step each); the others keep
none and recompute every new token over the last ``context`` tokens (``T`` steps each in
the chunk mode, one in the stateless mode, the study's bug)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
from torch import Tensor, nn

from gm.data.streams import SEQ_LEN
from gm.errors import UserError
from gm.generation.sampling import SamplingOptions, sample_next
from gm.modes import MODES, context_length


def generate(
    model: nn.Module,
    prompt: list[int],
    max_new_tokens: int,
    mode: str = "stateful",
    options: SamplingOptions | None = None,
    generator: torch.Generator | None = None,
    window: int = SEQ_LEN,
    on_token: Callable[[int], None] | None = None,
    on_logits: Callable[[Tensor], None] | None = None,
) -> list[int]:
    """Continue ``prompt`` by ``max_new_tokens`` tokens; return the new tokens.

    ``on_token`` sees each token as it is chosen (for streaming); ``on_logits`` sees the
    logits each choice was made from (for tests and analysis).
    """
    if mode not in MODES:
        raise UserError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if not prompt:
        raise UserError("the prompt is empty; give at least one character the model knows")
    if max_new_tokens < 0:
        raise UserError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if window < 1:
        raise UserError(f"the chunk window must be positive, got {window}")
    options = options or SamplingOptions()
    generator = generator or torch.Generator()
    # Count-based models have buffers and no parameters.
    device = next(itertools.chain(model.parameters(), model.buffers())).device
    tokens = list(prompt)

    def step_input(ids: list[int]) -> Tensor:
        return torch.tensor([ids], dtype=torch.long, device=device)

    with torch.inference_mode():
        context = context_length(mode, window)  # None: the stateful mode
        state = None
        if context is None:
            # State: built once from the whole prompt in one forward call.
            logits, state = model(step_input(tokens), None)
        else:
            # State: none; the model sees the last `context` tokens from zeros.
            logits, _ = model(step_input(tokens[-context:]), None)

        new: list[int] = []
        for i in range(max_new_tokens):
            last = logits[:, -1]
            if on_logits is not None:
                on_logits(last)
            token = int(sample_next(last, options, generator))
            new.append(token)
            tokens.append(token)
            if on_token is not None:
                on_token(token)
            if i == max_new_tokens - 1:
                break  # the next logits would never be used
            if context is None:
                # State: carried; only the new token is fed.
                logits, state = model(step_input([token]), state)
            else:
                # State: none carried; the last `context` tokens are recomputed from zeros.
                logits, _ = model(step_input(tokens[-context:]), None)
    return new
