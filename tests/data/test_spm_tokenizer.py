"""SentencePiece: exact round trip, reproducible and cached vocabulary, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from gm.data.corpus import read_corpus, split_text
from gm.data.datamodule import TextDataModule
from gm.data.spm_tokenizer import SentencePieceTokenizer
from gm.errors import UserError
from tests.conftest import generated_text

ODD = "  Leading spaces,\ttabs,\n\n\nblank lines,   runs of spaces   \nçà ü — “quotes” ☃ 日本\n"


def train_small(text: str, tmp_path: Path | None = None, **kw) -> SentencePieceTokenizer:
    return SentencePieceTokenizer.train(
        text, vocab_size=kw.pop("vocab_size", 290), cache_dir=tmp_path, **kw
    )


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_exact_round_trip_with_odd_whitespace_and_unicode(model_type: str) -> None:
    text = generated_text(20000) + ODD * 20
    tok = train_small(text, model_type=model_type, vocab_size=315)
    for sample in (text, ODD, "never seen: ∑ ΩΩ  \r\n", "\n"):
        assert tok.decode(tok.encode(sample)) == sample
        assert sum(tok.char_lengths()[i] for i in tok.encode(sample)) == len(sample)


def test_vocabulary_is_reproducible_and_cached(tmp_path: Path, monkeypatch) -> None:
    text = generated_text(20000)
    a = train_small(text).model_proto
    b = train_small(text).model_proto
    assert a == b  # one trainer thread: the same text gives the same vocabulary
    first = train_small(text, tmp_path, corpus_sha256="x")
    assert len(list(tmp_path.glob("spm-*.model"))) == 1

    def refuse(*args, **kwargs):
        raise AssertionError("trained again instead of reading the cache")

    monkeypatch.setattr("sentencepiece.SentencePieceTrainer.train", refuse)
    assert train_small(text, tmp_path, corpus_sha256="x").model_proto == first.model_proto
    with pytest.raises(AssertionError):  # other options are another cache entry
        train_small(text, tmp_path, corpus_sha256="x", model_type="bpe")


def test_a_truncated_cached_model_is_trained_again(tmp_path: Path) -> None:
    text = generated_text(20000)
    first = train_small(text, tmp_path, corpus_sha256="x")
    (cached,) = tmp_path.glob("spm-*.model")
    cached.write_bytes(cached.read_bytes()[:100])
    assert train_small(text, tmp_path, corpus_sha256="x").model_proto == first.model_proto
    assert cached.read_bytes() == first.model_proto  # and the cache is whole again


def test_too_large_vocabulary_names_the_largest_that_works() -> None:
    with pytest.raises(UserError, match=r"the largest that works is \d+") as e:
        train_small(generated_text(5000), vocab_size=50_000)
    assert "vocab_size=50000" in str(e.value)


def test_too_small_vocabulary_names_the_smallest_that_works() -> None:
    with pytest.raises(UserError, match=r"needs at least \d+"):
        train_small(generated_text(5000) + ODD, vocab_size=100)


def test_trained_on_the_training_split_only(tmp_path: Path) -> None:
    text = generated_text(18000) + "\n" + "Zyzzyva yak! " * 100  # only in the last 10 %
    path = tmp_path / "corpus.txt"
    path.write_text(text)
    dm = TextDataModule(
        data_dir=tmp_path,
        path=str(path),
        tokenizer="sentencepiece",
        vocab_size=290,
        batch_size=4,
        seq_len=16,
    )
    tok = dm.prepare()
    pieces = {tok.sp.id_to_piece(i) for i in range(tok.vocab_size)}
    assert not {"Z", "y", "k", "!"} & pieces  # unseen characters are bytes, not pieces
    # bpc counts the characters the validation tokens decode to, exactly.
    _, val = split_text(text)
    assert sum(tok.char_lengths()[i] for i in dm.val_ids.tolist()) == len(val)


def test_char_and_spm_count_the_same_validation_characters(tmp_path: Path) -> None:
    path = tmp_path / "corpus.txt"
    path.write_text(generated_text(20000) + ODD)
    totals = []
    for kind, opts in [("char", {}), ("sentencepiece", {"vocab_size": 290})]:
        dm = TextDataModule(
            data_dir=tmp_path, path=str(path), tokenizer=kind, batch_size=4, seq_len=16, **opts
        )
        tok = dm.prepare()
        totals.append(sum(tok.char_lengths()[i] for i in dm.val_ids.tolist()))
        assert dm.stats()["val_chars"] == totals[-1]
    assert totals[0] == totals[1]


@pytest.mark.slow
def test_real_corpus_round_trip_and_1000_pieces(shakespeare: Path, tmp_path: Path) -> None:
    text = read_corpus(shakespeare).read()
    train, val = split_text(text)
    tok = SentencePieceTokenizer.train(train, vocab_size=1000, cache_dir=tmp_path)
    assert tok.vocab_size == 1000
    assert tok.decode(tok.encode(val)) == val
    assert tok.decode(tok.encode(train)) == train
    assert 2.0 < len(val) / len(tok.encode(val)) < 2.5  # characters per token


def test_a_text_without_newlines_trains(shakespeare: Path) -> None:
    """SentencePiece skips sentences over 4,192 bytes: a text with no newline left it none
    ("INTERNAL ... sentences_.empty()"). Training sentences are cut; encoding is whole."""
    text = shakespeare.read_text()[:200_000].replace("\n", " ")
    tok = SentencePieceTokenizer.train(text, vocab_size=400)
    assert tok.vocab_size == 400 and tok.decode(tok.encode(text[:5000])) == text[:5000]
