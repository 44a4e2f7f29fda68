"""A run directory belongs to one training process at a time and keeps its own record.

``claim_run_dir`` takes an exclusive lock on the directory for the whole run (released
by the kernel when the process ends, however it ends), so two runs started at once with
the same ``hydra.run.dir`` cannot both write into it. ``record_config`` writes the
``.hydra/`` record itself, after every check has passed: Hydra's own copy would be
written before gm could refuse the run, over the record of the run already there.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gm.atomic import write_bytes_atomic
from gm.errors import UserError
from gm.run import RECORD_DIR, Run


class RunDirTaken(UserError):
    """The directory belongs to another run: a command refused for it writes nothing there."""


@contextmanager
def claim_run_dir(run_dir: Path, resumes: Path | None = None) -> Iterator[None]:
    """Hold ``run_dir`` for this process until the block ends.

    A new run (``resumes`` None) needs a directory without a run in it; a resumed run
    continues in the directory of the run it resumes (``resumes``), and in no other, once
    no other process is writing into it. Every refusal is a ``UserError`` and touches
    nothing.
    """
    if resumes is not None and run_dir.resolve() != Path(resumes).expanduser().resolve():
        raise RunDirTaken(
            f"resume={resumes} continues that run in its own directory, not in {run_dir}; "
            f"drop hydra.run.dir, or start a new run from it with "
            f"ckpt_path={Path(resumes) / 'checkpoints' / 'last.ckpt'}"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise RunDirTaken(
                f"another gm run is writing into {run_dir} right now; wait for it to end, "
                "or choose a new hydra.run.dir"
            ) from e
        if resumes is None and Run(run_dir).holds_run():
            raise RunDirTaken(
                f"{run_dir} already holds a training run; resume=RUN_DIR continues it, "
                "or choose a new hydra.run.dir"
            )
        yield
    finally:
        os.close(fd)  # releases the lock


def record_config(cfg: DictConfig, run_dir: Path, resuming: bool) -> None:
    """Write the run's record: ``.hydra/config.yaml``, ``hydra.yaml`` and ``overrides.yaml``
    as Hydra would; a resume keeps that record and appends its own overrides to
    ``.hydra/resumes.yaml``. Outside a Hydra run there is nothing to record."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return
    hydra = HydraConfig.get()
    overrides = [str(o) for o in hydra.overrides.task]
    record = run_dir / RECORD_DIR
    if resuming and (record / "config.yaml").is_file():
        log = record / "resumes.yaml"
        entries = yaml.safe_load(log.read_text()) if log.is_file() else []
        entries = [*(entries if isinstance(entries, list) else []), _resume_entry(overrides)]
        write_bytes_atomic(log, yaml.safe_dump(entries, sort_keys=False).encode())
        return
    files = {
        "config.yaml": OmegaConf.to_yaml(cfg),
        "hydra.yaml": OmegaConf.to_yaml(OmegaConf.create({"hydra": hydra})),
        "overrides.yaml": yaml.safe_dump(overrides),
    }
    for name, text in files.items():
        write_bytes_atomic(record / name, text.encode())


def _resume_entry(overrides: list[str]) -> dict[str, object]:
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return {"at": now, "overrides": overrides}


def check_writable(directory: Path) -> None:
    """Refuse a directory no run can be made in or write into: a file on its path, or a
    read-only place (a read-only mount, a folder without write permission)."""
    path = Path(os.path.abspath(directory.expanduser()))
    for place in (path, *path.parents):
        if not place.exists():
            continue
        if not place.is_dir():
            raise UserError(f"{directory} cannot be a run directory: {place} is a file")
        if not os.access(place, os.W_OK | os.X_OK):
            raise UserError(f"cannot write into {directory}: {place} is read-only")
        return


class RunDirCheck(Callback):
    """Hydra callback: refuse a run or sweep directory that cannot be written before Hydra
    makes it (Hydra's own failure to is a traceback)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "run")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "sweep")

    def _check(self, config: DictConfig, which: str) -> None:
        try:
            directory = Path(str(config.hydra[which].dir))
        except OmegaConfBaseException:  # Hydra says so itself, in its words
            return
        try:
            check_writable(directory)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
