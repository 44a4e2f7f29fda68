"""Running a sequence in chunks while carrying the state equals running it whole."""

from __future__ import annotations

import pytest
import torch

from gm.models import RecurrentLM
from gm.nn import RecurrentStack
from tests.conftest import assert_chunked_equals_whole


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_stack_chunked_equals_whole(cell: str) -> None:
    stack = RecurrentStack(cell, 5, 8, num_layers=3).eval()
    assert_chunked_equals_whole(stack, torch.randn(2, 64, 5))


@pytest.mark.parametrize("cell,layer_norm", [("rnn", False), ("gru", False), ("lstm", True)])
def test_language_model_chunked_equals_whole(cell: str, layer_norm: bool) -> None:
    model = RecurrentLM(30, cell, 6, 10, 2, dropout=0.3, layer_norm=layer_norm).eval()
    assert_chunked_equals_whole(model, torch.randint(0, 30, (3, 64)))


def test_dropping_the_state_changes_the_logits() -> None:
    """The invariant above is not vacuous: a reset chunk sees a different state."""
    model = RecurrentLM(30, "gru", 6, 10, 1).eval()
    tokens = torch.randint(0, 30, (1, 32))
    whole, _ = model(tokens)
    reset, _ = model(tokens[:, 16:])
    assert not torch.allclose(whole[:, 16:], reset, atol=1e-4)
