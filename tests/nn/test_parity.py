"""The hand-written layers compute what torch's fused GRU/LSTM/RNN compute."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gm.nn import RecurrentStack

B, T, IN, H, L = 4, 12, 7, 9, 2
TOL = dict(atol=1e-5, rtol=1e-5)


def _copy_into_torch(stack: RecurrentStack, cell: str) -> nn.Module:
    """A torch module with our weights; its redundant hidden biases set to match ours."""
    ref = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell](IN, H, L, batch_first=True)
    with torch.no_grad():
        for k, layer in enumerate(stack.layers):
            getattr(ref, f"weight_ih_l{k}").copy_(layer.weight_ih)
            getattr(ref, f"weight_hh_l{k}").copy_(layer.weight_hh)
            getattr(ref, f"bias_ih_l{k}").copy_(layer.bias)
            bias_hh = getattr(ref, f"bias_hh_l{k}")
            bias_hh.zero_()
            if cell == "gru":  # b_hr, b_hz; torch's b_hn stays 0
                bias_hh[: 2 * H].copy_(layer.bias_hh)
    return ref


def _grads_match(stack: RecurrentStack, ref: nn.Module, cell: str) -> None:
    for k, layer in enumerate(stack.layers):
        pairs = [("weight_ih", "weight_ih"), ("weight_hh", "weight_hh"), ("bias", "bias_ih")]
        for ours, theirs in pairs:
            torch.testing.assert_close(
                getattr(layer, ours).grad, getattr(ref, f"{theirs}_l{k}").grad, **TOL
            )
        if cell == "gru":
            torch.testing.assert_close(
                layer.bias_hh.grad, getattr(ref, f"bias_hh_l{k}").grad[: 2 * H], **TOL
            )


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_matches_torch_outputs_states_and_gradients(cell: str) -> None:
    stack = RecurrentStack(cell, IN, H, L)
    ref = _copy_into_torch(stack, cell)
    x = torch.randn(B, T, IN)
    if cell == "lstm":
        h0, c0 = torch.randn(L, B, H), torch.randn(L, B, H)
        ours_state = tuple((h0[k], c0[k]) for k in range(L))
        ref_state = (h0, c0)
    else:
        h0 = torch.randn(L, B, H)
        ours_state, ref_state = tuple(h0[k] for k in range(L)), h0

    out, state = stack(x, ours_state)
    ref_out, ref_final = ref(x, ref_state)
    torch.testing.assert_close(out, ref_out, **TOL)
    if cell == "lstm":
        torch.testing.assert_close(torch.stack([s[0] for s in state]), ref_final[0], **TOL)
        torch.testing.assert_close(torch.stack([s[1] for s in state]), ref_final[1], **TOL)
    else:
        torch.testing.assert_close(torch.stack(state), ref_final, **TOL)

    # A loss that touches the outputs and the final state, so both paths get gradients.
    w = torch.randn_like(out)
    last = state[-1][1] if cell == "lstm" else state[-1]
    ref_last = ref_final[1][-1] if cell == "lstm" else ref_final[-1]
    ((out * w).sum() + last.square().sum()).backward()
    ((ref_out * w).sum() + ref_last.square().sum()).backward()
    _grads_match(stack, ref, cell)


def test_lstm_forget_bias_starts_at_one() -> None:
    layer = RecurrentStack("lstm", IN, H, 1).layers[0]
    assert torch.all(layer.bias[H : 2 * H] == 1.0)
    for other in (slice(0, H), slice(2 * H, 3 * H), slice(3 * H, 4 * H)):  # i, g, o
        assert not torch.any(layer.bias[other] == 1.0)
