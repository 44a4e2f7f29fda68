"""What TensorBoard shows of a run: the study's dashboard.

- **Run names.** The event files go straight into the run directory, so
  ``tensorboard --logdir outputs`` names every run by its directory
  (``astra_alpha/2026-11-29_10-00-00``, ``multirun/<time>/3_model=leviathan``).
- **The three modes in three colours.** TensorBoard colours lines by run, so each mode's
  validation loss and bpc are also written as a run of their own, ``<run>/modes/<mode>``,
  under one tag (``modes/loss``, ``modes/bpc``): one chart overlays the three modes in three
  colours, and a sweep's runs each bring three more. The group ``modes`` sorts first among
  the groups (then ``train``, ``val``, ``val_best``), so the study's chart opens first.
- **Scalars** carry a description with their unit (``TAGS``; hover a chart's title).
- **HParams**: the run's key settings (``key_hparams``) against its best validation in
  the three modes (``BEST_TAGS``, logged by ``MetricsJSON`` at every validation), so a
  sweep compares in the table and parallel-coordinates views. TensorBoard shows five
  columns until asked for more, those it is told *differ* first: gm marks the settings
  the command line set (a sweep's axes), then the model-defining ones (``shown_hparams``).
- **Custom Scalars**: the three modes on one chart (the study's result: the gap between
  carried and reset state), and the training loss against the validation loss.
- **Text**: at every validation, a sample in each mode from one prompt and seed
  (``gm.training.samples.Samples``).

Every value is logged at the optimizer step it was measured after: step 0 is the
untrained model, validation after *N* steps is at step *N*, like the figures and
``metrics.json``.
"""

from __future__ import annotations

import os
from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

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
# The per-mode runs' tags: a mode's val/<name>, written into <run>/modes/<mode>.
MODE_TAGS: dict[str, str] = {
    f"modes/{name}": f"{unit}; one line per mode (stateful, chunk, stateless), each a run of "
    "its own so that each has its own colour"
    for name, unit in _UNITS.items()
    if name != "ppl"
}

# Custom Scalars: each chart overlays tags matched by regular expressions.
LAYOUT = {
    "the three inference modes": {
        f"val/{name}: {' vs '.join(MODES)} ({unit}), one colour per mode": [
            "Multiline",
            [f"^modes/{name}$"],
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


# The HParams columns' sources on the command line: an override of one of these keys (or
# of the model group) makes its column one of the five shown first.
HPARAM_KEYS: dict[str, str] = {
    "model": "model",
    "cell": "model.cell",
    "emb_dim": "model.emb_dim",
    "hidden_dim": "model.hidden_dim",
    "num_layers": "model.num_layers",
    "dropout": "model.dropout",
    "lr": "optimizer.lr",
    "weight_decay": "optimizer.weight_decay",
    "batch_size": "data.batch_size",
    "seq_len": "data.seq_len",
    "carry_state": "data.carry_state",
    "tokenizer": "data",
    "max_epochs": "trainer.max_epochs",
    "max_steps": "trainer.max_steps",
    "precision": "trainer.precision",
    "seed": "seed",
    "train_seed": "train_seed",
}
# What a run is, when the command line varied less than five columns' worth.
MODEL_DEFINING = ["model", "lr", "hidden_dim", "num_layers", "parameters", "emb_dim"]
SHOWN_COLUMNS = 5  # what TensorBoard's HParams table shows before "show more"


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


def shown_hparams(overrides: list[str]) -> list[str]:
    """The HParams columns TensorBoard shows first: those the command line set (a sweep's
    axes, e.g. ``optimizer.lr=…`` → ``lr``), then the model-defining ones, five in all."""
    keys = {o.lstrip("+~").split("=", 1)[0] for o in overrides}
    varied = [name for name, key in HPARAM_KEYS.items() if key in keys]
    return list(dict.fromkeys([*varied, *MODEL_DEFINING]))[:SHOWN_COLUMNS]


class TensorBoard(TensorBoardLogger):
    """Lightning's TensorBoard logger writing into the run directory itself, with tag
    descriptions, the HParams summary and the custom-scalars layout."""

    def __init__(self, save_dir: str | os.PathLike, **kwargs: Any) -> None:
        kwargs.setdefault("default_hp_metric", False)  # gm logs its own HParams metrics
        super().__init__(save_dir, name="", version="", **kwargs)
        self._described: set[str] = set()
        self._mode_writers: dict[str, Any] = {}

    @rank_zero_only
    def log_hyperparams(
        self,
        params: dict[str, Any],
        metrics: dict[str, Any] | None = None,
        step: int | None = None,
        shown: list[str] | None = None,
    ) -> None:
        """``hparams.yaml``, the HParams summary (``params`` against ``BEST_TAGS``, the
        ``shown`` columns marked to come first) and the custom-scalars layout; the metrics'
        values are the ``BEST_TAGS`` scalars."""
        super().log_hyperparams(params, metrics, step)
        from tensorboard.plugins.hparams import plugin_data_pb2
        from torch.utils.tensorboard.summary import custom_scalars, hparams

        plain = {
            k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in params.items()
        }
        writer = self.experiment._get_file_writer()
        # hparams() reads only the metrics' names; their values come from the scalars.
        experiment, *session = hparams(plain, dict.fromkeys(BEST_TAGS, 0.0))
        value = experiment.value[0]
        data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
        for info in data.experiment.hparam_infos:
            # TensorBoard sorts the columns that "differ" first and shows five.
            info.differs = info.name in (shown or [])
        value.metadata.plugin_data.content = data.SerializeToString()
        for summary in (experiment, *session):
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
        self._log_modes(plain, step)

    def _log_modes(self, metrics: dict[str, float], step: int | None) -> None:
        """Each mode's validation loss and bpc again, as ``modes/<name>`` in the mode's own
        run (``<run>/modes/<mode>``), so that TensorBoard draws each mode in its colour."""
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.plugins.scalar.metadata import create_summary_metadata
        from torch.utils.tensorboard import SummaryWriter

        for mode in MODES:
            values = []
            for tag, description in MODE_TAGS.items():
                key = metric_key(tag.removeprefix("modes/"), mode)
                if key not in metrics:
                    continue
                value = Summary.Value(tag=tag, simple_value=metrics[key])
                if mode not in self._mode_writers:  # a tag's first value carries its text
                    value.metadata.CopyFrom(
                        create_summary_metadata(display_name=tag, description=description)
                    )
                values.append(value)
            if not values:
                continue
            if mode not in self._mode_writers:
                path = os.path.join(self.log_dir, "modes", mode)
                self._mode_writers[mode] = SummaryWriter(path)
            self._mode_writers[mode]._get_file_writer().add_summary(Summary(value=values), step)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        super().finalize(status)
        for writer in self._mode_writers.values():
            writer.close()
