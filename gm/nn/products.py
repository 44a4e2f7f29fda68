"""The products of a recurrent layer, through oneDNN where it has kernels.

A layer multiplies three ways: the input projection of all ``T`` steps at once (and its
two backward products), ``T`` small per-step products against the one ``W_hh`` (``W_hhᵀ``
going back), and the weight gradient over all steps. On the CPU, ATen sends fp32 products
to MKL's GEMM; oneDNN's fp32 kernels ran 1.5–3.5× faster at every per-step shape of the
study models on this project's AMD EPYC with AVX-512 (``benchmarks/products.py``,
docs/benchmarks.md).

- ``StepWeight``: the per-step product, its weight reordered once per call into the blocked
  layout oneDNN's kernels read and every step served from that copy — what torch's own
  LSTM does across its time loop on the CPU. ATen re-reads the weight at every step.
- ``mm``: one large product (the weight gradient), unpacked.
- ``linear``: the input projection as an autograd function, all three products by ``mm``.

``backend_for`` is the rule (not a probe) and ``$GM_STEP_PRODUCT`` forces a side. No path
changes a dtype: fp32 stays fp32 (oneDNN's default fp32 math is exact fp32, no bf16 or
TF32), bf16 multiplies in bf16 with fp32 accumulation, as ATen does.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

BACKENDS = ("aten", "onednn")
# A reorder costs about as much as a few products of its shape (benchmarks/products.py):
# below this many steps (a generation step is one) packing would cost more than it saves.
MIN_PACKED_STEPS = 8
# A one-off product (``mm``, ``linear``) goes to oneDNN in fp32 from this many weight
# elements: below it (astra_alpha's 384 × 128) the copies into oneDNN's layout cost more
# than its faster kernel saves. bf16 stays with ATen, which hands it to oneDNN's matmul
# itself, strides and all (both measured in docs/benchmarks.md).
MIN_ONEDNN_WEIGHT = 65_536
# Set to one of BACKENDS to force it wherever it can run (the benchmarks and the tests).
BACKEND_VARIABLE = "GM_STEP_PRODUCT"


def onednn_multiplies(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether oneDNN has product kernels for ``dtype`` on ``device``: fp32 on any CPU, bf16
    where the CPU has AVX-512 BF16 or AMX; nothing on a GPU (cuBLAS is ATen's)."""
    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    if dtype == torch.float32:
        return True
    return dtype == torch.bfloat16 and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def backend_for(w: Tensor, steps: int) -> str:
    """The backend for ``steps`` products against ``w`` (``[in, out]``): oneDNN's packed
    product where it may run (``use_onednn``) and there are enough steps to repay the
    reorder, else ATen's ``mm``. ``$GM_STEP_PRODUCT=onednn`` packs for any number of steps."""
    if not use_onednn(w.device, w.dtype):
        return "aten"
    if _forced() == "onednn":
        return "onednn"
    return "onednn" if steps >= MIN_PACKED_STEPS else "aten"


def use_onednn(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether oneDNN takes a product in ``dtype`` on ``device``: it has kernels, it is not
    forced off (``$GM_STEP_PRODUCT=aten``), and no compiler is tracing (``torch.compile``
    picks its own kernels)."""
    return (
        _forced() != "aten"
        and not torch.compiler.is_compiling()
        and onednn_multiplies(device, dtype)
    )


def large_backend(device: torch.device, dtype: torch.dtype, weight: int) -> str:
    """The backend for one large product in ``dtype`` against ``weight`` weight elements
    (``mm``, ``linear``): oneDNN's in fp32 from ``MIN_ONEDNN_WEIGHT`` elements, else ATen's.
    ``$GM_STEP_PRODUCT=onednn`` sends every product it has kernels for to oneDNN."""
    if not use_onednn(device, dtype):
        return "aten"
    if _forced() == "onednn":
        return "onednn"
    return "onednn" if dtype == torch.float32 and weight >= MIN_ONEDNN_WEIGHT else "aten"


def _forced() -> str | None:
    forced = os.environ.get(BACKEND_VARIABLE) or None
    if forced and forced not in BACKENDS:
        choices = ", ".join(BACKENDS)
        raise ValueError(f"{BACKEND_VARIABLE} must be one of {choices}, not {forced!r}")
    return forced


def onednn_linear(
    a: Tensor, w: Tensor, bias: Tensor | None = None, add: Tensor | None = None
) -> Tensor:
    """``a @ wᵀ + bias`` or ``a @ wᵀ + add`` through oneDNN; ``w`` dense or reordered
    (``_reorder_linear_weight``), ``bias`` a vector, ``add`` a matrix fused as a post-op."""
    if add is None:
        return torch.ops.mkldnn._linear_pointwise(a, w, bias, "none", [], "")
    return torch.ops.mkldnn._linear_pointwise(a, add, w, None, "add")


def mm(a: Tensor, b: Tensor, add: Tensor | None = None) -> Tensor:
    """``add + a @ b``, one large product in ``b``'s dtype (a weight gradient over all
    ``T`` steps, the input projection's backward): oneDNN's, unpacked, where
    ``large_backend`` says so for the result's size — on the CPU it outruns ATen's (MKL's)
    fp32 GEMM — else ATen's."""
    backend = large_backend(b.device, b.dtype, a.shape[0] * b.shape[1])
    # An empty sum (a one-step sequence's weight gradient) has no oneDNN primitive.
    if backend == "onednn" and a.shape[1] > 0:
        return onednn_linear(a, b.t(), add=add)  # a @ (bᵀ)ᵀ; bᵀ a view
    return torch.mm(a, b) if add is None else torch.addmm(add, a, b)


class StepWeight:
    """``w`` (``[in, out]``, the compute dtype) ready for ``steps`` products:
    ``self(a, bias)`` is ``bias + a @ w``, the product in ``w``'s dtype and the result in
    ``a``'s (the state dtype; see ``gm.nn.recurrent``)."""

    def __init__(self, w: Tensor, steps: int, backend: str | None = None) -> None:
        self.w = w
        self.backend = backend or backend_for(w, steps)
        if self.backend == "onednn":
            # oneDNN's linear takes the weight as [out, in]; batch_size is only a hint.
            self.packed = torch.ops.mkldnn._reorder_linear_weight(w.t().contiguous(), None)

    def __call__(self, a: Tensor, bias: Tensor | None = None) -> Tensor:
        same = a.dtype == self.w.dtype
        if self.backend == "aten":
            if same:
                return torch.mm(a, self.w) if bias is None else torch.addmm(bias, a, self.w)
            # Widened first: an elementwise op on mixed dtypes takes a slow, unvectorised path.
            product = torch.mm(a.to(self.w.dtype), self.w).to(a.dtype)
            return product if bias is None else product.add_(bias)
        if same and bias is not None and bias.is_contiguous():  # the sum as a fused post-op
            return onednn_linear(a, self.packed, add=bias)
        product = onednn_linear(a.to(self.w.dtype), self.packed).to(a.dtype)
        return product if bias is None else product.add_(bias)


def linear(x: Tensor, w: Tensor, b: Tensor, dtype: torch.dtype) -> Tensor:
    """``F.linear(x, w, b)`` with its products in ``dtype`` (the compute dtype), the result
    in ``dtype`` too and each gradient in its input's dtype: the input projection of all
    ``T`` steps, through oneDNN where ``large_backend`` says so (``Linear``), else
    ``F.linear`` under the caller's autocast."""
    if large_backend(w.device, dtype, w.numel()) != "onednn":
        return F.linear(x, w, b)
    with torch.autocast(x.device.type, enabled=False):  # every cast is written out
        return Linear.apply(x, w, b, dtype)


class Linear(torch.autograd.Function):
    """``x wᵀ + b`` and its backward with every product through oneDNN (``mm``)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, w: Tensor, b: Tensor, dtype: torch.dtype) -> Tensor:
        x2 = x.reshape(-1, x.shape[-1]).to(dtype)  # a copy when x is the transposed view
        w_c = w.to(dtype)
        y = onednn_linear(x2, w_c, b.to(dtype))
        ctx.save_for_backward(x2, w_c)
        ctx.shape = x.shape
        return y.view(*x.shape[:-1], w.shape[0])

    @staticmethod
    def backward(ctx: Any, d_y: Tensor) -> tuple[Tensor | None, ...]:
        # d_y arrives in the compute dtype (autograd casts it to the output's), and each
        # gradient returned leaves in its input's dtype (autograd casts it back).
        x2, w_c = ctx.saved_tensors
        with torch.autocast(d_y.device.type, enabled=False):  # as the forward ran
            d2 = d_y.reshape(-1, d_y.shape[-1])
            d_x = d_w = d_b = None
            if ctx.needs_input_grad[0]:
                d_x = mm(d2, w_c).view(ctx.shape)
            if ctx.needs_input_grad[1]:
                d_w = mm(d2.t(), x2)
            if ctx.needs_input_grad[2]:
                d_b = d2.float().sum(0)  # summed in fp32 whatever the dtypes
        return d_x, d_w, d_b, None
