"""Streamed preparation: a corpus read in chunks and encoded piece by piece gives exactly the
ids of the whole text; ids on disk are memory-mapped and batch like ids in memory."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gm.data.corpus as corpus_module
from gm.data.corpus import read_corpus, scan_corpus
from gm.data.datamodule import TextDataModule
from gm.data.ids import cached_ids, id_dtype, open_ids
from gm.data.spm_tokenizer import SentencePieceTokenizer, lines_of
from gm.data.streams import RandomWindows, StreamBatches
from gm.data.tokenizer import CharTokenizer
from tests.conftest import generated_text

# ASCII, two-, three- and four-byte characters, and the line breaks SentencePiece splits on.
ALPHABET = "ab \n\r\té—✓😀ü"
TEXTS = st.text(alphabet=ALPHABET, min_size=1, max_size=300).filter(lambda t: not t.isspace())


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=TEXTS, chunk=st.integers(1, 9), cut=st.data())
def test_a_corpus_read_in_chunks_is_the_text(tmp_path, monkeypatch, text, chunk, cut) -> None:
    """Chunks of a few bytes cut through multi-byte characters; the scan, every character
    range and the streamed character ids still equal the whole text's."""
    monkeypatch.setattr(corpus_module, "CHUNK_BYTES", chunk)
    path = tmp_path / "t.txt"
    path.write_bytes(text.encode())
    corpus = scan_corpus(path)
    assert corpus.chars == len(text) and corpus.lines == text.count("\n")
    assert corpus.alphabet == "".join(sorted(set(text)))
    start = cut.draw(st.integers(0, len(text)))
    end = cut.draw(st.integers(start, len(text)))
    assert corpus.read(start, end) == text[start:end]
    tok = CharTokenizer(list(corpus.alphabet))
    streamed = np.concatenate(
        [np.zeros(0, np.int32), *tok.encode_pieces(corpus.chunks(start, end))]
    )
    assert streamed.tolist() == tok.encode(text[start:end])


@pytest.fixture(scope="module")
def spm() -> SentencePieceTokenizer:
    text = generated_text(60_000) + "é—✓😀ü\n" * 50
    return SentencePieceTokenizer.train(text, vocab_size=300)


# Words the subword model has pieces for (so a wrong cut changes the pieces), and the rest.
WORDS = ["to", "be", "or", "not", "that", "is", "the", "question", "whether", "tis"]
SUBWORD_TEXTS = st.lists(st.sampled_from([*WORDS, *ALPHABET]), min_size=1, max_size=80).map("".join)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=SUBWORD_TEXTS, cuts=st.lists(st.integers(0, 300), max_size=6), size=st.integers(1, 9))
def test_subwords_encoded_piece_by_piece_are_the_whole_texts(
    spm, monkeypatch, text, cuts, size
) -> None:
    """Pieces re-cut after newlines into runs of a few characters (``size``): encoding them
    one by one gives the whole text's pieces."""
    import gm.data.spm_tokenizer as spm_module

    monkeypatch.setattr(spm_module, "PIECE_CHARS", size)
    bounds = sorted({min(c, len(text)) for c in cuts} | {0, len(text)})
    pieces = [text[a:b] for a, b in itertools.pairwise(bounds)]
    streamed = [int(i) for ids in spm.encode_pieces(pieces) for i in ids]
    assert streamed == spm.encode(text)
    assert "".join(lines_of(pieces, size=4)) == text


def test_ids_take_the_smallest_type_and_are_memory_mapped(tmp_path: Path) -> None:
    assert [id_dtype(n) for n in (65, 256, 257, 65_536, 65_537)] == [
        np.uint8, np.uint8, np.uint16, np.uint16, np.uint32,
    ]  # fmt: skip
    tok = CharTokenizer.from_text("abc")
    ids = cached_ids(["abcab", "ca"], tok, tmp_path / "ids.npy")
    assert isinstance(ids, np.memmap) and ids.dtype == np.uint8
    assert ids.tolist() == tok.encode("abcabca")
    # A whole file of the wrong shape or kind is not trusted.
    np.save(tmp_path / "bad.npy", np.zeros((2, 2), dtype=np.int16))
    np.save(tmp_path / "floats.npy", np.zeros(3))
    assert open_ids(tmp_path / "bad.npy") is None and open_ids(tmp_path / "floats.npy") is None


@pytest.mark.parametrize(
    "edit",
    [
        lambda ids: ids[:3],  # shortened, still a valid .npy
        lambda ids: np.where(np.arange(len(ids)) == 2, 7, ids).astype(ids.dtype),  # outside
        lambda ids: ids[::-1].copy(),  # the same length and ids, another order
    ],
    ids=["shortened", "id-outside-the-vocabulary", "reordered"],
)
def test_an_edited_id_cache_is_encoded_again(tmp_path: Path, edit) -> None:
    """A cache that is still a valid .npy but not what was written is never trusted."""
    tok = CharTokenizer.from_text("abc")
    cache = tmp_path / "ids.npy"
    text = ["abcab", "cab", "ccba"]
    written = cached_ids(text, tok, cache).tolist()
    np.save(cache, edit(np.load(cache)))
    assert cached_ids(text, tok, cache).tolist() == written == tok.encode("".join(text))


def test_memory_mapped_batches_equal_batches_from_memory(tmp_path: Path, text_file: Path) -> None:
    dm = TextDataModule(data_dir=tmp_path, path=str(text_file), batch_size=4, seq_len=16)
    dm.prepare()
    mapped = dm.train_ids
    assert isinstance(mapped, np.memmap)
    in_memory = torch.tensor(np.asarray(mapped), dtype=torch.long)
    for a, b in zip(StreamBatches(mapped, 4, 16), StreamBatches(in_memory, 4, 16), strict=True):
        assert a[0].dtype == torch.long and torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    windows = [RandomWindows(ids, 4, 16, seed=3) for ids in (mapped, in_memory)]
    for a, b in zip(*windows, strict=True):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_a_second_run_reads_neither_the_text_nor_the_ids_again(
    tmp_path: Path, text_file: Path, monkeypatch
) -> None:
    first = TextDataModule(data_dir=tmp_path, path=str(text_file), batch_size=4, seq_len=16)
    first.prepare()

    def no_reading(*args, **kwargs):
        raise AssertionError("the corpus was read again")

    monkeypatch.setattr(corpus_module, "scan_corpus", no_reading)
    monkeypatch.setattr(CharTokenizer, "encode_pieces", no_reading)
    again = TextDataModule(data_dir=tmp_path, path=str(text_file), batch_size=4, seq_len=16)
    again.prepare()
    assert np.array_equal(again.train_ids, first.train_ids)
    assert again.corpus == first.corpus


def test_a_changed_corpus_or_a_damaged_scan_is_scanned_again(tmp_path: Path) -> None:
    path, cache = tmp_path / "t.txt", tmp_path / "cache"
    path.write_text("hello\n")
    assert read_corpus(path, cache).chars == 6
    path.write_text("hello, world\n")  # another size (and time)
    assert read_corpus(path, cache).chars == 13
    for sidecar in cache.glob("corpus-*.json"):
        sidecar.write_text("{not json")
    assert read_corpus(path, cache).alphabet == "".join(sorted(set("hello, world\n")))


def test_a_large_training_split_trains_subwords_on_a_bounded_sample(monkeypatch) -> None:
    """Above SAMPLE_LINES lines SentencePiece sees a shuffled sample of them — the same
    sample every time, so the vocabulary is reproducible."""
    import gm.data.spm_tokenizer as spm_module

    monkeypatch.setattr(spm_module, "SAMPLE_LINES", 200)  # (SentencePiece takes > 100)
    text = generated_text(30_000)
    models = [SentencePieceTokenizer.train(text, vocab_size=290, lines=text.count("\n"))]
    models.append(SentencePieceTokenizer.train(text, vocab_size=290, lines=text.count("\n")))
    assert models[0].model_proto == models[1].model_proto
    whole = SentencePieceTokenizer.train(text, vocab_size=290, lines=0)
    assert whole.model_proto != models[0].model_proto  # the sample is not every line
