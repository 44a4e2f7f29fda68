"""A sweep's results in one place: ``python -m gm.report PATH [PATH ...] [--out DIR]``.

``PATH`` is a sweep folder (``outputs/multirun/<time>``, every run inside it) or a run
directory. For each run it reads ``metrics.json`` (written when training finishes),
``failed.json`` (written when a sweep job fails) and the logged scalars (TensorBoard
event files, or the CSV logger's ``metrics.csv``), so runs still in progress show their
curves so far. It writes ``report.md``, ``report.csv`` and two figures:
``val_bpc.png`` (every run's validation curve, one panel per inference mode) and
``best_bpc.png`` (each run's best validation in the three modes).
A multirun writes this report into its sweep folder when its last job ends.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gm.errors import UserError
from gm.evaluation import metric_key
from gm.metrics import overfitting_onset
from gm.modes import BY_NAME, MODES
from gm.run import Run, differing_overrides, job_order

TRAIN_LOSS = "train/loss"
CURVE = metric_key("bpc", "stateful")
BPC_TAGS = {mode: metric_key("bpc", mode) for mode in MODES}  # the logged tag of each mode
COLUMNS = [
    "run",
    "status",
    "model",
    "overrides",
    "parameters",
    "steps",
    "wall_time_s",
    "tokens_per_s",
    "best_val_bpc",
    "best_step",
    "overfit_epoch",
    *(f"final_bpc_{mode}" for mode in MODES),
    *(f"test_bpc_{mode}" for mode in MODES),  # with a test split (data.splits), best checkpoint
    "error",
]


# What a run's directory says of it: metrics.json written at the end; written at a stop on a
# scheduler's signal (gm.training.preemption); failed.json; neither yet.
STATUSES = ("finished", "interrupted", "failed", "running or stopped")


@dataclass
class RunReport:
    """What the report knows about one run directory."""

    path: Path
    status: str  # one of STATUSES
    model: str = ""
    overrides: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    scalars: dict[str, list[tuple[int, float, float]]] = field(default_factory=dict)
    error: str = ""

    @property
    def name(self) -> str:
        return self.path.name

    def curve(self, tag: str = CURVE) -> list[tuple[int, float]]:
        """``(step, value)`` of a logged scalar."""
        return [(step, value) for step, value, _ in self.scalars.get(tag, [])]

    def row(self) -> dict[str, Any]:
        """The run's line of ``report.csv``: blanks where a value is not known (yet)."""
        m = self.metrics
        history = m.get("history") or [
            {"step": s, CURVE: v} for s, v in self.curve() if math.isfinite(v)
        ]
        # A non-finite validation is stored as null: it is never the best.
        best = min(history, key=lambda h: _or_inf(h.get(CURVE)), default={})
        final = m.get("final") or (history[-1] if history else {})
        onset = overfitting_onset(m.get("history") or [])
        test = m.get("test") or {}
        wall = m.get("wall_time_s")
        if wall is None and self.scalars:  # still running: the span of the logged events
            times = [t for points in self.scalars.values() for _, _, t in points]
            wall = round(max(times) - min(times), 1)
        return {
            "run": self.name,
            "status": self.status,
            "model": self.model,
            "overrides": " ".join(self.overrides),
            "parameters": m.get("parameters", ""),
            "steps": m.get("steps", max((s for s, _ in self.curve(TRAIN_LOSS)), default="")),
            "wall_time_s": wall if wall is not None else "",
            "tokens_per_s": m.get("train_tokens_per_s") or "",
            "best_val_bpc": best.get(CURVE, ""),
            "best_step": best.get("step", ""),
            "overfit_epoch": onset["epoch"] if onset else "",
            **{f"final_bpc_{mode}": final.get(tag, "") for mode, tag in BPC_TAGS.items()},
            **{f"test_bpc_{mode}": test.get(mode, {}).get("bpc", "") for mode in MODES},
            "error": self.error,
        }


def _or_inf(value: float | None) -> float:
    return math.inf if value is None else value


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Each path that is a run, or the runs directly inside it (a sweep folder)."""
    runs: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.is_dir():
            raise UserError(f"{path} is not a directory; give a sweep folder or run directories")
        if Run(path).holds_run():
            found = [path]
        else:
            found = sorted((p for p in path.iterdir() if Run(p).holds_run()), key=job_order)
        if not found:
            raise UserError(f"{path} holds no training run (no metrics.json, logs or .hydra/)")
        runs.extend(found)
    return runs


def read_scalars(run_dir: Path) -> dict[str, list[tuple[int, float, float]]]:
    """Every logged scalar as ``(step, value, wall_time)``: TensorBoard, else the CSV log."""
    # In the run directory itself; earlier runs of gm wrote them under tensorboard/.
    events = sorted(run_dir.glob("events.out.tfevents.*")) or sorted(
        run_dir.glob("tensorboard/**/events.out.tfevents.*")
    )
    if events:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        scalars: dict[str, list[tuple[int, float, float]]] = {}
        for path in events:  # a resumed run appends a second event file
            acc = EventAccumulator(str(path), size_guidance={"scalars": 0})
            acc.Reload()
            for tag in acc.Tags()["scalars"]:
                points = [(e.step, e.value, e.wall_time) for e in acc.Scalars(tag)]
                scalars.setdefault(tag, []).extend(points)
        return {tag: sorted(points) for tag, points in scalars.items()}
    table = run_dir / "csv" / "metrics.csv"
    if table.is_file():
        scalars = {}
        with table.open(newline="") as f:
            for line in csv.DictReader(f):
                for tag, value in line.items():
                    if tag not in ("step", "epoch") and value not in ("", None):
                        scalars.setdefault(tag, []).append((int(line["step"]), float(value), 0.0))
        return scalars
    return {}


def read_run(path: Path) -> RunReport:
    """Status, configuration, final metrics and logged curves of one run directory, as its
    ``gm.run.Run`` reads them."""
    run, report = Run(path), RunReport(path=path, status="running or stopped")
    report.overrides, report.model = run.overrides(), run.model_choice()
    if run.metrics_path.is_file():
        report.metrics, report.status = run.metrics(), "finished"
        if not report.metrics:  # empty, not JSON or not an object: not training's file
            raise ValueError(f"{run.metrics_path} is not a metrics record")
        if isinstance(report.metrics.get("stopped"), dict):
            report.status = "interrupted"
    failure = run.failure()
    if failure is not None:  # a job that failed after an earlier attempt finished
        report.error, report.status = str(failure.get("error", "")), "failed"
    report.scalars = read_scalars(path)
    return report


def labels(runs: list[RunReport]) -> dict[Path, str]:
    """Short names for tables and legends, by run directory: the job number and the
    overrides that differ between the runs (the ones every run shares are said once,
    above the table); distinct for distinct directories. Where the job number
    and overrides do not tell two runs apart (job 0 of two sweeps, or runs without their
    ``.hydra`` overrides), the number gives way to as much of the directory's path as
    does: its name, then its parent folder and name, and so on."""
    varying = dict(
        zip((r.path for r in runs), differing_overrides([r.overrides for r in runs]), strict=True)
    )
    depth = dict.fromkeys((run.path for run in runs), 0)  # 0: the job number alone

    def label(run: RunReport) -> str:
        k = depth[run.path]
        parts = run.path.parts
        if k == 0:
            where = run.name.split("_")[0] if re.match(r"\d+_", run.name) else run.name
        else:
            where = "/".join(parts[-k:]) if k < len(parts) else str(run.path.resolve())
        differs = " ".join(varying[run.path])
        return f"{where}: {differs}" if differs else where

    while True:
        holders: dict[str, set[Path]] = {}
        for run in runs:
            holders.setdefault(label(run), set()).add(run.path.resolve())
        clashing = [run for run in runs if len(holders[label(run)]) > 1]
        if not clashing:
            return {run.path: label(run) for run in runs}
        for run in clashing:  # ends: the whole resolved paths of distinct directories differ
            depth[run.path] += 1


def _cell(value: Any, digits: int = 4) -> str:
    if value == "" or value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    # One table row per run, whatever a folder name or error holds (a newline, a "|").
    return " ".join(str(value).splitlines()).replace("|", "\\|")


def markdown(runs: list[RunReport], rows: list[dict[str, Any]]) -> str:
    """``report.md``: the table, the figures, and what failed or has not finished."""
    # By position, not by name: two sweeps' job 0 have one name and two labels.
    by_path = labels(runs)
    names = [by_path[run.path] for run in runs]
    shared = set.intersection(*(set(r.overrides) for r in runs)) if runs else set()
    counts = ", ".join(f"{sum(r.status == s for r in runs)} {s}" for s in STATUSES)
    lines = [
        "# Sweep report",
        "",
        f"{len(runs)} runs: {counts}. Validation bits per character: the best of each run, "
        "and the last validation's three inference modes ("
        + ", ".join(BY_NAME[mode].label for mode in MODES)
        + "). Overfitting sets in at the epoch of the lowest "
        "validation loss when a later validation is worse while the training loss is lower "
        "(blank: not seen).",
        "",
        f"Overrides shared by every run: `{' '.join(sorted(shared))}`" if shared else "",
        "",
        "| run | status | model | parameters | steps | wall time (s) | tokens/s "
        "| best val bpc (step) | overfits after epoch | " + " | ".join(MODES) + " |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |" + " ---: |" * len(MODES),
    ]
    for name, row in zip(names, rows, strict=True):
        best = _cell(row["best_val_bpc"])
        if row["best_step"] != "":
            best += f" ({row['best_step']})"
        cells = [
            _cell(name),
            row["status"],
            _cell(row["model"]),
            _cell(row["parameters"]),
            _cell(row["steps"]),
            _cell(row["wall_time_s"], 1),
            _cell(row["tokens_per_s"], 0),
            best,
            _cell(row["overfit_epoch"]),
            *(_cell(row[f"final_bpc_{mode}"]) for mode in MODES),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    tested = [(n, r) for n, r in zip(names, rows, strict=True) if r["test_bpc_stateful"] != ""]
    if tested:
        lines += ["", "Held-out test split, best checkpoint, bits per character:", ""]
        lines += ["| run | " + " | ".join(MODES) + " |", "| --- |" + " ---: |" * len(MODES)]
        for n, r in tested:
            cells = " | ".join(_cell(r[f"test_bpc_{mode}"]) for mode in MODES)
            lines.append(f"| {_cell(n)} | {cells} |")
    lines += ["", "Run directories:", ""] + [f"- `{' '.join(r['run'].splitlines())}`" for r in rows]
    lines += ["", "![validation curves](val_bpc.png)", "", "![best validation bpc](best_bpc.png)"]
    failed = [(n, r) for n, r in zip(names, rows, strict=True) if r["status"] == "failed"]
    if failed:
        lines += ["", "## Failed", ""]
        lines += [f"- **{n}**: {r['error']}" for n, r in failed]
    interrupted = [
        (n, run) for n, run in zip(names, runs, strict=True) if run.status == "interrupted"
    ]
    if interrupted:
        lines += ["", "## Interrupted", ""]
        lines += [
            f"- **{n}**: {run.metrics['stopped'].get('signal')} at step "
            f"{run.metrics['stopped'].get('step')}; continue with "
            f"`python train.py resume={run.path}`"
            for n, run in interrupted
        ]
    unfinished = [
        (n, r) for n, r in zip(names, rows, strict=True) if r["status"] == "running or stopped"
    ]
    if unfinished:
        lines += ["", "## Running or stopped", ""]
        lines += [
            f"- **{n}**: no metrics.json yet; best so far {_cell(r['best_val_bpc'])}"
            for n, r in unfinished
        ]
    return "\n".join(lines) + "\n"


def figures(runs: list[RunReport], rows: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """``val_bpc.png`` (every run's validation curves, one panel per inference mode) and
    ``best_bpc.png`` (each run at its best validation, in the three modes). Returns the
    matplotlib figures by file name, saved and closed, for a test to read."""
    from gm.figures import bar_figure, mode_curves_figure, save

    names = labels(runs)
    curves = {
        f"{names[run.path]} ({run.status})": {
            mode: _mode_points(run, tag) for mode, tag in BPC_TAGS.items()
        }
        for run in runs
    }
    made = {
        "val_bpc.png": mode_curves_figure(
            curves,
            f"Validation bits per character during training: {len(runs)} "
            f"run{'' if len(runs) == 1 else 's'}, in the three inference modes (lower is better)",
            "validation bits per character",
        )
    }

    # The table's best validation (the lowest stateful bpc) of each run, scored in every
    # mode at that step: the three bars of a run are the same weights.
    best = {}
    for run, row in zip(runs, rows, strict=True):
        step = row["best_step"]
        if step != "":
            at_step = {mode: _value_at(run, tag, step) for mode, tag in BPC_TAGS.items()}
            best[f"{names[run.path]}\nstep {step}"] = {
                mode: value for mode, value in at_step.items() if value is not None
            }
    made["best_bpc.png"] = bar_figure(
        best,
        "validation bits per character (lower is better)",
        "Each run at its best validation (the lowest stateful bpc, at the step under the run's "
        "name), scored in the three inference modes",
    )
    for name, fig in made.items():
        save(fig, out / name)
    return made


def _mode_points(run: RunReport, tag: str) -> list[tuple[int, float | None]]:
    """``(step, value)`` of one mode's validations: a finished run's own record first (its
    steps are the table's), else the logged curve (a run in progress, or a record written
    before every mode was kept in it)."""
    history = [(h["step"], h.get(tag)) for h in run.metrics.get("history", []) if "step" in h]
    if any(value is not None for _, value in history):
        return history
    return list(run.curve(tag))


def _value_at(run: RunReport, tag: str, step: int) -> float | None:
    """The finite value of ``tag`` at validation ``step``, else None."""
    for at, value in _mode_points(run, tag):
        if at == step and value is not None and math.isfinite(value):
            return value
    return None


def write_report(paths: list[str | Path], out: str | Path) -> list[RunReport]:
    """Read the runs under ``paths`` and write the report files into ``out``."""
    from gm.atomic import write_bytes_atomic

    runs, rows = [], []
    for path in find_runs(paths):
        # One run's damaged metrics.json or failed.json costs its row, not the report.
        try:
            run = read_run(path)
            row = run.row()
        except (TypeError, ValueError, AttributeError, KeyError, IndexError):
            print(
                f"warning: {path} left out of the report: its metrics.json or failed.json "
                "is not what gm writes",
                file=sys.stderr,
            )
            continue
        runs.append(run)
        rows.append(row)
    if not runs:
        raise UserError(f"no run under {', '.join(map(str, paths))} could be read")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out / "report.md", markdown(runs, rows).encode())
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomic(out / "report.csv", table.getvalue().encode())
    figures(runs, rows, out)
    return runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gm.report", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", help="a sweep folder or run directories")
    parser.add_argument(
        "--out", help="where to write the report (default: the sweep folder, or ./report)"
    )
    args = parser.parse_args(argv)
    single = len(args.paths) == 1 and not Run(args.paths[0]).holds_run()
    out = Path(args.out or (args.paths[0] if single else "report"))
    from gm.cli import run_or_exit

    runs = run_or_exit(write_report, args.paths, out)
    print(f"{len(runs)} runs -> {out / 'report.md'}")


if __name__ == "__main__":
    main()
