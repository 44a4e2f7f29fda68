"""The time loop shared by every hand-written recurrent layer.

A layer owns ``weight_ih`` (all gates' input weights, stacked), ``weight_hh`` and
``bias``; a subclass supplies ``step`` — the cell's pointwise gate math for one
time step — and ``initial_state``. ``forward`` projects the input for all ``T``
steps in one matmul, splits the result once with ``unbind`` (indexing ``gx[:, t]``
inside the loop would make the backward pass O(T²)) and runs ``T`` steps of one
hidden matmul each.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from gm.nn.state import State


class RecurrentLayer(nn.Module):
    """One recurrent layer over ``[B, T, input_size]`` with ``gates`` stacked gate blocks."""

    gates: int = 1

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        g = self.gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(g, input_size))
        self.weight_hh = nn.Parameter(torch.empty(g, hidden_size))
        self.bias = nn.Parameter(torch.empty(g))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's recurrent initialisation: U(-1/√H, 1/√H) for every weight and bias."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def input_bias(self) -> Tensor:
        """Bias added to the hoisted input projection (a subclass may fold more biases in)."""
        return self.bias

    def initial_state(self, batch: int, like: Tensor) -> State:
        """Zero state at the start of a stream."""
        return torch.zeros(batch, self.hidden_size, dtype=like.dtype, device=like.device)

    def step(self, gx: Tensor, state: State) -> tuple[Tensor, State]:
        """One time step: ``gx`` is this step's input projection ``[B, gates*H]``."""
        raise NotImplementedError

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Run ``x [B, T, I]`` from ``state`` (zeros when None); return outputs ``[B, T, H]``."""
        if state is None:
            # State: a new stream starts from zeros.
            state = self.initial_state(x.shape[0], x)
        gx = F.linear(x, self.weight_ih, self.input_bias())
        outputs = []
        for gx_t in gx.unbind(1):
            # State: carried from step t to step t+1 inside the chunk.
            h, state = self.step(gx_t, state)
            outputs.append(h)
        return torch.stack(outputs, 1), state

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"
