"""Running a sequence in chunks while carrying the state equals running it whole."""

from __future__ import annotations

import pytest
import torch

from gm.models import RecurrentLM
from gm.nn import RecurrentStack, state_tensors


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_stack_chunked_equals_whole(cell: str) -> None:
    stack = RecurrentStack(cell, 5, 8, num_layers=3).eval()
    x = torch.randn(2, 64, 5)
    whole, whole_state = stack(x)
    state, parts = None, []
    for chunk in x.split(16, dim=1):
        out, state = stack(chunk, state)
        parts.append(out)
    torch.testing.assert_close(torch.cat(parts, 1), whole, atol=1e-6, rtol=1e-6)
    for a, b in zip(state_tensors(state), state_tensors(whole_state), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("cell,layer_norm", [("rnn", False), ("gru", False), ("lstm", True)])
def test_language_model_chunked_equals_whole(cell: str, layer_norm: bool) -> None:
    model = RecurrentLM(30, cell, 6, 10, 2, dropout=0.3, layer_norm=layer_norm).eval()
    tokens = torch.randint(0, 30, (3, 64))
    whole, _ = model(tokens)
    state, parts = None, []
    for chunk in tokens.split(16, dim=1):
        logits, state = model(chunk, state)
        parts.append(logits)
    torch.testing.assert_close(torch.cat(parts, 1), whole, atol=1e-6, rtol=1e-6)


def test_dropping_the_state_changes_the_logits() -> None:
    """The invariant above is not vacuous: a reset chunk sees a different state."""
    model = RecurrentLM(30, "gru", 6, 10, 1).eval()
    tokens = torch.randint(0, 30, (1, 32))
    whole, _ = model(tokens)
    reset, _ = model(tokens[:, 16:])
    assert not torch.allclose(whole[:, 16:], reset, atol=1e-4)
