"""``resume=RUN_DIR`` continues the run as it was started.

The run's recorded command line (``.hydra/overrides.yaml``) is composed again, the overrides
given now applied on top of it (each change printed), and the corpus the run read is used
again when the command does not name one. A change that would make the continuation
another experiment is refused: the seed here, the model and the data recipe when the
checkpoint is compared with the config (``gm.training.train.check_compatible``).
"""

from __future__ import annotations

from pathlib import Path

from hydra import compose
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict

from gm.artifacts import read_checkpoint
from gm.errors import UserError
from gm.run import Run, RunRecord

# Keys a resume never takes from the recorded command line: they say where to resume.
_WHERE = ("resume", "ckpt_path")


def _key(parser: OverridesParser, override: str) -> str:
    return parser.parse_override(override).key_or_group


def restore_recipe(cfg: DictConfig, given: list[str]) -> tuple[DictConfig, list[str]]:
    """The config of the run ``cfg.resume`` names, with the overrides ``given`` on this
    command line on top; and one line for each override that changes the recorded recipe.

    A run without a recorded command line (trained outside ``train.py``) keeps ``cfg``.
    """
    if not isinstance(cfg.resume, str):  # refused with its sentence by train's settings check
        return cfg, []
    run = Run(cfg.resume)
    if run.config() is None:
        return cfg, []
    parser = OverridesParser.create()
    recorded = {_key(parser, o): o for o in run.overrides() if _key(parser, o) not in _WHERE}
    merged, changes = dict(recorded), []
    for override in given:
        key = _key(parser, override)
        if key in _WHERE or recorded.get(key) == override:
            continue
        was = recorded.get(key) or _recorded_value(run, key)
        if key in ("seed", "train_seed"):
            raise UserError(
                f"{run.path} was trained with {was}; a resume continues its random draws, "
                f"so a new {key} is a new run (train one into a new hydra.run.dir)"
            )
        changes.append(f"resuming with {override} instead of {was}")
        merged[key] = override
    try:
        restored = compose("train", overrides=[*merged.values(), f"resume={cfg.resume}"])
    except Exception as e:  # Hydra's refusal of an override, as one sentence
        reason = str(e).strip().splitlines()[0]
        raise UserError(f"cannot compose the run's recorded config again: {reason}") from e
    if restored.data.get("path") is None and "data.path" not in merged:
        # The corpus the run read (found or downloaded then): read it again, not the net.
        corpus = _recorded_corpus(run)
        if corpus is not None:
            with open_dict(restored):
                restored.data.path = corpus
    return restored, changes


def _recorded_value(run: Run, key: str) -> str:
    value = OmegaConf.select(OmegaConf.create(run.config() or {}), key, default=None)
    return f"{key}={value}"


def _recorded_corpus(run: Run) -> str | None:
    if not run.last.is_file():
        return None
    path = RunRecord.from_payload(read_checkpoint(run.last).get("gm")).corpus.get("path")
    return str(path) if path and Path(path).is_file() else None
