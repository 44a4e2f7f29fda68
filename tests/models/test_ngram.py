"""Kneser–Ney: normalised, equal to a direct implementation, chunk-invariant, saved whole."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest
import torch

from gm.models import KneserNeyLM
from tests.conftest import assert_chunked_equals_whole


def reference_kn(ids: list[int], vocab: int, order: int, discounts, context: list[int], w: int):
    """Interpolated KN from its definition, with dictionaries (slow, obvious)."""
    raw = Counter(tuple(ids[i : i + order]) for i in range(len(ids) - order + 1))
    tables = {order: raw}
    for k in range(order - 1, 0, -1):  # continuation counts of the (k+1)-grams' suffixes
        tables[k] = Counter(g[1:] for g in tables[k + 1])
    p = 1.0 / vocab
    for k in range(1, order + 1):
        ctx = tuple(context[len(context) - (k - 1) :]) if k > 1 else ()
        if len(ctx) < k - 1:
            continue
        row = defaultdict(float)
        for g, c in tables[k].items():
            if g[:-1] == ctx:
                row[g[-1]] = c
        total = sum(row.values())
        if total == 0:
            continue
        d = [0.0, *discounts[k]]  # by count: 0, 1, 2, 3+
        n = Counter(min(int(c), 3) for c in row.values())
        gamma = (d[1] * n[1] + d[2] * n[2] + d[3] * n[3]) / total
        c = row.get(w, 0.0)
        p = max(c - d[min(int(c), 3)], 0.0) / total + gamma * p
    return p


@pytest.fixture
def fitted() -> tuple[KneserNeyLM, list[int]]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 6, (3000,), generator=g)
    ids[::7] = 2  # some structure, so higher orders matter
    model = KneserNeyLM(vocab_size=6, order=4)
    model.fit(ids)
    return model, ids.tolist()


def test_matches_the_definition(fitted) -> None:
    model, ids = fitted
    discounts = {k: model.discounts[k].tolist() for k in range(1, 5)}
    for context in ([1, 2, 3], [2, 2, 2], [5, 0, 1], [0, 0, 0]):
        probs = model.probabilities(torch.tensor([context]))[0]
        for w in range(6):
            expected = reference_kn(ids, 6, 4, discounts, context, w)
            assert probs[w].item() == pytest.approx(expected, rel=1e-5)


def test_every_context_is_normalised(fitted) -> None:
    model, _ = fitted
    contexts = torch.cartesian_prod(*[torch.arange(-1, 6)] * 3)  # incomplete contexts too
    assert torch.allclose(model.probabilities(contexts).sum(-1), torch.ones(len(contexts)))
    logits, _ = model(torch.randint(0, 6, (2, 30)))
    assert torch.allclose(logits.exp().sum(-1), torch.ones(2, 30), atol=1e-5)


def test_modified_discounts_are_estimated_per_order(fitted) -> None:
    model, _ = fitted
    d = model.discounts[1:]
    assert torch.all(d[:, 0] <= d[:, 1]) and torch.all(d[:, 1] <= d[:, 2]) and torch.all(d > 0)
    plain = KneserNeyLM(6, 4, discount=0.75)
    plain.fit(torch.tensor(fitted[1]))
    assert torch.all(plain.discounts[1:] == 0.75)


def test_chunked_equals_whole(fitted) -> None:
    model, _ = fitted
    assert_chunked_equals_whole(model, torch.randint(0, 6, (3, 64)))


def test_counts_survive_a_state_dict_round_trip(fitted) -> None:
    model, _ = fitted
    fresh = KneserNeyLM(vocab_size=6, order=4)
    fresh.load_state_dict(model.state_dict())
    tokens = torch.randint(0, 6, (2, 20))
    assert torch.equal(fresh(tokens)[0], model(tokens)[0])
    assert fresh.num_ngrams == model.num_ngrams > 0


def test_a_precision_change_leaves_the_model_exact(fitted) -> None:
    """bf16-true casts every floating tensor of a model: the counts are integers, the
    discounts derive from them, and probabilities are computed in fp32."""
    model, _ = fitted
    tokens = torch.randint(0, 6, (2, 20))
    before = model(tokens)[0]
    model.to(torch.bfloat16)
    after = model(tokens)[0]
    assert after.dtype == torch.float32 and torch.equal(after, before)


def test_files_with_float_counts_and_stored_discounts_still_load(fitted) -> None:
    """Checkpoints and bundles written before the counts became integers."""
    model, _ = fitted
    legacy = {
        k: (v.float() if k.startswith("counts_") else v) for k, v in model.state_dict().items()
    }
    legacy["discounts"] = model.discounts.float()
    fresh = KneserNeyLM(vocab_size=6, order=4)
    fresh.load_state_dict(legacy)
    tokens = torch.randint(0, 6, (2, 20))
    torch.testing.assert_close(fresh(tokens)[0], model(tokens)[0])
