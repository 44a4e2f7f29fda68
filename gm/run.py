"""A training run's directory: the one owner of its layout and of what it recorded.

    .hydra/config.yaml     the composed config (gm writes it once the run's checks pass)
    .hydra/overrides.yaml  the command line's overrides; resumes.yaml those of each resume
    checkpoints/           last.ckpt and the best ones
    metrics.json           the run's summary and validation history
    export/                the bundle of the best checkpoint

Everything else that reads a run (training's resume, the study, the report, generation,
export) asks ``Run`` where a file is and what was recorded, instead of working it out
again. The recorded YAML is read as plain data, never resolving an interpolation.

``RunRecord`` is what training records of a run in every checkpoint (its ``gm`` payload)
and every bundle (its ``config.yaml``): written once, by training, and read back typed.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from gm.settings import Setting

RECORD_DIR = ".hydra"
CHECKPOINTS = "checkpoints"
METRICS = "metrics.json"
EXPORT = "export"
FAILED = "failed.json"  # a sweep job that raised (gm.runs.sweep)
# The file each kind of tokenizer saves into the run (and a bundle), by its ``kind``.
TOKENIZER_FILES = {"char": "tokenizer.json", "sentencepiece": "tokenizer.model"}
LOG_DIRS = ("tensorboard", "csv")  # where runs of earlier gm versions logged
# What any training run leaves in its directory: one of them makes the directory a run.
RUN_MARKERS = (RECORD_DIR, CHECKPOINTS, METRICS, FAILED, *TOKENIZER_FILES.values(), *LOG_DIRS)
# Overrides that say where a run was resumed from or read its text, not what it trained.
_WHERE = ("data.path", "resume", "ckpt_path")
# The training summary every bundle carries (the automatic one and python -m gm.export's).
SUMMARY_KEYS = ("best", "epochs", "steps", "parameters")


def count_parameters(model: nn.Module) -> int:
    """The trainable parameters of ``model``: the one count every table and record uses."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@dataclass
class RunRecord:
    """The facts of one run that every tool reading its checkpoints or bundles needs.

    Plain containers only, so that a checkpoint holding it loads with
    ``torch.load(weights_only=True)``. Runs recorded before a field existed read it as its
    default (``None`` or empty): every reader treats that as "not recorded".
    """

    model_name: str = ""  # the model= config it was trained from (e.g. astra_alpha)
    tokenizer: dict[str, Any] = field(default_factory=dict)  # Tokenizer.to_state()
    corpus: dict[str, Any] = field(default_factory=dict)  # path, sha256, encoding
    # batch_size, seq_len, carry_state and the character range of each split
    # ("splits": [[start, end], ...], training first)
    data: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None  # the initial weights'
    train_seed: int | None = None  # what training drew after them; None: it followed seed
    precision: str | None = None
    overrides: list[str] = field(default_factory=list)  # the command line's, as typed

    def to_payload(self) -> dict[str, Any]:
        """The record as plain data (a checkpoint's ``gm`` payload, a bundle's config)."""
        return asdict(self)

    @classmethod
    def from_payload(cls, payload: Any) -> RunRecord:
        """The record in ``payload``; keys it does not know are ignored, missing ones are
        defaults. A payload of the wrong kind reads as an empty record."""
        if not isinstance(payload, dict):
            return cls()
        # A value of another kind (an edited or foreign file) reads as not recorded.
        known = {
            f.name: payload[f.name]
            for f in fields(cls)
            if isinstance(payload.get(f.name), _KINDS[f.name])
            and not isinstance(payload.get(f.name), bool)
        }
        record = cls(**known)
        # Older checkpoints stored splits as tuples; one form for every comparison.
        splits = record.data.get("splits")
        if isinstance(splits, (list, tuple)):
            splits = [list(b) if isinstance(b, tuple) else b for b in splits]
            record.data = {**record.data, "splits": splits}
        # Inside corpus and data, too, a value of another kind reads as not recorded.
        for name, table in _NESTED.items():
            recorded = getattr(record, name)
            kept = {k: v for k, v in recorded.items() if k not in table or table[k].accepts(v)}
            setattr(record, name, kept)
        return record


_NESTED = {
    "corpus": {
        "path": Setting(str),
        "sha256": Setting(str, nullable=True),
        "encoding": Setting(str),
    },
    "data": {
        "batch_size": Setting(int, low=1),
        "seq_len": Setting(int, low=1),
        "carry_state": Setting(bool),
        "splits": Setting(list, item=Setting(list, length=2, item=Setting(int, low=0))),
    },
}
_KINDS = {
    "model_name": str,
    "tokenizer": dict,
    "corpus": dict,
    "data": dict,
    "seed": int,
    "train_seed": int,
    "precision": str,
    "overrides": list,
}


class Run:
    """The directory one training run writes into."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def last(self) -> Path:
        """The checkpoint a resume continues from."""
        return self.checkpoints / "last.ckpt"

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    @property
    def export_dir(self) -> Path:
        return self.path / EXPORT

    @property
    def record_dir(self) -> Path:
        return self.path / RECORD_DIR

    def holds_run(self) -> bool:
        """Whether a training run (or a sweep job, failed or not) wrote into the directory."""
        return self.path.is_dir() and any((self.path / m).exists() for m in RUN_MARKERS)

    def has_checkpoint(self) -> bool:
        """Whether the run has a checkpoint to load: a trained (or training) model."""
        return self.checkpoints.is_dir() and any(self.checkpoints.glob("*.ckpt"))

    def metrics(self) -> dict[str, Any]:
        """``metrics.json`` as a dict; empty while the run has none (or it is unreadable)."""
        try:
            metrics = json.loads(self.metrics_path.read_text())
        except (OSError, ValueError):
            return {}
        return metrics if isinstance(metrics, dict) else {}

    def failure(self) -> dict[str, Any] | None:
        """``failed.json`` (a sweep job that raised) as a dict; None when there is none."""
        try:
            failure = json.loads((self.path / FAILED).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {"error": f"{FAILED} is unreadable"}
        return failure if isinstance(failure, dict) else {"error": str(failure)}

    def summary(self) -> dict[str, Any]:
        """What a bundle of this run records of its training (``SUMMARY_KEYS``)."""
        metrics = self.metrics()
        return {k: metrics.get(k) for k in SUMMARY_KEYS}

    def config(self) -> dict[str, Any] | None:
        """The recorded composed config (``.hydra/config.yaml``), or None without one."""
        return _read_yaml(self.record_dir / "config.yaml", dict)

    def overrides(self) -> list[str]:
        """The overrides the run was started with (``.hydra/overrides.yaml``); [] when the
        file is missing or not a list of plain values."""
        overrides = _read_yaml(self.record_dir / "overrides.yaml", list) or []
        if not all(isinstance(o, (str, int, float, bool)) for o in overrides):
            return []
        return [str(o) for o in overrides]

    def model_choice(self) -> str:
        """The ``model=`` choice the run was composed with, or "" when it recorded none."""
        hydra = _read_yaml(self.record_dir / "hydra.yaml", dict) or {}
        try:
            return str(hydra["hydra"]["runtime"]["choices"].get("model") or "")
        except (KeyError, TypeError, AttributeError):
            return ""


def _read_yaml(path: Path, kind: type) -> Any:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None
    return data if isinstance(data, kind) else None


def job_order(path: Path) -> tuple[int, str]:
    """Sweep jobs (``<num>`` or ``<num>_<overrides>``) in number order: job 10 after job 9."""
    match = re.match(r"(\d+)(?:_|$)", path.name)
    return (int(match.group(1)) if match else sys.maxsize, path.name)


def override_key(override: str) -> str:
    """The key an override sets (``optimizer.lr`` of ``optimizer.lr=0.003``, ``model`` of
    ``model=rnn``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return OverridesParser.create().parse_override(override).key_or_group
    except Exception:  # not Hydra's syntax (an edited record): the text before "="
        return override.split("=", 1)[0]


def differing_overrides(recorded: list[list[str]]) -> list[list[str]]:
    """For each run's overrides, those whose key has another value (or none) in another
    run: what tells the runs apart (``optimizer.lr=0.003``). Paths and resumes are left
    out: where a run read its text or was resumed from is not what it trained."""
    keyed = [{override_key(o): o for o in run} for run in recorded]
    keys = {k for run in keyed for k in run} - set(_WHERE)
    differing = {k for k in keys if len({run.get(k) for run in keyed}) > 1}
    return [[o for k, o in run.items() if k in differing] for run in keyed]


def run_of(path: Path) -> Run:
    """The run a loaded path belongs to: the run itself, or the run of a checkpoint file
    (``<run>/checkpoints/x.ckpt``), or a bundle's folder standing for itself."""
    if path.is_file() and path.parent.name == CHECKPOINTS:
        return Run(path.parent.parent)
    return Run(path)
