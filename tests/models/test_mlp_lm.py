"""Bengio's MLP: a fixed window, so chunked logits equal whole-sequence logits."""

from __future__ import annotations

import pytest
import torch

from gm.models import BengioMLP
from tests.conftest import assert_chunked_equals_whole


@pytest.mark.parametrize("direct", [False, True])
def test_chunked_equals_whole(direct: bool) -> None:
    model = BengioMLP(20, context=5, emb_dim=4, hidden_dim=16, direct=direct).eval()
    assert_chunked_equals_whole(model, torch.randint(0, 20, (3, 64)))


def test_window_is_exactly_the_last_context_tokens() -> None:
    model = BengioMLP(20, context=3, emb_dim=4, hidden_dim=8).eval()
    a = torch.tensor([[1, 2, 3, 4, 5, 6]])
    b = torch.tensor([[9, 9, 3, 4, 5, 6]])  # differs only outside the last window
    assert torch.equal(model(a)[0][:, -1], model(b)[0][:, -1])
    assert not torch.allclose(model(a)[0][:, 2], model(b)[0][:, 2])


def test_direct_connections_add_parameters() -> None:
    plain = sum(p.numel() for p in BengioMLP(65, 16, 32, 512).parameters())
    direct = sum(p.numel() for p in BengioMLP(65, 16, 32, 512, direct=True).parameters())
    assert direct - plain == 16 * 32 * 65
