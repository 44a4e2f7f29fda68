"""enwik8 and text8 as data configs, end to end: downloaded (from a local archive of the same
format built here), verified, split 90/5/5, trained, and the test split scored."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from gm.data.corpus import SOURCES
from gm.modes import MODES
from tests.conftest import FAST_TRAIN, generated_text, run_train


def _archive(tmp_path: Path, member: str, data: bytes) -> tuple[str, str]:
    path = tmp_path / f"{member}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(member, data)
    return path.as_uri(), hashlib.sha256(path.read_bytes()).hexdigest()


ENWIK8_LIKE = generated_text(6000).encode().replace(b"the", b"th\xe9\xff")  # not UTF-8
TEXT8_LIKE = " ".join(generated_text(6000).lower().replace(".", "").split())[:6000].encode()


@pytest.mark.slow  # two training runs
@pytest.mark.parametrize(
    "name,data,symbols",
    [("enwik8", ENWIK8_LIKE, len(set(ENWIK8_LIKE))), ("text8", TEXT8_LIKE, len(set(TEXT8_LIKE)))],
)
def test_a_benchmark_corpus_downloads_splits_trains_and_scores_its_test_split(
    tmp_path: Path, name: str, data: bytes, symbols: int
) -> None:
    url, sha = _archive(tmp_path, name, data)
    run = tmp_path / "run"
    proc = run_train(run, f"data={name}", f"data.url={url}", f"data.sha256={sha}", *FAST_TRAIN)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Extracted whole into the data directory, beside the archive's checksum.
    assert (tmp_path / "data" / SOURCES[name].filename).read_bytes() == data
    metrics = json.loads((run / "metrics.json").read_text())
    # One token per byte (enwik8, read as latin-1) or per character (text8).
    assert metrics["data"]["vocab_size"] == symbols
    n = len(data)
    assert metrics["data"]["val_chars"] == int(n * 0.95) - int(n * 0.9)
    assert metrics["data"]["test_tokens"] == n - int(n * 0.95)
    for mode in MODES:
        assert 0 < metrics["test"][mode]["bpc"] < 10
    assert "test split, best checkpoint" in proc.stdout


def test_offline_a_benchmark_corpus_names_data_path(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = run_train(run, "data=enwik8", "data.url=http://127.0.0.1:9/enwik8.zip", *FAST_TRAIN)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "could not download the corpus" in proc.stderr and "data.path=" in proc.stderr


def test_an_archive_without_its_member_is_one_sentence(tmp_path: Path) -> None:
    url, sha = _archive(tmp_path, "something_else", b"x" * 100)
    proc = run_train(
        tmp_path / "run", "data=text8", f"data.url={url}", f"data.sha256={sha}", *FAST_TRAIN
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "is not a zip archive holding text8" in proc.stderr
    assert not list((tmp_path / "data").glob("text8*"))  # nothing half-written left
