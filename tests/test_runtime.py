"""Process-wide settings: the share of cores a training process takes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gm import runtime
from gm.runtime import TrainingProcesses, share_of_cores


@pytest.fixture(autouse=True)
def _restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("cores,processes,expected", [(8, 1, 8), (8, 2, 4), (8, 3, 2), (2, 4, 1)])
def test_training_processes_divide_the_cores(monkeypatch, cores, processes, expected) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(runtime, "cores", lambda: cores)
    assert share_of_cores(processes) == expected


def test_a_thread_count_in_the_environment_is_kept(monkeypatch) -> None:
    """Set by the user, or by a launcher that has divided the cores already (joblib's
    loky workers, Lightning's DDP processes): dividing again would halve it twice."""
    monkeypatch.setattr(runtime, "cores", lambda: 16)
    monkeypatch.setenv("OMP_NUM_THREADS", "8")
    assert share_of_cores(2) == 8


def test_cores_are_the_ones_this_process_may_use(monkeypatch) -> None:
    monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda pid: {0, 2, 5}, raising=False)
    assert runtime.cores() == 3  # e.g. under taskset or a SLURM allocation, not os.cpu_count()


HOLD = """
import sys, time
from pathlib import Path
from gm.runtime import TrainingProcesses
with TrainingProcesses(Path(sys.argv[1])):
    print("ready", flush=True)
    time.sleep(60)
"""


@pytest.mark.skipif(runtime.fcntl is None, reason="file locks are POSIX only")
def test_training_processes_are_counted_while_they_live(tmp_path: Path) -> None:
    """Each registered process counts until it ends, also when it is killed (the kernel
    drops its lock); its left-over file does not count."""
    with TrainingProcesses(tmp_path) as running:
        assert running.count() == 1
        with TrainingProcesses(tmp_path):  # the same process again: still one
            assert running.count() == 1
        other = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert other.stdout.readline().strip() == "ready"
            assert running.count() == 2
        finally:
            other.kill()
            other.wait()
        deadline = time.monotonic() + 5
        while running.count() != 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert running.count() == 1
        assert len(list(tmp_path.glob("*.lock"))) == 2
    assert TrainingProcesses(tmp_path).count() == 1  # nobody: counted as this one alone
