"""SIGTERM and SIGUSR1 (a scheduler stopping or preempting a job) stop a run at the step it
reached with a checkpoint of it, say how to continue, exit 128 + the signal, and the
continued run ends exactly where an uninterrupted one ends; a sweep stops with a report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, generated_text, kill_at_first_checkpoint, run_train
from tests.test_resume import ARGS, final_weights

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus(
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    path = tmp_path_factory.mktemp("preemption") / "corpus.txt"
    path.write_text(generated_text(18000))
    return path


@pytest.fixture(scope="module")
def whole(corpus: Path) -> Path:
    """The same run, never interrupted."""
    run = corpus.parent / "whole"
    proc = run_train(run, f"data.path={corpus}", *ARGS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1], ids=["SIGTERM", "SIGUSR1"])
def test_a_signal_saves_the_step_and_the_run_continues_exactly(
    corpus: Path, whole: Path, signum: int
) -> None:
    run = corpus.parent / signal.Signals(signum).name
    proc = kill_at_first_checkpoint(run, f"data.path={corpus}", *ARGS, signum=signum)
    assert proc.returncode == 128 + signum, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    last_line = proc.stderr.strip().splitlines()[-1]
    name = signal.Signals(signum).name
    assert last_line.startswith(f"stopped: {name} at step "), last_line
    assert last_line.endswith(f"continue with: python train.py resume={run}")
    step = int(last_line.split(" at step ")[1].split(",")[0])
    assert step >= 5  # the first step checkpoint came at step 5; the stop at or after it
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["stopped"] == {"signal": name, "step": step} and metrics["steps"] == step
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == step  # saved at the stop, not at the last periodic save
    assert not (run / "export").exists()  # not finished: nothing exported yet

    proc = run_train(run, f"resume={run}", f"data.path={corpus}", *ARGS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = final_weights(whole), final_weights(run)
    assert all(torch.equal(a[key], b[key]) for key in a), "the continued run differs"
    ma = json.loads((whole / "metrics.json").read_text())
    mb = json.loads((run / "metrics.json").read_text())
    assert ma["history"] == mb["history"] and "stopped" not in mb


def test_a_sweep_stops_at_the_interrupted_job_with_a_report(corpus: Path) -> None:
    sweep = corpus.parent / "sweep"
    cmd = [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        f"hydra.sweep.dir={sweep}",
        "seed=1,2",
        f"data.path={corpus}",
        *ARGS,
    ]
    env = {"GM_DATA_DIR": str(corpus.parent / "data")}
    child = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=os.environ | env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not list(sweep.glob("0*/checkpoints/last.ckpt")) and time.monotonic() < deadline:
        assert child.poll() is None
        time.sleep(0.005)
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == 143, stderr[-3000:]
    assert "Traceback" not in stderr
    (job,) = [p for p in sweep.iterdir() if p.is_dir() and p.name[0].isdigit()]
    assert json.loads((job / "metrics.json").read_text())["stopped"]["signal"] == "SIGTERM"
    report = (sweep / "report.md").read_text()
    assert "1 interrupted" in report and f"resume={job}" in report
    assert "error: the sweep stopped at job 0; the jobs after it did not run" in stderr
