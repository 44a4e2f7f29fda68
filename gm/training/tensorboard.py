"""What TensorBoard shows of a run: the study's dashboard.

- **Run names.** The event files go straight into the run directory, so
  ``tensorboard --logdir outputs`` names every run by its directory
  (``astra_alpha/2026-11-29_10-00-00``, ``multirun/<time>/3_model=leviathan``).
- **Scalars** carry a description with their unit (``TAGS``; hover a chart's title).
- **HParams**: the run's key settings (``key_hparams``) against its best validation in
  the three modes (``BEST_TAGS``, logged by ``MetricsJSON`` at every validation), so a
  sweep compares in the table and parallel-coordinates views.
- **Custom Scalars**: the three modes on one chart (the study's result: the gap between
  carried and reset state), and the training loss against the validation loss.
- **Text**: at every validation, a sample in each mode from one prompt and seed
  (``TextSamples``).

Every value is logged at the optimizer step it was measured after: step 0 is the
untrained model, validation after *N* steps is at step *N*, like the figures and
``metrics.json``.
"""

from __future__ import annotations

import os
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from gm.data.streams import SEQ_LEN
from gm.evaluation import best_key, metric_key
from gm.modes import BY_NAME, MODES
from gm.training.settings import training_seed

_UNITS = {
    "loss": "validation cross-entropy, nats per token",
    "bpc": "validation bits per character (of the characters the targets decode to)",
    "ppl": "validation perplexity per token, exp(loss)",
}

TAGS: dict[str, str] = {
    "train/loss": "training cross-entropy of the batch, nats per token (before the step's update)",
    "train/grad_norm": "L2 norm of all gradients before clipping (trainer.gradient_clip_val)",
    "train/tokens_per_s": "training throughput, tokens per second of step time",
    "train/lr": "learning rate (warm-up, then cosine annealing)",
    **{
        metric_key(name, mode): f"{unit}; {BY_NAME[mode].scores}"
        for name, unit in _UNITS.items()
        for mode in MODES
    },
    **{
        best_key(name, mode): f"{unit}; {BY_NAME[mode].scores}; at the validation with the "
        "lowest stateful loss so far (the best checkpoint)"
        for name, unit in _UNITS.items()
        for mode in MODES
        if name != "ppl"
    },
}
# The HParams view's metric columns.
BEST_TAGS = [best_key(name, mode) for name in ("loss", "bpc") for mode in MODES]

# Custom Scalars: each chart overlays tags matched by regular expressions.
LAYOUT = {
    "the three inference modes": {
        f"val/{name}: {' vs '.join(MODES)} ({unit})": [
            "Multiline",
            [f"^{metric_key(name, mode)}$" for mode in MODES],
        ]
        for name, unit in (("loss", "nats/token"), ("bpc", "bits/char"))
    },
    "training": {
        "train/loss vs val/loss (nats/token, state carried)": [
            "Multiline",
            ["^train/loss$", f"^{metric_key('loss', 'stateful')}$"],
        ],
    },
}


def key_hparams(cfg: DictConfig, model_name: str, parameters: int) -> dict[str, Any]:
    """The settings a reader compares runs by, flat and plain (the HParams table's columns)."""
    model = cfg.model
    return {
        "model": model_name or str(model.get("_target_", "")).rsplit(".", 1)[-1],
        "cell": model.get("cell", str(model.get("_target_", "")).rsplit(".", 1)[-1]),
        "emb_dim": model.get("emb_dim", 0),
        "hidden_dim": model.get("hidden_dim", 0),
        "num_layers": model.get("num_layers", 0),
        "dropout": model.get("dropout", 0.0),
        "parameters": parameters,
        "lr": cfg.optimizer.get("lr", 0.0),
        "weight_decay": cfg.optimizer.get("weight_decay", 0.0),
        "batch_size": cfg.data.batch_size,
        "seq_len": cfg.data.seq_len,
        "carry_state": str(bool(cfg.data.carry_state)).lower(),  # (a bool would show as 1)
        "tokenizer": cfg.data.tokenizer,
        "max_epochs": cfg.trainer.get("max_epochs") or -1,
        "max_steps": cfg.trainer.get("max_steps", -1),
        "precision": str(cfg.trainer.precision),
        "seed": cfg.seed,
        "train_seed": training_seed(cfg),
    }


class TensorBoard(TensorBoardLogger):
    """Lightning's TensorBoard logger writing into the run directory itself, with tag
    descriptions, the HParams summary and the custom-scalars layout."""

    def __init__(self, save_dir: str | os.PathLike, **kwargs: Any) -> None:
        kwargs.setdefault("default_hp_metric", False)  # gm logs its own HParams metrics
        super().__init__(save_dir, name="", version="", **kwargs)
        self._described: set[str] = set()

    @rank_zero_only
    def log_hyperparams(
        self, params: dict[str, Any], metrics: dict[str, Any] | None = None, step: int | None = None
    ) -> None:
        """``hparams.yaml``, the HParams summary (``params`` against ``BEST_TAGS``) and the
        custom-scalars layout; the metrics' values are the ``BEST_TAGS`` scalars."""
        super().log_hyperparams(params, metrics, step)
        from torch.utils.tensorboard.summary import custom_scalars, hparams

        plain = {
            k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in params.items()
        }
        writer = self.experiment._get_file_writer()
        # hparams() reads only the metrics' names; their values come from the scalars.
        for summary in hparams(plain, dict.fromkeys(BEST_TAGS, 0.0)):
            writer.add_summary(summary)
        writer.add_summary(custom_scalars(LAYOUT))

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        """Log scalars; the first value of a described tag carries its description."""
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.plugins.scalar.metadata import create_summary_metadata

        plain = {k: float(v) for k, v in metrics.items()}  # (a one-element tensor too)
        first = [k for k in plain if k in TAGS and k not in self._described]
        if first:
            described = [
                Summary.Value(
                    tag=k,
                    simple_value=plain[k],
                    metadata=create_summary_metadata(display_name=k, description=TAGS[k]),
                )
                for k in first
            ]
            self.experiment._get_file_writer().add_summary(Summary(value=described), step)
            self._described.update(first)
        rest = {k: v for k, v in plain.items() if k not in first}
        if rest:
            super().log_metrics(rest, step)


class TextSamples(L.Callback):
    """At every validation, ``tokens`` sampled tokens in each mode, logged as TensorBoard
    text. The prompt is ``prompt_tokens`` tokens of the validation text from its first line
    break on, and every sample draws from a generator seeded with ``seed``: the samples of
    two validations differ only by what the model has learned."""

    def __init__(
        self, tokens: int = 200, prompt_tokens: int = 32, temperature: float = 0.8, seed: int = 0
    ) -> None:
        self.tokens, self.prompt_tokens = tokens, prompt_tokens
        self.temperature, self.seed = temperature, seed

    @rank_zero_only
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        writers = [lg.experiment for lg in trainer.loggers if hasattr(lg.experiment, "add_text")]
        datamodule = trainer.datamodule
        if trainer.sanity_checking or not writers or not hasattr(datamodule, "val_ids"):
            return
        samples = self.samples(pl_module, datamodule)
        for writer in writers:
            for mode, text in samples.items():
                writer.add_text(f"samples/{mode}", text, trainer.global_step)

    def samples(self, pl_module: L.LightningModule, datamodule: Any) -> dict[str, str]:
        """One markdown sample per mode."""
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
            for mode in MODES:
                # A generator of its own: sampling never moves the training's random streams.
                generator = torch.Generator().manual_seed(self.seed)
                new = generate(model, prompt, self.tokens, mode, options, generator, window=window)
                out[mode] = _markdown(tokenizer.decode(prompt), tokenizer.decode(new), mode)
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
