"""The products through oneDNN — the per-step one with its weight packed, the large ones,
the input projection — against ATen's, and the rules that pick between them."""

from __future__ import annotations

import pytest
import torch

from gm.nn import products
from gm.nn.products import (
    BACKEND_VARIABLE,
    StepWeight,
    backend_for,
    linear,
    mm,
    onednn_multiplies,
)
from gm.nn.stack import RecurrentStack

from .conftest import DEVICE

needs_onednn = pytest.mark.skipif(
    DEVICE.type != "cpu" or not torch.backends.mkldnn.is_available(), reason="oneDNN on a CPU"
)
# bf16 kernels need AVX-512 BF16 or AMX; elsewhere oneDNN refuses the primitive.
BF16 = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def _operands(dtype: torch.dtype, state_dtype: torch.dtype = torch.float32):
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(7, 48, generator=gen).to(state_dtype)
    w = torch.randn(48, 96, generator=gen).to(dtype)
    bias = torch.randn(7, 96, generator=gen).to(state_dtype)
    return a, w, bias


@needs_onednn
@pytest.mark.parametrize(
    "dtype,state_dtype,tol",
    [
        (torch.float32, torch.float32, 1e-5),  # fp32 rounding: a sum of 48 products
        pytest.param(
            torch.bfloat16,
            torch.float32,
            1e-2,
            marks=pytest.mark.skipif(not BF16, reason="no oneDNN bf16 here"),
        ),
        pytest.param(
            torch.bfloat16,
            torch.bfloat16,
            2e-2,
            marks=pytest.mark.skipif(not BF16, reason="no oneDNN bf16 here"),
        ),
    ],
    ids=["fp32", "bf16-mixed", "bf16-true"],
)
def test_packed_and_unpacked_products_agree(dtype, state_dtype, tol) -> None:
    a, w, bias = _operands(dtype, state_dtype)
    aten, packed = StepWeight(w, 128, "aten"), StepWeight(w, 128, "onednn")
    exact = a.double() @ w.double()
    for args, want in (((a,), exact), ((a, bias), exact + bias.double())):
        got_aten, got_packed = aten(*args), packed(*args)
        # The result in the state dtype, the product in the weight's.
        assert got_aten.dtype == got_packed.dtype == state_dtype
        scale = want.abs().max().item()
        assert (got_packed.double() - want).abs().max().item() <= tol * scale
        assert (got_packed.double() - got_aten.double()).abs().max().item() <= tol * scale
    # A bias that is a strided view (a gradient through a transpose) is added, not fused.
    strided = torch.randn(96, 7).to(state_dtype).t()
    assert not strided.is_contiguous()
    torch.testing.assert_close(packed(a, strided), aten(a, strided), rtol=tol, atol=tol * 10)


@needs_onednn
@pytest.mark.parametrize("k", [40, 1, 0], ids=["sum", "one-term", "empty"])
def test_a_large_product_through_onednn_is_atens(k: int, monkeypatch) -> None:
    # The weight gradient's shape: a transposed view times a view, plus step 0's product.
    gen = torch.Generator().manual_seed(1)
    d, h = torch.randn(k, 24, generator=gen), torch.randn(k, 8, generator=gen)
    add = torch.randn(24, 8, generator=gen)
    want = torch.addmm(add, d.t(), h)
    torch.testing.assert_close(mm(d.t(), h, add), want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mm(d.t(), h), d.t() @ h, rtol=1e-5, atol=1e-5)
    monkeypatch.setenv(BACKEND_VARIABLE, "aten")
    assert torch.equal(mm(d.t(), h, add), want)  # forced: ATen's own kernel


@needs_onednn
@pytest.mark.parametrize(
    "autocast",
    [False, pytest.param(True, marks=pytest.mark.skipif(not BF16, reason="no oneDNN bf16 here"))],
    ids=["fp32", "bf16-mixed"],
)
def test_the_input_projection_through_onednn_is_f_linear(autocast: bool, monkeypatch) -> None:
    gen = torch.Generator().manual_seed(2)
    # The layer's input: [T, B, I] as a transposed view of [B, T, I].
    x0 = torch.randn(5, 6, 12, generator=gen).requires_grad_()
    w0 = torch.randn(36, 12, generator=gen).requires_grad_()
    b0 = torch.randn(36, generator=gen).requires_grad_()
    dtype = torch.bfloat16 if autocast else torch.float32

    def run(backend: str):
        monkeypatch.setenv(BACKEND_VARIABLE, backend)
        x, w, b = (t.detach().clone().requires_grad_() for t in (x0, w0, b0))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            y = linear(x.transpose(0, 1), w, b, dtype).float()
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        return y, x.grad, w.grad, b.grad

    want, got = run("aten"), run("onednn")  # aten: F.linear under the caller's autocast
    tol = 2e-2 if autocast else 1e-5
    for name, a, b in zip(("y", "dx", "dw", "db"), got, want, strict=True):
        assert a.dtype == b.dtype == torch.float32, name  # each gradient in its input's dtype
        torch.testing.assert_close(a, b, rtol=tol, atol=tol * b.abs().max().item(), msg=name)


@needs_onednn
def test_the_rule_packs_a_training_sequence_and_not_a_generation_step(monkeypatch) -> None:
    monkeypatch.delenv(BACKEND_VARIABLE, raising=False)
    w = torch.randn(8, 24)
    assert backend_for(w, 128) == "onednn"
    assert backend_for(w, products.MIN_PACKED_STEPS) == "onednn"
    assert backend_for(w, products.MIN_PACKED_STEPS - 1) == "aten"  # a reorder would cost more
    assert backend_for(w, 1) == "aten"
    # No kernels: float64 (gradcheck), fp16, and bf16 where the CPU lacks them.
    assert backend_for(w.double(), 128) == "aten"
    assert backend_for(w.half(), 128) == "aten"
    assert backend_for(w.bfloat16(), 128) == ("onednn" if BF16 else "aten")
    # A one-off product: oneDNN in fp32 from the threshold on; bf16 is ATen's (its matmul is
    # oneDNN's already).
    cpu, big = torch.device("cpu"), products.MIN_ONEDNN_WEIGHT
    assert products.large_backend(cpu, torch.float32, big) == "onednn"
    assert products.large_backend(cpu, torch.float32, big - 1) == "aten"
    assert products.large_backend(cpu, torch.bfloat16, 100 * big) == "aten"
    assert products.large_backend(cpu, torch.float64, 100 * big) == "aten"
    monkeypatch.setenv(BACKEND_VARIABLE, "onednn")
    assert products.large_backend(cpu, torch.float32, 1) == "onednn"
    assert products.large_backend(cpu, torch.bfloat16, 1) == ("onednn" if BF16 else "aten")
    monkeypatch.delenv(BACKEND_VARIABLE)
    # Under torch.compile the compiler picks its kernels: the plain ops it can trace.
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert backend_for(w, 128) == "aten" and not products.use_onednn(w.device, w.dtype)
    monkeypatch.undo()
    monkeypatch.delenv(BACKEND_VARIABLE, raising=False)
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    assert not onednn_multiplies(w.device, w.dtype) and backend_for(w, 128) == "aten"


@needs_onednn
def test_the_backend_can_be_forced_where_it_runs(monkeypatch) -> None:
    w = torch.randn(8, 24)
    monkeypatch.setenv(BACKEND_VARIABLE, "aten")
    assert backend_for(w, 128) == "aten"
    monkeypatch.setenv(BACKEND_VARIABLE, "onednn")
    assert backend_for(w, 1) == "onednn"  # even for one step
    assert backend_for(w.double(), 128) == "aten"  # but not where oneDNN has no kernel
    monkeypatch.setenv(BACKEND_VARIABLE, "mkl")
    with pytest.raises(
        ValueError, match=r"^GM_STEP_PRODUCT must be one of aten, onednn, not 'mkl'$"
    ):
        backend_for(w, 128)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="a GPU")
def test_a_gpu_weight_always_takes_aten() -> None:
    assert backend_for(torch.randn(8, 24, device="cuda"), 128) == "aten"


def _spy(monkeypatch, name: str) -> list:
    """Record the arguments of every call of ``gm.nn.products.<name>``."""
    calls, real = [], getattr(products, name)

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(products, name, spy)
    return calls


@needs_onednn
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_each_recurrence_packs_for_its_number_of_steps(cell: str, monkeypatch) -> None:
    monkeypatch.delenv(BACKEND_VARIABLE, raising=False)  # the rule itself, not a forced side
    calls = _spy(monkeypatch, "backend_for")
    stack = RecurrentStack(cell, 4, 6, num_layers=1)
    out, _ = stack(torch.randn(3, 5, 4))  # batch 3, 5 steps
    out.sum().backward()
    assert [steps for _, steps in calls] == [5, 5]  # the forward's and the backward's


@needs_onednn
def test_a_large_fp32_product_is_onednns_down_to_one_term(monkeypatch) -> None:
    monkeypatch.delenv(BACKEND_VARIABLE, raising=False)
    rule, used = _spy(monkeypatch, "large_backend"), _spy(monkeypatch, "onednn_linear")
    side = 256  # a 256 × 256 result: exactly MIN_ONEDNN_WEIGHT elements
    for k in (3, 1):
        a, b = torch.randn(k, side).t(), torch.randn(k, side)
        torch.testing.assert_close(products.mm(a, b), a @ b, rtol=1e-5, atol=1e-5)
    assert rule == [(torch.device("cpu"), torch.float32, side * side)] * 2
    assert len(used) == 2  # both through oneDNN, the one-term sum too
    products.mm(torch.randn(side, 0), torch.randn(0, side))  # an empty sum: ATen's
    assert len(used) == 2


@needs_onednn
def test_the_projection_gives_only_the_gradients_asked_for_in_fp32_in_any_context(
    monkeypatch,
) -> None:
    monkeypatch.delenv(BACKEND_VARIABLE, raising=False)  # small: the backward's mm are ATen's
    gen = torch.Generator().manual_seed(3)
    x0, w0 = torch.randn(4, 5, 6, generator=gen), torch.randn(9, 6, generator=gen)
    b0 = torch.randn(9, generator=gen)
    exact = torch.nn.functional.linear(x0.double(), w0.double(), b0.double())
    g = torch.randn(exact.shape, generator=gen)
    for wants in ((True, False, False), (False, True, False), (False, False, True)):
        x, w, b = (t.clone().requires_grad_(r) for t, r in zip((x0, w0, b0), wants, strict=True))
        y = products.Linear.apply(x, w, b, torch.float32)
        torch.testing.assert_close(y.double(), exact, rtol=1e-5, atol=1e-5)
        # Called under autocast, the backward stays fp32 (its fallback products included).
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y.backward(g)
        for t, asked in zip((x, w, b), wants, strict=True):
            assert (t.grad is not None) == asked
        g2 = g.double().reshape(-1, 9)
        ref = {0: g2 @ w0.double(), 1: g2.t() @ x0.double().reshape(-1, 6), 2: g2.sum(0)}
        i = wants.index(True)
        got = (x, w, b)[i].grad.double().reshape(ref[i].shape)
        torch.testing.assert_close(got, ref[i], rtol=1e-5, atol=1e-5)
