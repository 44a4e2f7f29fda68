"""The Python API (gm.api, also gm.load / gm.evaluate / gm.sample) does what its docs say:
the three modes' scores are the hand-computed ones, sampling is the generator's."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import gm
from gm.errors import UserError
from gm.generation import SamplingOptions, generate


@pytest.fixture(scope="module")
def model(trained_run: Path) -> gm.TrainedModel:
    return gm.load(trained_run)


def _text(model: gm.TrainedModel, n: int) -> str:
    chars = model.tokenizer.chars
    return "".join(chars[(7 * i + i // 3) % len(chars)] for i in range(n))


def _mean_nll(model: gm.TrainedModel, ids: torch.Tensor, window: int | None) -> float:
    """By hand: each target scored from a zero state ``window`` tokens back at most
    (None: the whole text before it, in one pass)."""
    with torch.inference_mode():
        if window is None:
            logits, _ = model.model(ids[None, :-1], None)
            return float(F.cross_entropy(logits[0], ids[1:]))
        losses = []
        for start in range(0, len(ids) - 1, window):  # windows from a zero state
            x = ids[start : start + window][None]
            y = ids[start + 1 : start + window + 1]
            logits, _ = model.model(x[:, : len(y)], None)
            losses.append(F.cross_entropy(logits[0], y, reduction="sum"))
        return float(sum(losses) / (len(ids) - 1))


def test_evaluate_scores_each_mode_as_it_is_defined(model: gm.TrainedModel) -> None:
    text = _text(model, 3 * model.seq_len + 5)  # a last, shorter chunk too
    ids = torch.tensor(model.tokenizer.encode(text))
    got = gm.evaluate(model, text)
    assert list(got) == ["stateful", "chunk", "stateless"]
    assert got["stateful"]["loss"] == pytest.approx(_mean_nll(model, ids, None), rel=1e-5)
    assert got["chunk"]["loss"] == pytest.approx(_mean_nll(model, ids, model.seq_len), rel=1e-5)
    assert got["stateless"]["loss"] == pytest.approx(_mean_nll(model, ids, 1), rel=1e-5)
    # One character per token: bits per character are nats per token in bits.
    assert got["chunk"]["bpc"] == pytest.approx(got["chunk"]["loss"] / 0.6931471805599453)
    assert gm.evaluate(model, text, modes=["stateless"]).keys() == {"stateless"}


def test_sample_is_the_generator_with_the_same_seed(model: gm.TrainedModel) -> None:
    prompt = _text(model, 5)
    for mode in ("stateful", "chunk", "stateless"):
        text = gm.sample(model, prompt, max_new_tokens=40, mode=mode, temperature=0.8, seed=3)
        new = generate(
            model.model, model.tokenizer.encode(prompt), 40, mode=mode,
            options=SamplingOptions(temperature=0.8),
            generator=torch.Generator().manual_seed(3), window=model.seq_len,
        )  # fmt: skip
        assert text == prompt + model.tokenizer.decode(new)
    assert gm.sample(model, prompt, seed=1) == gm.sample(model, prompt, seed=1)


@pytest.mark.parametrize(
    "call, needle",
    [
        (lambda m: gm.sample(m, ""), "the prompt is empty"),
        (lambda m: gm.sample(m, "\u2603"), "never saw"),
        (lambda m: gm.sample(m, "a", mode="sideways"), "unknown mode"),
        (lambda m: gm.sample(m, "a", top_p=2.0), "top_p"),
        (lambda m: gm.evaluate(m, "a"), "at least two tokens"),
        (lambda m: gm.evaluate(m, "ab", modes=["nope"]), "unknown mode"),
    ],
)
def test_bad_input_is_one_sentence(model: gm.TrainedModel, call, needle: str) -> None:
    with pytest.raises(UserError, match=needle):
        call(model)


def test_load_refuses_what_holds_no_model(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        gm.load(tmp_path / "nothing")
