"""gm.report on runs that are not finished: listed as such, with their curves so far."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from gm.errors import UserError
from gm.runs.report import find_runs, write_report
from tests.conftest import run_script


def _finished(run: Path, bpc: list[float]) -> None:
    run.mkdir(parents=True)
    history = [{"epoch": i, "step": 10 * (i + 1), "val/bpc": b} for i, b in enumerate(bpc)]
    metrics = {"final": history[-1], "history": history, "steps": 10 * len(bpc),
               "parameters": 1234, "wall_time_s": 5.0, "train_tokens_per_s": 100.0}  # fmt: skip
    (run / "metrics.json").write_text(json.dumps(metrics))


def test_unfinished_runs_are_listed_with_their_logged_curve(tmp_path: Path) -> None:
    _finished(tmp_path / "sweep" / "0_a", [3.0, 2.5])
    running = tmp_path / "sweep" / "1_b"
    (running / "csv").mkdir(parents=True)  # the CSV logger's file, no metrics.json yet
    (running / "csv" / "metrics.csv").write_text("epoch,step,val/bpc\n0,10,3.2\n0,20,2.9\n")
    (tmp_path / "sweep" / "notes").mkdir()  # not a run: ignored

    runs = write_report([tmp_path / "sweep"], tmp_path / "out")
    assert [r.status for r in runs] == ["finished", "running or stopped"]
    rows = list(csv.DictReader((tmp_path / "out" / "report.csv").open()))
    assert [float(r["best_val_bpc"]) for r in rows] == [2.5, 2.9]
    assert rows[0]["best_step"] == "20" and rows[1]["best_step"] == "20"
    assert "## Running or stopped" in (tmp_path / "out" / "report.md").read_text()


def test_jobs_are_in_numeric_order(tmp_path: Path) -> None:
    for n in (10, 2, 1):
        _finished(tmp_path / f"{n}_x", [1.0])
    assert [p.name for p in find_runs([tmp_path])] == ["1_x", "2_x", "10_x"]


def test_a_folder_without_runs_is_a_sentence(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="holds no training run"):
        find_runs([tmp_path])
    proc = run_script("gm.report", str(tmp_path / "missing"))
    assert proc.returncode == 2 and proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr


def test_the_overfitting_onset_is_a_column(tmp_path: Path) -> None:
    overfits, improves = tmp_path / "0_overfits", tmp_path / "1_improves"
    for run, val, train in (
        (overfits, [2.0, 1.5, 1.6, 1.8], [2.1, 1.5, 1.3, 1.1]),
        (improves, [2.0, 1.5, 1.4, 1.3], [2.1, 1.5, 1.3, 1.1]),
    ):
        run.mkdir()
        history = [
            {"epoch": e, "step": 10 * (e + 1), "val/loss": v, "val/bpc": v / 0.69, "train/loss": t}
            for e, (v, t) in enumerate(zip(val, train, strict=True))
        ]
        (run / "metrics.json").write_text(json.dumps({"final": history[-1], "history": history}))
    write_report([tmp_path], tmp_path / "out")
    rows = list(csv.DictReader((tmp_path / "out" / "report.csv").open()))
    assert [r["overfit_epoch"] for r in rows] == ["1", ""]
    assert "overfits after epoch" in (tmp_path / "out" / "report.md").read_text()


def test_run_dir_files_are_read_as_plain_text_never_resolved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A received run directory cannot make the report copy an environment variable (or
    run a resolver): its .hydra files are data, and one that is not YAML is skipped."""
    monkeypatch.setenv("GM_TEST_SECRET", "s3cr3t-value")
    leaky = tmp_path / "sweep" / "0_leaky"
    _finished(leaky, [2.0])
    (leaky / ".hydra").mkdir()
    (leaky / ".hydra" / "overrides.yaml").write_text(
        "- model=gru\n- foo=${oc.env:GM_TEST_SECRET}\n"
    )
    (leaky / ".hydra" / "hydra.yaml").write_text(
        "hydra:\n  runtime:\n    choices:\n      model: ${oc.env:GM_TEST_SECRET}\n"
    )
    broken = tmp_path / "sweep" / "1_broken"
    _finished(broken, [2.5])
    (broken / ".hydra").mkdir()
    (broken / ".hydra" / "overrides.yaml").write_text("- [unclosed\n")  # not YAML
    (broken / ".hydra" / "hydra.yaml").write_text("hydra: 3\n")  # YAML, the wrong shape

    runs = write_report([tmp_path / "sweep"], tmp_path / "out")
    assert [r.status for r in runs] == ["finished", "finished"]
    assert runs[0].overrides == ["model=gru", "foo=${oc.env:GM_TEST_SECRET}"]
    assert runs[1].overrides == [] and runs[1].model == ""
    for name in ("report.md", "report.csv"):
        assert "s3cr3t-value" not in (tmp_path / "out" / name).read_text(), name
