"""Interpolated modified Kneser–Ney n-gram (Chen & Goodman, 1998) behind the one interface.

Training is one counting pass over the training ids, vectorised: every ``k``-gram is
hashed to the integer ``t_1·V^(k-1) + … + t_k``, so ``torch.unique`` counts them and all
``k``-grams sharing a context lie next to each other in the sorted keys. The highest
order keeps raw counts; each lower order keeps continuation counts (how many distinct
tokens precede the ``k``-gram). Each order has three discounts, for counts 1, 2 and 3+,
estimated from its count-of-counts. ``discount=0.75`` (a number) gives plain
interpolated Kneser–Ney with one discount instead.

    P_k(w | h) = max(c(hw) − D(c(hw)), 0) / c(h·) + γ(h) · P_{k−1}(w | h')
    γ(h)       = (D₁·N₁(h·) + D₂·N₂(h·) + D₃₊·N₃₊(h·)) / c(h·)

down to the uniform distribution; a context never seen falls through to the next order.
The state is the last ``order − 1`` tokens (``-1`` where the stream has none yet).

Precision: the counts are integers and the discounts are derived from them, so no
``.to(dtype)`` (Lightning's ``bf16-true``, say) can round them; probabilities are computed
in fp32 whatever the model's or the default dtype.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gm.state import State


class KneserNeyLM(nn.Module):
    """Count-based n-gram language model; ``fit(ids)`` replaces gradient training."""

    count_based = True

    def __init__(self, vocab_size: int, order: int = 6, discount: str | float = "modified") -> None:
        super().__init__()
        if order < 1:
            raise ValueError(f"order must be at least 1, got {order}")
        if vocab_size < 1 or vocab_size**order >= 2**62:
            raise ValueError(f"vocabulary {vocab_size} with order {order} overflows 64-bit keys")
        if discount != "modified" and not 0 < float(discount) < 1:
            raise ValueError(f"discount must be 'modified' or a number in (0, 1), got {discount}")
        self.vocab_size, self.order, self.discount = vocab_size, order, discount
        for k in range(1, order + 1):
            self.register_buffer(f"keys_{k}", torch.zeros(0, dtype=torch.long))
            self.register_buffer(f"counts_{k}", torch.zeros(0, dtype=torch.long))
        # discounts[k] = (D₁, D₂, D₃₊) of order k; row 0 unused. Not a buffer: a function
        # of the counts, recomputed when they are loaded.
        self.discounts = torch.zeros(order + 1, 3, dtype=torch.float64)

    @property
    def num_ngrams(self) -> int:
        """Distinct n-grams stored, all orders together."""
        return sum(getattr(self, f"keys_{k}").numel() for k in range(1, self.order + 1))

    def _hash(self, grams: Tensor) -> Tensor:
        """``[..., k]`` token ids -> ``[...]`` base-V integers (0 for ``k = 0``)."""
        key = torch.zeros(grams.shape[:-1], dtype=torch.long, device=grams.device)
        for i in range(grams.shape[-1]):
            key = key * self.vocab_size + grams[..., i]
        return key

    @torch.no_grad()
    def fit(self, ids: Tensor) -> None:
        """Count every order over ``ids`` and estimate the discounts."""
        ids = ids.long().flatten().cpu()
        higher: Tensor | None = None
        for k in range(self.order, 0, -1):
            if k == self.order:  # raw counts
                keys, counts = torch.unique(self._hash(ids.unfold(0, k, 1)), return_counts=True)
            else:  # continuation counts: distinct (k+1)-grams ending in this k-gram
                keys, counts = torch.unique(higher % self.vocab_size**k, return_counts=True)
            higher = keys
            device = self.keys_1.device
            setattr(self, f"keys_{k}", keys.to(device))
            setattr(self, f"counts_{k}", counts.to(device))
        self._estimate_all_discounts()

    def _estimate_all_discounts(self) -> None:
        for k in range(1, self.order + 1):
            self.discounts[k] = self._estimate_discounts(getattr(self, f"counts_{k}").cpu())

    def _estimate_discounts(self, counts: Tensor) -> Tensor:
        if self.discount != "modified":
            return torch.full((3,), float(self.discount), dtype=torch.float64)
        n1, n2, n3, n4 = ((counts == c).sum().item() for c in (1, 2, 3, 4))
        if min(n1, n2, n3, n4) == 0:  # too little data for the estimate: Chen & Goodman's shape
            return torch.tensor([0.5, 1.0, 1.5], dtype=torch.float64)
        y = n1 / (n1 + 2 * n2)
        d = [1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3]
        d = torch.tensor(d, dtype=torch.float64)
        return torch.minimum(d.clamp(min=0), torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))

    def probabilities(self, contexts: Tensor) -> Tensor:
        """``P(w | context)`` for ``contexts [N, order-1]`` (``-1`` = no token) -> ``[N, V]``."""
        n, v = contexts.shape[0], self.vocab_size
        p = torch.full((n, v), 1.0 / v, device=contexts.device, dtype=torch.float32)
        for k in range(1, self.order + 1):
            ctx = contexts[:, contexts.shape[1] - (k - 1) :]
            valid = (ctx >= 0).all(1)
            c = self._count_rows(k, self._hash(ctx.clamp(min=0)))
            total = c.sum(1)
            d1, d2, d3 = self.discounts[k].to(p.device, torch.float32)
            d = torch.where(c >= 3, d3, torch.where(c >= 2, d2, d1)) * (c > 0)
            gamma = (d1 * (c == 1).sum(1) + d2 * (c == 2).sum(1) + d3 * (c >= 3).sum(1)) / total
            p_k = (c - d).clamp(min=0) / total[:, None] + gamma[:, None] * p
            # A context that is incomplete or never seen falls through to the lower order.
            p = torch.where((valid & (total > 0))[:, None], p_k, p)
        return p

    def _count_rows(self, k: int, contexts: Tensor) -> Tensor:
        """Dense ``[N, V]`` counts of order ``k`` following each context hash."""
        keys, counts = getattr(self, f"keys_{k}"), getattr(self, f"counts_{k}")
        v = self.vocab_size
        lo = torch.searchsorted(keys, contexts * v)
        hi = torch.searchsorted(keys, contexts * v + v)
        lengths = hi - lo
        rows = torch.repeat_interleave(torch.arange(len(contexts), device=keys.device), lengths)
        starts = torch.repeat_interleave(lo - (lengths.cumsum(0) - lengths), lengths)
        pos = torch.arange(rows.numel(), device=keys.device) + starts
        dense = torch.zeros(len(contexts), v, device=keys.device, dtype=torch.float32)
        dense[rows, keys[pos] % v] = counts[pos].to(dense.dtype)
        return dense

    def forward(self, tokens: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Log-probabilities of the next token at every position; the state is the last
        ``order − 1`` tokens."""
        b, t = tokens.shape
        m = self.order - 1
        # State: the tokens before this chunk; none (-1) at the start of a stream.
        history = state[0] if state is not None else tokens.new_full((b, m), -1)
        full = torch.cat([history, tokens], 1)
        # The m tokens ending at each position (none for a unigram model).
        contexts = full.unfold(1, m, 1)[:, 1:] if m else tokens.new_zeros(b, t, 0)
        p = self.probabilities(contexts.reshape(b * t, m))
        return p.clamp(min=1e-30).log().view(b, t, -1), (full[:, full.shape[1] - m :],)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # Files written before the discounts were derived hold them; they are recomputed.
        state_dict.pop(prefix + "discounts", None)
        # The count tables' sizes depend on the corpus: take the stored shapes. Counts
        # stay integers (older files stored them as floats, exactly).
        for name in list(self._buffers):
            stored = state_dict.get(prefix + name)
            if stored is not None and stored.shape != self._buffers[name].shape:
                self._buffers[name] = torch.empty_like(stored, dtype=torch.long)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._estimate_all_discounts()

    def extra_repr(self) -> str:
        return f"vocab={self.vocab_size}, order={self.order}, discount={self.discount}"
