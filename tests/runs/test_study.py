"""`python -m gm.study` evaluates finished runs and writes its report."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.figure import Figure

from gm.artifacts import TrainedModel
from gm.modes import MODES
from gm.run import RunRecord
from gm.runs import study
from gm.runs.study import run_label, write_study
from tests.conftest import FAST_TRAIN, run_multirun, run_script, run_train


def test_study_of_two_runs_writes_report_and_figures(trained_run: Path, tmp_path: Path):
    corpus = trained_run.parent / "corpus.txt"
    windowed = tmp_path / "windowed"
    whole_validation = [o for o in FAST_TRAIN if "limit_val_batches" not in o]
    proc = run_train(
        windowed, f"data.path={corpus}", *whole_validation, "data.carry_state=false",
        "eval.chunk_len=[16,32]",  # validation also scores nanoGPT-like windows of 32
    )  # fmt: skip
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
        "batch_size=4",  # the runs' own validation streams
        "chunk_len=[32]",
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
        assert set(r["scores"]) == {"stateful", "chunk", "chunk32", "stateless"}
        assert len(r["curves"]["chunk"]) == r["seq_len"] + 1
    # The study's chunk32 is the windowed run's own validation of it.
    best = json.loads((windowed / "metrics.json").read_text())["best"]
    assert runs[1]["scores"]["chunk32"]["loss"] == pytest.approx(best["val/loss_chunk32"], 1e-5)


def test_study_without_runs_is_one_sentence(tmp_path: Path):
    proc = run_script("gm.study", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2 and "pass runs=" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_script("gm.study", f"runs=[{tmp_path / 'nope'}]", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2 and "does not exist" in proc.stderr


@pytest.mark.parametrize(
    "setting,says",
    [
        ("chunk_len=[0]", "chunk_len must be a list of items, each an integer >= 1, got [0]"),
        ("chunk_len=[-1]", "chunk_len must be a list of items, each an integer >= 1"),
        ("batch_size=abc", "batch_size must be an integer >= 1, got 'abc'"),
        ("samples.temperature=-1", "samples.temperature must be a number >= 0, got -1"),
    ],
)
def test_a_bad_study_setting_is_one_sentence_before_any_work(
    trained_run: Path, tmp_path: Path, setting: str, says: str
) -> None:
    """chunk_len=[0] was a ZeroDivisionError after loading the run, a negative temperature
    was accepted (an inverted distribution); now each is refused first, nothing written."""
    out = tmp_path / "study"
    proc = run_script("gm.study", f"runs=[{trained_run}]", setting, f"hydra.run.dir={out}")
    assert proc.returncode == 2 and says in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and not (out / "study.md").exists()


@pytest.mark.parametrize(
    "splits", [[], ["data.splits=[0.8,0.1,0.1]"], ["data.splits=[0.7,0.3]"]],
    ids=["default", "three-splits", "70-30"],
)  # fmt: skip
def test_study_scores_equal_the_runs_own_validation(
    trained_run: Path, tmp_path: Path, splits: list[str]
):
    """The same weights, split, streams and chunk length give the numbers training logged:
    a study that scored another split (the default 90 % point whatever data.splits were),
    another state handling or another bpc would not."""
    corpus = trained_run.parent / "corpus.txt"
    run = tmp_path / "run"
    fast = [o for o in FAST_TRAIN if not o.startswith("trainer.limit_val_batches")]
    proc = run_train(run, f"data.path={corpus}", *fast, *splits)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "study"
    # The study reads the ids training cached: with the validation split's file gone, it
    # encodes it into the same file, and the other splits' files are read as they are.
    cache = tmp_path / "data" / "cache"
    (val,) = cache.glob("*-val*.npy")
    val.unlink()
    cached = {p.name: p.stat().st_mtime_ns for p in cache.glob("*.npy")}
    proc = run_script(
        "gm.study",
        f"runs=[{run}]",
        "batch_size=4",  # the run's data.batch_size in FAST_TRAIN
        "samples.max_new_tokens=5",
        f"hydra.run.dir={out}",
        data_dir=tmp_path / "data",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert val.is_file()
    assert {p.name: p.stat().st_mtime_ns for p in cache.glob("*.npy") if p != val} == cached
    scores = json.loads((out / "study.json").read_text())["runs"][0]["scores"]
    final = json.loads((run / "metrics.json").read_text())["final"]
    for mode, suffix in (("stateful", ""), ("chunk", "_chunk"), ("stateless", "_stateless")):
        for name in ("loss", "bpc"):
            assert abs(scores[mode][name] - final[f"val/{name}{suffix}"]) < 1e-4, (mode, name)


def test_a_folder_of_runs_is_read_as_its_runs(trained_run: Path, tmp_path: Path):
    """A sweep's folder holds its report's figures and CSV beside the jobs, and a parent
    folder holds runs a level down: the study reads the runs and ignores every other file
    (it had tried to load best_bpc.png as a checkpoint)."""
    sweep = tmp_path / "multirun" / "2026-05-02_09-00-00"
    for job in ("0_optimizer.lr=0.001", "1_optimizer.lr=0.003"):
        shutil.copytree(trained_run, sweep / job)
    for name in ("best_bpc.png", "report.csv", "report.md"):
        (sweep / name).write_bytes(b"not a checkpoint")
    assert study.expand_runs([str(sweep)]) == [
        sweep / "0_optimizer.lr=0.001",
        sweep / "1_optimizer.lr=0.003",
    ]
    assert study.expand_runs([str(tmp_path / "multirun")]) == study.expand_runs([str(sweep)])
    proc = run_script(
        "gm.study", f"runs=[{sweep}]", "samples.max_new_tokens=5", f"hydra.run.dir={tmp_path / 's'}"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    labels = [r["label"] for r in json.loads((tmp_path / "s" / "study.json").read_text())["runs"]]
    assert len(labels) == 2  # copies of one run: nothing recorded differs, so job numbers
    assert "job 0" in labels[0] and "job 1" in labels[1]


def test_labels_of_a_sweep_name_what_differs(tmp_path: Path) -> None:
    """Two jobs of an lr sweep are labelled by their lr, not by their job numbers."""
    sweep = tmp_path / "multirun" / "2026-05-02_09-00-00"
    jobs = [sweep / "0_optimizer.lr=0.001", sweep / "1_optimizer.lr=0.003"]
    for job, lr in zip(jobs, ("0.001", "0.003"), strict=True):
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(
            f"- model=astra_alpha\n- optimizer.lr={lr}\n- trainer.max_epochs=1\n"
        )
    differs = study.differing_overrides(jobs)
    assert differs == {jobs[0]: "optimizer.lr=0.001", jobs[1]: "optimizer.lr=0.003"}
    labels = [run_label(job, _trained(job), differs[job]) for job in jobs]
    assert labels[1] == "astra_alpha (carried) · 2026-05-02_09-00-00 · optimizer.lr=0.003"


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


def _trained(path: Path, carry_state: bool = True) -> TrainedModel:
    """What ``run_label`` reads of a loaded run: the model's name and training regime."""
    return TrainedModel(
        model=torch.nn.Identity(), tokenizer=None, spec={}, seq_len=4, source=path,
        record=RunRecord(model_name="astra_alpha"), carry_state=carry_state,
    )  # fmt: skip


def test_two_runs_of_one_model_get_distinct_labels(tmp_path: Path) -> None:
    """Two single runs of one model, job 0 of two sweeps with the same overrides, and two
    checkpoints of one run: each its own label, every one naming the model and regime."""
    places = [
        tmp_path / "outputs" / "astra_alpha" / "2026-05-01_12-00-00",
        tmp_path / "outputs" / "astra_alpha" / "2026-05-01_13-00-00",
        tmp_path / "multirun" / "2026-05-02_09-00-00" / "0_optimizer.lr=0.001",
        tmp_path / "multirun" / "2026-05-03_09-00-00" / "0_optimizer.lr=0.001",
    ]
    for place in places:
        (place / "checkpoints").mkdir(parents=True)
    ckpts = [places[0] / "checkpoints" / "best.ckpt", places[0] / "checkpoints" / "last.ckpt"]
    for ckpt in ckpts:
        ckpt.touch()
    names = [run_label(p, _trained(p)) for p in [*places, *ckpts]]
    assert len(set(names)) == len(names), names
    assert all(n.startswith("astra_alpha (carried) · ") for n in names), names
    assert names[0] == "astra_alpha (carried) · 2026-05-01_12-00-00"
    assert names[2] == "astra_alpha (carried) · 2026-05-02_09-00-00 job 0"
    assert run_label(places[0], _trained(places[0], False)).startswith("astra_alpha (windowed)")


def test_study_figures_name_their_run_and_are_readable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loss-by-position figure's title names the run, its model and its directory; the
    bar figure has one group per run, with the three modes' values; both are readable."""
    made: list[Figure] = []

    def keep(make):  # the figure as write_study made it, before it is saved and closed
        def wrapper(*args: object) -> Figure:
            made.append(make(*args))
            return made[-1]

        return wrapper

    monkeypatch.setattr(study, "loss_by_position_figure", keep(study.loss_by_position_figure))
    monkeypatch.setattr(study, "bar_figure", keep(study.bar_figure))
    scores = {m: {"loss": 1.0 + i, "bpc": 1.5 + i, "ppl": 3.0} for i, m in enumerate(MODES)}
    sample = {"text": "to be", "distinct_2": 1.0, "distinct_3": 1.0, "longest_repeat": 0,
              "known_words": 1.0}  # fmt: skip
    results = [
        {"path": f"/runs/astra_alpha/{t}", "label": f"astra_alpha (carried) · {t}",
         "experiment": t, "seeds": [1, None],
         "name": "astra_alpha", "carry_state": True, "spec": {}, "parameters": 10,
         "seq_len": 2, "scores": scores, "curves": {m: [2.0, 1.0, 1.5] for m in MODES},
         "samples": {m: sample for m in MODES}, "overfitting_onset": None}
        for t in ("2026-05-01_12-00-00", "2026-05-01_13-00-00")
    ]  # fmt: skip
    write_study(results, tmp_path)
    bars, *by_position = made
    assert len(by_position) == 2
    for fig, r in zip(by_position, results, strict=True):
        title = fig.axes[0].get_title().replace("\n", " ")
        # The run's own folder and the one above it: the whole path would clip the title.
        where = "/".join(Path(r["path"]).parts[-2:])
        assert r["label"] in title and where in title and r["path"] not in title, title
    (ax,) = bars.axes
    assert len(ax.get_xticks()) == 2
    assert {"1.500", "2.500", "3.500"} <= {t.get_text() for t in ax.texts}
    for name in ("bpc_by_mode.png", "loss_by_position_0.png"):
        height, width = plt.imread(tmp_path / name).shape[:2]
        assert width >= 1200 and height >= 700, (name, width, height)


def _result(path: str, seed: int, carry: bool, stateful: float, chunk: float) -> dict:
    scores = {
        "stateful": {"loss": stateful * 0.69, "bpc": stateful},
        "chunk": {"loss": chunk * 0.69, "bpc": chunk},
        "stateless": {"loss": (stateful + 2) * 0.69, "bpc": stateful + 2},
    }
    return {
        "path": path, "experiment": f"gru {carry}", "seeds": [seed, None],
        "label": f"gru · {path}", "name": "gru", "carry_state": carry, "spec": {"cell": "gru"},
        "scores": scores,
    }  # fmt: skip


def test_the_cost_of_a_reset_is_a_paired_difference_over_seeds() -> None:
    """Per seed chunk − stateful, then their mean and t-interval: seeds that move both modes
    together cancel out, so a cost smaller than the seeds' spread is still decided."""
    results = [
        _result("a", 1, True, 2.40, 2.46),
        _result("b", 2, True, 2.50, 2.55),
        _result("c", 3, True, 2.45, 2.52),
        _result("d", 1, False, 2.44, 2.46),
        _result("e", 2, False, 2.46, 2.49),
    ]
    carried, windowed = study.group_results(results)
    assert carried["runs"] == ["a", "b", "c"] and carried["seeds"] == "seed 1, 2, 3"
    assert carried["label"] == "gru (carried)" and windowed["label"] == "gru (windowed)"
    cost = carried["reset_costs"]["chunk"]["bpc"]  # 0.06, 0.05, 0.07
    assert cost.mean == pytest.approx(0.06) and cost.sd == pytest.approx(0.01)
    assert cost.half_width == pytest.approx(4.302653 * 0.01 / 3**0.5, rel=1e-5)
    assert cost.excludes(0.0)
    spread = carried["scores"]["stateful"]["bpc"]
    assert spread.mean == pytest.approx(2.45) and spread.sd == pytest.approx(0.05)
    assert spread.half_width > cost.mean  # the seeds' spread is wider than the cost

    lines = "\n".join(study.seed_tables([carried, windowed]))
    assert "| gru (carried) | 3 | chunk − stateful | +0.0600 | [+0.0352, +0.0848] |" in lines
    assert "+0.060, +0.050, +0.070 | decided |" in lines
    regimes = "\n".join(study.regime_tables([carried, windowed]))
    assert "| carried state | 3 | 2.450 ± 0.124 |" in regimes
    assert "| windowed − carried (95%, Welch) |" in regimes and "not decided" in regimes


@pytest.mark.slow
def test_a_three_seed_sweep_is_one_group_in_the_report_and_the_study(
    tmp_path: Path, text_file: Path
) -> None:
    sweep = tmp_path / "sweep"
    proc = run_multirun(sweep, f"data.path={text_file}", *FAST_TRAIN, "model=rnn", "seed=1,2,3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The sweep's own report (written at its end) has the group.
    groups = list(csv.DictReader((sweep / "groups.csv").open()))
    assert len(groups) == 1 and groups[0]["runs"] == "3" and groups[0]["seeds"] == "seed 1, 2, 3"
    assert groups[0]["best_bpc_stateful_n"] == "3" and float(groups[0]["best_bpc_stateful_sd"]) > 0
    assert "## Over seeds" in (sweep / "report.md").read_text()

    out = tmp_path / "study"
    proc = run_script(
        "gm.study", f"runs=[{sweep}]", "samples.max_new_tokens=20", "batch_size=4",
        f"hydra.run.dir={out}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((out / "study.json").read_text())
    (group,) = record["groups"]
    assert len(group["runs"]) == 3 and group["seeds"] == "seed 1, 2, 3"
    per_run = [r["scores"]["chunk"]["bpc"] - r["scores"]["stateful"]["bpc"] for r in record["runs"]]
    cost = group["reset_costs"]["chunk"]["bpc"]
    assert cost["n"] == 3 and cost["mean"] == pytest.approx(sum(per_run) / 3)
    assert cost["low"] < cost["mean"] < cost["high"]
    assert "What a reset costs" in (out / "study.md").read_text()
