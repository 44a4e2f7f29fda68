"""Every precision, every family, through the real `train.py`, a resume and `generate.py`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from tests.conftest import FAST_TRAIN, run_script, run_train

FAMILIES = {
    "gru": ["model=astra_alpha"],
    # docs/guide/performance.md's accelerator command, on the CPU and a few units wide.
    "lstm_layernorm": [
        "model=leviathan",
        "trainer=cpu",
        "trainer.devices=1",
        "model.emb_dim=8",
        "model.hidden_dim=16",
    ],
    "rnn": ["model=rnn", "model.hidden_dim=16"],
    "mlp": ["model=mlp"],
    "ngram": ["model=ngram"],
}
MODES = ("val/loss", "val/loss_chunk", "val/loss_stateless")


def final_losses(run: Path) -> dict[str, float]:
    final = json.loads((run / "metrics.json").read_text())["final"]
    return {k: final[k] for k in MODES}


@pytest.mark.parametrize("precision", ["bf16-mixed", "bf16-true"])
@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.slow
def test_trains_resumes_and_samples(tmp_path: Path, text_file: Path, family: str, precision: str):
    run = tmp_path / "run"
    args = [*FAMILIES[family], f"data.path={text_file}", *FAST_TRAIN]
    proc = run_train(run, *args, f"trainer.precision={precision}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    losses = final_losses(run)
    assert all(math.isfinite(v) and 0 < v < 10 for v in losses.values()), losses

    # Weights are stored in fp32 whatever the precision.
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    floats = [t for t in ckpt["state_dict"].values() if t.is_floating_point()]
    assert all(t.dtype == torch.float32 for t in floats)
    assert floats or family == "ngram"  # the n-gram's tables are integer counts

    if family != "ngram":  # counting has no epochs to continue
        proc = run_train(
            run, *args, f"trainer.precision={precision}", "trainer.max_epochs=2", f"resume={run}"
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert json.loads((run / "metrics.json").read_text())["epochs"] == 2

    proc = run_script(
        "generate.py", f"ckpt={run}", "max_new_tokens=20", "prompt=To", "precision=bf16-mixed"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("To") and len(proc.stdout.strip()) > 2


def test_16_mixed_on_the_cpu_runs_in_bf16(tmp_path: Path, text_file: Path):
    """Lightning has no fp16 autocast on a CPU and uses bf16 instead: the same losses."""
    losses = {}
    for precision in ("16-mixed", "bf16-mixed"):
        run = tmp_path / precision
        proc = run_train(
            run, f"data.path={text_file}", *FAST_TRAIN, f"trainer.precision={precision}"
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        losses[precision] = final_losses(run)
    assert losses["16-mixed"] == losses["bf16-mixed"]


def test_bf16_mixed_stays_close_to_fp32(tmp_path: Path, text_file: Path):
    """Two steps from the same seed: the mixed-precision losses within 1 % of fp32's."""
    losses = {}
    for precision in ("32-true", "bf16-mixed"):
        run = tmp_path / precision
        args = [*FAMILIES["gru"], f"data.path={text_file}", *FAST_TRAIN]
        proc = run_train(run, *args, f"trainer.precision={precision}")
        assert proc.returncode == 0, proc.stderr[-3000:]
        losses[precision] = final_losses(run)
    for mode in MODES:
        assert losses["bf16-mixed"][mode] == pytest.approx(losses["32-true"][mode], rel=1e-2)
    assert losses["bf16-mixed"] != losses["32-true"]  # the low precision was really used


def test_16_true_with_adams_default_eps_is_refused(tmp_path: Path, text_file: Path):
    proc = run_train(
        tmp_path / "run", f"data.path={text_file}", *FAST_TRAIN, "trainer.precision=16-true"
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "+optimizer.eps=1e-4" in proc.stderr and proc.stderr.strip().count("\n") == 0
    assert not (tmp_path / "run" / "checkpoints").exists()
