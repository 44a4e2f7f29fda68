"""Which directory a run may write into: a folder that cannot be written is one sentence
before Hydra makes it (Hydra's own failure is a traceback)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gm.errors import UserError
from gm.training.run_dir import check_writable
from tests.conftest import FAST_TRAIN, run_train


@pytest.mark.parametrize("below", ["", "sub"], ids=["the-file", "below-the-file"])
def test_a_run_directory_on_a_file_is_one_sentence(
    tmp_path: Path, text_file: Path, below: str
) -> None:
    proc = run_train(
        text_file / below if below else text_file, f"data.path={text_file}", *FAST_TRAIN
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: {text_file / below if below else text_file} cannot be a run directory: "
        f"{text_file} is a file"
    )
    assert "Traceback" not in proc.stderr


@pytest.fixture
def read_only(tmp_path: Path):
    """A read-only folder: a read-only mount where this process may mount (root ignores
    permission bits), else a folder without write permission."""
    place = tmp_path / "ro"
    place.mkdir()
    if os.geteuid() != 0:
        place.chmod(0o555)
        yield place
        place.chmod(0o755)
        return
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(place)])
    if done.returncode != 0:
        pytest.skip("this machine cannot mount a read-only tmpfs")
    try:
        yield place
    finally:
        subprocess.run(["umount", str(place)], check=True)


def test_a_read_only_place_is_one_sentence(read_only: Path, text_file: Path) -> None:
    with pytest.raises(
        UserError, match=f"cannot write into {read_only}/run: {read_only} is read-only"
    ):
        check_writable(read_only / "run")
    proc = run_train(read_only / "run", f"data.path={text_file}", *FAST_TRAIN)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("error: cannot write into ")
    check_writable(text_file.parent / "new" / "run")  # a place that can be made is fine
