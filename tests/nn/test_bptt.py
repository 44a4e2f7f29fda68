"""The hand-written backward-through-time passes `torch.autograd.gradcheck` in float64."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch

from gm.nn.gru import GRURecurrence
from gm.nn.lstm import LSTMRecurrence
from gm.nn.rnn import ElmanRecurrence

T, B, H = 5, 3, 4


def inputs(gates: int, extra_states: int = 0):
    def rand(*shape):
        return torch.randn(*shape, dtype=torch.float64, requires_grad=True)

    return rand(T, B, gates * H), *[rand(B, H) for _ in range(1 + extra_states)], rand(gates * H, H)


@pytest.mark.parametrize(
    "function,gates,extra",
    [(ElmanRecurrence, 1, 0), (GRURecurrence, 3, 0), (LSTMRecurrence, 4, 1)],
    ids=["elman", "gru", "lstm"],
)
def test_gradcheck(function, gates: int, extra: int) -> None:
    args = inputs(gates, extra)
    assert torch.autograd.gradcheck(lambda *a: function.apply(*a, True), args)


def test_no_activations_are_kept_without_grad() -> None:
    gx, h0, w = (t.detach() for t in inputs(3))
    out = GRURecurrence.apply(gx, h0, w, False)
    assert out.shape == (T, B, H) and not out.requires_grad


@pytest.mark.parametrize(
    "function,gates,extra",
    [(ElmanRecurrence, 1, 0), (GRURecurrence, 3, 0), (LSTMRecurrence, 4, 1)],
    ids=["elman", "gru", "lstm"],
)
def test_a_step_frees_its_activations_without_the_cycle_collector(function, gates, extra):
    """Nothing the forward keeps on ``ctx`` may reference an output: that forms a cycle
    through the output's grad_fn, which only Python's cycle collector frees, so long
    runs held every step's activations (Leviathan grew by 1.2 GB per step)."""
    args = inputs(gates, extra)
    enabled = gc.isenabled()
    gc.disable()
    try:
        out = function.apply(*args, True)
        outs = out if isinstance(out, tuple) else (out,)
        node = weakref.ref(outs[0].grad_fn)
        sum(o.sum() for o in outs).backward()
        del out, outs
        assert node() is None
    finally:
        if enabled:
            gc.enable()
