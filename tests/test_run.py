"""The run record: what training writes into every checkpoint and bundle, read back typed
by every tool, including runs written before a field existed."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from gm.artifacts import find_checkpoint, load_checkpoint, read_bundle, write_bundle
from gm.run import Run, RunRecord, run_of


def test_a_record_round_trips_through_its_payload() -> None:
    record = RunRecord(
        model_name="astra_alpha",
        tokenizer={"kind": "char"},
        corpus={"path": "/data/x.txt", "sha256": "ab", "encoding": "utf-8"},
        data={"batch_size": 4, "seq_len": 16, "splits": [[0, 90], [90, 100]]},
        seed=7,
        precision="bf16-mixed",
        overrides=["model=astra_alpha", "seed=7"],
    )
    assert RunRecord.from_payload(record.to_payload()) == record


def test_a_payload_written_before_the_record_existed_still_reads() -> None:
    """Checkpoints from before seed, precision and overrides were recorded carry only the
    tokenizer, corpus, model name and data (splits as tuples), plus training's state."""
    old = {
        "tokenizer": {"kind": "char"},
        "corpus": {"path": "x.txt", "sha256": "ab"},
        "model_name": "astra_beta",
        "data": {"seq_len": 16, "splits": ((0, 90), (90, 100))},
        "train_state": None,
        "rng": {},
    }
    record = RunRecord.from_payload(old)
    assert record.model_name == "astra_beta" and record.tokenizer == {"kind": "char"}
    assert record.data["splits"] == [[0, 90], [90, 100]]
    assert (record.seed, record.precision, record.overrides) == (None, None, [])


@pytest.mark.parametrize("payload", [None, [], "gm", {"seed": True, "overrides": "x", "data": 3}])
def test_a_payload_of_the_wrong_kind_reads_as_not_recorded(payload) -> None:
    assert RunRecord.from_payload(payload) == RunRecord()


def test_a_trained_run_records_its_seed_precision_and_overrides(trained_run: Path) -> None:
    trained = load_checkpoint(find_checkpoint(trained_run))
    record = trained.record
    assert record.seed is not None and record.precision
    assert record.overrides == Run(trained_run).overrides()
    assert record.corpus["sha256"] and record.data["splits"]


def test_a_bundle_carries_the_record_but_not_twice_the_tokenizer(
    trained_run: Path, tmp_path: Path
) -> None:
    trained = load_checkpoint(find_checkpoint(trained_run))
    bundle = read_bundle(write_bundle(trained, tmp_path / "bundle"))
    expected = copy.copy(trained.record)
    expected.tokenizer = {}  # the bundle's tokenizer is its own file
    assert bundle.record == expected


def test_a_checkpoint_from_older_code_loads(trained_run: Path, tmp_path: Path) -> None:
    """A checkpoint whose payload has only the fields older code wrote, splits as tuples,
    loads, generates its record and keeps its weights."""
    path = find_checkpoint(trained_run)
    ckpt = torch.load(path, weights_only=True)
    gm = ckpt["gm"]
    for key in ("seed", "precision", "overrides"):
        del gm[key]
    gm["data"]["splits"] = [tuple(b) for b in gm["data"]["splits"]]
    old = tmp_path / "run" / "checkpoints" / "old.ckpt"
    old.parent.mkdir(parents=True)
    torch.save(ckpt, old)
    loaded = load_checkpoint(old)
    assert loaded.record.seed is None and loaded.record.overrides == []
    assert loaded.data["splits"] == load_checkpoint(path).data["splits"]
    tokens = torch.randint(0, loaded.tokenizer.vocab_size, (1, 20))
    with torch.no_grad():
        assert torch.equal(loaded.model(tokens)[0], load_checkpoint(path).model(tokens)[0])


def test_run_of_a_checkpoint_is_its_run(tmp_path: Path) -> None:
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"")
    assert run_of(ckpt).path == tmp_path / "run"
    assert run_of(tmp_path / "run").path == tmp_path / "run"
    assert Run(tmp_path / "run").has_checkpoint()
