"""What a training run prints: a header, the progress bar, a line at each validation,
and a summary at the end; ``show`` writes each also into the run's ``train.log``.

Everything a person reads counts epochs from 1 ("epoch 10/10" is the last of ten);
``metrics.json`` keeps Lightning's index, from 0. Lightning's own output is kept where it
informs (warnings about the user's settings) and silenced where gm says the same better
(the device and the seed are in the header) or it says nothing, message by message
(``silence_known_noise``), never by hiding every warning.
"""

from __future__ import annotations

import io
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
from lightning.pytorch.callbacks.progress.rich_progress import RichProgressBarTheme
from lightning.pytorch.utilities import rank_zero_only
from rich.console import Console
from rich.table import Table

from gm.evaluation import metric_key
from gm.modes import MODES
from gm.run import RunRecord, count_parameters

# Lightning's info lines that say nothing about this run: an advertisement, a TPU line on
# every machine, and "fit stopped: max_epochs reached" printed over the progress bar. The
# device and seed lines, which the header says in its own words. The note that gm's own
# summary replaces Lightning's. And "`weights_only` was not set, defaulting to `False`",
# which Lightning 2.6 logs only when it *saves* a checkpoint (dump_checkpoint: the full
# checkpoint, as a count-based model's is) and which reads like an unsafe load.
_NOISE = re.compile(
    r"^(💡 Tip:|TPU available:|GPU available:|Seed set to |`Trainer\.fit` stopped: "
    r"`max_(epochs|steps)=|Trainer already configured with model summary callbacks"
    r"|`weights_only` was not set, defaulting to `False`\.$)"
)
# Hydra's job logging writes the root logger into <run>/train.log (conf/hydra), and only
# there: what ``show`` prints reaches the terminal once and the log once.
_LOG = logging.getLogger("gm.training")
# Lightning 2.6 calls an isinstance check that torch 2.13 deprecates, on every fit.
_TREESPEC = r"`isinstance\(treespec, LeafSpec\)` is deprecated"


class _KnownNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _NOISE.match(record.getMessage())


def silence_known_noise() -> None:
    """Drop the messages above (and only those) from this process's output."""
    for name in (
        "lightning.pytorch.utilities.rank_zero",
        "lightning.fabric.utilities.rank_zero",
        "lightning.pytorch.trainer.connectors.checkpoint_connector",  # (the weights_only line)
    ):
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


def show(
    renderable: Any, style: str | None = None, whole: bool = False, crop: bool = False
) -> None:
    """Print ``renderable`` on the terminal (above the progress bar while it runs) and
    write the same text, without colour, into the run's ``train.log``. ``whole``: a line
    the terminal may wrap but rich must not break (a command, a path); ``crop``: lines cut
    at the terminal's edge (…), whole in the log."""
    from rich import get_console

    cut = {"no_wrap": True, "overflow": "ellipsis"} if crop else {}
    get_console().print(renderable, style=style, highlight=False, soft_wrap=whole, **cut)
    if _LOG.isEnabledFor(logging.INFO):
        # Wide: a log line is read whole, not on a terminal.
        plain = Console(file=io.StringIO(), width=240, color_system=None, highlight=False)
        plain.print(renderable, soft_wrap=whole)
        _LOG.info(plain.file.getvalue().rstrip())


def _count(n: float) -> str:
    """A rate in at most five characters: 950, 6.6k, 123k, 1.2M."""
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    if n >= 1e4:
        return f"{n / 1e3:.0f}k"
    return f"{n / 1e3:.1f}k" if n >= 1e3 else f"{n:.0f}"


class ProgressBar(RichProgressBar):
    """Lightning's rich bar on one line of the terminal, 80 columns included: the epoch
    (counted from 1, as everything gm prints), the bar, batches, the time left, then the
    training loss, tokens/s and the last validation loss in the three modes (nats/token,
    in ``MODES`` order). The bar takes what the rest leaves of the terminal's width."""

    # The widest the metrics get (a rate is at most five characters, ``_count``).
    _METRICS_WIDTH = len("loss: 1.234  tok/s: 12.3M  val: 1.68/1.73/3.42")

    def __init__(self, **kwargs: Any) -> None:
        theme = kwargs.pop("theme", None) or RichProgressBarTheme(metrics_text_delimiter="  ")
        super().__init__(theme=theme, **kwargs)

    def configure_columns(self, trainer: L.Trainer) -> list:
        """Description, bar, batches and the time left; Lightning adds the metrics."""
        from lightning.pytorch.callbacks.progress.rich_progress import (
            BatchesProcessedColumn,
            CustomBarColumn,
        )
        from rich.progress import TextColumn, TimeRemainingColumn

        # Each column's widest text and the space after it; the descriptions share a column.
        epochs = max(trainer.max_epochs or -1, 1)
        description = max(len(self.validation_description), len(f"epoch {epochs}/{epochs}"))
        batches = trainer.num_training_batches
        digits = len(str(batches)) if isinstance(batches, int) else 4
        rest = (description + 1) + (2 * digits + 2) + len("0:00:00 ") + self._METRICS_WIDTH
        width = self._console.width if self._console is not None else 80
        return [
            TextColumn("[progress.description]{task.description}"),
            CustomBarColumn(
                bar_width=max(4, min(40, width - rest)),
                complete_style=self.theme.progress_bar,
                finished_style=self.theme.progress_bar_finished,
                pulse_style=self.theme.progress_bar_pulse,
            ),
            BatchesProcessedColumn(style=self.theme.batch_progress),
            TimeRemainingColumn(compact=True),
        ]

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, str]:
        m = {k: float(v) for k, v in trainer.progress_bar_metrics.items()}
        items = {}
        if "train/loss" in m:
            items["loss"] = f"{m['train/loss']:.3f}"
        if "train/tokens_per_s" in m:
            items["tok/s"] = _count(m["train/tokens_per_s"])
        val = [m.get(metric_key("loss", mode)) for mode in MODES]
        if None not in val:  # in the order RunHeader names them
            items["val"] = "/".join(f"{v:.2f}" for v in val)
        return items

    def _get_train_description(self, current_epoch: int) -> str:
        # Lightning counts from 0 ("Epoch 9/9" for the last of ten); people count from 1.
        total = self.trainer.max_epochs or -1
        return f"epoch {current_epoch + 1}" + (f"/{total}" if total > 0 else "")


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
    model gm has) with four lines: the model, how it trains, the data and where the run
    is. Printed once the data is set up, for a fit and for a count-based model's single
    validation alike."""

    def __init__(self) -> None:
        super().__init__()
        self._printed = False

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Nothing: Lightning's table is what this callback replaces."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._printed or not trainer.is_global_zero or stage not in ("fit", "validate"):
            return
        self._printed = True
        for line in header_lines(trainer, pl_module):
            show(line)
        show(f"run    {_shown(trainer.default_root_dir)}", whole=True)
        show(f"the bar's val: the last validation loss {'/'.join(MODES)}, nats/token")


def header_lines(trainer: L.Trainer, pl_module: L.LightningModule) -> list[str]:
    """The model, how it trains (device, precision, threads, seeds) and the data."""
    import torch

    record = getattr(pl_module, "record", RunRecord())
    params = count_parameters(pl_module)
    model = dict(pl_module.hparams.get("model", {}))
    lines = [
        f"[bold]{record.model_name or 'model'}[/bold]  {describe_model(model)} · "
        f"{params:,} parameters"
    ]
    device = trainer.strategy.root_device
    devices = f"{device.type} × {trainer.world_size}" if trainer.world_size > 1 else device.type
    threads = torch.get_num_threads()
    seeds = f"seed {record.seed}" if record.seed is not None else ""
    if record.train_seed is not None and record.train_seed != record.seed:
        seeds += f", train seed {record.train_seed}"
    how = [
        devices,
        f"precision {trainer.precision}",
        f"{threads} torch thread{'s' * (threads != 1)}",
        seeds,
    ]
    if (trainer.max_epochs or -1) > 0 and not getattr(pl_module.model, "count_based", False):
        how.append(f"{trainer.max_epochs} epochs")
    lines.append("train  " + " · ".join(h for h in how if h))
    stats = trainer.datamodule.stats() if hasattr(trainer.datamodule, "stats") else {}
    data = record.data
    if stats and data:
        regime = "state carried" if data.get("carry_state") else "random windows, zero state"
        lines.append(
            f"data   {stats['tokenizer']} tokenizer, vocabulary {stats['vocab_size']} · "
            f"{stats['train_tokens']:,} training / {stats['val_tokens']:,} validation "
            f"tokens · batches of {data['batch_size']} × {data['seq_len']} · {regime}"
        )
    return lines


class ValidationLines(L.Callback):
    """One line per validation, kept above the bar: the step, the epoch and the loss in
    the three modes."""

    @rank_zero_only
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        m = trainer.callback_metrics
        val = [m.get(metric_key("loss", mode)) for mode in MODES]
        if any(v is None for v in val):
            return
        bpc = m.get(metric_key("bpc", "stateful"))
        when = f"step {trainer.global_step}"
        if trainer.state.fn == "fit":
            total = trainer.max_epochs or -1
            when += f" · epoch {trainer.current_epoch + 1}" + (f"/{total}" if total > 0 else "")
        losses = "/".join(f"{float(v):.3f}" for v in val)
        show(
            f"{when} · val {losses} nats/token"
            + (f" · {float(bpc):.3f} bpc stateful" if bpc is not None else "")
        )


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
    best = metrics.get("best", {})
    run = _shown(run_dir)
    if best.get(metric_key("loss", "stateful")) is not None:
        show(_mode_table("best validation", lambda n, m: best.get(metric_key(n, m))))
        test = metrics.get("test")
        if test:  # the held-out split, scored once with the best checkpoint
            title = "test split, best checkpoint"
            show(_mode_table(title, lambda n, m: test[m][n]))
        if "ngrams" in metrics:
            how = f"{metrics['ngrams']:,} n-grams counted"
        else:
            how = (
                f"best at epoch {best.get('epoch', 0) + 1} of {metrics.get('epochs')}, "
                f"{metrics.get('steps', 0):,} steps at "
                f"{metrics.get('train_tokens_per_s') or 0:,.0f} tokens/s"
            )
        onset = metrics.get("overfitting_onset")  # (its epoch from 0, as Lightning's)
        seen = f"overfitting from epoch {onset['epoch'] + 1}" if onset else "no overfitting seen"
        wall = metrics.get("wall_time_s", 0)
        show(f"{how}, {wall:.0f} s; {seen}")
        gap = (
            best.get(metric_key("loss", "stateless"), math.nan)
            - best[metric_key("loss", "stateful")]
        )
        if math.isfinite(gap):
            show(f"resetting the state before every token costs {gap:.3f} nats/token")
    elif "ngrams" not in metrics:
        show(
            f"no validation of the trained model: the run ended at step {metrics.get('steps')} "
            "before its first one (see trainer.val_check_interval and trainer.max_steps)"
        )
    show(f"run: {run}  (metrics.json, checkpoints/, export/, train.log)", whole=True)
    show("next:")
    show(f"  python generate.py {_override('ckpt', run)} mode=compare prompt='ROMEO:'", whole=True)
    show(f"  tensorboard --logdir {shlex.quote(_shown(Path(run_dir).parent))}", whole=True)
    show(f"  python -m gm.report {shlex.quote(run)}", whole=True)


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
