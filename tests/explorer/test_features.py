"""The feature detector finds a unit planted to track a feature, in a model whose weights
the test sets, and nothing at or above its thresholds in models with random weights."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from gm.artifacts import TrainedModel
from gm.data.tokenizer import CharTokenizer
from gm.explorer.features import FOUND, auc, best_units, correlation, text_features
from gm.explorer.trace import trace
from gm.models import RecurrentLM


def _play(lines: int = 60, seed: int = 0) -> str:
    """Speakers' lines whose bracketed and quoted spans hold the same random words as the
    rest, so only a unit that remembers the opening mark can tell inside from outside."""
    rng = random.Random(seed)
    words = [
        "see",
        "the",
        "light",
        "and",
        "yet",
        "in",
        "truth",
        "I",
        "doubt",
        "speak",
        "softly",
        "love",
        "again",
        "for",
        "night",
        "is",
        "long",
    ]

    def phrase(n: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n))

    out = []
    for i in range(lines):
        line = phrase(rng.randint(2, 5))
        if i % 2:
            line += f" ({phrase(rng.randint(3, 6))}) {phrase(rng.randint(1, 3))}"
        if i % 3 == 0:
            line += f' "{phrase(rng.randint(3, 6))}" {phrase(rng.randint(1, 3))}'
        out.append(f"{rng.choice(['ROMEO', 'JULIET', 'NURSE'])}:\n{line}.\n")
    return "\n".join(out)


TEXT = _play()


def test_the_features_of_a_text() -> None:
    f = text_features('AB:\nx (y) "z"\n')
    assert f["inside brackets"].tolist() == [0] * 7 + [1] + [0] * 6  # the marks excluded
    assert f["inside quotes"].tolist() == [0] * 11 + [1, 0, 0]
    assert f["on a speaker's line"].tolist()[:4] == [1, 1, 1, 0]
    assert f["position in the line"].tolist()[:6] == [0, 1, 2, 3, 0, 1]
    assert f["position in the word"].tolist()[:6] == [1, 2, 0, 0, 1, 0]


def test_auc_and_correlation_are_the_textbook_ones() -> None:
    labels = np.array([0, 0, 1, 1, 0, 1])
    scores = np.array([[0.1, 0.4, 0.35, 0.8, 0.2, 0.9]]).T
    # Of the 9 (positive, negative) pairs, the positive is higher in 8.
    assert auc(scores, labels)[0] == pytest.approx(8 / 9)
    values = np.arange(6.0)
    assert correlation(np.c_[values * 2 + 1, -values], values) == pytest.approx([1.0, -1.0])


def _latch_model(tokenizer: CharTokenizer) -> TrainedModel:
    """An Elman RNN whose unit 0 is set by "(" and reset by ")": inside brackets, by hand."""
    vocab = tokenizer.vocab_size
    model = RecurrentLM(vocab, "rnn", emb_dim=vocab, hidden_dim=8, num_layers=1)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.embedding.weight.copy_(torch.eye(vocab))  # one-hot characters
        layer = model.rnn.layers[0]
        layer.weight_ih[0, tokenizer.stoi["("]] = 10.0
        layer.weight_ih[0, tokenizer.stoi[")"]] = -10.0
        layer.weight_hh[0, 0] = 5.0  # holds its sign between the marks
        layer.weight_ih[1:, :] = torch.randn(7, vocab) * 0.5  # units that follow the input
    return TrainedModel(model.eval(), tokenizer, {}, 64, Path("latch"))


def test_a_planted_unit_is_found() -> None:
    tokenizer = CharTokenizer.from_text(TEXT)
    traced = trace(_latch_model(tokenizer), TEXT)
    h = traced.layers[0]["h"]
    ends = [e - 1 for _, e in traced.spans[: len(h)]]
    features = {k: v[ends] for k, v in text_features(TEXT).items()}
    best = best_units(h, [TEXT[e] for e in ends], features)
    top = best["inside brackets"][0]
    assert top.unit == 0 and top.metric == "auc" and top.score > 0.99 and top.found
    # The units that follow the current character alone track nothing once it is accounted for.
    assert not any(m.found for m in best["inside quotes"] + best["position in the line"])


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
@pytest.mark.parametrize("seed", [0, 1])
def test_a_random_model_tracks_nothing(cell: str, seed: int) -> None:
    torch.manual_seed(seed)
    tokenizer = CharTokenizer.from_text(TEXT)
    model = RecurrentLM(tokenizer.vocab_size, cell, emb_dim=32, hidden_dim=64, num_layers=2)
    traced = trace(TrainedModel(model.eval(), tokenizer, {}, 64, Path("random")), TEXT)
    for layer in traced.layers:
        h = layer["h"]
        ends = [e - 1 for _, e in traced.spans[: len(h)]]
        features = {k: v[ends] for k, v in text_features(TEXT).items()}
        best = best_units(h, [TEXT[e] for e in ends], features)
        scores = {k: round(m[0].score, 3) for k, m in best.items()}
        assert not any(m[0].found for m in best.values()), (scores, FOUND)
