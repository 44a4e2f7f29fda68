"""A sweep's results in one place: ``python -m gm.report PATH [PATH ...] [--out DIR]``.

``PATH`` is a sweep folder (``outputs/multirun/<time>``, every run inside it) or a run
directory. For each run it reads ``metrics.json`` (written when training finishes),
``failed.json`` (written when a sweep job fails) and the logged scalars (TensorBoard
event files, or the CSV logger's ``metrics.csv``), so runs still in progress show their
curves so far. Runs that differ only by their seeds form a group (``gm.runs.seeds``): each
score is then given as the group's mean, standard deviation and 95 % interval, and every
group is compared with the best one. It writes ``report.md``, ``report.csv`` (a row per
run), ``groups.csv`` (a row per group) and two figures: ``val_bpc.png`` (every run's or
group's validation curve, one panel per inference mode; a group's mean with its interval as
a band) and ``best_bpc.png`` (each run or group at its best validation in the three modes).
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
from gm.intervals import LEVEL, Summary, difference, summarize
from gm.metrics import overfitting_onset
from gm.modes import BY_NAME, MODES
from gm.run import Run, differing_overrides, job_order
from gm.runs.seeds import describe_seeds, experiment_key, group_by, group_labels

TRAIN_LOSS = "train/loss"
CURVE = metric_key("bpc", "stateful")
BPC_TAGS = {mode: metric_key("bpc", mode) for mode in MODES}  # the logged tag of each mode
# The scores of a run that a group summarises: at the best validation (the lowest stateful
# bpc), at the last one, and on the test split (data.splits) with the best checkpoint.
SCORES = [f"{when}_bpc_{mode}" for when in ("best", "final", "test") for mode in MODES]
COLUMNS = [
    "run",
    "group",
    "seed",
    "train_seed",
    "status",
    "model",
    "overrides",
    "parameters",
    "steps",
    "wall_time_s",
    "tokens_per_s",
    "best_step",
    "overfit_epoch",
    *SCORES,
    "error",
]
# groups.csv: a row per group, each score as the number of runs that have it, the mean, the
# standard deviation and the 95 % interval of the mean.
STATS = ("n", "mean", "sd", "low", "high")
GROUP_COLUMNS = ["group", "runs", "seeds", *(f"{s}_{stat}" for s in SCORES for stat in STATS)]


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
    config: dict[str, Any] | None = None  # .hydra/config.yaml, as plain data

    @property
    def seeds(self) -> tuple[int | None, int | None]:
        """``(seed, train_seed)`` as recorded (None: not recorded, or train_seed null)."""
        config = self.config or {}

        def seed(key: str) -> int | None:
            value = config.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        return seed("seed"), seed("train_seed")

    def experiment(self) -> str:
        """What the run trained, seeds aside (``gm.runs.seeds.experiment_key``); a run
        without a recorded config stands alone."""
        if self.config is None:
            return f"run {self.path.resolve()}"
        data = self.metrics.get("data")
        sha = data.get("corpus_sha256") if isinstance(data, dict) else None
        return experiment_key(self.config, sha if isinstance(sha, str) else None)

    @property
    def name(self) -> str:
        return self.path.name

    def curve(self, tag: str = CURVE) -> list[tuple[int, float]]:
        """``(step, value)`` of a logged scalar."""
        return [(step, value) for step, value, _ in self.scalars.get(tag, [])]

    def _at(self, validation: dict[str, Any], tag: str) -> float | None:
        """``tag`` at a validation of the history: its own record, else the logged value at
        its step; None without one."""
        if "step" not in validation:
            return None
        value = validation.get(tag)
        return value if value is not None else _value_at(self, tag, validation["step"])

    def row(self) -> dict[str, Any]:
        """The run's line of ``report.csv``: blanks where a value is not known (yet)."""
        m = self.metrics
        history = m.get("history") or [
            {"step": s, CURVE: v} for s, v in self.curve() if math.isfinite(v)
        ]
        # A non-finite validation is stored as null: it is never the best.
        best = min(history, key=lambda h: _or_inf(h.get(CURVE)), default={})
        # Every mode at that step: the same weights (a running run's come from its logs).
        at_best = {mode: self._at(best, tag) for mode, tag in BPC_TAGS.items()}
        final = m.get("final") or (history[-1] if history else {})
        onset = overfitting_onset(m.get("history") or [])
        test = m.get("test") or {}
        wall = m.get("wall_time_s")
        if wall is None and self.scalars:  # still running: the span of the logged events
            times = [t for points in self.scalars.values() for _, _, t in points]
            wall = round(max(times) - min(times), 1)
        seed, train_seed = self.seeds
        return {
            "run": self.name,
            "group": "",  # write_report fills it in: it sees every run
            "seed": "" if seed is None else seed,
            "train_seed": "" if train_seed is None else train_seed,
            "status": self.status,
            "model": self.model,
            "overrides": " ".join(self.overrides),
            "parameters": m.get("parameters", ""),
            "steps": m.get("steps", max((s for s, _ in self.curve(TRAIN_LOSS)), default="")),
            "wall_time_s": wall if wall is not None else "",
            "tokens_per_s": m.get("train_tokens_per_s") or "",
            "best_step": best.get("step", ""),
            "overfit_epoch": onset["epoch"] + 1 if onset else "",  # (counted from 1)
            **{f"best_bpc_{mode}": _blank(at_best[mode]) for mode in MODES},
            **{f"final_bpc_{mode}": final.get(tag, "") for mode, tag in BPC_TAGS.items()},
            **{f"test_bpc_{mode}": test.get(mode, {}).get("bpc", "") for mode in MODES},
            "error": self.error,
        }


def _or_inf(value: float | None) -> float:
    return math.inf if value is None else value


def _blank(value: float | None) -> float | str:
    return "" if value is None else value


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
    report.config = run.config()
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


@dataclass
class GroupReport:
    """Runs that differ only by their seeds (``gm.runs.seeds``) and their scores together.

    Only finished runs count in a score's summary: one still training, interrupted or
    failed has no final scores to average (it is listed, and drawn in the curves)."""

    label: str
    runs: list[RunReport]
    rows: list[dict[str, Any]]

    @property
    def seeds(self) -> str:
        return describe_seeds([run.seeds for run in self.runs])

    @property
    def finished(self) -> int:
        return sum(run.status == "finished" for run in self.runs)

    def values(self, score: str) -> list[float]:
        """The finished runs' values of a ``SCORES`` column (those that have it)."""
        return [
            float(row[score])
            for run, row in zip(self.runs, self.rows, strict=True)
            if run.status == "finished" and row[score] != "" and math.isfinite(float(row[score]))
        ]

    def summary(self, score: str) -> Summary | None:
        """Mean, standard deviation and 95 % interval of a score; None when no run has it."""
        values = self.values(score)
        return summarize(values) if values else None

    def row(self) -> dict[str, Any]:
        """The group's line of ``groups.csv``."""
        row: dict[str, Any] = {"group": self.label, "runs": len(self.runs), "seeds": self.seeds}
        for score in SCORES:
            summary = self.summary(score)
            for stat in STATS:
                value = getattr(summary, stat) if summary is not None else None
                row[f"{score}_{stat}"] = "" if value is None else value
        return row


def group_runs(runs: list[RunReport], rows: list[dict[str, Any]]) -> list[GroupReport]:
    """The runs in groups that differ only by seed, in the order first met; each row's
    ``group`` column is filled in with its group's label."""
    members = group_by(range(len(runs)), lambda i: runs[i].experiment())
    names = group_labels([runs[indices[0]].overrides for indices in members])
    groups = []
    for name, indices in zip(names, members, strict=True):
        for i in indices:
            rows[i]["group"] = name
        groups.append(GroupReport(name, [runs[i] for i in indices], [rows[i] for i in indices]))
    return groups


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


def _estimate(summary: Summary | None) -> str:
    """``mean ± half-width (sd s)``, or the value alone for a group of one."""
    if summary is None:
        return "—"
    if summary.sd is None:
        return f"{summary.mean:.4f}"
    return f"{summary.mean:.4f} ± {summary.half_width:.4f} (sd {summary.sd:.4f})"


def seed_sections(groups: list[GroupReport]) -> list[str]:
    """The report's sections over seeds: every group's scores, and each group compared with
    the best; nothing while no group has two runs."""
    if all(len(g.runs) < 2 for g in groups):
        return []
    tested = any(g.values(f"test_bpc_{mode}") for g in groups for mode in MODES)
    whens = ("best", "final", "test") if tested else ("best", "final")
    level = f"{LEVEL:.0%}"
    lines = [
        "",
        "## Over seeds",
        "",
        "Runs that differ only by their seeds form a group. Each score is the mean over the "
        f"group's finished runs ± the half-width of its {level} interval (Student's t, "
        "n − 1 degrees of freedom), with the standard deviation across seeds in brackets; "
        "bits per character.",
        "",
        "| group | runs (finished) | seeds | mode | " + " | ".join(whens) + " |",
        "| --- | ---: | --- | --- |" + " ---: |" * len(whens),
    ]
    for g in groups:
        for mode in MODES:
            cells = [_estimate(g.summary(f"{when}_bpc_{mode}")) for when in whens]
            lines.append(
                f"| {_cell(g.label)} | {len(g.runs)} ({g.finished}) | {g.seeds} | {mode} | "
                + " | ".join(cells)
                + " |"
            )
    measured = [g for g in groups if len(g.values("best_bpc_stateful")) >= 2]
    if len(measured) < 2:
        return lines
    best = min(measured, key=lambda g: g.summary("best_bpc_stateful").mean)
    lines += [
        "",
        "## Differences between groups",
        "",
        f"Each group against `{best.label}` (the lowest mean best stateful bpc), at the best "
        f"validation: the difference of the means with Welch's {level} interval. "
        "*Decided* when the interval excludes zero; *not decided* when the seeds do not tell "
        "the two apart.",
        "",
        "| group | mode | difference | interval | verdict |",
        "| --- | --- | ---: | --- | --- |",
    ]
    for g in measured:
        if g is best:
            continue
        for mode in MODES:
            ours, theirs = g.values(f"best_bpc_{mode}"), best.values(f"best_bpc_{mode}")
            if len(ours) < 2 or len(theirs) < 2:
                continue
            d = difference(ours, theirs)
            verdict = ("worse" if d.estimate > 0 else "better") if d.decided else "not decided"
            lines.append(
                f"| {_cell(g.label)} | {mode} | {d.estimate:+.4f} | "
                f"[{d.low:+.4f}, {d.high:+.4f}] | {verdict} |"
            )
    return lines


def markdown(
    runs: list[RunReport], rows: list[dict[str, Any]], groups: list[GroupReport] | None = None
) -> str:
    """``report.md``: the table, the groups over seeds, the figures, and what failed or has
    not finished."""
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
        + "). Overfitting sets in at the epoch (counted from 1) of the lowest "
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
        best = _cell(row["best_bpc_stateful"])
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
    lines += seed_sections(groups if groups is not None else group_runs(runs, rows))
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
            f"- **{n}**: no metrics.json yet; best so far {_cell(r['best_bpc_stateful'])}"
            for n, r in unfinished
        ]
    return "\n".join(lines) + "\n"


def figures(
    runs: list[RunReport],
    rows: list[dict[str, Any]],
    out: Path,
    groups: list[GroupReport] | None = None,
) -> dict[str, Any]:
    """``val_bpc.png`` (validation curves, one panel per inference mode) and ``best_bpc.png``
    (the best validation, in the three modes): a run of its own as itself, a group over
    seeds as its mean with its 95 % interval (a band, error bars). Returns the matplotlib
    figures by file name, saved and closed, for a test to read."""
    from gm.figures import bar_figure, mode_curves_figure, save

    groups = groups if groups is not None else group_runs(runs, rows)
    names = labels(runs)
    curves: dict[str, dict[str, list[tuple[int, float | None]]]] = {}
    bands: dict[str, dict[str, list[tuple[int, float, float]]]] = {}
    # The table's best validation (the lowest stateful bpc) in every mode: the three bars
    # of a run are the same weights; a group's are the means of its finished runs'.
    best: dict[str, dict[str, float]] = {}
    errors: dict[str, dict[str, float]] = {}
    for g in groups:
        if len(g.runs) == 1:
            run, row = g.runs[0], g.rows[0]
            curves[f"{names[run.path]} ({run.status})"] = {
                mode: _mode_points(run, tag) for mode, tag in BPC_TAGS.items()
            }
            if row["best_step"] != "":
                best[f"{names[run.path]}\nstep {row['best_step']}"] = {
                    mode: row[f"best_bpc_{mode}"] for mode in MODES if row[f"best_bpc_{mode}"] != ""
                }
            continue
        name = f"{g.label}: mean of {len(g.runs)} runs ({g.seeds})"
        curves[name], bands[name] = {}, {}
        for mode, tag in BPC_TAGS.items():
            curves[name][mode], bands[name][mode] = _mean_curve(
                [_mode_points(run, tag) for run in g.runs]
            )
        summaries = {mode: g.summary(f"best_bpc_{mode}") for mode in MODES}
        label = f"{g.label}\nmean of {g.finished} runs"
        best[label] = {m: s.mean for m, s in summaries.items() if s is not None}
        errors[label] = {m: s.half_width for m, s in summaries.items() if s and s.sd is not None}
    count = f"{len(runs)} run{'' if len(runs) == 1 else 's'}"
    if len(groups) < len(runs):
        count += f" in {len(groups)} group{'' if len(groups) == 1 else 's'} over seeds"
    band = f"; a group's band is the {LEVEL:.0%} interval of its mean" if bands else ""
    made = {
        "val_bpc.png": mode_curves_figure(
            curves,
            f"Validation bits per character during training: {count}, in the three inference "
            f"modes (lower is better{band})",
            "validation bits per character",
            bands=bands,
        )
    }
    made["best_bpc.png"] = bar_figure(
        best,
        "validation bits per character (lower is better)",
        "Each run at its best validation (the lowest stateful bpc, at the step under the run's "
        "name), scored in the three inference modes"
        + (f"; a group's mean with its {LEVEL:.0%} interval" if errors else ""),
        errors=errors,
    )
    for file, fig in made.items():
        save(fig, out / file)
    return made


def _mean_curve(
    curves: list[list[tuple[int, float | None]]],
) -> tuple[list[tuple[int, float | None]], list[tuple[int, float, float]]]:
    """The mean at each step of the runs that reached it, and the 95 % interval of the mean
    where at least two did."""
    at: dict[int, list[float]] = {}
    for curve in curves:
        for step, value in curve:
            finite = value is not None and math.isfinite(value)
            at.setdefault(step, []).extend([value] if finite else [])
    mean, band = [], []
    for step in sorted(at):
        values = at[step]
        summary = summarize(values) if values else None
        mean.append((step, summary.mean if summary else None))
        if summary is not None and summary.sd is not None:
            band.append((step, summary.low, summary.high))
    return mean, band


def _mode_points(run: RunReport, tag: str) -> list[tuple[int, float | None]]:
    """``(step, value)`` of one mode's validations from the untrained model's (step 0) on: a
    finished run's own record first (its steps are the table's), else the logged curve (a
    run in progress, or a record written before every mode was kept in it)."""
    initial = run.metrics.get("initial")
    validations = [initial] if isinstance(initial, dict) else []
    validations += run.metrics.get("history", [])
    history = [(h["step"], h.get(tag)) for h in validations if "step" in h]
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
    groups = group_runs(runs, rows)
    write_bytes_atomic(out / "report.md", markdown(runs, rows, groups).encode())
    write_bytes_atomic(out / "report.csv", _csv(COLUMNS, rows))
    write_bytes_atomic(out / "groups.csv", _csv(GROUP_COLUMNS, [g.row() for g in groups]))
    figures(runs, rows, out, groups)
    return runs


def _csv(columns: list[str], rows: list[dict[str, Any]]) -> bytes:
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return table.getvalue().encode()


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
