"""The DataModule: cached ids of both splits, refused shuffling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gm.data.corpus import split_text
from gm.data.datamodule import TextDataModule
from gm.data.streams import RandomWindows, StreamBatches
from gm.errors import UserError


def test_ids_are_cached_by_corpus_and_tokenizer(tmp_path: Path, text_file: Path) -> None:
    dm = TextDataModule(data_dir=tmp_path, path=str(text_file), batch_size=4, seq_len=16)
    tok = dm.prepare()
    cached = sorted((tmp_path / "cache").glob("*.npy"))
    assert len(cached) == 2 and dm.corpus.sha256[:16] in cached[0].name
    train, val = split_text(text_file.read_text())
    assert tok.decode(dm.train_ids.tolist()) == train
    assert tok.decode(dm.val_ids.tolist()) == val
    # A second DataModule reads the cache instead of encoding again.
    stamp = [p.stat().st_mtime_ns for p in cached]
    again = TextDataModule(data_dir=tmp_path, path=str(text_file), batch_size=4, seq_len=16)
    again.prepare()
    assert np.array_equal(again.train_ids, dm.train_ids)
    assert [p.stat().st_mtime_ns for p in cached] == stamp


def test_a_truncated_id_cache_is_encoded_again(tmp_path: Path, text_file: Path) -> None:
    from gm.data.ids import cached_ids
    from gm.data.tokenizer import CharTokenizer

    text = text_file.read_text()
    tok, cache = CharTokenizer.from_text(text), tmp_path / "ids.npy"
    whole = np.array(cached_ids([text], tok, cache))
    for cut in (10, cache.stat().st_size - 8):  # inside the header, inside the data
        cache.write_bytes(cache.read_bytes()[:cut])
        assert np.array_equal(cached_ids([text], tok, cache), whole)
        assert np.array_equal(cached_ids([text], tok, cache), whole)  # rewritten whole


def test_regimes_pick_their_loaders(tmp_path: Path, text_file: Path) -> None:
    kwargs = dict(data_dir=tmp_path, path=str(text_file), batch_size=4, seq_len=16)
    carried = TextDataModule(**kwargs)
    carried.prepare()
    assert isinstance(carried.train_dataloader(), StreamBatches)
    windowed = TextDataModule(**kwargs, carry_state=False)
    windowed.prepare()
    assert isinstance(windowed.train_dataloader(), RandomWindows)
    assert isinstance(windowed.val_dataloader(), StreamBatches)  # validation always carries


def test_shuffling_carried_streams_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="carry_state=false"):
        TextDataModule(data_dir=tmp_path, carry_state=True, shuffle=True)


def test_corpus_too_small_for_a_batch(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("to be or not to be\n" * 5)
    with pytest.raises(UserError, match="validation split"):
        TextDataModule(data_dir=tmp_path, path=str(tiny), batch_size=64, seq_len=128).prepare()
