"""Tokenizers: text <-> ids, with the character length of every token for bits per character.

The one place tokenizers are made: ``build_tokenizer`` from a data config,
``tokenizer_from_state`` from a checkpoint, ``load_tokenizer`` from a bundle's file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from gm.atomic import write_bytes_atomic
from gm.errors import UserError
from gm.run import TOKENIZER_FILES

if TYPE_CHECKING:
    from gm.data.corpus import Corpus


class Tokenizer(Protocol):
    """What the data pipeline, the training task and the sampler need from a tokenizer."""

    kind: str

    @property
    def vocab_size(self) -> int: ...

    @property
    def fingerprint(self) -> str:
        """Short hash of the vocabulary: keys the id cache and checks checkpoint compatibility."""
        ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...

    def encode_pieces(self, pieces: Iterable[str]) -> Iterator[np.ndarray]:
        """Ids of a long text given as consecutive pieces (cut anywhere), as arrays: their
        concatenation equals ``encode`` of the whole text, which is never held at once."""
        ...

    def unknown(self, text: str) -> list[str]:
        """Characters of ``text`` the tokenizer cannot represent, in order of appearance."""
        ...

    def char_lengths(self) -> list[int]:
        """Characters each id decodes to, so bpc counts characters, not tokens."""
        ...

    def to_state(self) -> dict[str, Any]:
        """Everything needed to rebuild the tokenizer, as plain containers (and bytes)."""
        ...

    def save(self, directory: Path) -> Path:
        """Write the tokenizer's file into ``directory``; return its path."""
        ...


def describe(tokenizer: Tokenizer) -> dict[str, Any]:
    """Plain-container facts about a tokenizer that a checkpoint keeps beside the weights."""
    return {
        "kind": tokenizer.kind,
        "fingerprint": tokenizer.fingerprint,
        "vocab_size": tokenizer.vocab_size,
        "char_lengths": tokenizer.char_lengths(),
    }


class CharTokenizer:
    """One token per distinct character of the corpus, ids in sorted character order."""

    kind = "char"
    filename = TOKENIZER_FILES[kind]  # the run directory's layout owns the name

    def __init__(self, chars: list[str]) -> None:
        if len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise ValueError("chars must be distinct single characters")
        self.chars = list(chars)
        self.stoi = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """The vocabulary of ``text`` (65 symbols on Tiny Shakespeare)."""
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256("".join(self.chars).encode("utf-8")).hexdigest()[:16]

    def unknown(self, text: str) -> list[str]:
        """Characters of ``text`` outside the vocabulary, in order of first appearance."""
        return list(dict.fromkeys(c for c in text if c not in self.stoi))

    def encode(self, text: str) -> list[int]:
        missing = self.unknown(text)
        if missing:
            raise UserError(f"text has characters the tokenizer never saw: {missing!r}")
        return [self.stoi[c] for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(self.chars[i] for i in ids)

    def encode_pieces(self, pieces: Iterable[str]) -> Iterator[np.ndarray]:
        # A table from code point to id, looked up for a whole piece at once.
        points = np.array([ord(c) for c in self.chars], dtype=np.int64)
        table = np.full(int(points.max()) + 1, -1, dtype=np.int32)
        table[points] = np.arange(len(points), dtype=np.int32)
        for piece in pieces:
            if piece.isascii():
                codes = np.frombuffer(piece.encode("ascii"), dtype=np.uint8)
            else:
                codes = np.frombuffer(piece.encode("utf-32-le"), dtype=np.uint32)
            if codes.max(initial=0) >= len(table) or (ids := table[codes]).min(initial=0) < 0:
                self.encode(piece)  # raises, naming the characters
            yield ids

    def char_lengths(self) -> list[int]:
        return [1] * len(self.chars)

    def to_state(self) -> dict[str, Any]:
        return {"kind": self.kind, "chars": self.chars}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CharTokenizer:
        return cls(list(state["chars"]))

    def save(self, directory: Path) -> Path:
        path = Path(directory) / self.filename
        return write_bytes_atomic(path, json.dumps(self.to_state(), ensure_ascii=False).encode())

    @classmethod
    def load(cls, path: Path) -> CharTokenizer:
        try:
            state = json.loads(Path(path).read_text())
            return cls.from_state(state)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise UserError(f"{path} is not a character tokenizer file") from e


def _tokenizers() -> dict[str, type]:
    from gm.data.spm_tokenizer import SentencePieceTokenizer

    return {"char": CharTokenizer, "sentencepiece": SentencePieceTokenizer}


def build_tokenizer(
    kind: str, corpus: Corpus, train_chars: int, cache_dir: Path, **options: Any
) -> Tokenizer:
    """The tokenizer a data config names: characters of the whole corpus, or SentencePiece
    trained on the training split (its first ``train_chars`` characters) only: the
    validation text must stay unseen."""
    if kind == "char":
        if options:
            raise UserError(f"data.tokenizer=char takes no options, got {sorted(options)}")
        return CharTokenizer(list(corpus.alphabet))
    if kind == "sentencepiece":
        return _tokenizers()[kind].train(
            corpus.chunks(0, train_chars),
            cache_dir=cache_dir,
            corpus_sha256=corpus.sha256,
            lines=corpus.lines * train_chars // max(1, corpus.chars),
            **options,
        )
    raise UserError(f"unknown tokenizer {kind!r}; use data.tokenizer=char or sentencepiece")


def tokenizer_from_state(state: dict[str, Any]) -> Tokenizer:
    """Rebuild a tokenizer from ``Tokenizer.to_state()`` (as stored in checkpoints)."""
    kind = state.get("kind") if isinstance(state, dict) else None
    tokenizers = _tokenizers()
    if not isinstance(kind, str) or kind not in tokenizers:
        raise UserError(f"unknown tokenizer kind {kind!r} in the saved model")
    try:
        return tokenizers[kind].from_state(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:  # an edited or damaged file
        raise UserError(f"the saved model's {kind} tokenizer is damaged or was edited ({e})") from e


def load_tokenizer(path: Path) -> Tokenizer:
    """Read a tokenizer file written by ``Tokenizer.save``."""
    path = Path(path)
    for cls in _tokenizers().values():
        if path.name == cls.filename:
            return cls.load(path)
    raise UserError(f"{path} is not a tokenizer file gm knows")
