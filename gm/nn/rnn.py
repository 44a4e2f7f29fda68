"""Elman RNN: ``h' = tanh(W_ih x + b + W_hh h)`` (Elman, 1990)."""

from __future__ import annotations

import torch
from torch import Tensor

from gm.nn.recurrent import RecurrentLayer


class ElmanLayer(RecurrentLayer):
    """Elman layer with one bias vector (input side); state ``h [B, H]``."""

    gates = 1

    def step(self, gx: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        h = torch.tanh(torch.addmm(gx, h, self.weight_hh.t()))
        return h, h
