"""The stateful-inference study as a report: ``python -m gm.study runs=[RUN_DIR,...]``.

For every run it scores the validation split of the run's corpus in the three modes
(``gm.evaluation``), samples text in each mode from the same seed, and writes
``study.md``, ``study.json`` and PNG figures into its own output directory. A multirun
folder stands for all the runs inside it. Nothing is trained.
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
from gm.metrics import overfitting_onset
from gm.modes import MODES
from gm.run import count_parameters, run_of
from gm.run import differing_overrides as differing
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
    history = run_of(path).metrics().get("history", [])
    return {
        "path": str(path),
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


def regime_tables(results: list[dict[str, Any]]) -> list[str]:
    """For each architecture trained in both regimes: training regime × inference mode,
    in bpc."""
    lines: list[str] = []
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault(json.dumps(r["spec"], sort_keys=True), []).append(r)
    for runs in groups.values():
        by_regime = {r["carry_state"]: r for r in runs}
        if {True, False} - by_regime.keys():
            continue
        name = by_regime[True]["name"]
        lines += [
            f"\n**{name}**, `val/bpc` (training regime × inference mode):\n",
            "| trained with | " + " | ".join(MODES) + " |",
            "| --- | " + " | ".join("---:" for _ in MODES) + " |",
        ]
        for regime, label in ((True, "carried state"), (False, "random windows, zero state")):
            cells = " | ".join(f"{by_regime[regime]['scores'][m]['bpc']:.3f}" for m in MODES)
            lines.append(f"| {label} | {cells} |")
    return lines


def write_study(results: list[dict[str, Any]], out: Path) -> Path:
    """``study.md`` with its figures, and ``study.json`` with every number."""
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
    lines += regime_tables(results)
    lines += ["", "Overfitting onset (the epoch of the lowest validation loss, when a later "
              "validation is worse while the training loss is lower):", ""]  # fmt: skip
    for r in results:
        onset = r.get("overfitting_onset")
        seen = f"after epoch {onset['epoch']}" if onset else "not seen (or no training history)"
        lines.append(f"- {r['label']}: {seen}")

    bars = {r["label"]: {m: r["scores"][m]["bpc"] for m in MODES} for r in results}
    bars_title = (
        "Bits per character of each run's validation split in the three inference modes "
        "(the same weights in every mode)"
    )
    save(
        bar_figure(bars, "validation bits per character (lower is better)", bars_title),
        out / "bpc_by_mode.png",
    )
    lines += ["", "![bpc by mode](bpc_by_mode.png)", "", "## Loss by position", ""]
    for i, r in enumerate(results):
        name = f"loss_by_position_{i}.png"
        # Run and model are in the label; the step, where the result has it, says which
        # checkpoint was scored.
        step = f" · step {r['step']}" if r.get("step") is not None else ""
        title = f"{r['label']} · {r['path']}{step} · study of the validation split"
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
    write_json_atomic(out / "study.json", {"runs": results})
    return path


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
