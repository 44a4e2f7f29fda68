"""Callbacks that measure a run and write down its result."""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_only

from gm.atomic import write_json_atomic
from gm.evaluation import best_key, metric_key
from gm.metrics import overfitting_onset
from gm.modes import MODES
from gm.run import count_parameters
from gm.runtime import TrainingProcesses, cores, share_of_cores


class Checkpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint where ``every_n_train_steps`` saves last.ckpt only —
    from step N on, not only once a validation has run — and best and last are saved at
    every validation (Lightning alone makes the two triggers mutually exclusive).

    "Best" is judged at validations only: between two of them the logged ``val/loss``
    belongs to older weights (the untrained model's, before the first validation), so a
    step save scored with it would name the wrong weights best.
    """

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self._train_time_interval is not None:  # (time-based saves: Lightning's rules)
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
            return
        n = self._every_n_train_steps
        if n < 1 or trainer.global_step % n or self._should_skip_saving_checkpoint(trainer):
            return
        if trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            return  # the validation right after this batch saves
        previous = self._last_global_step_saved
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        # A validation at this very step must still save best and last.
        self._last_global_step_saved = previous

    def _format_checkpoint_name(
        self,
        filename: str | None,
        metrics: dict[str, Any],
        prefix: str | None = None,
        auto_insert_metric_name: bool = True,
    ) -> str:
        # People count epochs from 1 (best-epoch10.ckpt: the tenth, as the bar and the
        # summary say); Lightning's index counts from 0.
        if "epoch" in metrics:
            metrics = {**metrics, "epoch": metrics["epoch"] + 1}
        return super()._format_checkpoint_name(filename, metrics, prefix, auto_insert_metric_name)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # A moved or copied run resumes with its checkpoints under a new path: they are
        # still its own. Lightning would forget best and last when the folder's path
        # changed (a stale last.ckpt beside a new last-v1.ckpt, the best score lost), so
        # every recorded path is first moved from the old folder onto this one.
        old = state_dict.get("dirpath")
        if old and self.dirpath and old != self.dirpath:

            def rebase(path: Any) -> Any:
                if not isinstance(path, str) or not path:
                    return path
                return str(Path(self.dirpath) / Path(path).name)

            state_dict = {
                **state_dict,
                "dirpath": self.dirpath,
                **{
                    key: rebase(state_dict.get(key))
                    for key in ("best_model_path", "kth_best_model_path", "last_model_path")
                    if key in state_dict
                },
                "best_k_models": {
                    rebase(k): v for k, v in (state_dict.get("best_k_models") or {}).items()
                },
            }
        super().load_state_dict(state_dict)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if self._every_n_train_steps and not self._should_skip_saving_checkpoint(trainer):
            candidates = self._monitor_candidates(trainer)
            self._save_topk_checkpoint(trainer, candidates)
            self._save_last_checkpoint(trainer, candidates)


class ShareCores(L.Callback):
    """Torch's thread count for this run: ``threads`` when given; else a share of the
    cores among the gm runs training on this machine (``gm.runtime.share_of_cores``),
    counted again every ``every_s`` seconds, so a run started or ended beside this one
    moves the share both ways."""

    def __init__(self, threads: int | None = None, every_s: float = 10.0) -> None:
        self.threads, self.every_s = threads, every_s
        self._running: TrainingProcesses | None = None
        self._checked = -math.inf

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.threads:
            # More threads than cores only wait on each other (152 tokens/s instead of
            # ~10,000 at threads=1000 on 2 cores).
            if self.threads > cores():
                print(
                    f"warning: threads={self.threads} is more than the {cores()} cores this "
                    f"process may use; using {cores()}",
                    file=sys.stderr,
                )
                self.threads = cores()
            torch.set_num_threads(self.threads)
        elif self._running is None:
            self._running = TrainingProcesses().__enter__()
            self._share()

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._running is not None and time.monotonic() - self._checked > self.every_s:
            self._share()

    def _share(self) -> None:
        self._checked = time.monotonic()
        threads = share_of_cores(self._running.count())
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._running is not None:
            self._running.__exit__()
            self._running = None

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self.teardown(trainer, pl_module, "")


class ValidateAtStart(L.Callback):
    """A full validation of the untrained model at step 0, before the first training
    step, so every curve starts where training starts. It replaces Lightning's sanity
    check (two batches, never logged) as the check that validation works before any
    time is spent training. A resumed run, already past step 0, does not repeat it."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_step > 0:
            return
        # As Lightning's training loop runs a validation between two steps.
        trainer.validating = True
        trainer.fit_loop.epoch_loop.val_loop.run()
        trainer.training = True


class TokensPerSecond(L.Callback):
    """Logs training throughput (tokens/s, optimisation time only) every batch."""

    def __init__(self) -> None:
        self.tokens = 0
        self.seconds = 0.0
        self._start: float | None = None

    def state_dict(self) -> dict[str, Any]:
        # Kept in checkpoints, so a resumed run reports the mean of its whole fit.
        return {"tokens": self.tokens, "seconds": self.seconds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tokens, self.seconds = int(state["tokens"]), float(state["seconds"])

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self._start is None:
            return
        elapsed = time.perf_counter() - self._start
        n = batch[0].numel() * trainer.world_size
        self.tokens += n
        self.seconds += elapsed
        pl_module.log("train/tokens_per_s", n / max(elapsed, 1e-9), on_step=True, prog_bar=True)

    @property
    def mean(self) -> float:
        """Tokens per second over the whole fit so far."""
        return self.tokens / self.seconds if self.seconds else 0.0


def _floats(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    out = {}
    for k, v in metrics.items():
        if k.startswith(prefix):
            v = float(v.item() if isinstance(v, torch.Tensor) else v)
            out[k] = v if math.isfinite(v) else None
    return out


class MetricsJSON(L.Callback):
    """Writes ``metrics.json`` at the end of fit: final and best validation metrics,
    epochs, steps, wall time, parameters, throughput and checkpoint paths.

    It owns "best": the validation with the lowest ``monitor`` (after at least one step),
    logged to every logger at every validation under ``best_key`` tags. The validation
    of the untrained model (step 0) is kept apart as ``initial``.
    """

    def __init__(self, path: str | os.PathLike, monitor: str = "val/loss") -> None:
        self.path = Path(path)
        self.monitor = monitor
        self.best: dict[str, float] = {}
        self.best_epoch: int | None = None
        self.initial: dict[str, float] = {}
        self.history: list[dict[str, float]] = []
        # The training loss since the previous validation, summed per batch; each
        # history entry records its mean beside the validation metrics.
        self.train_loss = [0.0, 0]
        self._t0 = time.perf_counter()
        self._earlier_s = 0.0  # wall time of the fits this run was resumed from
        self.stopped: dict[str, Any] | None = None  # the signal and step a stop came at

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t0 = time.perf_counter()

    @property
    def wall_time_s(self) -> float:
        """Seconds of fitting so far, earlier (resumed-from) fits included."""
        return self._earlier_s + time.perf_counter() - self._t0

    def state_dict(self) -> dict[str, Any]:
        # Kept in checkpoints, so a resumed run reports its whole history and time.
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "initial": self.initial,
            "history": self.history,
            "train_loss": self.train_loss,
            "wall_time_s": self.wall_time_s,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = dict(state["best"]), state["best_epoch"]
        self.initial = dict(state.get("initial", {}))
        self.history = [dict(h) for h in state["history"]]
        self.train_loss = list(state.get("train_loss", [0.0, 0]))
        self._earlier_s = float(state.get("wall_time_s", 0.0))

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        loss = trainer.callback_metrics.get("train/loss")  # the global batch's, under DDP
        if loss is not None and math.isfinite(float(loss)):
            self.train_loss[0] += float(loss)
            self.train_loss[1] += 1

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        val = _floats(trainer.callback_metrics, "val/")
        if self.monitor not in val or val[self.monitor] is None:
            return
        if trainer.state.fn == TrainerFn.FITTING and trainer.global_step == 0:
            # The untrained model (ValidateAtStart): a starting point, never the best.
            self.initial = {"step": 0, **val}
            return
        total, batches = self.train_loss
        train = {"train/loss": total / batches} if batches else {}
        self.train_loss = [0.0, 0]
        self.history.append(
            {"epoch": trainer.current_epoch, "step": trainer.global_step, **train, **val}
        )
        if not self.best or val[self.monitor] < self.best[self.monitor]:
            self.best, self.best_epoch = val, trainer.current_epoch
        best = {
            best_key(name, mode): self.best[metric_key(name, mode)]
            for name in ("loss", "bpc")
            for mode in MODES
            if self.best.get(metric_key(name, mode)) is not None
        }
        for logger in trainer.loggers:
            logger.log_metrics(best, step=trainer.global_step)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        ckpt = trainer.checkpoint_callback
        self.write(
            trainer,
            pl_module,
            best=getattr(ckpt, "best_model_path", "") or None,
            last=getattr(ckpt, "last_model_path", "") or None,
        )

    @rank_zero_only
    def write(
        self, trainer: L.Trainer, pl_module: L.LightningModule, best: str | None, last: str | None
    ) -> None:
        """Write ``metrics.json`` now (the end of fit, or of a counting pass).

        Checkpoint paths are written relative to the run directory, so a run directory that
        is copied or moved still names its own checkpoints.
        """
        throughput = next((c for c in trainer.callbacks if isinstance(c, TokensPerSecond)), None)
        model = getattr(pl_module, "model", pl_module)
        payload = {
            "final": self.history[-1] if self.history else {},
            # (empty when no validation followed step 0: no best yet)
            "best": {"epoch": self.best_epoch, **self.best} if self.best else {},
            "initial": self.initial,
            "history": self.history,
            "epochs": trainer.current_epoch,
            "steps": trainer.global_step,
            "wall_time_s": round(self.wall_time_s, 2),
            "train_tokens_per_s": round(throughput.mean, 1)
            if throughput and throughput.mean
            else None,
            "parameters": count_parameters(pl_module),
            "threads": torch.get_num_threads(),
            "model": dict(pl_module.hparams.get("model", {})),
            "data": trainer.datamodule.stats() if hasattr(trainer.datamodule, "stats") else {},
            "tokenizer": {
                k: v
                for k, v in pl_module.hparams.get("tokenizer", {}).items()
                if k != "char_lengths"
            },
            "checkpoints": {"best": self._relative(best or last), "last": self._relative(last)},
            "overfitting_onset": overfitting_onset(self.history, self.monitor),
            "early_stopped_epoch": (
                trainer.early_stopping_callback.stopped_epoch
                if trainer.early_stopping_callback is not None
                and trainer.early_stopping_callback.stopped_epoch
                else None
            ),
        }
        if hasattr(model, "num_ngrams"):
            payload["ngrams"] = model.num_ngrams
        if self.stopped is not None:  # (gm.training.preemption): resumable, not finished
            payload["stopped"] = self.stopped
        write_json_atomic(self.path, payload)

    def _relative(self, path: str | None) -> str | None:
        return os.path.relpath(path, self.path.parent) if path else None


class LossByPosition(L.Callback):
    """After every validation: the loss-by-position curves of the three modes as
    ``loss_by_position.json`` and ``.png`` in the run directory and a TensorBoard figure."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)

    @rank_zero_only
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        curves = getattr(pl_module, "loss_by_position", None)
        if trainer.sanity_checking or not curves or len(next(iter(curves.values()))) < 2:
            return
        from gm.figures import loss_by_position_figure, save

        record = getattr(pl_module, "record", None)
        model = (record and record.model_name) or type(pl_module.model).__name__
        run = "/".join(self.directory.parts[-2:])
        untrained = trainer.state.fn == TrainerFn.FITTING and trainer.global_step == 0
        when = "untrained" if untrained else f"epoch {trainer.current_epoch + 1}"
        title = f"{model} · {run} · step {trainer.global_step} ({when})"
        payload = {
            "epoch": trainer.current_epoch,  # (Lightning's index, from 0; the title's from 1)
            "step": trainer.global_step,
            "title": title,
            "curves": curves,
        }
        write_json_atomic(self.directory / "loss_by_position.json", payload)
        for logger in trainer.loggers:
            if hasattr(logger.experiment, "add_figure"):  # TensorBoard
                fig = loss_by_position_figure(curves, title)
                logger.experiment.add_figure("val/loss_by_position", fig, trainer.global_step)
        save(loss_by_position_figure(curves, title), self.directory / "loss_by_position.png")
