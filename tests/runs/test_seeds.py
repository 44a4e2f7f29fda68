"""Which runs form one group over seeds: equal configs but for the seeds, nothing else."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from gm.runs.seeds import describe_seeds, experiment_key, group_by, group_labels

CONFIG: dict[str, Any] = {
    "seed": 1,
    "train_seed": None,
    "threads": 1,
    "paths": {"root_dir": "/a", "output_dir": "/a/outputs/x"},
    "data": {"path": "/a/input.txt", "batch_size": 64, "carry_state": True},
    "optimizer": {"lr": 0.003},
    "callbacks": {"checkpoint": {"every_n_train_steps": 200, "monitor": "val/loss"}},
}


def _with(**changes: Any) -> dict[str, Any]:
    config = copy.deepcopy(CONFIG)
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        table = config
        for parent in parents:
            table = table[parent]
        table[key] = value
    return config


@pytest.mark.parametrize(
    "changes",
    [
        {"seed": 2},
        {"train_seed": 7},
        {"threads": 2},
        {"paths__output_dir": "/b/run"},
        {"data__path": "/elsewhere/input.txt"},
        {"callbacks__checkpoint__every_n_train_steps": 50},
        # What the run shows: a sample every N validations, or no sample callback at all.
        {"callbacks__samples": {"_target_": "gm.training.samples.Samples", "every": 0}},
        {"callbacks__validation_lines": {"_target_": "gm.training.terminal.ValidationLines"}},
    ],
    ids=lambda c: next(iter(c)),
)
def test_runs_that_differ_only_by_seed_or_where_they_ran_are_one_experiment(
    changes: dict[str, Any],
) -> None:
    assert experiment_key(_with(**changes), "abc") == experiment_key(CONFIG, "abc")


@pytest.mark.parametrize(
    "changes",
    [
        {"optimizer__lr": 0.001},
        {"data__carry_state": False},
        {"data__batch_size": 32},
        {"callbacks__checkpoint__monitor": "val/loss_chunk"},
        {"callbacks__early_stopping": {"patience": 3}},  # it ends the run: another experiment
        {"compile": True},  # a key one config has and the other has not
    ],
    ids=lambda c: next(iter(c)),
)
def test_two_configurations_are_never_one_experiment(changes: dict[str, Any]) -> None:
    assert experiment_key(_with(**changes), "abc") != experiment_key(CONFIG, "abc")


def test_the_text_counts_by_its_digest_and_else_by_its_path() -> None:
    assert experiment_key(CONFIG, "abc") != experiment_key(CONFIG, "def")  # another corpus
    moved = _with(data__path="/elsewhere/input.txt")
    assert experiment_key(moved, None) != experiment_key(CONFIG, None)  # no digest: the path
    # Without a path, the source it was fetched from; without a data section, no text at all.
    fetched = {k: v for k, v in CONFIG.items() if k != "data"}
    one, other = ({**fetched, "data": {"source": url}} for url in ("https://a/x", "https://b/x"))
    assert experiment_key(one, None) != experiment_key(other, None)
    assert experiment_key(fetched, None) == experiment_key(copy.deepcopy(fetched), None)
    # A setting that happens to be called "corpus" does not stand in for the text.
    assert experiment_key({**CONFIG, "corpus": "abc"}, "def") != experiment_key(CONFIG, "abc")


def test_the_order_of_settings_does_not_matter_and_any_value_is_written() -> None:
    reordered = dict(reversed(list(CONFIG.items())))
    reordered["data"] = dict(reversed(list(CONFIG["data"].items())))
    assert experiment_key(reordered, "abc") == experiment_key(CONFIG, "abc")
    # A value JSON has no type for (a path) is written as its text.
    with_path = _with(optimizer__lr=Path("/a"))
    assert experiment_key(with_path, "abc") == experiment_key(_with(optimizer__lr="/a"), "abc")


def test_groups_keep_the_order_first_met() -> None:
    items = ["b1", "a1", "b2", "c1", "a2"]
    assert group_by(items, lambda s: s[0]) == [["b1", "b2"], ["a1", "a2"], ["c1"]]


def test_group_labels_name_what_differs_seeds_aside() -> None:
    overrides = [
        ["model=rnn", "seed=1", "data.carry_state=true"],
        ["model=rnn", "seed=1", "data.carry_state=false"],
    ]
    assert group_labels(overrides) == ["data.carry_state=true", "data.carry_state=false"]
    assert group_labels([["model=rnn", "seed=3"]]) == ["all runs"]
    two_apart = [["model=rnn", "optimizer.lr=1"], ["model=gru", "optimizer.lr=2"]]
    assert group_labels(two_apart) == ["model=rnn optimizer.lr=1", "model=gru optimizer.lr=2"]
    # Groups the overrides do not tell apart (another corpus at one path) are numbered.
    assert group_labels([["seed=1"], ["seed=2"]]) == ["(defaults) #1", "(defaults) #2"]


def test_seeds_in_words() -> None:
    assert describe_seeds([(1, None), (2, None), (3, None)]) == "seed 1, 2, 3"
    assert describe_seeds([(1, 1), (1, 2), (1, 3)]) == "seed 1; train_seed 1, 2, 3"
    assert describe_seeds([(1, 1), (2, 2)]) == "seed 1, 2"  # train_seed set, but as seed
    assert describe_seeds([(1, None), (2, 1)]) == "seed 1, 2; train_seed 1"
    assert describe_seeds([(1, None), (1, None)]) == "seed 1 (1 repeated)"
    assert describe_seeds([(None, None)]) == "seed ?"
