"""Samples as the model trains: at every validation, a continuation in each mode, written
to TensorBoard as text, and the stateful one's first lines printed in the terminal (and so
in ``train.log``), as makemore and char-rnn show theirs."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only

from gm.data.streams import SEQ_LEN
from gm.modes import BY_NAME, MODES
from gm.training.terminal import show


class Samples(L.Callback):
    """At every validation, ``tokens`` sampled tokens in each mode, logged as TensorBoard
    text; every ``every``-th validation also prints the stateful sample's first ``lines``
    lines (``every=0``: never). The prompt is ``prompt_tokens`` tokens of the validation
    text from its first line break on, and every sample draws from a generator seeded with
    ``seed``: the samples of two validations differ only by what the model has learned."""

    def __init__(
        self,
        tokens: int = 200,
        prompt_tokens: int = 32,
        temperature: float = 0.8,
        seed: int = 0,
        every: int = 1,
        lines: int = 4,
    ) -> None:
        self.tokens, self.prompt_tokens = tokens, prompt_tokens
        self.temperature, self.seed = temperature, seed
        self.every, self.lines = every, lines
        self._validations = 0

    @rank_zero_only
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        writers = [lg.experiment for lg in trainer.loggers if hasattr(lg.experiment, "add_text")]
        datamodule = trainer.datamodule
        if trainer.sanity_checking or not hasattr(datamodule, "val_ids"):
            return
        printed = self.every > 0 and self._validations % self.every == 0
        self._validations += 1
        if not writers and not printed:
            return
        samples = self.samples(pl_module, datamodule, MODES if writers else ("stateful",))
        for writer in writers:
            for mode, (prompt, text) in samples.items():
                text = _markdown(prompt, text, mode)
                writer.add_text(f"samples/{mode}", text, trainer.global_step)
        if printed:
            prompt, text = samples["stateful"]
            lines = (prompt + text).lstrip("\n").split("\n")[: self.lines]
            show("\n".join(f"  │ {line}" for line in lines), style="dim", crop=True)

    def samples(
        self, pl_module: L.LightningModule, datamodule: Any, modes: tuple[str, ...] = MODES
    ) -> dict[str, tuple[str, str]]:
        """The prompt and one continuation per mode in ``modes``."""
        from gm.generation.generate import generate
        from gm.generation.sampling import SamplingOptions

        tokenizer = datamodule.tokenizer
        # From the first line that starts within the validation text, not mid-word.
        head = datamodule.val_ids[: 16 * self.prompt_tokens].tolist()
        start = next((i + 1 for i, t in enumerate(head) if "\n" in tokenizer.decode([t])), 0)
        prompt = (head[start:] if start < len(head) else head)[: self.prompt_tokens]
        options = SamplingOptions(temperature=self.temperature)
        window = pl_module.hparams.get("seq_len") or SEQ_LEN
        model, was_training = pl_module.model, pl_module.model.training
        model.eval()  # no dropout: the sample shows the model, not a noisy copy of it
        try:
            out = {}
            for mode in modes:
                # A generator of its own: sampling never moves the training's random streams.
                generator = torch.Generator().manual_seed(self.seed)
                new = generate(model, prompt, self.tokens, mode, options, generator, window=window)
                out[mode] = (tokenizer.decode(prompt), tokenizer.decode(new))
            return out
        finally:
            model.train(was_training)


def _markdown(prompt: str, text: str, mode: str) -> str:
    """Prompt and continuation as two indented (verbatim) blocks: TensorBoard renders
    text as markdown, which would eat newlines and Shakespeare's punctuation."""

    def block(s: str) -> str:
        return "\n".join("    " + line for line in s.split("\n"))

    return (
        f"**{mode}** ({BY_NAME[mode].generates}); the prompt, from the validation text:\n\n"
        f"{block(prompt)}\n\ncontinuation:\n\n{block(text)}"
    )
