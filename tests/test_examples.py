"""The worked example (examples/study.ipynb) runs end to end with the current code, on tiny
settings, and shows what it promises: the three modes' scores, the figure, the samples."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_the_study_notebook_runs(tmp_path: Path, shakespeare: Path) -> None:
    notebook = nbformat.read(ROOT / "examples" / "study.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code"), (
        "the notebook is stored with its outputs stripped"
    )
    env = {
        "GM_NOTEBOOK_STEPS": "10",
        "GM_NOTEBOOK_HIDDEN": "32",
        "GM_NOTEBOOK_VAL_CHARS": "600",
        "GM_NOTEBOOK_CORPUS": str(shakespeare),
        "GM_NOTEBOOK_RUN": str(tmp_path / "run"),
        "GM_DATA_DIR": str(tmp_path / "data"),
    }
    before = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        where = {"metadata": {"path": str(ROOT / "examples")}}
        NotebookClient(notebook, timeout=600, kernel_name="python3", resources=where).execute()
    finally:
        for k, v in before.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    text = "".join(out.get("text", "") for c in notebook.cells for out in c.get("outputs", []))
    for mode in ("stateful", "chunk", "stateless"):
        assert f"{mode}: " in text and f"--- {mode} ---" in text
    assert "carrying the state buys" in text
    images = [
        o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})
    ]
    assert len(images) == 1  # the loss-by-position figure
