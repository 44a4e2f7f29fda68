"""Runs that differ only by their seeds form one group: the unit every interval is taken over.

Two runs belong together when their recorded configs (``.hydra/config.yaml``) are equal once
the seeds and the settings that do not change what is trained are left out: where a run
read and wrote, how it was resumed, how many threads it used, how often it saved. The text
counts by its sha256 where the run recorded it (``metrics.json``), so one corpus read from
two places is one experiment and two corpora are never one. A run without a recorded config
(written outside ``train.py``) is a group of its own: nothing says what it shares.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from gm.run import differing_overrides, override_key

SEED_KEYS = ("seed", "train_seed")  # conf/train.yaml: the initial weights, and what follows
# Settings (and whole groups of them) that say where a run read and wrote, how it resumed,
# how fast it ran or what it printed: two runs that differ only in these trained the same
# experiment.
NOT_THE_EXPERIMENT = (
    "paths",
    "data.path",
    "resume",
    "ckpt_path",
    "threads",
    "keep_freed_memory",
    "logger",
    "callbacks.share_cores",
    "callbacks.checkpoint.every_n_train_steps",
    # What a run shows and writes about itself, never what it trains (the samples draw
    # from a generator of their own: tests/training/test_tensorboard.py).
    "callbacks.progress_bar",
    "callbacks.header",
    "callbacks.validation_lines",
    "callbacks.samples",
    "callbacks.tokens_per_s",
    "callbacks.lr_monitor",
    "callbacks.metrics_json",
    "callbacks.loss_by_position",
    "hydra",
)
_LEFT_OUT = (*SEED_KEYS, *NOT_THE_EXPERIMENT)

T = TypeVar("T")


def _left_out(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in _LEFT_OUT)


def _flat(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flat(value, name + "."))
        else:
            flat[name] = value
    return flat


def experiment_key(config: Mapping[str, Any], corpus_sha256: str | None = None) -> str:
    """What a run trained, as text: equal for two runs exactly when their configs differ
    only in the seeds and the settings of ``NOT_THE_EXPERIMENT``."""
    flat = {k: v for k, v in _flat(config).items() if not _left_out(k)}
    # The text: its digest when recorded, else the path it was read from (a named source,
    # ``data.source``, is among the settings already).
    data = config.get("data") if isinstance(config.get("data"), Mapping) else {}
    corpus = corpus_sha256 or data.get("path")
    # Beside the settings, not among them: no setting's name can stand in for the text.
    return json.dumps([flat, corpus], sort_keys=True, default=str)


def group_by(items: Iterable[T], key: Callable[[T], str]) -> list[list[T]]:
    """``items`` with equal keys together, groups and members in the order first met."""
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return list(groups.values())


def without_seeds(overrides: Iterable[str]) -> list[str]:
    """The overrides, less those that set a seed."""
    return [o for o in overrides if override_key(o) not in SEED_KEYS]


def group_labels(overrides: list[list[str]]) -> list[str]:
    """A name for each group from one member's overrides: those (seeds aside) that tell it
    apart from the other groups; "all runs" for a single group, and a number appended
    where two groups would read the same (they differ in a setting left out of the
    overrides, such as the corpus)."""
    if len(overrides) == 1:
        return ["all runs"]
    differing = differing_overrides([without_seeds(o) for o in overrides])
    names = [" ".join(d) or "(defaults)" for d in differing]
    return [f"{n} #{i + 1}" if names.count(n) > 1 else n for i, n in enumerate(names)]


def describe_seeds(seeds: list[tuple[int | None, int | None]]) -> str:
    """The seeds of a group's runs, ``(seed, train_seed)`` each, in words: ``seed 1, 2, 3``
    when ``train_seed`` follows ``seed``, else both lists (``seed 1; train_seed 1, 2, 3``)."""

    def listed(values: list[Any]) -> str:
        distinct = list(dict.fromkeys("?" if v is None else str(v) for v in values))
        return ", ".join(distinct)

    inits = [s for s, _ in seeds]
    trains = [s if t is None else t for s, t in seeds]
    if inits == trains:  # train_seed None follows seed: trains holds the seed then
        text = f"seed {listed(inits)}"
    else:
        text = f"seed {listed(inits)}; train_seed {listed(trains)}"
    repeats = len(seeds) - len(set(zip(inits, trains, strict=True)))
    if repeats:  # the same seeds twice measure the machine's nondeterminism, not a seed's
        text += f" ({repeats} repeated)"
    return text
