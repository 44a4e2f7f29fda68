"""SentencePiece subwords, trained on the training split and cached.

Options that make the round trip exact on any text: identity normalisation, no extra
whitespace removal and no dummy prefix (runs of spaces survive), newline as a
user-defined piece (SentencePiece otherwise treats it as a sentence break),
``character_coverage=1.0`` and byte fallback (a character never seen in training
becomes its UTF-8 bytes instead of ``<unk>``). One trainer thread keeps the
vocabulary reproducible.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import sentencepiece as spm

from gm.atomic import write_bytes_atomic
from gm.errors import UserError
from gm.run import TOKENIZER_FILES

FIXED_OPTIONS: dict[str, Any] = {
    "character_coverage": 1.0,
    "normalization_rule_name": "identity",
    "remove_extra_whitespaces": False,
    "add_dummy_prefix": False,
    "user_defined_symbols": ["\n"],
    "allow_whitespace_only_pieces": True,
    "split_digits": False,
    "unk_id": 0,
    "bos_id": -1,
    "eos_id": -1,
    "pad_id": -1,
    "num_threads": 1,
    "max_sentence_length": 1 << 16,
    "input_sentence_size": 0,
    "shuffle_input_sentence": False,
    "seed_sentencepiece_size": 1_000_000,
}
MODEL_TYPES = ("unigram", "bpe")
# A training split of more lines trains on a shuffled sample of this many (SentencePiece
# holds its sentences in memory); Tiny Shakespeare's 36,000 train on every line.
SAMPLE_LINES = 2_000_000
PIECE_CHARS = 1 << 20  # a long text is encoded about this many characters at a time


def lines_of(pieces: Iterable[str], size: int = 0) -> Iterator[str]:
    """The text of ``pieces`` re-cut after newlines: whole lines, or runs of lines of about
    ``size`` characters (a line longer than that whole). Encoding piece by piece then equals
    encoding the whole text, since a newline is always a piece of its own."""
    rest = ""
    for piece in pieces:
        text = rest + piece
        cut = text.rfind("\n") + 1
        if size:
            if cut and cut >= size:
                yield text[:cut]
                rest = text[cut:]
            else:
                rest = text
        else:
            yield from text[:cut].splitlines(keepends=True)
            rest = text[cut:]
    if rest:
        yield rest


# SentencePiece skips a training sentence longer than 4,192 bytes (its max_sentence_length),
# so a text without newlines left it none: lines are cut to this many characters (at most
# 4 bytes each) for training only; encoding still reads whole lines.
SENTENCE_CHARS = 1024


def _sentences(lines: Iterable[str]) -> Iterator[str]:
    for line in lines:
        for start in range(0, max(len(line), 1), SENTENCE_CHARS):
            yield line[start : start + SENTENCE_CHARS]


_TOO_LARGE = re.compile(r"value <= (\d+)")
_TOO_SMALL = re.compile(r"smaller than required_chars\. \d+ vs (\d+)")


class SentencePieceTokenizer:
    """A SentencePiece model held as its serialised bytes."""

    kind = "sentencepiece"
    filename = TOKENIZER_FILES[kind]  # the run directory's layout owns the name

    def __init__(self, model_proto: bytes) -> None:
        self.model_proto = bytes(model_proto)
        self.sp = spm.SentencePieceProcessor(model_proto=self.model_proto)
        self._lengths = [self._piece_chars(i) for i in range(self.sp.get_piece_size())]

    @classmethod
    def train(
        cls,
        text: Iterable[str],
        vocab_size: int = 1000,
        model_type: str = "unigram",
        byte_fallback: bool = True,
        cache_dir: Path | None = None,
        corpus_sha256: str = "",
        lines: int = 0,
    ) -> SentencePieceTokenizer:
        """Train on ``text`` (the training split, given whole or as consecutive pieces of
        about ``lines`` lines), or reuse the cached model for the same corpus, options and
        sentencepiece version."""
        if model_type not in MODEL_TYPES:
            raise UserError(f"data.model_type must be one of {MODEL_TYPES}, got {model_type!r}")
        if vocab_size < 2:
            raise UserError(f"data.vocab_size must be at least 2, got {vocab_size}")
        options = FIXED_OPTIONS | {
            "vocab_size": int(vocab_size),
            "model_type": model_type,
            "byte_fallback": bool(byte_fallback),
        }
        if lines > SAMPLE_LINES:  # a bounded, shuffled (seeded) sample of the lines
            options |= {"input_sentence_size": SAMPLE_LINES, "shuffle_input_sentence": True}
        key = hashlib.sha256(
            json.dumps([corpus_sha256, options, spm.__version__], sort_keys=True).encode()
        ).hexdigest()[:16]
        cached = Path(cache_dir) / f"spm-{key}.model" if cache_dir is not None else None
        if cached is not None and cached.is_file():
            try:
                return cls(cached.read_bytes())
            except RuntimeError:
                pass  # a truncated or damaged cache: trained again and rewritten below
        if cached is not None and os.environ.get("LOCAL_RANK", "0") != "0":
            return cls(_wait_for(cached))  # under DDP only rank 0 trains
        model = io.BytesIO()
        spm.set_random_generator_seed(0)  # the sample of a large corpus is drawn the same way
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=_sentences(lines_of([text] if isinstance(text, str) else text)),
                model_writer=model,
                minloglevel=2,
                **options,
            )
        except RuntimeError as e:
            match = _TOO_LARGE.search(str(e))
            if match:
                raise UserError(
                    f"data.vocab_size={vocab_size} is too large for this corpus; "
                    f"the largest that works is {match.group(1)}"
                ) from e
            match = _TOO_SMALL.search(str(e))
            if match:
                raise UserError(
                    f"data.vocab_size={vocab_size} is too small to hold every character of "
                    f"this corpus; it needs at least {match.group(1)}"
                ) from e
            raise UserError(f"SentencePiece could not train on this corpus: {e}") from e
        if cached is not None:
            write_bytes_atomic(cached, model.getvalue())
        return cls(model.getvalue())

    def _piece_chars(self, i: int) -> int:
        if self.sp.is_control(i) or self.sp.is_unknown(i):
            return 0
        if self.sp.is_byte(i):
            # <0xNN>: a UTF-8 lead byte starts a character, a continuation byte does not.
            byte = int(self.sp.id_to_piece(i)[3:5], 16)
            return 0 if byte & 0xC0 == 0x80 else 1
        return len(self.sp.decode([i]))

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.model_proto).hexdigest()[:16]

    @property
    def byte_fallback(self) -> bool:
        return any(self.sp.is_byte(i) for i in range(self.vocab_size))

    def unknown(self, text: str) -> list[str]:
        if self.byte_fallback:
            return []
        unk = self.sp.unk_id()
        return list(dict.fromkeys(c for c in text if unk in self.sp.encode(c)))

    def encode(self, text: str) -> list[int]:
        missing = self.unknown(text)
        if missing:
            raise UserError(f"text has characters the tokenizer never saw: {missing!r}")
        return self.sp.encode(text)

    def decode(self, ids: list[int]) -> str:
        return self.sp.decode(list(ids))

    def encode_pieces(self, pieces: Iterable[str]) -> Iterator[np.ndarray]:
        for text in lines_of(pieces, PIECE_CHARS):
            yield np.asarray(self.encode(text), dtype=np.int32)

    def char_lengths(self) -> list[int]:
        return list(self._lengths)

    def to_state(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": self.model_proto}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SentencePieceTokenizer:
        return cls(state["model"])

    def save(self, directory: Path) -> Path:
        return write_bytes_atomic(Path(directory) / self.filename, self.model_proto)

    @classmethod
    def load(cls, path: Path) -> SentencePieceTokenizer:
        try:
            return cls(Path(path).read_bytes())
        except (OSError, RuntimeError) as e:
            raise UserError(f"{path} is not a SentencePiece model") from e


def _wait_for(path: Path, timeout: float = 600.0) -> bytes:
    deadline = time.monotonic() + timeout
    while not path.is_file():
        if time.monotonic() > deadline:
            raise UserError(f"timed out waiting for rank 0 to write {path}")
        time.sleep(0.5)
    return path.read_bytes()
