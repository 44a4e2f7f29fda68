"""Elman RNN: ``h' = tanh(W_ih x + b + W_hh h)`` (Elman, 1990)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gm.nn.products import StepWeight
from gm.nn.recurrent import RecurrentLayer, autocast_disabled, run_recurrence, weight_grad


class ElmanLayer(RecurrentLayer):
    """Elman layer with one bias vector (input side); state ``h [B, H]``."""

    gates = 1

    def step(self, gx: Tensor, h: Tensor, w_t: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        h = torch.tanh(gx + h @ w_t)
        return {"h": h}, h

    def recurrence(self, gx: Tensor, h: Tensor, w_hh: Tensor) -> tuple[Tensor, Tensor]:
        out = run_recurrence(ElmanRecurrence, gx, h, w_hh)
        # State: the last output is the state carried to the next chunk.
        return out, out[-1]


class ElmanRecurrence(torch.autograd.Function):
    """The Elman time loop with its backward through time written out; ``w_hh`` in the
    compute dtype, everything else in the state dtype (see ``gm.nn.recurrent``)."""

    @staticmethod
    def forward(ctx: Any, gx: Tensor, h0: Tensor, w_hh: Tensor, keep: bool) -> Tensor:
        out = torch.empty_like(gx)
        h, w_t = h0, StepWeight(w_hh.t(), gx.shape[0])  # packed once for the T steps
        for t in range(gx.shape[0]):
            # State: h_t from h_{t−1}, written straight into the output.
            h = torch.tanh(w_t(h, gx[t]), out=out[t])
        if keep:
            ctx.save_for_backward(h0, w_hh, out)
        return out

    @staticmethod
    def backward(ctx: Any, d_out: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:
        with autocast_disabled(d_out):  # as the forward ran, dtypes explicit
            h0, w_hh, out = ctx.saved_tensors
            d_a = torch.empty_like(out)
            one = out.new_ones(())
            w = StepWeight(w_hh, out.shape[0])  # packed once for the T steps back
            dh = d_out[-1]
            for t in range(out.shape[0] - 1, -1, -1):
                torch.mul(dh, torch.addcmul(one, out[t], out[t], value=-1), out=d_a[t])  # tanh'
                # ∂L/∂h_{t−1}: through W_hh, and from the loss at step t − 1.
                dh = w(d_a[t], d_out[t - 1] if t else None)
            d_w = weight_grad(d_a, h0, out, w_hh.dtype)
            return d_a, dh, d_w, None
