"""SIGTERM and SIGUSR1, what schedulers send before they stop or preempt a job: the run
stops at the end of the current step with a checkpoint and says how to continue.

Lightning alone notes SIGTERM and stops only at the end of the epoch, with exit status 0,
no checkpoint of the steps since the last one and no ``metrics.json``. Here the run saves
``checkpoints/last.ckpt`` at the step it has reached (a signal during a validation takes
effect when that validation ends), writes ``metrics.json`` marked ``stopped``, and the
entry point exits with 128 + the signal's number (143 for SIGTERM, 138 for SIGUSR1), as a
shell reports a process a signal ended. ``python train.py resume=RUN_DIR`` continues it
exactly where it stopped.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

import lightning as L

from gm.errors import Interrupted
from gm.run import Run
from gm.training.callbacks import MetricsJSON

SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class StopOnSignal(L.Callback):
    """Stop the fit at the next step's end (or validation's end) after one of ``SIGNALS``,
    with a checkpoint of that step; ``Interrupted`` carries the message and exit status."""

    def __init__(self) -> None:
        self.received: int | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # In place of Lightning's handlers, which it installed just before this hook and
        # puts back (with whatever was there before) when the fit ends.
        for signum in SIGNALS:
            signal.signal(signum, self._note)

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum  # a signal handler only notes; the loop acts on it

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self._stop_if_signalled(trainer, pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._stop_if_signalled(trainer, pl_module)

    def _stop_if_signalled(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        received = self.received
        if trainer.world_size > 1:  # every process stops at the same step, or none does
            signalled = trainer.strategy.reduce_boolean_decision(received is not None, all=False)
            received = received or (signal.SIGTERM if signalled else None)
        if received is None:
            return
        run = Run(trainer.default_root_dir)
        trainer.save_checkpoint(run.last)  # the carried state and loader position included
        name = signal.Signals(received).name
        stopped = {"signal": name, "step": trainer.global_step}
        for callback in trainer.callbacks:
            if isinstance(callback, MetricsJSON):
                callback.stopped = stopped
                callback.on_fit_end(trainer, pl_module)
        raise Interrupted(
            f"{name} at step {trainer.global_step}, saved in {run.last}; "
            f"continue with: python train.py resume={run.path}",
            exit_code=128 + received,
        )
