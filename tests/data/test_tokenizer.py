"""The character tokenizer: round trip, unknown characters, persistence."""

from __future__ import annotations

from pathlib import Path

import pytest

from gm.data.corpus import read_corpus
from gm.data.tokenizer import CharTokenizer, describe
from gm.errors import UserError


def test_round_trip_and_sorted_ids() -> None:
    tok = CharTokenizer.from_text("hello, world\n")
    assert tok.chars == sorted(set("hello, world\n"))
    assert tok.decode(tok.encode("world, hello\n")) == "world, hello\n"
    assert describe(tok)["char_lengths"] == [1] * tok.vocab_size


def test_unknown_characters_are_named() -> None:
    tok = CharTokenizer.from_text("abc")
    assert tok.unknown("abzzy") == ["z", "y"]
    with pytest.raises(UserError, match="'z'"):
        tok.encode("abz")


def test_save_load(tmp_path: Path) -> None:
    tok = CharTokenizer.from_text("ünïcödé\n ")
    loaded = CharTokenizer.load(tok.save(tmp_path))
    assert loaded.chars == tok.chars and loaded.fingerprint == tok.fingerprint


def test_shakespeare_has_65_symbols(shakespeare: Path) -> None:
    assert CharTokenizer.from_text(read_corpus(shakespeare).read()).vocab_size == 65
