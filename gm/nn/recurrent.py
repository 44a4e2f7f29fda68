"""The layer shared by every hand-written recurrent cell.

A layer owns ``weight_ih`` (all gates' input weights, stacked), ``weight_hh`` and
``bias``. ``forward`` projects the input for all ``T`` steps in one matmul; the cell's
``recurrence`` then runs the time loop, one hidden matmul plus the gate math per step.

Each cell writes its recurrence as a ``torch.autograd.Function`` with a hand-written
backward through time (BPTT): the reverse loop does one matmul per step for the
gradient flowing to the previous state, and the weight gradient over all ``T`` steps
is one large matmul afterwards — what cuDNN does, instead of autograd's ``T`` small
ones. Activations are kept only when a gradient will be asked for. Every one of these
products goes through ``gm.nn.products`` (oneDNN's kernels on a CPU that has them).

Precision. Two dtypes meet in a layer, the way cuDNN's recurrences handle them:

- the *state dtype*, the parameters' own (fp32 under Lightning's ``bf16-mixed`` and
  ``16-mixed``): the hidden and cell state, the layer's outputs, every gate's sum and
  nonlinearity, and every gradient flowing back through time;
- the *compute dtype*, autocast's when it is on (else the state dtype): the operands of
  the products — the input projection ``W_ih x``, each step's ``W_hh h``, the backward's
  ``δ W_hh`` and the weight gradient. The GEMMs accumulate in fp32; a per-step product
  is widened to the state dtype before the gate math reads it.

``forward`` hands the recurrence ``W_hh`` already cast to the compute dtype and ``gx``
and the state in the state dtype; inside a recurrence autocast is off, so every cast
is the explicit one written there, the no-grad path (validation, generation) computes
exactly what the training path computes, and each gradient leaves in its input's
dtype. Under ``*-true`` precisions both dtypes are the parameters' and no cast happens.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from gm.nn.products import linear, mm
from gm.state import State, map_state


def compute_dtype(weight: Tensor) -> torch.dtype:
    """The dtype the layer's products run in: autocast's when it is on for ``weight``'s
    device, else ``weight``'s own."""
    device = weight.device.type
    if torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    return weight.dtype


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
        """Zero state at the start of a stream, on ``like``'s device and in its dtype."""
        return torch.zeros(batch, self.hidden_size, dtype=like.dtype, device=like.device)

    def recurrence(self, gx: Tensor, state: State, w_hh: Tensor) -> tuple[Tensor, State]:
        """The time loop: ``gx [T, B, gates*H]`` from ``state`` -> outputs ``[T, B, H]``;
        ``w_hh`` is ``weight_hh`` in the compute dtype."""
        raise NotImplementedError

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Run ``x [B, T, I]`` from ``state`` (zeros when None); return outputs ``[B, T, H]``."""
        dtype = self.weight_hh.dtype  # the state dtype (see the module docstring)
        if state is None:
            # State: a new stream starts from zeros.
            state = self.initial_state(x.shape[0], self.weight_hh)
        else:
            # State: a carried state joins the state dtype (a checkpoint keeps it in fp32;
            # a no-op when it is already there).
            state = map_state(lambda s: s.to(dtype), state)
        # Time-major inside the layer: each step reads one contiguous [B, gates*H] block.
        # The projection runs in autocast's dtype; its result joins the fp32 sums.
        compute = compute_dtype(self.weight_hh)
        gx = linear(x.transpose(0, 1), self.weight_ih, self.input_bias(), compute).to(dtype)
        w_hh = self.weight_hh.to(compute)
        out, state = self.recurrence(gx, state, w_hh)
        return out.transpose(0, 1), state

    def inspect(self, x: Tensor, state: State | None = None) -> dict[str, Tensor]:
        """Every step of ``x [B, T, I]`` from ``state``, in float32 and without gradients:
        the state and, for a gated cell, each gate, as ``[B, T, H]`` tensors named as in the
        cell's equations (what the explorer shows; ``forward``'s outputs are the ``h``)."""
        with torch.no_grad():
            if state is None:
                # State: a new stream starts from zeros.
                state = self.initial_state(x.shape[0], self.weight_hh)
            state = map_state(lambda s: s.float(), state)
            gx = F.linear(
                x.transpose(0, 1).float(), self.weight_ih.float(), self.input_bias().float()
            )
            w_t = self.weight_hh.float().t()
            steps = []
            for t in range(gx.shape[0]):
                # State: carried from step to step, as in the recurrence.
                named, state = self.step(gx[t], state, w_t)
                steps.append(named)
        return {k: torch.stack([s[k] for s in steps], dim=1) for k in steps[0]}

    def step(self, gx: Tensor, state: State, w_t: Tensor) -> tuple[dict[str, Tensor], State]:
        """One step of the cell's equations, written plainly (``inspect``'s)."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


def run_recurrence(function: type[torch.autograd.Function], *inputs: Tensor):
    """Run a recurrence ``Function`` with autocast off (its dtypes are explicit): through
    autograd, keeping activations, when a gradient can be asked for; otherwise
    (validation, generation) its forward directly, with no graph node to build — a step
    of generation then costs the loop alone."""
    with autocast_disabled(inputs[0]):
        if torch.is_grad_enabled() and any(t.requires_grad for t in inputs):
            return function.apply(*inputs, True)
        return function.forward(None, *inputs, False)


def autocast_disabled(like: Tensor) -> torch.autocast:
    """Autocast off on ``like``'s device. A recurrence's dtypes are explicit, so its
    forward and its backward run with autocast off, whatever context ``loss.backward()``
    was called from."""
    return torch.autocast(like.device.type, enabled=False)


def weight_grad(d_pre: Tensor, h0: Tensor, out: Tensor, dtype: torch.dtype) -> Tensor:
    """∂L/∂W_hh for all ``T`` steps at once: Σ_t d_pre[t]ᵀ h_{t−1}, with h_{−1} = ``h0``,
    in ``dtype`` (the compute dtype: this is the backward's largest product).

    One large matmul over steps 1…T−1 plus step 0's, rather than concatenating ``h0``
    with the outputs (a fresh ``[T, B, H]`` copy).
    """
    d_pre, h0, out = d_pre.to(dtype), h0.to(dtype), out.to(dtype)
    return mm(d_pre[1:].flatten(0, 1).t(), out[:-1].flatten(0, 1), add=d_pre[0].t().mm(h0))
