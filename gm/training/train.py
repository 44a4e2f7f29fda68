"""One training run: compose the pieces a config names and fit them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from gm.artifacts import find_checkpoint, is_bundle, load_checkpoint, read_checkpoint, write_bundle
from gm.data.datamodule import TextDataModule
from gm.data.tokenizer import describe
from gm.errors import UserError
from gm.runtime import cache_compiled_kernels, keep_freed_memory
from gm.training.callbacks import MetricsJSON
from gm.training.distributed import check_launcher, is_global_zero
from gm.training.task import LanguageModelTask


def _plain(cfg: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(cfg, resolve=True)


def _instantiate_group(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a ``callbacks`` or ``logger`` group (null entries skipped)."""
    if not group:
        return []
    return [instantiate(spec) for spec in group.values() if spec is not None]


def train(cfg: DictConfig, model_name: str = "") -> dict[str, Any]:
    """Train the model ``cfg`` describes; return the contents of the run's ``metrics.json``.

    ``model_name`` is the ``model=`` choice the config was composed with (e.g.
    ``astra_alpha``), kept with the model so that reports can name it.
    """
    check_config(cfg)
    if cfg.get("keep_freed_memory", True):
        keep_freed_memory()
    if cfg.get("compile"):
        cache_compiled_kernels()  # before the task compiles its model
    ckpt_path = resume_checkpoint(cfg)
    run_dir = Path(cfg.paths.output_dir)
    if not cfg.get("resume") and (
        (run_dir / "checkpoints").exists() or (run_dir / "metrics.json").exists()
    ):
        raise UserError(
            f"{run_dir} already holds a training run; resume=RUN_DIR continues it, "
            "or choose a new hydra.run.dir"
        )
    run_dir.mkdir(parents=True, exist_ok=True)

    datamodule = TextDataModule(data_dir=cfg.paths.data_dir, seed=cfg.seed, **_plain(cfg.data))
    tokenizer = datamodule.prepare()
    if is_global_zero():  # DDP: the processes Lightning launches share this run directory
        tokenizer.save(run_dir)

    # The vocabulary size comes from the tokenizer; a typed-in one must agree with it.
    model_cfg = _plain(cfg.model)
    if model_cfg.get("vocab_size") not in ("???", None, tokenizer.vocab_size):
        raise UserError(
            f"model.vocab_size={model_cfg['vocab_size']} but the tokenizer has "
            f"{tokenizer.vocab_size} tokens; leave model.vocab_size unset"
        )
    model_cfg["vocab_size"] = tokenizer.vocab_size
    if ckpt_path is not None:
        check_compatible(ckpt_path, model_cfg, tokenizer.fingerprint)
    L.seed_everything(cfg.seed, workers=True)  # before the weights are initialised
    task = LanguageModelTask(
        model=model_cfg,
        optimizer=_plain(cfg.optimizer),
        scheduler=_plain(cfg.scheduler),
        tokenizer=describe(tokenizer),
        carry_state=bool(cfg.data.carry_state),
        seq_len=int(cfg.data.seq_len),
        compile=cfg.get("compile") or False,
        extra={
            "tokenizer": tokenizer.to_state(),
            "corpus": {"path": str(datamodule.corpus.path), "sha256": datamodule.corpus.sha256},
            "model_name": model_name,
        },
    )

    trainer: L.Trainer = instantiate(
        cfg.trainer,
        callbacks=_instantiate_group(cfg.get("callbacks")),
        logger=_instantiate_group(cfg.get("logger")) or False,
    )
    check_launcher(trainer)
    if getattr(task.model, "count_based", False):
        count(task, trainer, datamodule, run_dir)
    else:
        trainer.fit(task, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)

    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    if trainer.is_global_zero and (run_dir / "checkpoints").is_dir():
        export(run_dir, metrics)
    return metrics


def check_config(cfg: DictConfig) -> None:
    """Refuse values no run can use, each with one sentence."""
    positive = {
        "optimizer.lr": cfg.optimizer.get("lr"),
        "data.batch_size": cfg.data.get("batch_size"),
        "data.seq_len": cfg.data.get("seq_len"),
    }
    for key, value in positive.items():
        if not isinstance(value, (int, float)) or value <= 0:
            raise UserError(f"{key} must be a positive number, got {value!r}")
    if cfg.optimizer.get("weight_decay", 0) < 0:
        raise UserError(f"optimizer.weight_decay must be >= 0, got {cfg.optimizer.weight_decay}")
    eps = cfg.optimizer.get("eps", 1e-8)  # torch.optim.AdamW's default
    if str(cfg.trainer.get("precision")) == "16-true" and eps < torch.finfo(torch.float16).tiny:
        # fp16 parameters give fp16 optimizer state: such an eps is 0 there, and the
        # first step divides by zero.
        raise UserError(
            f"trainer.precision=16-true keeps AdamW's state in fp16, where eps={eps} "
            "underflows to 0; use 16-mixed or bf16-true, or add +optimizer.eps=1e-4"
        )
    epochs, steps = cfg.trainer.get("max_epochs"), cfg.trainer.get("max_steps", -1)
    if (epochs is None or epochs < 1) and (steps is None or steps <= 0):
        raise UserError(
            f"trainer.max_epochs must be at least 1 (or set trainer.max_steps), got {epochs}"
        )


def check_compatible(ckpt_path: str, model_cfg: dict[str, Any], fingerprint: str) -> None:
    """A checkpoint to resume must hold this model, over this vocabulary."""
    ckpt = read_checkpoint(Path(ckpt_path))
    saved = ckpt["hyper_parameters"]
    if saved.get("tokenizer", {}).get("fingerprint") != fingerprint:
        raise UserError(
            f"{ckpt_path} was trained on another vocabulary; resume it with the data= "
            "settings and corpus it was trained on"
        )
    if dict(saved.get("model", {})) != model_cfg:
        raise UserError(
            f"{ckpt_path} holds another model ({saved.get('model')}); resume it with the "
            "model= and model.* settings it was trained with (see the run's "
            ".hydra/overrides.yaml)"
        )


def resume_checkpoint(cfg: DictConfig) -> str | None:
    """The checkpoint to continue from: ``resume=RUN_DIR``'s last one or ``ckpt_path``.

    Asking to resume where there is nothing to resume is an error, never a fresh start.
    """
    if cfg.get("resume"):
        if cfg.get("ckpt_path"):
            raise UserError("give resume=RUN_DIR or ckpt_path=FILE, not both")
        last = Path(cfg.resume) / "checkpoints" / "last.ckpt"
        if not last.is_file():
            raise UserError(f"resume={cfg.resume} has no checkpoints/last.ckpt to continue from")
        return str(last)
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path is not None and not Path(ckpt_path).is_file():
        raise UserError(f"ckpt_path={ckpt_path} is not a checkpoint file")
    return ckpt_path


def count(
    task: LanguageModelTask, trainer: L.Trainer, datamodule: TextDataModule, run_dir: Path
) -> None:
    """Train a count-based model: one counting pass over the training ids replaces the
    optimisation loop; then one validation, one checkpoint and ``metrics.json``."""
    datamodule.setup("fit")
    task.model.fit(datamodule.train_ids)
    trainer.validate(task, datamodule=datamodule, verbose=False)
    path = run_dir / "checkpoints" / "last.ckpt"
    trainer.save_checkpoint(path)
    for callback in trainer.callbacks:
        if isinstance(callback, MetricsJSON):
            callback.write(trainer, task, best=str(path), last=str(path))


def export(run_dir: Path, metrics: dict[str, Any]) -> Path:
    """Write the run's best checkpoint as a bundle into ``<run>/export``."""
    summary = {k: metrics.get(k) for k in ("best", "epochs", "steps", "parameters")}
    if is_bundle(run_dir / "export"):  # a resumed run replaces its own earlier bundle
        shutil.rmtree(run_dir / "export")
    return write_bundle(load_checkpoint(find_checkpoint(run_dir)), run_dir / "export", summary)
