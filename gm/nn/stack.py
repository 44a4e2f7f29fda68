"""A stack of recurrent layers with dropout between them."""

from __future__ import annotations

from torch import Tensor, nn

from gm.nn.gru import GRULayer
from gm.nn.lstm import LSTMLayer
from gm.nn.recurrent import RecurrentLayer
from gm.nn.rnn import ElmanLayer
from gm.state import State

CELLS: dict[str, type[RecurrentLayer]] = {"rnn": ElmanLayer, "gru": GRULayer, "lstm": LSTMLayer}


class RecurrentStack(nn.Module):
    """``num_layers`` layers of one cell type; the state is a tuple with one entry per layer."""

    def __init__(
        self, cell: str, input_size: int, hidden_size: int, num_layers: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"unknown cell {cell!r}; choose one of {sorted(CELLS)}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        layer = CELLS[cell]
        self.layers = nn.ModuleList(
            layer(input_size if i == 0 else hidden_size, hidden_size) for i in range(num_layers)
        )
        self.dropout = nn.Dropout(dropout)

    def initial_state(self, batch: int, like: Tensor) -> State:
        """The zero state of every layer, as ``forward`` would start from with ``None``."""
        return tuple(layer.initial_state(batch, like) for layer in self.layers)

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Run ``x [B, T, I]``; ``state`` None starts every layer from zeros."""
        new_state = []
        for i, layer in enumerate(self.layers):
            if i > 0:
                x = self.dropout(x)
            # State: each layer continues from its own entry of the incoming state.
            x, s = layer(x, None if state is None else state[i])
            new_state.append(s)
        return x, tuple(new_state)
