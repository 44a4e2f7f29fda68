"""The three inference modes agree exactly where they must, and differ where they should."""

from __future__ import annotations

import math

import pytest
import torch

from gm.data.streams import StreamBatches
from gm.evaluation import MODES, evaluate, mode_nll
from gm.models import BengioMLP, KneserNeyLM, RecurrentLM


def models():
    ngram = KneserNeyLM(12, order=3)
    ngram.fit(torch.randint(0, 12, (500,)))
    return [RecurrentLM(12, "gru", 8, 16, 2).eval(), BengioMLP(12, context=4).eval(), ngram]


@pytest.mark.parametrize("model", models(), ids=["gru", "mlp", "ngram"])
def test_one_chunk_from_zero_state_is_the_same_in_stateful_and_chunk(model) -> None:
    x, y = torch.randint(0, 12, (3, 10)), torch.randint(0, 12, (3, 10))
    stateful, _ = mode_nll(model, x, y, "stateful", None)
    chunk, _ = mode_nll(model, x, y, "chunk")
    torch.testing.assert_close(stateful, chunk)


@pytest.mark.parametrize("model", models(), ids=["gru", "mlp", "ngram"])
def test_chunks_of_one_token_are_stateless(model) -> None:
    x, y = torch.randint(0, 12, (3, 1)), torch.randint(0, 12, (3, 1))
    torch.testing.assert_close(
        mode_nll(model, x, y, "chunk")[0], mode_nll(model, x, y, "stateless")[0]
    )


def test_evaluate_streams_curves_and_the_gap() -> None:
    model = RecurrentLM(12, "gru", 8, 16, 1).eval()
    ids = torch.arange(2000) % 12  # a cycle: trivial with memory, hard without
    metrics = evaluate(model, StreamBatches(ids, 4, 16), torch.ones(12, dtype=torch.long), 16)
    for mode in MODES:
        curve = metrics[mode].loss_by_position()
        assert len(curve) == 16 + 1 and all(math.isfinite(v) for v in curve)
        assert curve[-1] == pytest.approx(float(metrics[mode].compute()["loss"]))
    # Stateless: the same single-token prediction at every position of the chunk.
    stateless = metrics["stateless"].loss_by_position()[:-1]
    assert max(stateless) - min(stateless) < 0.5
