"""Tokenizers: text <-> ids, with the character length of every token for bits per character."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Protocol

from gm.errors import UserError


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

    def char_lengths(self) -> list[int]:
        """Characters each id decodes to, so bpc counts characters, not tokens."""
        ...

    def save(self, directory: Path) -> Path: ...


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
    filename = "tokenizer.json"

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

    def char_lengths(self) -> list[int]:
        return [1] * len(self.chars)

    def save(self, directory: Path) -> Path:
        path = Path(directory) / self.filename
        path.write_text(json.dumps({"kind": self.kind, "chars": self.chars}, ensure_ascii=False))
        return path

    @classmethod
    def load(cls, path: Path) -> CharTokenizer:
        spec = json.loads(Path(path).read_text())
        if spec.get("kind") != cls.kind:
            raise UserError(f"{path} is not a character tokenizer")
        return cls(spec["chars"])
