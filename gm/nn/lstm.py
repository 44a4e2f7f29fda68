"""Long short-term memory (Hochreiter & Schmidhuber, 1997), one bias per gate.

    i, f, g, o = σ(·), σ(·), tanh(·), σ(·)   of   W_i x + b + W_h h
    c' = f ⊙ c + i ⊙ g
    h' = o ⊙ tanh(c')

The bias is on the input side only (PyTorch keeps a second, redundant one); the
forget-gate bias starts at 1 so early gradients flow through the cell state.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gm.nn.recurrent import RecurrentLayer


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
        self, gx: Tensor, state: tuple[Tensor, Tensor]
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        h, c = state
        gates = torch.addmm(gx, h, self.weight_hh.t())
        i, f, g, o = gates.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)
