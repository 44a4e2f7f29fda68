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

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from gm.nn.recurrent import RecurrentLayer


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

    def step(self, gx: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        hs = self.hidden_size
        gh = h @ self.weight_hh.t()
        rz = torch.sigmoid(gx[:, : 2 * hs] + gh[:, : 2 * hs])
        r, z = rz.chunk(2, 1)
        n = torch.tanh(torch.addcmul(gx[:, 2 * hs :], r, gh[:, 2 * hs :]))
        h = torch.lerp(n, h, z)  # (1 − z) ⊙ n + z ⊙ h
        return h, h
