"""The stateful-inference study as a report: ``python -m gm.study runs=[RUN_DIR,...]``.

For every run it scores the validation split of the run's corpus in the three modes
(``gm.evaluation``), samples text in each mode from the same seed, and writes
``study.md``, ``study.json`` and PNG figures into its own output directory. A multirun
folder stands for all the runs inside it. Nothing is trained.

Runs that differ only by their seeds form a group (``gm.runs.seeds``): the study gives each
group's scores as the mean with its 95 % interval, and the study's variable, the cost of a
reset, as *paired* differences (chunk − stateful and stateless − stateful of each run, then
their mean and interval), since the modes of one run share its weights.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from gm.artifacts import TrainedModel, find_trained, load_trained
from gm.atomic import write_json_atomic
from gm.config import CONF_DIR
from gm.data.corpus import cache_dir, read_corpus
from gm.data.ids import split_ids
from gm.data.streams import StreamBatches
from gm.errors import UserError
from gm.evaluation import eval_modes, evaluate
from gm.figures import bar_figure, loss_by_position_figure, save
from gm.generation import SamplingOptions, generate
from gm.generation.stats import text_stats, words
from gm.intervals import LEVEL, Summary, difference, paired, summarize
from gm.metrics import overfitting_onset
from gm.modes import MODES
from gm.run import count_parameters, override_key, run_of
from gm.run import differing_overrides as differing
from gm.runs.seeds import (
    NOT_THE_EXPERIMENT,
    describe_seeds,
    experiment_key,
    group_by,
    without_seeds,
)
from gm.settings import SEED, Setting, check_settings


def expand_runs(paths: list[str]) -> list[Path]:
    """Each path as given, or the trained models anywhere inside it (a sweep, a folder of
    runs); files that are not checkpoints (figures, logs) are ignored."""
    runs: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise UserError(f"{path} does not exist; runs= takes run directories or sweeps")
        found = find_trained(path)
        if not found:
            raise UserError(f"{path} holds no training run (no checkpoints/ inside it)")
        runs.extend(found)
    return runs


def run_label(path: Path, trained: TrainedModel, differs: str = "") -> str:
    """The run's name in tables and figures: its model, its training regime and where it
    is, e.g. ``astra_alpha (carried) · 2026-05-01_12-00-00`` or ``astra_alpha (windowed) ·
    2026-05-01_12-00-00 job 3``. The place keeps two runs of one model apart: a single run's
    folder (its start time), or a sweep's folder and the job's number; a checkpoint file
    adds its own name (two checkpoints of one run). ``differs`` (the overrides that tell
    the compared runs apart, ``differing_overrides``) replaces a sweep job's number."""
    regime = {True: "carried", False: "windowed"}.get(trained.carry_state, "?")
    model = trained.name or path.name
    # A checkpoint sits in <run>/checkpoints/; a bundle or a run is a folder of its own.
    run_dir = path.parent.parent if path.is_file() and path.parent.name == "checkpoints" else path
    folder, name = run_dir.parent.name, run_dir.name
    job = re.fullmatch(r"(\d+)(_.*)?", name)  # a sweep job: <num> or <num>_<overrides>
    if job and differs:
        where = f"{folder} · {differs}"
    elif job:
        where = f"{folder} job {job.group(1)}"  # the number: the overrides would make it long
    elif folder in (model, ""):  # outputs/<model>/<time>: the model is said already
        where = name
    else:
        where = f"{folder}/{name}"
    if path.is_file():
        where += f" {path.name}"
    return f"{model} ({regime}) · {where}"


def differing_overrides(paths: list[Path]) -> dict[Path, str]:
    """For each run, the recorded overrides that tell it apart from the others among
    ``paths`` (``gm.run.differing_overrides``, e.g. ``optimizer.lr=0.003``), joined; "" for
    all when they do not tell every run apart."""
    names = [" ".join(d) for d in differing([run_of(p).overrides() for p in paths])]
    if len(paths) < 2 or "" in names or len(set(names)) < len(names):
        return dict.fromkeys(paths, "")
    return dict(zip(paths, names, strict=True))


def check_corpus(
    path: Path, trained: TrainedModel, corpus_path: str, sha256: str, allow: bool
) -> None:
    """Scores compare only on the text the model trained on: a text whose sha256 is not the
    one recorded at training (the file changed since, or ``corpus=`` names another) is
    refused, or with ``allow_changed_corpus=true`` scored after one warning line (a
    boolean: ``STUDY_SETTINGS`` has checked it)."""
    expected = trained.corpus.get("sha256")
    if not expected or sha256 == expected:
        return
    differs = (
        f"the text at {corpus_path} is not the one {path} trained on "
        f"(sha256 {sha256[:12]}, trained on {str(expected)[:12]})"
    )
    if not allow:
        raise UserError(
            f"{differs}; pass corpus= the training text, or allow_changed_corpus=true to "
            "score it anyway"
        )
    print(
        f"warning: {differs}; scoring it anyway, so its scores do not compare with the run's own",
        file=sys.stderr,
    )


def study_one(path: Path, cfg: DictConfig, differs: str = "") -> dict[str, Any]:
    """Scores, loss-by-position curves and samples of one run."""
    trained = load_trained(path)
    corpus_path = cfg.corpus or trained.corpus.get("path")
    if not corpus_path or not Path(corpus_path).is_file():
        raise UserError(f"the corpus {path} trained on is not at {corpus_path!r}; pass corpus=")
    corpus = read_corpus(corpus_path, encoding=trained.corpus.get("encoding", "utf-8"))
    check_corpus(path, trained, corpus_path, corpus.sha256, cfg.allow_changed_corpus)
    # The run's own validation split, as its training recorded it (data.splits), and the
    # ids training read (the id cache; encoded the same way on a miss).
    bounds, tok = trained.split_bounds(corpus.chars), trained.tokenizer
    cache = cache_dir(cfg.paths.data_dir)
    val_ids = split_ids(corpus, tok, bounds, 1, cache)
    warmup = int(cfg.get("warmup") or 0)
    # The training split's last tokens, read in before the first stream (never scored).
    before = split_ids(corpus, tok, bounds, 0, cache) if warmup else None
    batches = StreamBatches(
        val_ids, cfg.batch_size, trained.seq_len, split="validation",
        warmup=warmup, before=before, complete=warmup > 0,
    )  # fmt: skip
    char_lengths = torch.tensor(tok.char_lengths())
    modes = eval_modes(cfg.get("chunk_len") or (), trained.seq_len)
    metrics = evaluate(trained.model, batches, char_lengths, trained.seq_len, modes)
    scores = {mode: {k: float(v) for k, v in m.compute().items()} for mode, m in metrics.items()}
    curves = {mode: metrics[mode].loss_by_position() for mode in MODES}

    vocabulary = set(words(corpus.read(*trained.split_range(0, corpus.chars))))
    options = SamplingOptions(temperature=cfg.samples.temperature)
    prompt = tok.encode(cfg.samples.prompt)
    samples = {}
    for mode in MODES:
        g = torch.Generator().manual_seed(cfg.samples.seed)  # the same draws for every mode
        new = generate(
            trained.model,
            prompt,
            cfg.samples.max_new_tokens,
            mode,
            options,
            g,
            window=trained.seq_len,
        )
        text = tok.decode(new)
        samples[mode] = {"text": text, **text_stats(text, vocabulary)}
    run = run_of(path)
    history = run.metrics().get("history", [])
    return {
        "path": str(path),
        "experiment": experiment_of(path, trained),
        "seeds": [trained.record.seed, trained.record.train_seed],
        "overfitting_onset": overfitting_onset(history),
        "label": run_label(path, trained, differs),
        "name": trained.name or path.name,
        "carry_state": trained.carry_state,
        "spec": trained.spec,
        "parameters": count_parameters(trained.model),
        "seq_len": trained.seq_len,
        "step": (trained.training or {}).get("global_step"),  # named in the figures' titles
        "scores": scores,
        "curves": curves,
        "samples": samples,
    }


def experiment_of(path: Path, trained: TrainedModel) -> str:
    """What the run trained, seeds aside: its recorded config (``gm.runs.seeds``), or for a
    bundle its record; a checkpoint file is told apart from the run's other checkpoints."""
    config = run_of(path).config()
    if config is not None:
        key = experiment_key(config, trained.corpus.get("sha256"))
    else:  # a bundle: what it recorded of its training
        record = trained.record
        overrides = sorted(
            o for o in without_seeds(record.overrides)
            if not any(override_key(o).startswith(k) for k in NOT_THE_EXPERIMENT)
        )  # fmt: skip
        key = json.dumps(
            [record.model_name, trained.spec, record.data, record.precision,
             trained.corpus.get("sha256"), overrides],
            sort_keys=True, default=str,
        )  # fmt: skip
    return f"{key} {path.name}" if path.is_file() else key


def group_results(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs that differ only by seed, each group with its label, its seeds, every
    mode's scores summarised and the paired costs of a reset (``paired``)."""
    members = group_by(results, lambda r: r["experiment"])
    groups = []
    for runs in members:
        first = runs[0]
        modes = list(first["scores"])  # the three modes, and any chunk_len's
        scores = {
            mode: {k: summarize([r["scores"][mode][k] for r in runs]) for k in ("loss", "bpc")}
            for mode in modes
        }
        costs = {
            mode: {
                k: paired(
                    [r["scores"][mode][k] for r in runs], [r["scores"]["stateful"][k] for r in runs]
                )
                for k in ("loss", "bpc")
            }
            for mode in modes
            if mode != "stateful"
        }
        regime = {True: "carried", False: "windowed"}.get(first["carry_state"], "?")
        label = first["label"] if len(runs) == 1 else f"{first['name']} ({regime})"
        groups.append({
            "label": label, "name": first["name"], "carry_state": first["carry_state"],
            "spec": first["spec"], "runs": [r["path"] for r in runs],
            "seeds": describe_seeds([tuple(r["seeds"]) for r in runs]),
            "scores": scores, "reset_costs": costs,
            "per_run": {mode: [r["scores"][mode]["bpc"] for r in runs] for mode in modes},
        })  # fmt: skip
    # Two groups of one name (the same model and regime, another recipe): say how many.
    labels = [g["label"] for g in groups]
    for i, g in enumerate(groups):
        if labels.count(g["label"]) > 1:
            g["label"] += f" #{labels[: i + 1].count(g['label'])}"
    return groups


def _estimate(s: Summary, digits: int = 4) -> str:
    """``mean ± half-width`` (the value alone for a group of one)."""
    if s.sd is None:
        return f"{s.mean:.{digits}f}"
    return f"{s.mean:.{digits}f} ± {s.half_width:.{digits}f}"


def seed_tables(groups: list[dict[str, Any]]) -> list[str]:
    """The study over seeds: each group's scores and the paired cost of each reset."""
    if all(len(g["runs"]) < 2 for g in groups):
        return []
    level = f"{LEVEL:.0%}"
    lines = [
        "",
        "## Over seeds",
        "",
        "Runs that differ only by their seeds form a group. Each value is the mean over the "
        f"group's runs ± the half-width of its {level} interval (Student's t, n − 1 degrees "
        "of freedom), bits per character and nats per token.",
        "",
        "| group | runs | seeds | mode | bpc | sd | nats/token |",
        "| --- | ---: | --- | --- | ---: | ---: | ---: |",
    ]
    for g in groups:
        for mode, s in g["scores"].items():
            sd = "—" if s["bpc"].sd is None else f"{s['bpc'].sd:.4f}"
            lines.append(
                f"| {g['label']} | {len(g['runs'])} | {g['seeds']} | {mode} | "
                f"{_estimate(s['bpc'])} | {sd} | {_estimate(s['loss'])} |"
            )
    lines += [
        "",
        "**What a reset costs**, run by run: each run's score in the mode minus its own "
        "stateful score (the same weights), then the mean of these paired differences with "
        f"its {level} interval. *Decided* when the interval excludes zero.",
        "",
        "| group | runs | difference | bpc | interval | per run | verdict |",
        "| --- | ---: | --- | ---: | --- | --- | --- |",
    ]
    for g in groups:
        if len(g["runs"]) < 2:
            continue
        for mode, cost in g["reset_costs"].items():
            c = cost["bpc"]
            per_run = ", ".join(
                f"{a - b:+.3f}"
                for a, b in zip(g["per_run"][mode], g["per_run"]["stateful"], strict=True)
            )
            lines.append(
                f"| {g['label']} | {len(g['runs'])} | {mode} − stateful | {c.mean:+.4f} | "
                f"[{c.low:+.4f}, {c.high:+.4f}] | {per_run} | "
                f"{'decided' if c.excludes(0) else 'not decided'} |"
            )
    return lines


def regime_tables(groups: list[dict[str, Any]]) -> list[str]:
    """For each architecture trained in both regimes (one group each): training regime ×
    inference mode, in bpc; over seeds, the mean with its interval and the difference
    windowed − carried with Welch's interval."""
    lines: list[str] = []
    by_spec: dict[str, list[dict[str, Any]]] = {}
    for g in groups:
        by_spec.setdefault(json.dumps(g["spec"], sort_keys=True), []).append(g)
    for same in by_spec.values():
        regimes = [g["carry_state"] for g in same]
        if sorted(regimes, key=str) != [False, True]:  # exactly one group in each regime
            continue
        by_regime = {g["carry_state"]: g for g in same}
        lines += [
            f"\n**{by_regime[True]['name']}**, `val/bpc` (training regime × inference mode):\n",
            "| trained with | runs | " + " | ".join(MODES) + " |",
            "| --- | ---: | " + " | ".join("---:" for _ in MODES) + " |",
        ]
        for regime, label in ((True, "carried state"), (False, "random windows, zero state")):
            g = by_regime[regime]
            cells = " | ".join(_estimate(g["scores"][m]["bpc"], 3) for m in MODES)
            lines.append(f"| {label} | {len(g['runs'])} | {cells} |")
        windowed, carried = by_regime[False]["per_run"], by_regime[True]["per_run"]
        if min(len(by_regime[False]["runs"]), len(by_regime[True]["runs"])) >= 2:
            cells = []
            for m in MODES:
                d = difference(windowed[m], carried[m])
                verdict = "" if d.decided else ", not decided"
                cells.append(f"{d.estimate:+.3f} [{d.low:+.3f}, {d.high:+.3f}]{verdict}")
            label = f"windowed − carried ({LEVEL:.0%}, Welch)"
            lines.append(f"| {label} | | " + " | ".join(cells) + " |")
    return lines


def write_study(results: list[dict[str, Any]], out: Path) -> Path:
    """``study.md`` with its figures, and ``study.json`` with every number."""
    groups = group_results(results)
    lines = [
        "# Stateful-inference study",
        "",
        "Validation split of each run's corpus, scored in the three inference modes "
        "with the same weights. nats/token, bits per character, perplexity.",
        "",
        "| run | params | mode | nats/token | bpc | ppl |",
        "| --- | ---: | --- | ---: | ---: | ---: |",
    ]
    for r in results:
        for mode, s in r["scores"].items():  # the three modes, and any chunk_len's
            lines.append(
                f"| {r['label']} | {r['parameters']:,} | {mode} | {s['loss']:.4f} "
                f"| {s['bpc']:.4f} | {s['ppl']:.2f} |"
            )
    lines += seed_tables(groups)
    lines += regime_tables(groups)
    lines += ["", "Overfitting onset (the epoch of the lowest validation loss, when a later "
              "validation is worse while the training loss is lower):", ""]  # fmt: skip
    for r in results:
        onset = r.get("overfitting_onset")
        # (metrics.json counts epochs from 0; people from 1)
        seen = f"after epoch {onset['epoch'] + 1}" if onset else "not seen (or no training history)"
        lines.append(f"- {r['label']}: {seen}")

    bars = {g["label"]: {m: g["scores"][m]["bpc"].mean for m in MODES} for g in groups}
    errors = {
        g["label"]: {m: g["scores"][m]["bpc"].half_width for m in MODES}
        for g in groups
        if len(g["runs"]) > 1
    }
    bars_title = (
        "Bits per character of each run's validation split in the three inference modes "
        "(the same weights in every mode)"
        + (f"; a group over seeds: its mean with its {LEVEL:.0%} interval" if errors else "")
    )
    save(
        bar_figure(bars, "validation bits per character (lower is better)", bars_title, errors),
        out / "bpc_by_mode.png",
    )
    lines += ["", "![bpc by mode](bpc_by_mode.png)", "", "## Loss by position", ""]
    for i, r in enumerate(results):
        name = f"loss_by_position_{i}.png"
        # Run and model are in the label; the step, where the result has it, says which
        # checkpoint was scored.
        step = f" · step {r['step']}" if r.get("step") is not None else ""
        # The run's own directory names it; the folders above it are in the study's table.
        where = "/".join(Path(r["path"]).parts[-2:])
        title = f"{r['label']} · {where}{step} · study of the validation split"
        save(loss_by_position_figure(r["curves"], title), out / name)
        lines.append(f"![{r['label']}]({name})")

    lines += [
        "",
        "## Samples",
        "",
        "Each mode continues the same prompt with the same random draws.",
        "",
        "| run | mode | distinct-2 | distinct-3 | longest repeat | known words |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        for mode, s in r["samples"].items():
            lines.append(
                f"| {r['label']} | {mode} | {s['distinct_2']:.3f} | {s['distinct_3']:.3f}"
                f" | {s['longest_repeat']} | {s['known_words']:.1%} |"
            )
    for r in results:
        for mode, s in r["samples"].items():
            lines += ["", f"**{r['label']}, {mode}:**", "", "```", s["text"].strip("\n"), "```"]
    path = out / "study.md"
    path.write_text("\n".join(lines) + "\n")
    write_json_atomic(
        out / "study.json",
        {
            "runs": [{k: v for k, v in r.items() if k != "experiment"} for r in results],
            "groups": [_as_json(g) for g in groups],
        },
    )
    return path


def _as_json(group: dict[str, Any]) -> dict[str, Any]:
    """A group with its summaries as plain numbers (``n``, ``mean``, ``sd``, ``low``,
    ``high``)."""

    def plain(table: dict[str, dict[str, Summary]]) -> dict[str, dict[str, Any]]:
        return {m: {k: vars(s) for k, s in by.items()} for m, by in table.items()}

    return {**group, "scores": plain(group["scores"]), "reset_costs": plain(group["reset_costs"])}


# Every option gm.study reads besides runs=, with its type and range (checked by
# gm.settings before anything is loaded or written).
STUDY_SETTINGS: dict[str, Setting] = {
    "batch_size": Setting(int, low=1),
    "chunk_len": Setting(list, item=Setting(int, low=1)),
    "warmup": Setting(int, low=0),
    "corpus": Setting(str, nullable=True),
    "allow_changed_corpus": Setting(bool),
    "samples.prompt": Setting(str),
    "samples.max_new_tokens": Setting(int, low=0),
    "samples.temperature": Setting(float, low=0),
    "samples.seed": SEED,
}


def run_study(cfg: DictConfig) -> Path:
    """Evaluate every run ``cfg.runs`` names and write the report into the output directory."""
    if OmegaConf.is_missing(cfg, "runs"):
        raise UserError("pass runs=[RUN_DIR,...]: run directories, checkpoints or sweeps")
    runs = cfg.runs
    if not isinstance(runs, (list, ListConfig)) or not runs:
        raise UserError("runs= takes a list, e.g. runs=[outputs/astra_alpha/RUN,outputs/...]")
    check_settings(cfg, STUDY_SETTINGS)
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = expand_runs([str(r) for r in runs])
    differs = differing_overrides(paths)  # labels name what tells the runs apart
    results = [study_one(p, cfg, differs[p]) for p in paths]
    return write_study(results, out)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="study")
def main(cfg: DictConfig) -> None:
    from gm.cli import run_or_exit

    print(f"study written to {run_or_exit(run_study, cfg)}")


if __name__ == "__main__":
    main()
