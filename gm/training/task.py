"""The LightningModule: truncated BPTT with carried state, and validation in three modes.

State lives on the module, one per purpose: ``train_state`` is carried from batch to
batch of the training streams, ``val_states`` (one per mode) across the validation
streams. Neither touches the other, so the sanity check and mid-epoch validation leave
training exactly where it was.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from torch import Tensor
from torch.nn import functional as F

from gm.data.streams import epoch_batches, rank_rows
from gm.errors import UserError
from gm.evaluation import eval_modes, mode_nll, warmed_up
from gm.metrics import LanguageModelMetrics
from gm.models import build_model
from gm.modes import MODES
from gm.run import RunRecord
from gm.state import State, detach_state, map_state, select_state, state_tensors, state_to
from gm.training.rng import rng_state, set_rng_state
from gm.training.schedule import warmup_cosine

# torch.compile's modes; reduce-overhead also replays the step as a CUDA graph on a GPU.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def widen(t: Tensor) -> Tensor:
    """``t`` in fp32 when it is a 16-bit float; any other tensor as it is."""
    return t.float() if t.is_floating_point() and t.element_size() < 4 else t


class LanguageModelTask(L.LightningModule):
    """Trains any model with the one interface on stream batches ``(inputs, targets)``."""

    def __init__(
        self,
        model: dict[str, Any],
        optimizer: dict[str, Any],
        scheduler: dict[str, Any],
        tokenizer: dict[str, Any],
        carry_state: bool = True,
        seq_len: int | None = None,
        compile: bool | str = False,
        chunk_lens: list[int] | None = None,
        record: RunRecord | None = None,
    ) -> None:
        super().__init__()
        # Plain containers only, so checkpoints load with ``weights_only=True``.
        # ``record`` (the tokenizer itself, corpus identity, seed) goes into checkpoints,
        # not hparams.
        # Named, not collected from the frame, so a wrapped constructor records the same.
        # Not sent to the loggers: train() logs the settings a reader compares runs by.
        self.save_hyperparameters(
            {
                "model": model,
                "optimizer": optimizer,
                "scheduler": scheduler,
                "tokenizer": tokenizer,
                "carry_state": carry_state,
                "seq_len": seq_len,
                "compile": compile,
                "chunk_lens": list(chunk_lens or []),
            },
            logger=False,
        )
        self.record = record or RunRecord()
        self.model = build_model(model)
        self.carry_state = carry_state
        # compile=true (or a torch.compile mode): training steps run a compiled model
        # (minutes to compile, then faster). Shapes are fixed and the state is always a
        # tensor, so it compiles once; validation and generation stay eager. Kept out of
        # the module tree: it shares the model's parameters and must not appear twice in
        # checkpoints.
        self.__dict__["_compiled_model"] = self._compiled(compile) if compile else None
        char_lengths = torch.tensor(tokenizer["char_lengths"], dtype=torch.long)
        self.register_buffer("char_lengths", char_lengths, persistent=False)
        # The three modes, and the chunk mode at every other eval.chunk_len.
        self.modes = eval_modes(chunk_lens or (), seq_len)
        self.val_metrics = torch.nn.ModuleDict(
            {m: LanguageModelMetrics(seq_len or 0) for m in self.modes}
        )
        # Mean validation loss at each position of a chunk (+ the mean), per mode; set
        # by every validation and read by the LossByPosition callback.
        self.loss_by_position: dict[str, list[float]] = {}
        self.train_state: State | None = None
        self.val_states: dict[str, State | None] = {}
        self._resume_rng: dict[str, Any] | None = None

    @property
    def train_model(self) -> torch.nn.Module:
        """The model training steps call: compiled when asked, else the model itself."""
        compiled = self.__dict__["_compiled_model"]
        return self.model if compiled is None else compiled

    def _compiled(self, mode: bool | str) -> torch.nn.Module:
        if not hasattr(self.model, "initial_state"):
            raise UserError("compile=true needs a recurrent model (RNN, GRU or LSTM)")
        if mode is not True and mode not in COMPILE_MODES:
            raise UserError(
                f"compile={mode} is not a torch.compile mode; use true or one of "
                f"{', '.join(COMPILE_MODES)}"
            )
        # Where the kernels are cached is the caller's choice (gm.runtime.cache_compiled_kernels).
        return torch.compile(self.model, dynamic=False, mode=None if mode is True else mode)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # A checkpoint alone is enough to generate: it carries its tokenizer. For an exact
        # resume it also carries the training state and every random generator.
        checkpoint["gm"] = self.record.to_payload() | {
            "train_state": map_state(widen, state_to(self._global_train_state(), "cpu")),
            "rng": rng_state(),
        }
        # Weights are stored in fp32 whatever the precision (bf16-true trains bf16
        # parameters), so every checkpoint loads, resumes and exports alike.
        checkpoint["state_dict"] = {k: widen(v) for k, v in checkpoint["state_dict"].items()}

    def _global_train_state(self) -> State | None:
        """The carried state of every stream of the global batch.

        State: under DDP each process carries only its own rows, so the checkpoint (written
        by rank 0, assembled on every rank) gathers them, in rank order like the rows.
        """
        world = self.trainer.world_size if self._trainer is not None else 1
        if world == 1 or self.train_state is None:
            return self.train_state
        return map_state(lambda t: self.all_gather(t).flatten(0, 1), self.train_state)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("gm") or {}
        # State: a resumed run continues the streams from the state it was saved with
        # (this process's rows of it and on the model's device: see on_train_start).
        self.train_state = saved.get("train_state")
        self._resume_rng = saved.get("rng")

    def on_train_start(self) -> None:
        # State: a restored training state joins the model on its device; under DDP each
        # process keeps the rows of the streams it owns (any number of processes).
        if self.train_state is not None and self.trainer.world_size > 1:
            rows = rank_rows(
                state_tensors(self.train_state)[0].shape[0],
                self.trainer.global_rank,
                self.trainer.world_size,
            )
            self.train_state = select_state(self.train_state, rows)
        self.train_state = state_to(self.train_state, self.device)
        # Restored here, after Lightning's own set-up, right before the next step draws.
        if self._resume_rng is not None:
            set_rng_state(self._resume_rng)
            self._resume_rng = None

    def forward(self, tokens: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        return self.model(tokens, state)

    # --- training -------------------------------------------------------------------

    def on_train_epoch_start(self) -> None:
        # State: every epoch starts the training streams from zeros.
        self.train_state = None

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        # State: contiguous streams continue from the previous batch; random windows
        # are unrelated to it and start from zeros.
        state = self.train_state if self.carry_state else None
        if state is None and self.train_model is not self.model:
            # State: the zero state as a tensor, so the compiled graph never sees None.
            state = self.model.initial_state(x.shape[0])
        logits, state = self.train_model(x, state)
        if self.carry_state:
            # State: keep the values for the next batch, cut the graph at the chunk
            # boundary (truncated BPTT). A CUDA-graph replay (compile=reduce-overhead)
            # reuses its output memory, so a compiled step's state is copied out of it.
            state = detach_state(state)
            compiled = self.train_model is not self.model
            self.train_state = map_state(torch.clone, state) if compiled else state
        loss = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
        if not torch.isfinite(loss):
            self._stop(f"the training loss is {loss.item()}")
        # Under DDP, the mean over processes: the loss of the whole (global) batch.
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=False, sync_dist=True)
        # "step" is the x value Lightning logs the other values at: the optimizer steps
        # taken before they were measured, as in metrics.json and the figures. Without it
        # validation lands one step early and an "epoch" series joins every log.
        self.log("step", float(self.global_step), on_step=True, on_epoch=False)
        return loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        if grads:  # before the Trainer clips, so the curve shows what clipping acts on
            norm = torch.nn.utils.get_total_norm(grads)
            if not torch.isfinite(norm):
                self._stop(f"the gradient norm is {norm.item()}")
            self.log("train/grad_norm", norm, on_step=True)

    def _stop(self, what: str) -> None:
        """NaN guard: end the run before a non-finite value reaches the weights."""
        raise UserError(
            f"stopped at step {self.global_step}: {what}; the last good checkpoint is kept "
            "(lower optimizer.lr, or debug with trainer.detect_anomaly=true)"
        )

    # --- validation -----------------------------------------------------------------

    def on_validation_epoch_start(self) -> None:
        # State: the validation streams start on every pass from zeros, or from the state
        # the text before each stream leaves (eval.warmup).
        warmup = getattr(self.trainer.val_dataloaders, "warmup", None)
        self.val_states = {"stateful": warmed_up(self.model, warmup)}

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        chars = self.char_lengths[y].sum()
        for mode, metric in self.val_metrics.items():
            # State: the stateful mode carries it across the validation streams, a chunk
            # mode across the batches one of its windows spans.
            seq_len = self.hparams.seq_len or x.shape[1]  # (a last chunk is shorter)
            nll, state = mode_nll(
                self.model, x, y, mode, self.val_states.get(mode), batch_idx * seq_len, seq_len
            )
            self.val_states[mode] = state
            metric.update(nll, chars)

    def on_validation_epoch_end(self) -> None:
        self.loss_by_position = {}
        if self.trainer.sanity_checking:
            # Two batches' worth: a check that validation runs, not a number to show.
            for metric in self.val_metrics.values():
                metric.reset()
            return
        for mode, metric in self.val_metrics.items():
            suffix = "" if mode == "stateful" else f"_{mode}"
            for name, value in metric.compute().items():
                # val/loss is the stateful loss; the other modes carry a suffix.
                key = f"val/{name}{suffix}"
                # compute() already reduced the sums across DDP processes, so every process
                # logs the same value; sync_dist averages equal values, and says so.
                self.log(key, value, prog_bar=name == "loss" and mode in MODES, sync_dist=True)
            if mode in MODES:  # (positions count from a chunk-mode reset every T tokens)
                self.loss_by_position[mode] = metric.loss_by_position()
            metric.reset()
        self.log("step", float(self.global_step))  # (see training_step)

    # --- optimisation ---------------------------------------------------------------

    def _total_steps(self) -> int:
        """Optimizer steps in the whole fit, for the schedule.

        Not ``trainer.estimated_stepping_batches``: it sets the training loader up before a
        resumed checkpoint is restored, and Lightning then never restores the loader's
        position, so a run resumed mid-epoch would repeat the epoch's first batches.
        """
        trainer = self.trainer
        if trainer.max_steps > 0:
            return trainer.max_steps
        batches = epoch_batches(
            len(trainer.datamodule.train_dataloader()), trainer.limit_train_batches
        )
        # An epoch's last, incomplete accumulation still steps the optimizer.
        per_epoch = math.ceil(batches / trainer.accumulate_grad_batches)
        return max(1, per_epoch * trainer.max_epochs)

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = instantiate(self.hparams.optimizer)(self.parameters())
        sched = self.hparams.scheduler
        scheduler = warmup_cosine(
            optimizer,
            total_steps=self._total_steps(),
            warmup_steps=int(sched.get("warmup_steps", 0)),
            min_lr_ratio=float(sched.get("min_lr_ratio", 0.0)),
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": "train/lr"},
        }
