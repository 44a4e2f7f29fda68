"""A real multirun through train.py: jobs in numbered folders, a failing job recorded
while the sweep goes on, and the report written at the end."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from gm.config import job_dirname
from gm.runs.sweep import name_jobs_by_swept_overrides, swept_keys
from tests.conftest import FAST_TRAIN, run_multirun, run_script


@pytest.mark.slow
def test_multirun_runs_every_job_reports_a_failure_and_writes_the_report(
    tmp_path: Path, text_file: Path
) -> None:
    sweep = tmp_path / "sweep"
    proc = run_multirun(
        sweep,
        f"data.path={text_file}",
        *FAST_TRAIN,
        "model=rnn",
        "optimizer.lr=1e-3,3e-3,-1",  # the third job is bad input
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "error: job 2 (" in proc.stderr and "optimizer.lr must be a number > 0" in proc.stderr
    assert "Traceback" not in proc.stderr

    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir() and p.name[0].isdigit())
    # Each job's folder (and so its TensorBoard run) is named by its number and what is
    # swept; the overrides every job shares are in its recorded config, failed or not.
    assert jobs == ["0_optimizer.lr=0.001", "1_optimizer.lr=0.003", "2_optimizer.lr=-1"]
    for job in jobs:
        recorded = yaml.safe_load((sweep / job / ".hydra" / "overrides.yaml").read_text())
        assert "model=rnn" in recorded and (sweep / job / ".hydra" / "config.yaml").is_file()
    for job in jobs[:2]:
        assert (sweep / job / "metrics.json").is_file()
        assert list((sweep / job).glob("events.out.tfevents.*"))
    failed = json.loads((sweep / jobs[2] / "failed.json").read_text())
    assert failed["job"] == 2 and "optimizer.lr=-1" in failed["overrides"]

    # The callback wrote the report at the end of the sweep; gm.report rewrites it anywhere.
    assert (sweep / "report.md").is_file()
    out = tmp_path / "report"
    proc = run_script("gm.report", str(sweep), "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("report.md", "report.csv", "val_bpc.png", "best_bpc.png"):
        assert (out / name).stat().st_size > 0
    rows = list(csv.DictReader((out / "report.csv").open()))
    assert [r["run"] for r in rows] == jobs
    assert [r["status"] for r in rows] == ["finished", "finished", "failed"]
    for row in rows[:2]:
        assert row["model"] == "rnn" and int(row["parameters"]) > 0
        for key in ("best_bpc_stateful", "final_bpc_stateful", "final_bpc_chunk",
                    "final_bpc_stateless", "wall_time_s", "tokens_per_s"):  # fmt: skip
            assert math.isfinite(float(row[key])) and float(row[key]) > 0, key
    assert "optimizer.lr must be a number > 0" in rows[2]["error"]
    report = (out / "report.md").read_text()
    assert all(job in report for job in jobs) and "## Failed" in report
    # Labelled by what differs: the learning rate, not every shared override.
    assert "| 0: optimizer.lr=0.001 |" in report and "Overrides shared by every run" in report


@pytest.mark.slow
def test_a_parallel_launcher_divides_the_cores_among_its_jobs(
    tmp_path: Path, text_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two joblib jobs at once each take half the cores (threads=null), instead of each
    starting torch with all of them; threads=N still wins. (joblib's loky workers get
    OMP_NUM_THREADS from joblib, which gm keeps: tests/test_runtime.py.)"""
    from gm.runtime import cores

    if cores() < 2:
        pytest.skip("needs at least two cores to divide")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # torch's own choice: every core
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    sweep = tmp_path / "sweep"
    proc = run_multirun(
        sweep, f"data.path={text_file}", *FAST_TRAIN, "model=rnn",
        "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "threads=null,1",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    threads = {
        setting: json.loads((job / "metrics.json").read_text())["threads"]
        for job in sweep.iterdir()
        for setting in ("threads=null", "threads=1")
        if setting in job.name
    }
    assert threads == {"threads=null": cores() // 2, "threads=1": 1}


def _multirun_config(task: list[str], params: dict[str, str] | None = None) -> DictConfig:
    """The part of a multirun's composed config that names its jobs' folders."""
    return OmegaConf.create(
        {
            "hydra": {
                "overrides": {"task": task, "hydra": ["hydra.sweep.dir=x"]},
                "sweeper": {"params": params},
                "job": {"config": {"override_dirname": {"exclude_keys": ["data.path"]}}},
            }
        }
    )


def test_job_folders_are_named_by_the_swept_overrides_alone() -> None:
    task = ["model=rnn", "optimizer.lr=1e-3,3e-3", "threads=1", "+x=range(2)", "~y"]
    config = _multirun_config(task, {"seed": "1,2", "data.batch_size": "8"})
    assert swept_keys(config) == {"optimizer.lr", "x", "seed"}
    name_jobs_by_swept_overrides(config)
    added = OverridesParser.create().parse_override(config.hydra.overrides.hydra[-1])
    assert added.key_or_group == "hydra.job.config.override_dirname.exclude_keys"
    # The user's exclusions stay; every override the jobs share joins them.
    assert added.value() == ["data.batch_size", "data.path", "model", "threads", "y"]
    assert config.hydra.overrides.hydra[0] == "hydra.sweep.dir=x"


def test_a_swept_path_does_not_nest_a_job_folder() -> None:
    assert job_dirname(3, "tokenizer.model_path=a/b.model") == "3_tokenizer.model_path=a_b.model"
    assert job_dirname(0, "") == "0"


@pytest.mark.slow
def test_a_sweep_run_again_into_its_folder_changes_no_finished_job(
    tmp_path: Path, text_file: Path
) -> None:
    """The same sweep twice into one folder: the second one's jobs are refused, their
    refusal is recorded beside the jobs (it was written as failed.json into the finished
    job, which the report then showed as failed), and the sweep exits 1 saying so."""
    sweep = tmp_path / "sweep"
    args = (f"data.path={text_file}", *FAST_TRAIN, "model=rnn", "optimizer.lr=1e-3,3e-3")
    assert run_multirun(sweep, *args).returncode == 0
    jobs = sorted(p for p in sweep.iterdir() if p.name[0].isdigit())
    before = {job: {p: p.read_bytes() for p in job.rglob("*") if p.is_file()} for job in jobs}
    proc = run_multirun(sweep, *args)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "error: refused jobs: 0, 1" in proc.stderr and "Traceback" not in proc.stderr
    for job in jobs:
        assert {p: p.read_bytes() for p in job.rglob("*") if p.is_file()} == before[job]
    rows = list(csv.DictReader((sweep / "report.csv").open()))
    assert [r["status"] for r in rows] == ["finished", "finished"]
