"""`python -m gm.study` evaluates finished runs and writes its report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import FAST_TRAIN, run_script, run_train


def test_study_of_two_runs_writes_report_and_figures(trained_run: Path, tmp_path: Path):
    corpus = trained_run.parent / "corpus.txt"
    windowed = tmp_path / "windowed"
    proc = run_train(windowed, f"data.path={corpus}", *FAST_TRAIN, "data.carry_state=false")
    assert proc.returncode == 0, proc.stderr[-3000:]
    # A sweep folder stands for the runs inside it.
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    shutil.copytree(windowed, sweep / "0")
    out = tmp_path / "study"
    proc = run_script(
        "gm.study",
        f"runs=[{trained_run},{sweep}]",
        "samples.max_new_tokens=40",
        f"hydra.run.dir={out}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = (out / "study.md").read_text()
    assert "carried" in report and "windowed" in report and "stateless" in report
    assert (out / "bpc_by_mode.png").stat().st_size > 0
    assert len(list(out.glob("loss_by_position_*.png"))) == 2
    runs = json.loads((out / "study.json").read_text())["runs"]
    assert [r["carry_state"] for r in runs] == [True, False]
    for r in runs:
        assert set(r["scores"]) == {"stateful", "chunk", "stateless"}
        assert len(r["curves"]["chunk"]) == r["seq_len"] + 1


def test_study_without_runs_is_one_sentence(tmp_path: Path):
    proc = run_script("gm.study", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2 and "pass runs=" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_script("gm.study", f"runs=[{tmp_path / 'nope'}]", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_study_scores_equal_the_runs_own_validation(trained_run: Path, tmp_path: Path):
    """The same weights, split, streams and chunk length give the numbers training logged:
    a study that scored another split, another state handling or another bpc would not."""
    corpus = trained_run.parent / "corpus.txt"
    run = tmp_path / "run"
    fast = [o for o in FAST_TRAIN if not o.startswith("trainer.limit_val_batches")]
    assert run_train(run, f"data.path={corpus}", *fast).returncode == 0
    out = tmp_path / "study"
    proc = run_script(
        "gm.study",
        f"runs=[{run}]",
        "batch_size=4",  # the run's data.batch_size in FAST_TRAIN
        "samples.max_new_tokens=5",
        f"hydra.run.dir={out}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    scores = json.loads((out / "study.json").read_text())["runs"][0]["scores"]
    final = json.loads((run / "metrics.json").read_text())["final"]
    for mode, suffix in (("stateful", ""), ("chunk", "_chunk"), ("stateless", "_stateless")):
        for name in ("loss", "bpc"):
            assert abs(scores[mode][name] - final[f"val/{name}{suffix}"]) < 1e-4, (mode, name)


def test_study_refuses_a_changed_corpus_unless_allowed(trained_run: Path, tmp_path: Path):
    """Scores are comparable only on the text the model trained on: a corpus whose sha256
    is not the recorded one (the file changed, or corpus= names another) is refused in one
    sentence, or, with allow_changed_corpus=true, scored after one warning line."""
    corpus = tmp_path / "corpus.txt"
    shutil.copy(trained_run.parent / "corpus.txt", corpus)
    run = tmp_path / "run"
    assert run_train(run, f"data.path={corpus}", *FAST_TRAIN).returncode == 0
    text = corpus.read_text()
    corpus.write_text(text + text.splitlines(keepends=True)[0])  # edited, same characters
    study = ["samples.max_new_tokens=5", "batch_size=4", f"hydra.run.dir={tmp_path / 'study'}"]

    proc = run_script("gm.study", f"runs=[{run}]", *study)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert str(run) in lines[0] and str(corpus) in lines[0]
    assert "allow_changed_corpus=true" in lines[0]
    assert not (tmp_path / "study" / "study.json").exists()

    # corpus= is checked too: another text is not the one the model trained on.
    proc = run_script("gm.study", f"runs=[{trained_run}]", f"corpus={corpus}", *study)
    assert proc.returncode == 2 and "allow_changed_corpus=true" in proc.stderr, proc.stderr

    proc = run_script("gm.study", f"runs=[{run}]", "allow_changed_corpus=true", *study)
    assert proc.returncode == 0, proc.stderr[-3000:]
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and str(corpus) in warnings[0], proc.stderr
    assert (tmp_path / "study" / "study.json").is_file()
