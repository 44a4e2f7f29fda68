"""The Python API: load a trained model, score text in the three inference modes, sample
from it. Also reachable as ``gm.load``, ``gm.evaluate`` and ``gm.sample``.

    import gm

    model = gm.load("outputs/astra_alpha/2026-12-04_10-00-00")  # a run, a .ckpt or a bundle
    print(gm.sample(model, "ROMEO:", max_new_tokens=200, mode="stateful", seed=0))
    print(gm.evaluate(model, "To be, or not to be, that is the question."))

Bad input (a path that holds no model, characters the model never saw, a text too short to
score, an unknown mode) raises ``gm.errors.UserError`` with one sentence.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch

from gm.artifacts import TrainedModel, load_trained
from gm.errors import UserError
from gm.evaluation import scores
from gm.generation import SamplingOptions, generate
from gm.modes import MODES, context_length


def load(path: str | Path) -> TrainedModel:
    """The model in ``path`` — a run directory (its best checkpoint), a ``.ckpt`` file or a
    bundle directory — ready for inference, with its tokenizer and what training recorded
    (``.record``: corpus, data recipe, seed, overrides)."""
    return load_trained(path)


def evaluate(
    model: TrainedModel, text: str, modes: Iterable[str] = MODES
) -> dict[str, dict[str, float]]:
    """Score ``text`` in each inference mode: ``{mode: {"loss", "ppl", "bpc"}}`` (loss in
    nats per token, bpc in bits per character of the text).

    The text is one stream read left to right, its first token context only; ``stateful``
    carries the state through all of it, ``chunk`` resets it every ``model.seq_len`` tokens
    (the training chunk), ``stateless`` before every token, as a validation does.
    """
    modes = list(modes)
    for mode in modes:
        _check_mode(mode)
    batches = model.text_batches(text)
    char_lengths = torch.tensor(model.tokenizer.char_lengths())
    return scores(model.model, batches, char_lengths, batches.seq_len, modes)


def _check_mode(mode: str) -> None:
    """An unknown mode is one sentence (gm.modes names the modes and their chunk forms)."""
    try:
        context_length(mode, 1)
    except ValueError as e:
        raise UserError(str(e)) from None


def sample(
    model: TrainedModel,
    prompt: str,
    max_new_tokens: int = 200,
    mode: str = "stateful",
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
) -> str:
    """``prompt`` followed by ``max_new_tokens`` sampled tokens, in one inference ``mode``:
    ``stateful`` carries the hidden state from token to token, ``chunk`` sees the last
    ``model.seq_len`` tokens from a zero state, ``stateless`` only the last token.
    ``temperature`` 0 is greedy; the same ``seed`` gives the same text."""
    if not prompt:
        raise UserError("the prompt is empty; give at least one character")
    options = SamplingOptions(temperature=temperature, top_k=top_k, top_p=top_p)
    options.check(model.tokenizer.vocab_size)
    _check_mode(mode)
    generator = torch.Generator().manual_seed(seed)
    new = generate(
        model.model,
        model.tokenizer.encode(prompt),
        max_new_tokens,
        mode=mode,
        options=options,
        generator=generator,
        window=model.seq_len,
    )
    return prompt + model.tokenizer.decode(new)


__all__ = ["TrainedModel", "evaluate", "load", "sample"]
