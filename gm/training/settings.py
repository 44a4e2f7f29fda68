"""Every training setting gm reads itself, with its type and range (gm/settings.py checks).

Names that belong to a component with its own list of choices (a cell, a tokenizer, a
precision) are refused by that component; here they are only required to be text.
"""

from __future__ import annotations

from dataclasses import replace

from omegaconf import DictConfig

from gm.models import MODEL_SETTINGS
from gm.settings import SEED, Setting
from gm.training.task import COMPILE_MODES

_COUNT = Setting(int, low=1)  # sizes and counts: a positive integer
_PROBABILITY = Setting(float, low=0, high=1)

TRAIN_SETTINGS: dict[str, Setting] = {
    "seed": SEED,
    "train_seed": replace(SEED, nullable=True),
    "resume": Setting(str, nullable=True),
    "ckpt_path": Setting(str, nullable=True),
    "threads": Setting(int, low=1, nullable=True),
    "keep_freed_memory": Setting(bool),
    "compile": Setting(bool, choices=COMPILE_MODES, nullable=True),
    "paths.root_dir": Setting(str),
    "paths.data_dir": Setting(str),
    "paths.output_dir": Setting(str),
    "data.path": Setting(str, nullable=True),
    "data.source": Setting(str),
    "data.encoding": Setting(str),
    "data.splits": Setting(list, item=Setting(float, low=0, high=1, open_low=True)),
    "data.url": Setting(str, nullable=True),
    "data.sha256": Setting(str, nullable=True),
    "data.tokenizer": Setting(str),
    "data.batch_size": _COUNT,
    "data.seq_len": _COUNT,
    "data.carry_state": Setting(bool),
    "data.shuffle": Setting(bool, nullable=True),
    "data.vocab_size": Setting(int, low=2),
    "data.model_type": Setting(str),
    "data.byte_fallback": Setting(bool),
    # After data.*: eval.batch_size and eval.chunk_len follow data.batch_size and seq_len,
    # whose own names a bad value should be refused under.
    "eval.chunk_len": Setting(list, item=Setting(int, low=1)),
    "eval.batch_size": _COUNT,
    "eval.warmup": Setting(int, low=0),
    **{f"model.{key}": setting for key, setting in MODEL_SETTINGS.items()},
    "optimizer.lr": Setting(float, low=0, open_low=True),
    "optimizer.weight_decay": Setting(float, low=0),
    "optimizer.betas": Setting(list, length=2, item=Setting(float, low=0, high=1, open_high=True)),
    "optimizer.eps": Setting(float, low=0, open_low=True),
    "scheduler.warmup_steps": Setting(int, low=0),
    "scheduler.min_lr_ratio": _PROBABILITY,
    "trainer.max_epochs": Setting(int, low=-1, nullable=True),
    "trainer.max_steps": Setting(int, low=-1),
    "trainer.limit_train_batches": Setting(float, low=0, open_low=True, nullable=True),
    "trainer.limit_val_batches": Setting(float, low=0, open_low=True, nullable=True),
    "trainer.val_check_interval": Setting(float, low=0, open_low=True, nullable=True),
    "trainer.check_val_every_n_epoch": Setting(int, low=1, nullable=True),
    "trainer.num_sanity_val_steps": Setting(int, low=-1),
    "trainer.log_every_n_steps": _COUNT,
    "trainer.gradient_clip_val": Setting(float, low=0, nullable=True),
    "trainer.accumulate_grad_batches": _COUNT,
    "trainer.num_nodes": _COUNT,
    "trainer.detect_anomaly": Setting(bool),
    "callbacks.checkpoint.every_n_train_steps": Setting(int, low=1, nullable=True),
    "callbacks.share_cores.threads": Setting(int, low=1, nullable=True),
    "callbacks.share_cores.every_s": Setting(float, low=0),
    "callbacks.samples.tokens": _COUNT,
    "callbacks.samples.prompt_tokens": _COUNT,
    "callbacks.samples.temperature": Setting(float, low=0),
    "callbacks.samples.seed": SEED,
    "callbacks.samples.every": Setting(int, low=0),
    "callbacks.samples.lines": _COUNT,
}


def training_seed(cfg: DictConfig) -> int:
    """The seed of what training draws after the initial weights: ``train_seed``, or
    ``seed`` when it is null."""
    return int(cfg.seed if cfg.get("train_seed") is None else cfg.train_seed)
