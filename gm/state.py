"""Hidden state as a value: one generic helper for every model family.

A ``State`` is a tuple whose leaves are tensors with the batch on dimension 0:
one ``h`` per layer for an Elman RNN or GRU, one ``(h, c)`` pair per layer for an
LSTM, the last context tokens for an n-gram or MLP. Code that carries state
between calls never needs to know which.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Union

import torch
from torch import Tensor

State = tuple[Union[Tensor, "State"], ...]


def map_state(fn: Callable[[Tensor], Tensor], state: State | None) -> State | None:
    """Apply ``fn`` to every tensor in ``state``, keeping its nesting; ``None`` stays ``None``."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return fn(state)
    return tuple(map_state(fn, s) for s in state)


def detach_state(state: State | None) -> State | None:
    """Cut the autograd graph behind ``state``: truncated BPTT keeps values, not history."""
    return map_state(Tensor.detach, state)


def state_to(state: State | None, device: torch.device | str) -> State | None:
    """Move every tensor of ``state`` to ``device``."""
    return map_state(lambda t: t.to(device), state)


def select_state(state: State | None, index: Tensor | slice | int) -> State | None:
    """Keep the batch rows ``index`` of every tensor in ``state`` (e.g. one stream out of B)."""
    return map_state(lambda t: t[index], state)


def state_tensors(state: State | None) -> list[Tensor]:
    """All tensors of ``state`` in a fixed order (for comparisons and serialisation)."""
    if state is None:
        return []
    if isinstance(state, Tensor):
        return [state]
    return [t for s in state for t in state_tensors(s)]
