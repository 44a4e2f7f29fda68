"""Shared fixtures: the config directory and the real corpus when this machine has it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gm.config import CONF_DIR
from tests.entrypoints import run_entrypoint

ROOT = Path(__file__).resolve().parents[1]
SHARED_CORPUS = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def conf_dir() -> Path:
    return CONF_DIR


@pytest.fixture
def shakespeare() -> Path:
    """The real Tiny Shakespeare corpus. Skips when this machine does not have it, except in
    CI (``CI`` set), which always has it: there a missing corpus fails."""
    if not SHARED_CORPUS.is_file():
        message = f"real corpus not found at {SHARED_CORPUS}"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must have it")
        pytest.skip(message)
    return SHARED_CORPUS


def generated_text(n_chars: int = 6000, seed: int = 0) -> str:
    """Small learnable text: lines of words drawn from a fixed vocabulary."""
    import random

    rng = random.Random(seed)
    words = ["to", "be", "or", "not", "that", "is", "the", "question", "whether", "tis"]
    out: list[str] = []
    size = 0
    while size < n_chars:
        line = " ".join(rng.choice(words) for _ in range(rng.randint(3, 9))).capitalize() + ".\n"
        out.append(line)
        size += len(line)
    return "".join(out)[:n_chars]


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    """A generated UTF-8 corpus on disk."""
    path = tmp_path / "corpus.txt"
    path.write_text(generated_text())
    return path


# Overrides for a training run of seconds on generated text.
FAST_TRAIN = [
    "data.batch_size=4",
    "data.seq_len=16",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=2",
    "trainer.max_epochs=1",
    "trainer.num_sanity_val_steps=0",
    "trainer.log_every_n_steps=1",
    "~callbacks.progress_bar",
]


def run_script(
    script: str,
    *args: str,
    timeout: float = 300,
    data_dir: Path | None = None,
    spawns: bool = False,
):
    """Run one of the project's entry points as a user would, in a process of its own;
    capture its output. ``spawns``: the run starts processes itself (a sweep's launcher,
    DDP), so it gets a fresh interpreter instead of a fork of the preloaded server."""
    env = os.environ | ({"GM_DATA_DIR": str(data_dir)} if data_dir else {})
    target = [str(ROOT / script)] if script.endswith(".py") else ["-m", script]
    if not spawns:
        return run_entrypoint([*target, *args], ROOT, env, timeout)
    return subprocess.run(
        [sys.executable, *target, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


def run_train(run_dir: Path, *overrides: str, timeout: float = 300):
    """`python train.py` into ``run_dir``, with its data cache beside it."""
    return run_script(
        "train.py",
        f"hydra.run.dir={run_dir}",
        *overrides,
        timeout=timeout,
        data_dir=run_dir.parent / "data",
    )


def run_multirun(sweep_dir: Path, *overrides: str, timeout: float = 600):
    """`python train.py -m` into ``sweep_dir``, with its data cache beside it."""
    return run_script(
        "train.py",
        "-m",
        f"hydra.sweep.dir={sweep_dir}",
        *overrides,
        timeout=timeout,
        data_dir=sweep_dir.parent / "data",
        spawns=True,
    )


def kill_at_first_checkpoint(
    run_dir: Path, *overrides: str, signum: int = signal.SIGKILL
) -> subprocess.CompletedProcess[str]:
    """Start `python train.py` into ``run_dir`` and send it ``signum`` as soon as its first
    ``last.ckpt`` exists (the run must save one mid-way, e.g. every N steps); wait for it
    to end. SIGKILL must be what ended it; another signal is the run's to handle."""
    cmd = [sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={run_dir}", *overrides]
    env = os.environ | {"GM_DATA_DIR": str(run_dir.parent / "data")}
    child = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while not last.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    child.send_signal(signum)
    _, stderr = child.communicate(timeout=120)
    if signum == signal.SIGKILL:
        assert child.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    return subprocess.CompletedProcess(cmd, child.returncode, "", stderr)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory from a seconds-long training on generated text (shared by tests)."""
    root = tmp_path_factory.mktemp("trained")
    corpus = root / "corpus.txt"
    corpus.write_text(generated_text(20000))
    run = root / "run"
    proc = run_train(run, f"data.path={corpus}", *FAST_TRAIN, "trainer.limit_train_batches=20")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium driven by selenium, for the tests of pages (the docs site, the
    explorer); skipped with a reason where it is missing, except in CI, which installs it."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not (chromium and driver_path):
        if os.environ.get("CI"):
            pytest.fail("CI needs chromium and chromedriver (.ci/run installs them)")
        pytest.skip("no chromium and chromedriver here (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console errors
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_window_size(1200, 900)
    yield driver
    driver.quit()


def assert_chunked_equals_whole(model, inputs: torch.Tensor, chunk: int = 16) -> None:
    """The one-interface invariant: running ``inputs`` in chunks while passing the returned
    state gives the outputs and final state of running them whole."""
    from gm.state import state_tensors

    whole, whole_state = model(inputs)
    state, parts = None, []
    for piece in inputs.split(chunk, dim=1):
        out, state = model(piece, state)
        parts.append(out)
    torch.testing.assert_close(torch.cat(parts, 1), whole, atol=1e-6, rtol=1e-6)
    for a, b in zip(state_tensors(state), state_tensors(whole_state), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
