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

from gm.nn.products import StepWeight
from gm.nn.recurrent import RecurrentLayer, autocast_disabled, run_recurrence, weight_grad


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

    def step(
        self, gx: Tensor, state: tuple[Tensor, Tensor], w_t: Tensor
    ) -> tuple[dict[str, Tensor], tuple[Tensor, Tensor]]:
        h, c = state
        i, f, g, o = (gx + h @ w_t).chunk(4, dim=1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        h = o * torch.tanh(c)
        return {"i": i, "f": f, "g": g, "o": o, "c": c, "h": h}, (h, c)

    def recurrence(
        self, gx: Tensor, state: tuple[Tensor, Tensor], w_hh: Tensor
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        h0, c0 = state
        out, c = run_recurrence(LSTMRecurrence, gx, h0, c0, w_hh)
        # State: (h, c) after the last step, carried to the next chunk.
        return out, (out[-1], c)


class LSTMRecurrence(torch.autograd.Function):
    """The LSTM time loop with its backward through time written out.

    The forward keeps the gates' derivatives (σ − σ² for i, f, o and 1 − g² for g, one
    fused op each), which leaves the backward ten kernels per step. Per-step tensors are
    allocated per step, as for the GRU: at Leviathan's size one ``[T, ...]`` buffer per
    activation is hundreds of megabytes of fresh pages to fault in on every call.

    ``w_hh`` is in the compute dtype, everything else — the cell state above all — in the
    state dtype (see ``gm.nn.recurrent``).
    """

    @staticmethod
    def forward(
        ctx: Any, gx: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor, keep: bool
    ) -> tuple[Tensor, Tensor]:
        steps, batch, four_h = gx.shape
        hs = four_h // 4
        out = gx.new_empty(steps, batch, hs)
        acts, d_acts, cells, tanh_cells = [], [], [], []
        one = gx.new_ones(())
        h, c, w_t = h0, c0, StepWeight(w_hh.t(), steps)  # packed once for the T steps
        for t in range(steps):
            a = w_t(h, gx[t])
            i, f, g, o = a[:, :hs], a[:, hs : 2 * hs], a[:, 2 * hs : 3 * hs], a[:, 3 * hs :]
            a[:, : 2 * hs].sigmoid_()
            g.tanh_()
            o.sigmoid_()
            # State: the cell state carries forward through the forget gate.
            c = torch.addcmul(f * c, i, g)
            tanh_c = torch.tanh(c)
            h = torch.mul(o, tanh_c, out=out[t])
            if keep:
                d_a = torch.addcmul(a, a, a, value=-1)
                torch.addcmul(one, g, g, value=-1, out=d_a[:, 2 * hs : 3 * hs])
                acts.append(a)
                d_acts.append(d_a)
                cells.append(c)
                tanh_cells.append(tanh_c)
        if keep:
            ctx.save_for_backward(h0, c0, w_hh, out)
            # The last cell state is an output: held on ctx it would form a reference
            # cycle through its grad_fn, and every step's activations would leak. The
            # backward never reads it (c_{t−1} only).
            ctx.acts, ctx.d_acts, ctx.cells, ctx.tanh_cells = acts, d_acts, cells[:-1], tanh_cells
        return out, c

    @staticmethod
    def backward(ctx: Any, d_out: Tensor, d_c_last: Tensor) -> tuple[Tensor, ...]:
        with autocast_disabled(d_out):  # as the forward ran, dtypes explicit
            h0, c0, w_hh, out = ctx.saved_tensors
            steps, batch, hs = out.shape
            d_a_all = out.new_empty(steps, batch, 4 * hs)  # ∂L/∂(gate pre-activations)
            one = out.new_ones(())
            w = StepWeight(w_hh, steps)  # packed once for the T steps back
            dh, dc = d_out[-1], d_c_last
            for t in range(steps - 1, -1, -1):
                a, tanh_c, d_a = ctx.acts[t], ctx.tanh_cells[t], d_a_all[t]
                i, f, g, o = a[:, :hs], a[:, hs : 2 * hs], a[:, 2 * hs : 3 * hs], a[:, 3 * hs :]
                c_prev = ctx.cells[t - 1] if t else c0
                # h = o ⊙ tanh(c);  c = f ⊙ c_prev + i ⊙ g
                dc = torch.addcmul(dc, dh * o, torch.addcmul(one, tanh_c, tanh_c, value=-1))
                torch.mul(dc, g, out=d_a[:, :hs])
                torch.mul(dc, c_prev, out=d_a[:, hs : 2 * hs])
                torch.mul(dc, i, out=d_a[:, 2 * hs : 3 * hs])
                torch.mul(dh, tanh_c, out=d_a[:, 3 * hs :])
                d_a.mul_(ctx.d_acts[t])
                dc = dc * f
                # ∂L/∂h_{t−1}: through W_hh, and from the loss at step t − 1.
                dh = w(d_a, d_out[t - 1] if t else None)
            d_w = weight_grad(d_a_all, h0, out, w_hh.dtype)
            return d_a_all, dh, dc, d_w, None
