"""Hydra multirun sweeps: a failing job is recorded and the sweep goes on; the sweep
ends with a report.

``python train.py -m model=astra_alpha,astra_beta optimizer.lr=1e-3,3e-3`` runs four
jobs, each in ``outputs/multirun/<time>/<num>_<swept overrides>`` (``0_model=astra_alpha,
optimizer.lr=1e-3``): the overrides every job shares are in each job's
``.hydra/overrides.yaml``, not in its folder's name. A job that raises leaves
``failed.json`` in its directory and one line on stderr instead of stopping the sweep;
when the last job ends, ``SweepReport`` writes ``report.md`` (``gm.runs.report``) into the
sweep folder and the command exits non-zero if any job failed.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict, read_write

from gm.atomic import write_json_atomic
from gm.errors import Interrupted, UserError
from gm.run import FAILED
from gm.runs.report import write_report
from gm.training.run_dir import RECORD_DIR, RunDirTaken, record_config

T = TypeVar("T")
REFUSED = "refused"  # in the sweep folder: the jobs refused for another run's folder
log = logging.getLogger(__name__)


def run_job(fn: Callable[[DictConfig], T], cfg: DictConfig) -> T | None:
    """Run one sweep job; if it raises, record why in ``<job>/failed.json``, say so in
    one line, and return None so that the launcher goes on with the next job."""
    from hydra.core.hydra_config import HydraConfig

    try:
        return fn(cfg)
    except Interrupted as e:
        # A scheduler's signal is meant for the whole sweep: the job has saved where it
        # stopped; the report covers the jobs so far and the sweep ends here.
        job = HydraConfig.get()
        print(f"stopped: job {job.job.num} ({' '.join(job.overrides.task)}): {e}", file=sys.stderr)
        end_sweep(Path(job.sweep.dir))
        print(
            f"error: the sweep stopped at job {job.job.num}; the jobs after it did not run",
            file=sys.stderr,
        )
        sys.exit(e.exit_code)
    except RunDirTaken as e:
        # The job's folder holds another run (an earlier sweep into the same folder, or one
        # running now): its refusal is recorded beside the jobs, never inside that run.
        job = HydraConfig.get()
        record_refusal(Path(job.sweep.dir), job.job.num, list(job.overrides.task), e)
        return None
    except Exception as e:
        job, run_dir = HydraConfig.get(), Path(cfg.paths.output_dir)
        if not (run_dir / RECORD_DIR).exists():  # refused before training wrote its record
            record_config(cfg, run_dir, resuming=False)
        record_failure(run_dir, job.job.num, list(job.overrides.task), e)
        return None


def record_failure(run_dir: Path, job: int, overrides: list[str], error: Exception) -> None:
    """What a failed job leaves: ``failed.json`` in its directory (read by ``gm.runs.report``)
    and one ``error:`` line on stderr; for a bug rather than bad input, the traceback in
    ``failed.json`` and the job's log."""
    record = {"job": job, "overrides": overrides, "error": str(error)}
    if not isinstance(error, UserError):
        record["error"] = f"{type(error).__name__}: {error}"
        record["traceback"] = "".join(traceback.format_exception(error))
        log.error("job %s failed", job, exc_info=error)
    write_json_atomic(run_dir / FAILED, record)
    message = record["error"]
    print(f"error: job {job} ({' '.join(overrides)}): {message}", file=sys.stderr)


def record_refusal(sweep_dir: Path, job: int, overrides: list[str], error: Exception) -> None:
    """What a job refused for a folder that is another run's leaves: ``refused/<job>.json``
    in the sweep folder (read by ``SweepReport``) and one ``error:`` line on stderr."""
    record = {"job": job, "overrides": overrides, "error": str(error)}
    write_json_atomic(sweep_dir / REFUSED / f"{job}.json", record)
    print(f"error: job {job} ({' '.join(overrides)}): {error}", file=sys.stderr)


def refusals(sweep_dir: Path) -> list[dict[str, Any]]:
    """The jobs of the sweep in ``sweep_dir`` refused for another run's folder, in order."""
    records = []
    for path in sorted((sweep_dir / REFUSED).glob("*.json"), key=lambda p: p.stem.zfill(9)):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            records.append({"job": path.stem, "error": f"{path} is unreadable"})
    return records


def _sweep_overrides(config: DictConfig) -> list[Any]:
    """The multirun's overrides, parsed: the command line's and ``hydra.sweeper.params``."""
    params = config.hydra.sweeper.get("params") or {}
    lines = [str(o) for o in config.hydra.overrides.task]
    lines += [f"{key}={value}" for key, value in params.items()]
    return OverridesParser.create().parse_overrides(lines)


def swept_keys(config: DictConfig) -> set[str]:
    """The keys a multirun sweeps: those given several values on the command line
    (``optimizer.lr=1e-3,3e-3``, ``range``, ``choice``, ``glob``) or in
    ``hydra.sweeper.params`` (``+sweep=all_models``)."""
    return {o.key_or_group for o in _sweep_overrides(config) if o.is_sweep_override()}


def name_jobs_by_swept_overrides(config: DictConfig) -> None:
    """Leave every override the jobs share out of their folders' names (Hydra's
    ``override_dirname.exclude_keys``), so a job's folder says what sets it apart."""
    swept = swept_keys(config)
    shared = {o.key_or_group for o in _sweep_overrides(config)} - swept
    exclude = sorted({*config.hydra.job.config.override_dirname.exclude_keys, *shared})
    # Each job's config is composed again from hydra.overrides.hydra (Hydra's
    # load_sweep_config), so the exclusion travels as one more override there.
    with read_write(config.hydra.overrides), open_dict(config.hydra.overrides):
        config.hydra.overrides.hydra.append(
            "hydra.job.config.override_dirname.exclude_keys=["
            + ",".join(f"'{key}'" for key in exclude)
            + "]"
        )


def end_sweep(sweep_dir: Path) -> int:
    """Write the sweep's report and its summary lines; 1 when a job failed or was
    refused, else 0."""
    refused = [str(r.get("job")) for r in refusals(sweep_dir)]
    if refused:
        print(
            f"error: refused jobs: {', '.join(refused)} (their folders hold other runs, "
            "left as they were; choose a new hydra.sweep.dir)",
            file=sys.stderr,
        )
    try:
        runs = write_report([sweep_dir], sweep_dir)
    except UserError as e:  # e.g. every job failed before writing anything
        print(f"error: no report for {sweep_dir}: {e}", file=sys.stderr)
        return 1
    failed = [run.name for run in runs if run.status == "failed"]
    interrupted = sum(run.status == "interrupted" for run in runs)
    stopped = f", {interrupted} interrupted" if interrupted else ""
    print(
        f"sweep: {len(runs)} jobs, {len(failed)} failed{stopped}; "
        f"report: {sweep_dir / 'report.md'}",
        file=sys.stderr,
    )
    if failed:
        print(f"error: failed jobs: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed or refused else 0


class SweepReport(Callback):
    """At the start of a multirun, job folders named by the swept overrides; at the end,
    ``report.md``/``.csv``/PNGs in the sweep folder, a summary line, and exit status 1
    when a job failed."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        name_jobs_by_swept_overrides(config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if end_sweep(Path(config.hydra.sweep.dir)):
            sys.exit(1)
