"""What a training run prints: a header, the progress bar, and a summary at the end.

Lightning's own output is kept where it informs (devices, the seed, warnings about the
user's settings) and silenced where it does not, message by message
(``silence_known_noise``), never by hiding every warning.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shlex
import threading
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelSummary, RichProgressBar
from lightning.pytorch.utilities import rank_zero_only
from rich.console import Console
from rich.table import Table

from gm.evaluation import metric_key
from gm.modes import MODES
from gm.run import RunRecord, count_parameters

# Lightning's info lines that say nothing about this run: an advertisement, a TPU line on
# every machine, and "fit stopped: max_epochs reached" printed over the progress bar.
# And the note that gm's own summary replaces Lightning's.
_NOISE = re.compile(
    r"^(💡 Tip:|TPU available:|`Trainer\.fit` stopped: `max_(epochs|steps)="
    r"|Trainer already configured with model summary callbacks)"
)
# Lightning 2.6 calls an isinstance check that torch 2.13 deprecates, on every fit.
_TREESPEC = r"`isinstance\(treespec, LeafSpec\)` is deprecated"


class _KnownNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _NOISE.match(record.getMessage())


def silence_known_noise() -> None:
    """Drop the messages above (and only those) from this process's output."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        log = logging.getLogger(name)
        if not any(isinstance(f, _KnownNoise) for f in log.filters):
            log.addFilter(_KnownNoise())
    warnings.filterwarnings("ignore", message=_TREESPEC)
    if threading.excepthook is not _quiet_disk_errors:
        threading.excepthook = _quiet_disk_errors


def _quiet_disk_errors(args: threading.ExceptHookArgs) -> None:
    """TensorBoard's writer thread dies with a traceback when the disk refuses a write;
    the training thread raises the same error at its next write, as one sentence."""
    frames = traceback.walk_tb(args.exc_traceback) if args.exc_traceback else ()
    files = [frame.f_code.co_filename for frame, _ in frames]
    if isinstance(args.exc_value, OSError) and any(
        f"{os.sep}tensorboard{os.sep}" in f for f in files
    ):
        return
    _THREAD_HOOK(args)


_THREAD_HOOK = threading.excepthook


def _count(n: float) -> str:
    return f"{n / 1000:,.0f}k" if n >= 10_000 else f"{n:,.0f}"


class ProgressBar(RichProgressBar):
    """Lightning's rich bar showing the training loss, tokens/s and the last validation
    loss in the three modes (nats/token, in ``MODES`` order), nothing else."""

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, str]:
        m = {k: float(v) for k, v in trainer.progress_bar_metrics.items()}
        items = {}
        if "train/loss" in m:
            items["loss"] = f"{m['train/loss']:.3f}"
        if "train/tokens_per_s" in m:
            items["tok/s"] = _count(m["train/tokens_per_s"])
        val = [m.get(metric_key("loss", mode)) for mode in MODES]
        if None not in val:  # in the order RunHeader names them
            items["val"] = " · ".join(f"{v:.3f}" for v in val)
        return items

    def _get_train_description(self, current_epoch: int) -> str:
        # Lightning writes "Epoch 0/-2" when only trainer.max_steps bounds the run.
        description = super()._get_train_description(current_epoch)
        if (self.trainer.max_epochs or -1) < 0:
            description = description.replace(f"/{(self.trainer.max_epochs or -1) - 1}", "  ")
        return description


def describe_model(model: dict[str, Any]) -> str:
    """The model's family and shape in a few words, from its config."""
    family = str(model.get("_target_", "")).rsplit(".", 1)[-1]
    shape = [
        f"{label} {model[k]}"
        for k, label in (
            ("cell", "cell"),
            ("num_layers", "layers"),
            ("hidden_dim", "hidden"),
            ("emb_dim", "embedding"),
            ("context", "context"),
            ("order", "order"),
            ("dropout", "dropout"),
        )
        if model.get(k) is not None
    ]
    return f"{family} ({', '.join(shape)})" if shape else family


class RunHeader(ModelSummary):
    """Replaces Lightning's model summary table (whose FLOPs column reads 0 for every
    model gm has) with three lines: the model, the data and where the run is."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        import torch

        record = getattr(pl_module, "record", RunRecord())
        params = count_parameters(pl_module)
        console = Console(highlight=False, soft_wrap=True)  # commands and paths stay whole
        console.print(
            f"[bold]{record.model_name or 'model'}[/bold]  "
            f"{describe_model(dict(pl_module.hparams.get('model', {})))} · {params:,} "
            f"parameters · precision {trainer.precision} · torch threads {torch.get_num_threads()}"
        )
        stats = trainer.datamodule.stats() if hasattr(trainer.datamodule, "stats") else {}
        data = record.data
        if stats and data:
            regime = "state carried" if data.get("carry_state") else "random windows, zero state"
            console.print(
                f"data  {stats['tokenizer']} tokenizer, vocabulary {stats['vocab_size']} · "
                f"{stats['train_tokens']:,} training / {stats['val_tokens']:,} validation "
                f"tokens · batches of {data['batch_size']} × {data['seq_len']} · {regime}"
            )
        console.print(f"run   {_shown(trainer.default_root_dir)}")
        console.print(f"the bar's val: the last validation loss {' · '.join(MODES)}, nats/token")


def _shown(path: str | os.PathLike) -> str:
    """``path`` relative to the working directory when it is inside it."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@rank_zero_only
def print_summary(metrics: dict[str, Any], run_dir: str | os.PathLike) -> None:
    """The best validation in the three modes, how the run went, and what to run next."""
    console = Console(highlight=False, soft_wrap=True)  # commands and paths stay whole
    best = metrics.get("best", {})
    run = _shown(run_dir)
    if best.get(metric_key("loss", "stateful")) is not None:
        console.print(_mode_table("best validation", lambda n, m: best.get(metric_key(n, m))))
        test = metrics.get("test")
        if test:  # the held-out split, scored once with the best checkpoint
            title = "test split, best checkpoint"
            console.print(_mode_table(title, lambda n, m: test[m][n]))
        if "ngrams" in metrics:
            how = f"{metrics['ngrams']:,} n-grams counted"
        else:
            how = (
                f"best at epoch {best.get('epoch', 0) + 1} of {metrics.get('epochs')}, "
                f"{metrics.get('steps', 0):,} steps at "
                f"{metrics.get('train_tokens_per_s') or 0:,.0f} tokens/s"
            )
        onset = metrics.get("overfitting_onset")
        seen = f"overfitting from epoch {onset['epoch']}" if onset else "no overfitting seen"
        wall = metrics.get("wall_time_s", 0)
        console.print(f"{how}, {wall:.0f} s; {seen}")
        gap = (
            best.get(metric_key("loss", "stateless"), math.nan)
            - best[metric_key("loss", "stateful")]
        )
        if math.isfinite(gap):
            console.print(f"resetting the state before every token costs {gap:.3f} nats/token")
    elif "ngrams" not in metrics:
        console.print(
            f"no validation of the trained model: the run ended at step {metrics.get('steps')} "
            "before its first one (see trainer.val_check_interval and trainer.max_steps)"
        )
    console.print(f"run: {run}  (metrics.json, checkpoints/, export/)")
    console.print("next:")
    console.print(f"  python generate.py {_override('ckpt', run)} mode=compare prompt='ROMEO:'")
    console.print(f"  tensorboard --logdir {shlex.quote(_shown(Path(run_dir).parent))}")
    console.print(f"  python -m gm.report {shlex.quote(run)}")


def _mode_table(title: str, value: Callable[[str, str], float | None]) -> Table:
    """Loss and bpc (rows) in the three modes (columns); ``value(name, mode)``."""
    table = Table(title=title, title_justify="left", box=None)
    table.add_column("")
    for mode in MODES:
        table.add_column(mode, justify="right")
    for name, unit in (("loss", "nats/token"), ("bpc", "bits/char")):
        cells = [value(name, mode) for mode in MODES]
        table.add_row(unit, *(f"{v:.4f}" if v is not None else "—" for v in cells))
    return table


def _override(key: str, value: str) -> str:
    """``key=value`` as a shell word Hydra reads back whole: a sweep job's directory name
    holds commas and ``=``, which Hydra's grammar would split unless quoted."""
    if re.fullmatch(r"[\w./~+-]+", value):
        return f"{key}={value}"
    if not set(value) & set("'\"$`\\"):
        return f"\"{key}='{value}'\""  # double quotes for the shell, single for Hydra
    return shlex.quote(f"{key}={value}")
