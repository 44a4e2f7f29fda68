"""The layer shared by every hand-written recurrent cell.

A layer owns ``weight_ih`` (all gates' input weights, stacked), ``weight_hh`` and
``bias``. ``forward`` projects the input for all ``T`` steps in one matmul; the cell's
``recurrence`` then runs the time loop, one hidden matmul plus the gate math per step.

Each cell writes its recurrence as a ``torch.autograd.Function`` with a hand-written
backward through time (BPTT): the reverse loop does one matmul per step for the
gradient flowing to the previous state, and the weight gradient over all ``T`` steps
is one large matmul afterwards — what cuDNN does, instead of autograd's ``T`` small
ones. Activations are kept only when a gradient will be asked for.
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

    def recurrence(self, gx: Tensor, state: State) -> tuple[Tensor, State]:
        """The time loop: ``gx [T, B, gates*H]`` from ``state`` -> outputs ``[T, B, H]``."""
        raise NotImplementedError

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Run ``x [B, T, I]`` from ``state`` (zeros when None); return outputs ``[B, T, H]``."""
        if state is None:
            # State: a new stream starts from zeros.
            state = self.initial_state(x.shape[0], x)
        # Time-major inside the layer: each step reads one contiguous [B, gates*H] block.
        gx = F.linear(x.transpose(0, 1), self.weight_ih, self.input_bias())
        out, state = self.recurrence(gx, state)
        return out.transpose(0, 1), state

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


def run_recurrence(function: type[torch.autograd.Function], *inputs: Tensor):
    """Run a recurrence ``Function``: through autograd, keeping activations, when a
    gradient can be asked for; otherwise (validation, generation) its forward directly,
    with no graph node to build — a step of generation then costs the loop alone."""
    if torch.is_grad_enabled() and any(t.requires_grad for t in inputs):
        return function.apply(*inputs, True)
    return function.forward(None, *inputs, False)


def weight_grad(d_pre: Tensor, h0: Tensor, out: Tensor) -> Tensor:
    """∂L/∂W_hh for all ``T`` steps at once: Σ_t d_pre[t]ᵀ h_{t−1}, with h_{−1} = ``h0``.

    One large matmul over steps 1…T−1 plus step 0's, rather than concatenating ``h0``
    with the outputs (a fresh ``[T, B, H]`` copy).
    """
    d_w = d_pre[0].t().mm(h0)
    return d_w.addmm_(d_pre[1:].flatten(0, 1).t(), out[:-1].flatten(0, 1))
