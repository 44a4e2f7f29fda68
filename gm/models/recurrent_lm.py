"""The recurrent language model behind the one interface.

    tokens ─► Embedding ─► dropout ─► RecurrentStack (dropout between layers)
           ─► optional LayerNorm ─► Linear ─► logits

``forward(tokens [B, T], state=None) -> (logits [B, T, V], state)``. The training
task, the evaluator and the sampler all call this one method; only what they do
with the returned state differs.
"""

from __future__ import annotations

from torch import Tensor, nn

from gm.nn.stack import RecurrentStack
from gm.state import State


class RecurrentLM(nn.Module):
    """Elman RNN, GRU or LSTM language model over a vocabulary of ``vocab_size`` tokens."""

    def __init__(
        self,
        vocab_size: int,
        cell: str,
        emb_dim: int,
        hidden_dim: int,
        num_layers: int,
        dropout: float = 0.0,
        layer_norm: bool = False,
    ) -> None:
        super().__init__()
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be positive, got {vocab_size}")
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, emb_dim)
        self.dropout = nn.Dropout(dropout)
        self.rnn = RecurrentStack(cell, emb_dim, hidden_dim, num_layers, dropout)
        self.norm = nn.LayerNorm(hidden_dim) if layer_norm else nn.Identity()
        self.head = nn.Linear(hidden_dim, vocab_size)

    def initial_state(self, batch: int) -> State:
        """The zero state of a new stream, as a value (what ``state=None`` stands for)."""
        return self.rnn.initial_state(batch, self.head.weight)

    def forward(self, tokens: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Logits for the next token at every position; ``state`` None starts a new stream."""
        x = self.dropout(self.embedding(tokens))
        # State: handed to the stack as given and returned as it left the last step;
        # the caller decides whether to carry, detach or drop it.
        h, state = self.rnn(x, state)
        return self.head(self.norm(h)), state
