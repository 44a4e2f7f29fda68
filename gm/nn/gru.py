"""Gated recurrent unit (Cho et al., 2014) in the PyTorch/cuDNN gate form.

    r  = σ(W_ir x + b_ir + W_hr h + b_hr)
    z  = σ(W_iz x + b_iz + W_hz h + b_hz)
    n  = tanh(W_in x + b_in + r ⊙ (W_hn h))
    h' = (1 − z) ⊙ n + z ⊙ h

Five bias vectors: input side r, z, n and hidden side r, z. There is no ``b_hn``:
it would sit inside ``r ⊙ (·)``, which is the one place a hidden bias is not
redundant, and the study's parameter counts leave it out.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from gm.nn.recurrent import RecurrentLayer, run_recurrence


class GRULayer(RecurrentLayer):
    """GRU layer; gate blocks are stacked r, z, n; state ``h [B, H]``."""

    gates = 3

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.bias_hh = nn.Parameter(torch.empty(2 * hidden_size))  # b_hr, b_hz
        self.reset_parameters()

    def input_bias(self) -> Tensor:
        # b_hr and b_hz only ever add to b_ir and b_iz, so they join the hoisted
        # projection once per call instead of once per step.
        return self.bias + F.pad(self.bias_hh, (0, self.hidden_size))

    def recurrence(self, gx: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        out = run_recurrence(GRURecurrence, gx, h, self.weight_hh)
        # State: the last output is the state carried to the next chunk.
        return out, out[-1]


class GRURecurrence(torch.autograd.Function):
    """The GRU time loop with its backward through time written out."""

    @staticmethod
    def forward(ctx: Any, gx: Tensor, h0: Tensor, w_hh: Tensor, keep: bool) -> Tensor:
        steps, _, three_h = gx.shape
        hs = three_h // 3
        out = gx.new_empty(steps, h0.shape[0], hs)
        rz_all, n_all, ghn_all = [], [], []
        h, w_t = h0, w_hh.t()
        for t in range(steps):
            gh = torch.mm(h, w_t)
            rz = torch.sigmoid(gx[t, :, : 2 * hs] + gh[:, : 2 * hs])
            ghn = gh[:, 2 * hs :]
            n = torch.tanh(torch.addcmul(gx[t, :, 2 * hs :], rz[:, :hs], ghn))
            # State: h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}, written straight into the output.
            h = torch.lerp(n, h, rz[:, hs:], out=out[t])
            if keep:
                rz_all.append(rz)
                n_all.append(n)
                ghn_all.append(ghn)
        if keep:
            ctx.save_for_backward(h0, w_hh, out)
            ctx.rz, ctx.n, ctx.ghn = rz_all, n_all, ghn_all
        return out

    @staticmethod
    def backward(ctx: Any, d_out: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:
        h0, w_hh, out = ctx.saved_tensors
        steps, batch, hs = out.shape
        d_gh = out.new_empty(steps, batch, 3 * hs)  # ∂L/∂(W_hh h), all steps
        d_gx = out.new_empty(steps, batch, 3 * hs)  # ∂L/∂gx, all steps
        dh = torch.zeros_like(h0)
        for t in range(steps - 1, -1, -1):
            dh = dh + d_out[t]
            rz, n, ghn = ctx.rz[t], ctx.n[t], ctx.ghn[t]
            r, z = rz[:, :hs], rz[:, hs:]
            h_prev = out[t - 1] if t else h0
            # h = n + z ⊙ (h_prev − n)
            d_n = dh - dh * z
            d_a = d_gx[t]
            # n = tanh(a_n), a_n = gx_n + r ⊙ ghn
            torch.mul(d_n, 1 - n * n, out=d_a[:, 2 * hs :])
            d_an = d_a[:, 2 * hs :]
            # σ' = σ(1 − σ) for r and z together
            d_rz = torch.cat([d_an * ghn, dh * (h_prev - n)], 1)
            torch.mul(d_rz, rz - rz * rz, out=d_a[:, : 2 * hs])
            d_gh[t, :, : 2 * hs] = d_a[:, : 2 * hs]
            torch.mul(d_an, r, out=d_gh[t, :, 2 * hs :])
            dh = torch.addmm(dh * z, d_gh[t], w_hh)
        h_prev_all = torch.cat([h0.unsqueeze(0), out[:-1]])
        d_w = d_gh.flatten(0, 1).t().mm(h_prev_all.flatten(0, 1))  # one matmul for all steps
        return d_gx, dh, d_w, None
