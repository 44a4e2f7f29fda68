"""The generic state helpers work on every nesting the models produce."""

from __future__ import annotations

import torch

from gm.nn import RecurrentStack
from gm.state import detach_state, select_state, state_tensors, state_to


def test_detach_keeps_values_and_cuts_the_graph() -> None:
    stack = RecurrentStack("lstm", 3, 4, 2)
    _, state = stack(torch.randn(2, 5, 3))
    assert all(t.requires_grad for t in state_tensors(state))
    cut = detach_state(state)
    assert not any(t.requires_grad for t in state_tensors(cut))
    for a, b in zip(state_tensors(cut), state_tensors(state), strict=True):
        assert torch.equal(a, b)
    assert len(cut) == 2 and len(cut[0]) == 2  # (h, c) per layer survives


def test_select_and_move() -> None:
    state = (torch.arange(6.0).view(3, 2), (torch.ones(3, 1), torch.zeros(3, 1)))
    row = select_state(state, slice(1, 2))
    assert torch.equal(row[0], torch.tensor([[2.0, 3.0]]))
    assert row[1][0].shape == (1, 1)
    assert state_to(None, "cpu") is None
    assert state_to(state, "cpu")[0].device.type == "cpu"
    # "meta" (shapes without data) stands in for a second device on any machine.
    moved = state_to(state, "meta")
    assert {t.device.type for t in state_tensors(moved)} == {"meta"}


def test_the_zero_state_is_made_where_the_weights_live() -> None:
    for cell in ("rnn", "gru", "lstm"):
        layer = RecurrentStack(cell, 3, 4, 1).layers[0]
        like = torch.empty(0, dtype=torch.float64, device="meta")
        state = state_tensors(layer.initial_state(2, like))
        assert {(t.device.type, t.dtype, t.shape) for t in state} == {
            ("meta", torch.float64, (2, 4))
        }
