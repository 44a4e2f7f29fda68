"""Bengio et al. (2003), *A Neural Probabilistic Language Model*.

    x = [C(w_{t−n+1}); …; C(w_t)]                (shared embedding C, concatenated)
    y = b + W x + U tanh(d + H x)                 (W: optional direct connections)

The state is the last ``context`` tokens, so a sequence run in chunks gives exactly the
logits of the sequence run whole. Positions before the stream began read a dedicated
start token (index ``vocab_size`` of the embedding).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gm.state import State


class BengioMLP(nn.Module):
    """Fixed-window neural language model over the last ``context`` tokens."""

    def __init__(
        self,
        vocab_size: int,
        context: int = 16,
        emb_dim: int = 32,
        hidden_dim: int = 512,
        direct: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if context < 1:
            raise ValueError(f"context must be at least 1, got {context}")
        self.vocab_size, self.context = vocab_size, context
        self.embedding = nn.Embedding(vocab_size + 1, emb_dim)  # + the start token
        self.hidden = nn.Linear(context * emb_dim, hidden_dim)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_dim, vocab_size)
        self.direct = nn.Linear(context * emb_dim, vocab_size, bias=False) if direct else None

    def forward(self, tokens: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Logits for the next token at every position from the ``context`` tokens ending there."""
        # State: the last `context` tokens before this chunk; start tokens for a new stream.
        if state is not None:
            history = state[0]
        else:
            history = tokens.new_full((tokens.shape[0], self.context), self.vocab_size)
        full = torch.cat([history, tokens], 1)
        windows = full.unfold(1, self.context, 1)[:, 1:]  # [B, T, context]
        x = self.embedding(windows).flatten(2)
        y = self.out(self.dropout(torch.tanh(self.hidden(x))))
        if self.direct is not None:
            y = y + self.direct(x)
        return y, (full[:, -self.context :],)
