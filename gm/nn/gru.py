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

from gm.nn.products import StepWeight
from gm.nn.recurrent import RecurrentLayer, autocast_disabled, run_recurrence, weight_grad


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

    def step(self, gx: Tensor, h: Tensor, w_t: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        hs, gh = self.hidden_size, h @ w_t
        r, z = torch.sigmoid(gx[:, : 2 * hs] + gh[:, : 2 * hs]).split(hs, dim=1)
        n = torch.tanh(gx[:, 2 * hs :] + r * gh[:, 2 * hs :])
        h = (1 - z) * n + z * h
        return {"r": r, "z": z, "n": n, "h": h}, h

    def recurrence(self, gx: Tensor, h: Tensor, w_hh: Tensor) -> tuple[Tensor, Tensor]:
        out = run_recurrence(GRURecurrence, gx, h, w_hh)
        # State: the last output is the state carried to the next chunk.
        return out, out[-1]


class GRURecurrence(torch.autograd.Function):
    """The GRU time loop with its backward through time written out.

    The backward fuses what it can (σ' = σ − σ² and 1 − n² are one ``addcmul`` each,
    the loss's gradient at ``t − 1`` joins the recurrent matmul as its bias): twelve
    kernels per step where the unfused formulas took seventeen. Per-step
    tensors are allocated per step: one ``[T, ...]`` buffer per activation measured
    slower, its fresh pages faulted in on every call.

    ``gx``, ``h0`` and the outputs are in the state dtype, ``w_hh`` in the compute dtype
    (see ``gm.nn.recurrent``): mixed precision adds a cast of ``h`` down and of ``W_hh h``
    up per step, and the gate math stays in the state dtype.
    """

    @staticmethod
    def forward(ctx: Any, gx: Tensor, h0: Tensor, w_hh: Tensor, keep: bool) -> Tensor:
        steps, _, three_h = gx.shape
        hs = three_h // 3
        out = gx.new_empty(steps, h0.shape[0], hs)
        rzs, ns, ghs = [], [], []
        h, w_t = h0, StepWeight(w_hh.t(), steps)  # packed once for the T steps
        for t in range(steps):
            gh = w_t(h)
            rz = torch.sigmoid(gx[t, :, : 2 * hs] + gh[:, : 2 * hs])
            n = torch.tanh(torch.addcmul(gx[t, :, 2 * hs :], rz[:, :hs], gh[:, 2 * hs :]))
            # State: h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}, written straight into the output.
            h = torch.lerp(n, h, rz[:, hs:], out=out[t])
            if keep:
                rzs.append(rz)
                ns.append(n)
                ghs.append(gh)
        if keep:
            ctx.save_for_backward(h0, w_hh, out)
            ctx.rz, ctx.n, ctx.gh = rzs, ns, ghs
        return out

    @staticmethod
    def backward(ctx: Any, d_out: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:
        with autocast_disabled(d_out):  # as the forward ran, dtypes explicit
            h0, w_hh, out = ctx.saved_tensors
            steps, batch, hs = out.shape
            d_gh = out.new_empty(steps, batch, 3 * hs)  # ∂L/∂(W_hh h_{t−1}), all steps
            d_an = out.new_empty(steps, batch, hs)  # ∂L/∂(pre-activation of n), all steps
            one = out.new_ones(())
            w = StepWeight(w_hh, steps)  # packed once for the T steps back
            dh = d_out[-1]
            for t in range(steps - 1, -1, -1):
                rz, n, gh, d_gh_t = ctx.rz[t], ctx.n[t], ctx.gh[t], d_gh[t]
                h_prev = out[t - 1] if t else h0
                # h = (1 − z) ⊙ n + z ⊙ h_prev;  n = tanh(a_n), a_n = gx_n + r ⊙ gh_n
                dh_z = dh * rz[:, hs:]
                torch.mul(dh - dh_z, torch.addcmul(one, n, n, value=-1), out=d_an[t])
                torch.mul(d_an[t], gh[:, 2 * hs :], out=d_gh_t[:, :hs])  # through r
                torch.mul(dh, h_prev - n, out=d_gh_t[:, hs : 2 * hs])  # through z
                d_gh_t[:, : 2 * hs].mul_(torch.addcmul(rz, rz, rz, value=-1))
                torch.mul(d_an[t], rz[:, :hs], out=d_gh_t[:, 2 * hs :])
                # ∂L/∂h_{t−1}: through z, through W_hh, and from the loss at step t − 1.
                dh = w(d_gh_t, dh_z + d_out[t - 1] if t else dh_z)
            d_w = weight_grad(d_gh, h0, out, w_hh.dtype)
            # gx and W_hh h share r's and z's sums; only n's block differs. Written in place:
            # a fresh [T, B, 3H] tensor would cost more in page faults than the copy.
            d_gh[..., 2 * hs :] = d_an
            return d_gh, dh, d_w, None
