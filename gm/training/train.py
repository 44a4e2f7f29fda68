"""One training run: compose the pieces a config names and fit them."""

from __future__ import annotations

import json
import os
import shutil
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.fabric.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, OmegaConf

from gm.artifacts import find_checkpoint, load_checkpoint, read_checkpoint, replace_bundle
from gm.atomic import write_json_atomic
from gm.config import task_overrides
from gm.data.datamodule import TextDataModule
from gm.data.streams import StreamBatches
from gm.data.tokenizer import describe
from gm.errors import UserError
from gm.evaluation import metric_key, scores
from gm.run import Run, RunRecord, count_parameters
from gm.runtime import cache_compiled_kernels, keep_freed_memory
from gm.settings import check_settings
from gm.training.callbacks import MetricsJSON
from gm.training.distributed import check_launcher, is_global_zero
from gm.training.preemption import StopOnSignal
from gm.training.run_dir import claim_run_dir, record_config
from gm.training.settings import TRAIN_SETTINGS, training_seed
from gm.training.task import LanguageModelTask
from gm.training.tensorboard import TAGS, TensorBoard, key_hparams, shown_hparams
from gm.training.terminal import silence_known_noise


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
    ``astra_alpha``), kept with the model so that reports can name it. Nothing in the run
    directory changes until every check has passed.
    """
    check_config(cfg)
    silence_known_noise()
    if cfg.get("keep_freed_memory", True):
        keep_freed_memory()
    if cfg.get("compile"):
        cache_compiled_kernels()  # before the task compiles its model
    ckpt_path = resume_checkpoint(cfg)
    run_dir = Path(cfg.paths.output_dir)
    resuming = bool(cfg.get("resume"))
    resumes = Path(cfg.resume) if resuming else None
    # DDP: the processes Lightning launches share the directory rank 0 has claimed.
    with claim_run_dir(run_dir, resumes) if is_global_zero() else nullcontext():
        try:
            return _train(cfg, model_name, run_dir, ckpt_path, resuming)
        except OSError as e:  # a full disk, a read-only or vanished directory
            raise UserError(refused_write(run_dir, e)) from e


def _train(
    cfg: DictConfig, model_name: str, run_dir: Path, ckpt_path: str | None, resuming: bool
) -> dict[str, Any]:
    evaluation = cfg.get("eval") or {}
    datamodule = TextDataModule(
        data_dir=cfg.paths.data_dir,
        seed=training_seed(cfg),
        eval_batch_size=evaluation.get("batch_size"),
        warmup=evaluation.get("warmup", 0),
        **_plain(cfg.data),
    )
    tokenizer = datamodule.prepare()

    # The vocabulary size comes from the tokenizer; a typed-in one must agree with it.
    model_cfg = _plain(cfg.model)
    if model_cfg.get("vocab_size") not in ("???", None, tokenizer.vocab_size):
        raise UserError(
            f"model.vocab_size={model_cfg['vocab_size']} but the tokenizer has "
            f"{tokenizer.vocab_size} tokens; leave model.vocab_size unset"
        )
    model_cfg["vocab_size"] = tokenizer.vocab_size
    data_shape = {
        "batch_size": cfg.data.batch_size,
        "seq_len": cfg.data.seq_len,
        "carry_state": cfg.data.carry_state,
        "splits": [list(bounds) for bounds in datamodule.bounds],
    }
    if ckpt_path is not None:
        check_compatible(ckpt_path, model_cfg, tokenizer.fingerprint, data_shape)
    if resuming:
        check_same_text(ckpt_path, datamodule.corpus)
    # The overrides as typed; a resume's are applied after the ones the run started with.
    overrides = task_overrides()
    if resuming:
        overrides = [*Run(run_dir).overrides(), *(o for o in overrides if not _is_resume(o))]
    trainer = build_trainer(cfg)
    L.seed_everything(cfg.seed, workers=True, verbose=False)  # the initial weights draw from `seed`
    task = LanguageModelTask(
        model=model_cfg,
        optimizer=_plain(cfg.optimizer),
        scheduler=_plain(cfg.scheduler),
        tokenizer=describe(tokenizer),
        carry_state=data_shape["carry_state"],
        seq_len=data_shape["seq_len"],
        compile=cfg.get("compile") or False,
        chunk_lens=list(cfg.eval.chunk_len) if cfg.get("eval") else None,
        record=RunRecord(
            model_name=model_name,
            tokenizer=tokenizer.to_state(),
            corpus={
                "path": str(datamodule.corpus.path),
                "sha256": datamodule.corpus.sha256,
                "encoding": datamodule.corpus.encoding,
            },
            data=data_shape,
            seed=int(cfg.seed),
            train_seed=None if cfg.get("train_seed") is None else int(cfg.train_seed),
            precision=str(cfg.trainer.get("precision")),
            overrides=overrides,
        ),
    )
    # The optimizer is built inside fit; build it once now so that its settings are
    # refused before anything is written.
    count_based = getattr(task.model, "count_based", False)
    if not count_based:  # (a count-based model has no optimizer)
        with refused_as_sentence("the optimizer settings"):
            instantiate(task.hparams.optimizer)(task.parameters())

    check_fit_settings(cfg, trainer, task, datamodule)

    # Every check has passed: only now does the run directory change.
    if is_global_zero():
        write_start(run_dir, tokenizer, cfg, resuming)
    parameters = count_parameters(task)
    hparams = key_hparams(cfg, model_name, parameters)
    for logger in trainer.loggers:  # (each writes on rank 0 only)
        if isinstance(logger, TensorBoard):  # the columns the command line varied come first
            logger.log_hyperparams(hparams, shown=shown_hparams(overrides))
        else:
            logger.log_hyperparams(hparams)
    # Everything training draws from here on (dropout; the windows draw from the data
    # module's own generator, seeded alike) follows `train_seed`, so that it and the initial
    # weights vary apart. A resume then restores the generators saved in its checkpoint.
    L.seed_everything(training_seed(cfg), workers=True, verbose=False)
    try:
        if count_based:
            count(task, trainer, datamodule, run_dir)
        else:
            trainer.fit(task, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except (MisconfigurationException, ValueError) as e:
        # A setting Lightning checks only once it runs (a ValueError of gm's own is a bug
        # and keeps its traceback).
        if not isinstance(e, MisconfigurationException) and not _raised_by_lightning(e):
            raise
        reason = str(e).strip().splitlines()[0]
        raise UserError(f"Lightning refused the settings: {reason}") from e

    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    if trainer.is_global_zero and (run_dir / "checkpoints").is_dir():
        test = datamodule.test_batches()
        if test is not None:  # held out until now: scored once, with the best weights
            metrics["test"] = score_test_split(run_dir, test)
            write_json_atomic(metrics_path, metrics)
        export(run_dir)
    return metrics


def write_start(run_dir: Path, tokenizer: Any, cfg: DictConfig, resuming: bool) -> None:
    """The run's first files: its tokenizer and its ``.hydra`` record. When the disk refuses
    them, a new run takes back what it wrote (the same command can run again there) and a
    resumed one is left as it was; either way the refusal is one sentence."""
    before = set(run_dir.iterdir()) if run_dir.is_dir() else set()
    try:
        tokenizer.save(run_dir)
        record_config(cfg, run_dir, resuming)
    except OSError as e:
        if not resuming:
            for path in set(run_dir.iterdir()) - before:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        left = "the run is as it was" if resuming else "nothing was left there"
        raise UserError(
            f"cannot write into {run_dir} ({e.strerror or e}); {left}: free some space, or "
            "choose another hydra.run.dir"
        ) from e


def refused_write(run_dir: Path, e: OSError) -> str:
    """The sentence for a write the disk refused: what to do next depends on what the run
    had written by then."""
    what = os.fsdecode(e.filename) if e.filename else f"into {run_dir}"
    if not run_dir.is_dir():
        return f"{run_dir} was removed while the run was writing into it; run it again"
    if not Run(run_dir).holds_run():
        return f"cannot write {what} ({e.strerror or e}): free some space and run it again"
    if Run(run_dir).last.is_file():
        return (
            f"cannot write {what} ({e.strerror or e}); the checkpoints written before are "
            f"intact: free some space, then continue with python train.py resume={run_dir}"
        )
    return (
        f"cannot write {what} ({e.strerror or e}); there is no checkpoint to resume yet: free "
        f"some space and start again in a new hydra.run.dir (or delete {run_dir})"
    )


def score_test_split(run_dir: Path, batches: StreamBatches) -> dict[str, dict[str, float]]:
    """The run's best checkpoint scored on the test split in the three modes."""
    trained = load_checkpoint(find_checkpoint(run_dir))
    char_lengths = torch.tensor(trained.tokenizer.char_lengths())
    return scores(trained.model, batches, char_lengths, trained.seq_len)


def build_trainer(cfg: DictConfig) -> L.Trainer:
    """The ``Trainer`` with the config's callbacks and loggers; a setting Lightning refuses
    is a ``UserError`` naming it."""
    with refused_as_sentence("the trainer, callbacks or logger settings"):
        trainer: L.Trainer = instantiate(
            cfg.trainer,
            # Not a config entry: a stop on a scheduler's signal is never switched off.
            callbacks=[*_instantiate_group(cfg.get("callbacks")), StopOnSignal()],
            logger=_instantiate_group(cfg.get("logger")) or False,
        )
        for logger in trainer.loggers:
            _ = logger.log_dir  # the path from its save_dir, name and version, built lazily
    check_launcher(trainer)
    return trainer


@contextmanager
def refused_as_sentence(what: str) -> Iterator[None]:
    """Turn a library's refusal of settings (Hydra cannot instantiate them, Lightning or
    torch rejects a value) into one ``UserError`` sentence."""
    try:
        yield
    except (InstantiationException, MisconfigurationException, ValueError, TypeError) as e:
        cause = e.__cause__ if isinstance(e, InstantiationException) and e.__cause__ else e
        if isinstance(cause, OSError):  # the disk, not the settings (train.log cannot open)
            raise cause from None
        reason = (str(cause).strip() or type(cause).__name__).splitlines()[0]
        raise UserError(f"{what} are refused: {reason}") from e


def _raised_by_lightning(error: BaseException) -> bool:
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and f"{os.sep}lightning{os.sep}" in frames[-1].filename


def check_config(cfg: DictConfig) -> None:
    """Refuse values no run can use, each with one sentence: every setting's type and range
    (``TRAIN_SETTINGS``), then the rules that join two settings."""
    check_settings(cfg, TRAIN_SETTINGS)
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


def check_fit_settings(
    cfg: DictConfig, trainer: L.Trainer, task: LanguageModelTask, datamodule: TextDataModule
) -> None:
    """The settings Lightning checks only once fit runs, checked before anything is
    written: what a callback monitors must be a metric the run logs, and an integer
    ``trainer.val_check_interval`` must fit in an epoch."""
    logged = {metric_key(n, mode) for n in ("loss", "bpc", "ppl") for mode in task.val_metrics}
    logged |= {tag for tag in TAGS if tag.startswith("train/")}
    for callback in trainer.callbacks:
        monitor = getattr(callback, "monitor", None)
        if isinstance(monitor, str) and monitor not in logged:
            shown = ", ".join(sorted(k for k in logged if k.startswith("val/"))[:6])
            raise UserError(
                f"the {type(callback).__name__} callback's monitor={monitor} is not a metric "
                f"gm logs; choose one such as {shown}"
            )
    interval = cfg.trainer.get("val_check_interval")
    if isinstance(interval, int) and not isinstance(interval, bool):
        limit = cfg.trainer.get("limit_train_batches")
        batches = len(datamodule.train_dataloader())
        if isinstance(limit, int) and not isinstance(limit, bool):
            batches = min(batches, limit)
        elif isinstance(limit, float):
            batches = int(batches * limit)
        if interval > batches and cfg.trainer.get("check_val_every_n_epoch", 1) is not None:
            raise UserError(
                f"trainer.val_check_interval={interval} is more than the {batches} training "
                f"batches of an epoch; use at most {batches}, or a fraction of the epoch "
                "such as 0.5"
            )


def _is_resume(override: str) -> bool:
    return override.lstrip("+~").split("=", 1)[0] == "resume"


def check_compatible(
    ckpt_path: str, model_cfg: dict[str, Any], fingerprint: str, data_shape: dict[str, Any]
) -> None:
    """A checkpoint to resume must hold this model, over this vocabulary, trained on
    batches of this shape in this regime (its carried state and loader position mean
    nothing for another)."""
    ckpt = read_checkpoint(Path(ckpt_path))
    saved = ckpt["hyper_parameters"]
    saved_shape = RunRecord.from_payload(ckpt.get("gm")).data or {"seq_len": saved.get("seq_len")}
    for key, value in data_shape.items():
        saved_value = saved_shape.get(key)
        if saved_value not in (None, value):
            raise UserError(
                f"{ckpt_path} was trained with data.{key}={saved_shape[key]}, not {value}; "
                f"resume it with data.{key}={saved_shape[key]}"
            )
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


def check_same_text(ckpt_path: str, corpus: Any) -> None:
    """A resumed run reads the text it trained on: a corpus changed in place (the same
    length and alphabet pass every other check) would mix two texts in one history."""
    recorded = RunRecord.from_payload(read_checkpoint(Path(ckpt_path)).get("gm")).corpus
    expected = recorded.get("sha256")
    if expected and expected != corpus.sha256:
        raise UserError(
            f"the text at {corpus.path} is not the one {ckpt_path} trained on (sha256 "
            f"{corpus.sha256[:12]}, trained on {expected[:12]}); resume it with the text it "
            f"trained on, or start a new run from its weights with ckpt_path={ckpt_path}"
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
    task.model.fit(torch.from_numpy(np.asarray(datamodule.train_ids, dtype=np.int64)))
    trainer.validate(task, datamodule=datamodule, verbose=False)
    path = run_dir / "checkpoints" / "last.ckpt"
    # A save of the full checkpoint; Lightning's "`weights_only` was not set" line here reads
    # like an unsafe load but is this save's (silenced: gm.training.terminal._NOISE).
    trainer.save_checkpoint(path)
    for callback in trainer.callbacks:
        if isinstance(callback, MetricsJSON):
            callback.write(trainer, task, best=str(path), last=str(path))


def export(run_dir: Path) -> Path:
    """Write the run's best checkpoint as a bundle into ``<run>/export``."""
    # A resumed run replaces its own earlier bundle; the old one stays until the new is whole.
    return replace_bundle(load_checkpoint(find_checkpoint(run_dir)), Run(run_dir).export_dir)
