"""Long short-term memory (Hochreiter & Schmidhuber, 1997), one bias per gate.

    i, f, g, o = σ(·), σ(·), tanh(·), σ(·)   of   W_i x + b + W_h h
    c' = f ⊙ c + i ⊙ g
    h' = o ⊙ tanh(c')

The bias is on the input side only (PyTorch keeps a second, redundant one); the
forget-gate bias starts at 1 so early gradients flow through the cell state.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gm.nn.recurrent import RecurrentLayer, run_recurrence


class LSTMLayer(RecurrentLayer):
    """LSTM layer; gate blocks are stacked i, f, g, o; state ``(h, c)``, each ``[B, H]``."""

    gates = 4

    def reset_parameters(self) -> None:
        super().reset_parameters()
        with torch.no_grad():
            self.bias[self.hidden_size : 2 * self.hidden_size].fill_(1.0)

    def initial_state(self, batch: int, like: Tensor) -> tuple[Tensor, Tensor]:
        h = torch.zeros(batch, self.hidden_size, dtype=like.dtype, device=like.device)
        return h, torch.zeros_like(h)

    def recurrence(
        self, gx: Tensor, state: tuple[Tensor, Tensor]
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        h0, c0 = state
        out, c = run_recurrence(LSTMRecurrence, gx, h0, c0, self.weight_hh)
        # State: (h, c) after the last step, carried to the next chunk.
        return out, (out[-1], c)


class LSTMRecurrence(torch.autograd.Function):
    """The LSTM time loop with its backward through time written out."""

    @staticmethod
    def forward(
        ctx: Any, gx: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor, keep: bool
    ) -> tuple[Tensor, Tensor]:
        steps, batch, four_h = gx.shape
        hs = four_h // 4
        out = gx.new_empty(steps, batch, hs)
        acts, cells, tanh_cells = [], [], []
        h, c, w_t = h0, c0, w_hh.t()
        for t in range(steps):
            a = torch.addmm(gx[t], h, w_t)
            act = torch.sigmoid(a)
            g = torch.tanh(a[:, 2 * hs : 3 * hs])
            i, f, o = act[:, :hs], act[:, hs : 2 * hs], act[:, 3 * hs :]
            # State: the cell state carries forward through the forget gate.
            c = torch.addcmul(f * c, i, g)
            tanh_c = torch.tanh(c)
            h = torch.mul(o, tanh_c, out=out[t])
            if keep:
                act[:, 2 * hs : 3 * hs] = g  # keep g among the activations
                acts.append(act)
                cells.append(c)
                tanh_cells.append(tanh_c)
        if keep:
            ctx.save_for_backward(h0, c0, w_hh, out)
            ctx.acts, ctx.cells, ctx.tanh_cells = acts, cells, tanh_cells
        return out, c

    @staticmethod
    def backward(ctx: Any, d_out: Tensor, d_c_last: Tensor) -> tuple[Tensor, ...]:
        h0, c0, w_hh, out = ctx.saved_tensors
        steps, batch, hs = out.shape
        d_a_all = out.new_empty(steps, batch, 4 * hs)  # ∂L/∂(gate pre-activations)
        dh = torch.zeros_like(h0)
        dc = d_c_last.clone() if d_c_last is not None else torch.zeros_like(c0)
        for t in range(steps - 1, -1, -1):
            dh = dh + d_out[t]
            act, tanh_c = ctx.acts[t], ctx.tanh_cells[t]
            i, f, g, o = act[:, :hs], act[:, hs : 2 * hs], act[:, 2 * hs : 3 * hs], act[:, 3 * hs :]
            c_prev = ctx.cells[t - 1] if t else c0
            # h = o ⊙ tanh(c);  c = f ⊙ c_prev + i ⊙ g
            dc = dc + dh * o * (1 - tanh_c * tanh_c)
            d_act = torch.cat([dc * g, dc * c_prev, dc * i, dh * tanh_c], 1)
            d_a = d_a_all[t]
            # σ' = σ(1 − σ) for i, f, o; tanh' = 1 − g² for g
            torch.mul(d_act, act - act * act, out=d_a)
            torch.mul(d_act[:, 2 * hs : 3 * hs], 1 - g * g, out=d_a[:, 2 * hs : 3 * hs])
            dc = dc * f
            dh = torch.mm(d_a, w_hh)
        h_prev_all = torch.cat([h0.unsqueeze(0), out[:-1]])
        d_w = d_a_all.flatten(0, 1).t().mm(h_prev_all.flatten(0, 1))  # one matmul for all steps
        return d_a_all, dh, dc, d_w, None
