"""The explorer's numbers are gm's evaluation: the per-token losses of each mode sum to the
mode's loss over the same text; the top predictions are the model's; every family works."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import gm
from gm.artifacts import TrainedModel
from gm.data.tokenizer import CharTokenizer
from gm.explorer.trace import TOP, trace
from gm.models import BengioMLP, KneserNeyLM


def _text(model: TrainedModel, n: int) -> str:
    chars = model.tokenizer.chars
    return "".join(chars[(5 * i + i // 4) % len(chars)] for i in range(n))


def test_the_losses_sum_to_each_modes_loss(trained_run: Path) -> None:
    model = gm.load(trained_run)
    text = _text(model, 2 * model.seq_len + 7)
    traced = trace(model, text)
    expected = gm.evaluate(model, text)
    for mode, scores in expected.items():
        nll = traced.nll[mode]
        assert np.isnan(nll[0]) and len(nll) == len(text)  # token 0 is context only
        assert np.nanmean(nll) == pytest.approx(scores["loss"], rel=1e-5)
    probs = traced.top_probs["stateful"]
    assert probs.shape == (len(text), TOP) and (np.diff(probs[1:], axis=1) <= 0).all()
    # The likeliest token's probability is the model's.
    with torch.inference_mode():
        ids = torch.tensor(model.tokenizer.encode(text))
        logits, _ = model.model(ids[None, :-1], None)
    first = torch.softmax(logits[0], -1).max(-1).values.numpy()
    assert probs[1:, 0] == pytest.approx(first, rel=1e-4)
    (h,) = [layer["h"] for layer in traced.layers]  # one GRU layer
    assert h.shape == (len(text) - 1, model.spec["hidden_dim"])


@pytest.mark.parametrize("family", ["mlp", "ngram"])
def test_families_without_hidden_units_get_the_per_token_views(family: str) -> None:
    tokenizer = CharTokenizer.from_text("abcde \n")
    vocab = tokenizer.vocab_size
    model = BengioMLP(vocab, context=4) if family == "mlp" else KneserNeyLM(vocab, order=3)
    traced = trace(TrainedModel(model.eval(), tokenizer, {}, 8, Path(family)), "abc de\nabcd" * 3)
    assert traced.layers == [] and set(traced.nll) == {"stateful", "chunk", "stateless"}
    assert np.isfinite(traced.nll["stateful"][1:]).all()


def test_a_subword_token_covers_its_whole_span() -> None:
    from gm.data.spm_tokenizer import SentencePieceTokenizer
    from gm.models import RecurrentLM

    text = "to be or not to be, that is the question\nwhether tis nobler in the mind\n" * 30
    tokenizer = SentencePieceTokenizer.train(text, vocab_size=280)
    model = RecurrentLM(tokenizer.vocab_size, "gru", emb_dim=8, hidden_dim=16, num_layers=1)
    sample = text[:200]
    traced = trace(TrainedModel(model.eval(), tokenizer, {}, 16, Path("spm")), sample)
    ids = tokenizer.encode(sample)
    assert len(traced.spans) == len(ids) < len(sample)  # some tokens span several characters
    assert traced.spans[0][0] == 0 and traced.spans[-1][1] == len(sample)
    assert all(a[1] == b[0] for a, b in zip(traced.spans, traced.spans[1:], strict=False))
    assert ["".join(sample[a:b]) for a, b in traced.spans] == [tokenizer.decode([i]) for i in ids]
