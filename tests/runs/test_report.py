"""gm.report on runs that are not finished: listed as such, with their curves so far."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from gm.errors import UserError
from gm.runs.report import RunReport, figures, find_runs, labels, markdown, read_run, write_report
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
    assert [float(r["best_bpc_stateful"]) for r in rows] == [2.5, 2.9]
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
    # The lowest validation is history[1]: the second epoch, as people count (from 1).
    assert [r["overfit_epoch"] for r in rows] == ["2", ""]
    assert "overfits after epoch" in (tmp_path / "out" / "report.md").read_text()


def test_a_held_out_test_split_is_reported_in_three_modes(tmp_path: Path) -> None:
    tested, untested = tmp_path / "0_tested", tmp_path / "1_untested"
    test = {"stateful": {"bpc": 2.1}, "chunk": {"bpc": 2.2}, "stateless": {"bpc": 4.9}}
    for run, extra in ((tested, {"test": test}), (untested, {})):
        run.mkdir()
        history = [{"epoch": 0, "step": 10, "val/loss": 1.5, "val/bpc": 2.0}]
        (run / "metrics.json").write_text(json.dumps({"history": history, **extra}))
    write_report([tmp_path], tmp_path / "out")
    rows = list(csv.DictReader((tmp_path / "out" / "report.csv").open()))
    assert [r["test_bpc_chunk"] for r in rows] == ["2.2", ""]
    report = (tmp_path / "out" / "report.md").read_text()
    assert "Held-out test split" in report and "| 0 | 2.1000 | 2.2000 | 4.9000 |" in report


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


def _all_modes(run: Path, stateful: list[float]) -> None:
    """A finished run whose record has the three modes: chunk +0.2, stateless +1."""
    run.mkdir(parents=True)
    history = [
        {"epoch": i, "step": 10 * (i + 1), "val/bpc": b, "val/bpc_chunk": b + 0.2,
         "val/bpc_stateless": b + 1.0}
        for i, b in enumerate(stateful)
    ]  # fmt: skip
    (run / "metrics.json").write_text(json.dumps({"final": history[-1], "history": history}))


def test_the_report_figures_plot_all_three_modes(tmp_path: Path) -> None:
    """val_bpc.png has a panel per inference mode, each with every run's curve (a finished
    run's record, a running run's logged scalars); best_bpc.png has each run's best
    validation in the three modes, at the table's best step."""
    _all_modes(tmp_path / "sweep" / "0_lr=1", [3.0, 2.5, 2.7])
    running = tmp_path / "sweep" / "1_lr=2"
    (running / "csv").mkdir(parents=True)
    (running / "csv" / "metrics.csv").write_text(
        "epoch,step,val/bpc,val/bpc_chunk,val/bpc_stateless\n0,10,3.2,3.5,4.0\n0,20,2.9,3.1,4.0\n"
    )
    runs = [read_run(p) for p in find_runs([tmp_path / "sweep"])]
    made = figures(runs, [r.row() for r in runs], tmp_path)
    assert (tmp_path / "val_bpc.png").is_file() and (tmp_path / "best_bpc.png").is_file()

    panels = made["val_bpc.png"].axes
    assert len(panels) == 3
    for ax, mode, offset in zip(
        panels, ("stateful", "chunk", "stateless"), (0, 0.2, 1.0), strict=True
    ):
        assert mode in ax.get_title()
        finished, unfinished = ax.lines
        assert list(finished.get_ydata()) == pytest.approx(
            [3.0 + offset, 2.5 + offset, 2.7 + offset]
        )
        assert list(finished.get_xdata()) == [10, 20, 30]
        assert len(unfinished.get_ydata()) == 2
        assert ax.get_xlabel() == "optimizer step"
    assert "bits per character" in panels[0].get_ylabel()
    legend = [t.get_text() for t in made["val_bpc.png"].legends[0].get_texts()]
    assert legend == ["0 (finished)", "1 (running or stopped)"]

    (ax,) = made["best_bpc.png"].axes
    values = {t.get_text() for t in ax.texts}
    assert {"2.500", "2.700", "3.500", "2.900", "3.100", "4.000"} <= values  # steps 20 and 20
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["0\nstep 20", "1\nstep 20"]
    for fig in made.values():
        width, _ = fig.get_size_inches() * fig.dpi
        assert width >= 1200


def test_two_runs_of_one_model_with_the_same_overrides_get_distinct_labels(
    tmp_path: Path,
) -> None:
    """Job 0 of two sweeps with the same overrides: not both "0" in the table, nor one
    legend entry for two curves; a run without its .hydra overrides neither."""
    paths = [tmp_path / "a" / "0_model=x", tmp_path / "b" / "0_model=x", tmp_path / "b" / "0_y"]
    runs = [RunReport(path=p, status="finished", overrides=["model=x"]) for p in paths]
    assert labels(runs[1:]) == {runs[1].path: "0_model=x", runs[2].path: "0_y"}
    for run, bpc in zip(runs, (2.0, 2.1, 2.2), strict=True):
        run.metrics = {"history": [{"step": 10, "val/bpc": bpc}]}
    made = figures(runs, [r.row() for r in runs], tmp_path)
    legend = [t.get_text() for t in made["val_bpc.png"].legends[0].get_texts()]
    assert len(set(legend)) == 3, legend
    assert legend[0].startswith("a/0_model=x") and legend[1].startswith("b/0_model=x")
    (ax,) = made["best_bpc.png"].axes
    assert len(ax.get_xticks()) == 3  # one group of bars per run, none merged by its label
    table = markdown(runs, [r.row() for r in runs])
    assert "| a/0_model=x |" in table and "| b/0_model=x |" in table


@pytest.mark.parametrize(
    "damage", ["", "not json", "[1, 2]", '{"history": 5}', '{"final": 3}', '{"test": 3}']
)
def test_a_damaged_job_costs_its_row_not_the_report(
    trained_run: Path, tmp_path: Path, damage: str
) -> None:
    """One job's metrics.json that is empty, not JSON or of another shape took the whole
    report down with a traceback; now that job is left out with a warning line."""
    sweep = tmp_path / "sweep"
    for job in ("0_a", "1_b"):
        shutil.copytree(trained_run, sweep / job)
    (sweep / "1_b" / "metrics.json").write_text(damage)
    proc = run_script("gm.report", str(sweep))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert f"warning: {sweep / '1_b'} left out of the report" in proc.stderr
    assert [r["run"] for r in csv.DictReader((sweep / "report.csv").open())] == ["0_a"]


def test_a_folder_name_with_a_newline_or_a_bar_keeps_the_table_whole(tmp_path: Path) -> None:
    for name in ("a\nb", "c|d"):
        _finished(tmp_path / "runs" / name, [2.0, 1.9])
    write_report([tmp_path / "runs"], tmp_path / "out")
    rows = [line for line in (tmp_path / "out" / "report.md").read_text().splitlines()
            if line.startswith("| ")]  # fmt: skip
    assert [row.split(" | ")[0] for row in rows[2:]] == ["| a b", "| c\\|d"]
    assert all(row.count(" | ") == rows[0].count(" | ") for row in rows)


def _seeded(run: Path, seed: int, lr: float, best: float, status_file: str = "metrics.json"):
    """A finished run of a recorded config (seed, learning rate) whose best stateful bpc is
    ``best`` at step 20 (chunk +0.1, stateless +2), then a worse last validation."""
    run.mkdir(parents=True)
    (run / ".hydra").mkdir()
    config = {"seed": seed, "train_seed": None, "threads": 1, "optimizer": {"lr": lr},
              "paths": {"output_dir": str(run)}, "data": {"path": "/corpus.txt"}}  # fmt: skip
    (run / ".hydra" / "config.yaml").write_text(json.dumps(config))
    overrides = [f"seed={seed}", f"optimizer.lr={lr}"]
    (run / ".hydra" / "overrides.yaml").write_text(json.dumps(overrides))
    history = [
        {"epoch": e, "step": step, "val/bpc": b, "val/bpc_chunk": b + 0.1,
         "val/bpc_stateless": b + 2.0}
        for e, (step, b) in enumerate(((10, best + 1.0), (20, best), (30, best + 0.05)))
    ]  # fmt: skip
    (run / "metrics.json").write_text(json.dumps({"final": history[-1], "history": history}))


def test_runs_that_differ_only_by_seed_are_summarised_as_a_group(tmp_path: Path) -> None:
    """Three seeds of one learning rate and two of another: two groups, each with n, mean,
    sd and the t-interval of every score (hand-computed), compared with the best group."""
    sweep = tmp_path / "sweep"
    for job, (seed, lr, best) in enumerate(
        [(1, 0.003, 2.0), (2, 0.003, 2.1), (3, 0.003, 2.3), (1, 0.01, 2.5), (2, 0.01, 2.6)]
    ):
        _seeded(sweep / f"{job}_x", seed, lr, best)
    write_report([sweep], tmp_path / "out")

    rows = list(csv.DictReader((tmp_path / "out" / "report.csv").open()))
    assert [r["group"] for r in rows] == ["optimizer.lr=0.003"] * 3 + ["optimizer.lr=0.01"] * 2
    assert [r["seed"] for r in rows] == ["1", "2", "3", "1", "2"]
    assert [float(r["best_bpc_chunk"]) for r in rows] == pytest.approx([2.1, 2.2, 2.4, 2.6, 2.7])

    groups = list(csv.DictReader((tmp_path / "out" / "groups.csv").open()))
    assert [(g["group"], g["runs"], g["seeds"]) for g in groups] == [
        ("optimizer.lr=0.003", "3", "seed 1, 2, 3"),
        ("optimizer.lr=0.01", "2", "seed 1, 2"),
    ]
    first = {k: float(v) for k, v in groups[0].items() if k.startswith("best_bpc_stateful_")}
    # 2.0, 2.1, 2.3: mean 2.1333, sd 0.15275, half-width 4.30265 * 0.15275 / sqrt(3) = 0.37945
    assert first["best_bpc_stateful_n"] == 3
    assert first["best_bpc_stateful_mean"] == pytest.approx(6.4 / 3)
    assert first["best_bpc_stateful_sd"] == pytest.approx(0.152753, abs=1e-6)
    assert first["best_bpc_stateful_low"] == pytest.approx(6.4 / 3 - 0.379456, abs=1e-5)
    assert first["best_bpc_stateful_high"] == pytest.approx(6.4 / 3 + 0.379456, abs=1e-5)
    assert float(groups[0]["final_bpc_stateless_mean"]) == pytest.approx(6.4 / 3 + 2.05)
    assert groups[0]["test_bpc_stateful_n"] == ""  # no test split: no score to summarise

    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Over seeds" in report
    row = "| optimizer.lr=0.003 | 3 (3) | seed 1, 2, 3 | stateful | 2.1333 ± 0.3795 (sd 0.1528)"
    assert row in report
    # Against the best group: +0.4167 with Welch's interval, which here excludes zero.
    assert "## Differences between groups" in report
    assert "| optimizer.lr=0.01 | stateful | +0.4167 |" in report
    line = next(r for r in report.splitlines() if r.startswith("| optimizer.lr=0.01 | stateful"))
    assert line.endswith("| worse |")


def test_a_group_is_drawn_as_its_mean_with_a_band_and_error_bars(tmp_path: Path) -> None:
    for job, seed in enumerate((1, 2, 3)):
        _seeded(tmp_path / "sweep" / f"{job}_x", seed, 0.003, 2.0 + 0.1 * seed)
    _seeded(tmp_path / "sweep" / "3_y", 1, 0.01, 2.9)  # a group of one: drawn as itself
    runs = [read_run(p) for p in find_runs([tmp_path / "sweep"])]
    made = figures(runs, [r.row() for r in runs], tmp_path)
    stateful = made["val_bpc.png"].axes[0]
    group, single = stateful.lines
    assert list(group.get_ydata()) == pytest.approx([3.2, 2.2, 2.25])  # the mean of 3 seeds
    assert list(single.get_ydata()) == pytest.approx([3.9, 2.9, 2.95])
    (band,) = stateful.collections  # the group's interval, around its mean
    low, high = band.get_paths()[0].vertices[:, 1].min(), band.get_paths()[0].vertices[:, 1].max()
    assert low < 2.2 < high and high - low < 2.0
    legend = [t.get_text() for t in made["val_bpc.png"].legends[0].get_texts()]
    assert legend[0].startswith("optimizer.lr=0.003: mean of 3 runs (seed 1, 2, 3)")
    (bars,) = made["best_bpc.png"].axes
    texts = {t.get_text() for t in bars.texts}
    assert "2.200 ± 0.248" in texts and "2.900" in texts  # 4.303 * 0.1 / sqrt(3) = 0.248


def test_every_curve_starts_at_the_untrained_models_validation(tmp_path: Path) -> None:
    """A run with one validation is a line from step 0, not a lone dot."""
    run = tmp_path / "0_one"
    run.mkdir()
    initial = {"step": 0, "val/bpc": 6.0, "val/bpc_chunk": 6.0, "val/bpc_stateless": 6.0}
    history = [{"epoch": 0, "step": 10, "val/bpc": 3.0, "val/bpc_chunk": 3.1,
                "val/bpc_stateless": 4.0}]  # fmt: skip
    (run / "metrics.json").write_text(json.dumps({"initial": initial, "history": history}))
    runs = [read_run(run)]
    rows = [runs[0].row()]
    made = figures(runs, rows, tmp_path)
    for ax, last in zip(made["val_bpc.png"].axes, (3.0, 3.1, 4.0), strict=True):
        (line,) = ax.lines
        assert list(line.get_xdata()) == [0, 10] and list(line.get_ydata()) == [6.0, last]
    assert rows[0]["best_step"] == 10  # the untrained model is never the best
