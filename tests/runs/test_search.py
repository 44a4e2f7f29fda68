"""python -m gm.search: Optuna trials composed through Hydra, continued with --dir."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from gm.errors import UserError
from gm.runs.search import Param, parse_param
from tests.conftest import FAST_TRAIN, run_script

TINY = ["model=rnn", "model.dropout=0", "model.emb_dim=8"]


def test_search_spaces_parse_and_bad_ones_are_a_sentence() -> None:
    assert parse_param("optimizer.lr=log:1e-4:1e-2") == Param("optimizer.lr", "log", 1e-4, 1e-2)
    assert parse_param("model.dropout=0:0.3") == Param("model.dropout", "float", 0.0, 0.3)
    assert parse_param("model.hidden_dim=int:16:64") == Param("model.hidden_dim", "int", 16, 64)
    assert parse_param("model.cell=choice:gru,lstm").choices == ("gru", "lstm")
    bad_specs = ("optimizer.lr", "x=1", "x=3:1", "x=log:0:1", "x=choice:gru", "x=int:a:b")
    for bad in (*bad_specs, "x=int:1.5:3"):  # an integer range of whole numbers only
        with pytest.raises(UserError, match="is not KEY=LOW:HIGH"):
            parse_param(bad)


def _search(tmp_path: Path, text_file: Path, *args: str):
    return run_script(
        "gm.search",
        "--dir",
        str(tmp_path / "search"),
        *args,
        f"data.path={text_file}",
        *FAST_TRAIN,
        *TINY,
        data_dir=tmp_path / "data",
    )


@pytest.mark.slow
def test_a_search_trains_its_trials_and_continues_where_it_stopped(tmp_path, text_file):
    params = ["--param", "optimizer.lr=log:1e-3:1e-2", "--param", "model.hidden_dim=int:8:32"]
    proc = _search(tmp_path, text_file, "--trials", "2", *params)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = _search(tmp_path, text_file, "--trials", "1", *params)  # continue the study
    assert proc.returncode == 0, proc.stderr[-3000:]

    out = tmp_path / "search"
    best = json.loads((out / "best.json").read_text())
    rows = list(csv.DictReader((out / "report.csv").open()))
    assert best["trials"] == 3 and best["failed"] == 0 and len(rows) == 3
    scores = [float(r["best_bpc_stateful"]) for r in rows]
    assert best["value"] == pytest.approx(min(scores))
    assert Path(best["run"]).name == rows[scores.index(min(scores))]["run"]
    # Every trial is an ordinary run: its own directory, overrides and bundle.
    for row in rows:
        run = out / row["run"]
        assert (run / "export" / "SHA256SUMS").is_file() and row["model"] == "rnn"
        assert any(o.startswith("optimizer.lr=") for o in row["overrides"].split())
    assert len({r["run"] for r in rows}) == 3  # the continued search proposed new values


@pytest.mark.slow
def test_bad_search_input_is_one_sentence(tmp_path, text_file):
    for args, needle in (
        (["--param", "model.no_such_key=0:1"], "the training config has no such key"),
        (["--param", "optimizer.lr=fast"], "is not KEY=LOW:HIGH"),
        ([], "give at least one --param"),
        (["--param", "optimizer.lr=0.001:0.01", "trainer.no_such_key=1"], "do not compose"),
        # Refused before any trial trains (it was Optuna's traceback after the first).
        (["--param", "optimizer.lr=0.001:0.01", "--metric", "val/nosuch"], "not a metric gm logs"),
        (
            ["--param", "optimizer.lr=1e-3:1e-2", "--param", "optimizer.lr=1e-4:1e-3"],
            "given 2 times",
        ),
    ):
        proc = _search(tmp_path, text_file, *args)
        assert proc.returncode == 2 and needle in proc.stderr, proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr
