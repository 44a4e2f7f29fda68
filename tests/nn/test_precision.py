"""Mixed and low precision through the hand-written recurrences.

Under autocast in bf16 the products run in bf16 and the state and gate math in fp32
(gm.nn.recurrent). bf16 keeps 8 significant bits (unit roundoff 2⁻⁹ ≈ 0.2 %); each
product rounds both operands and its result, and the error then travels through T steps
of the recurrence, so outputs and gradients are held to 2 % of the fp32 reference in
norm. Measured here: 0.1–0.8 % on these shapes.
"""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from gm.models import RecurrentLM
from gm.nn import RecurrentStack
from gm.nn.gru import GRURecurrence
from gm.nn.lstm import LSTMRecurrence
from gm.nn.recurrent import compute_dtype
from gm.nn.rnn import ElmanRecurrence
from gm.state import state_tensors
from tests.nn.conftest import DEVICE

TOLERANCE = 2e-2
CELLS = [("rnn", False), ("gru", False), ("lstm", True)]


def bf16_autocast(enabled: bool = True, dtype: torch.dtype = torch.bfloat16):
    return torch.autocast(DEVICE.type, dtype=dtype, enabled=enabled)


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def loss_and_grads(model: RecurrentLM, x, y, autocast: bool, dtype: torch.dtype):
    model.zero_grad()
    with bf16_autocast(autocast, dtype):
        logits, state = model(x)
    loss = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    return logits.detach(), state, grads


@pytest.mark.parametrize("low", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("cell,layer_norm", CELLS)
def test_autocast_is_close_to_fp32(cell: str, layer_norm: bool, low: torch.dtype) -> None:
    """bf16-mixed, and 16-mixed where the device has fp16 autocast (fp16 keeps 11 bits)."""
    model = RecurrentLM(40, cell, 16, 32, 2, layer_norm=layer_norm)
    x, y = torch.randint(0, 40, (4, 24)), torch.randint(0, 40, (4, 24))
    ref_logits, ref_state, ref_grads = loss_and_grads(model, x, y, False, low)
    logits, state, grads = loss_and_grads(model, x, y, True, low)
    assert relative_error(logits, ref_logits) < TOLERANCE
    for s, ref in zip(state_tensors(state), state_tensors(ref_state), strict=True):
        assert s.dtype == torch.float32  # the carried state stays fp32, as cuDNN keeps it
        assert relative_error(s, ref) < TOLERANCE
    for name, ref in ref_grads.items():
        assert grads[name].dtype == torch.float32, name  # each gradient in its input's dtype
        assert relative_error(grads[name], ref) < TOLERANCE, name
    # Not vacuous: the products really ran in the low precision.
    assert not torch.equal(logits.float(), ref_logits)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_no_grad_path_computes_what_the_training_path_computes(cell: str) -> None:
    """Validation and generation skip the autograd node; under autocast they must not
    compute anything else."""
    stack = RecurrentStack(cell, 8, 16, num_layers=2)
    x = torch.randn(3, 20, 8)
    with bf16_autocast():
        trained, _ = stack(x.requires_grad_())
        with torch.no_grad():
            inferred, _ = stack(x)
    assert torch.equal(trained.detach(), inferred)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_chunk_invariant_holds_under_autocast(cell: str) -> None:
    model = RecurrentLM(30, cell, 8, 16, 2).eval()
    tokens = torch.randint(0, 30, (2, 48))
    with bf16_autocast():
        whole, whole_state = model(tokens)
        state, parts = None, []
        for piece in tokens.split(16, dim=1):
            out, state = model(piece, state)
            parts.append(out)
    torch.testing.assert_close(torch.cat(parts, 1), whole, atol=1e-5, rtol=1e-5)
    for a, b in zip(state_tensors(state), state_tensors(whole_state), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell,layer_norm", CELLS)
def test_bf16_weights_train_in_bf16(cell: str, layer_norm: bool) -> None:
    """``bf16-true``: parameters, state and gradients all bf16, and finite."""
    model = RecurrentLM(30, cell, 8, 16, 2, layer_norm=layer_norm).to(torch.bfloat16)
    logits, state = model(torch.randint(0, 30, (2, 12)))
    F.cross_entropy(logits.flatten(0, 1).float(), torch.randint(0, 30, (24,))).backward()
    assert all(t.dtype == torch.bfloat16 for t in state_tensors(state))
    for p in model.parameters():
        assert p.grad.dtype == torch.bfloat16 and torch.isfinite(p.grad).all()


def test_a_carried_state_joins_the_parameters_dtype() -> None:
    """A state saved in fp32 (checkpoints keep it so) continues a bf16-true model."""
    model = RecurrentLM(30, "lstm", 8, 16, 2)
    tokens = torch.randint(0, 30, (2, 12))
    _, state = model(tokens)
    model.to(torch.bfloat16)
    _, carried = model(tokens, state)
    assert all(t.dtype == torch.bfloat16 for t in state_tensors(carried))


def test_compute_dtype_follows_autocast() -> None:
    w = torch.zeros(2, 2, device=DEVICE)
    assert compute_dtype(w) == torch.float32
    with bf16_autocast():
        assert compute_dtype(w) == torch.bfloat16
    assert compute_dtype(w.bfloat16()) == torch.bfloat16


@pytest.mark.parametrize(
    "function,gates,states",
    [(ElmanRecurrence, 1, 1), (GRURecurrence, 3, 1), (LSTMRecurrence, 4, 2)],
    ids=["elman", "gru", "lstm"],
)
def test_backward_keeps_the_forwards_precision_in_any_context(function, gates, states) -> None:
    """An fp32 forward gets fp32 gradients even when ``backward()`` is called inside an
    autocast region: the recurrences' backward runs with autocast off."""
    t, b, h = 6, 3, 8
    inputs = [torch.randn(t, b, gates * h), *torch.randn(states, b, h), torch.randn(gates * h, h)]

    def grads(autocast_backward: bool):
        leaves = [x.clone().requires_grad_() for x in inputs]
        out = function.apply(*leaves, True)
        out = out[0] if isinstance(out, tuple) else out
        with bf16_autocast(autocast_backward):
            out.backward(torch.ones_like(out))
        return [x.grad for x in leaves]

    for a, b_ in zip(grads(True), grads(False), strict=True):
        assert a.dtype == torch.float32 and torch.equal(a, b_)
