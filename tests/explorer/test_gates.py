"""Gate saturation: the fraction of steps each gate unit is below 0.1 or above 0.9; every
gated family's gates reach the page, with the LSTM's cell state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gm.artifacts import TrainedModel
from gm.data.tokenizer import CharTokenizer
from gm.explorer.gates import saturation
from gm.explorer.page import page_data
from gm.explorer.trace import trace
from gm.models import RecurrentLM


def test_saturation_counts_the_steps_beyond_each_bound() -> None:
    z = np.array([[0.05, 0.5], [0.95, 0.5], [0.95, 0.99], [0.5, 0.01]])
    (layer,) = saturation([{"z": z, "h": np.zeros((4, 2)), "n": np.ones((4, 2))}])
    assert set(layer) == {"z"}  # h and n are no sigmoid gates
    assert layer["z"]["left"] == [0.25, 0.25] and layer["z"]["right"] == [0.5, 0.25]


@pytest.mark.parametrize(
    "cell, gates", [("gru", {"r", "z"}), ("lstm", {"i", "f", "o"}), ("rnn", set())]
)
def test_every_gated_family_reaches_the_page(cell: str, gates: set[str]) -> None:
    torch.manual_seed(0)
    text = "to be or not to be\nthat is the question\n" * 4
    tokenizer = CharTokenizer.from_text(text)
    model = RecurrentLM(tokenizer.vocab_size, cell, emb_dim=8, hidden_dim=16, num_layers=2)
    traced = trace(TrainedModel(model.eval(), tokenizer, {}, 16, Path(cell)), text)
    found = saturation(traced.layers)
    assert [set(layer) for layer in found] == [gates, gates]
    data = page_data(traced, tokenizer.chars, 1, {}, gates=found, figure=None)
    assert ("c" in data["layer"]) == (cell == "lstm") and "h" in data["layer"]
    assert [set(layer) for layer in data["gates"]] == [gates, gates]
