"""Finding, downloading, verifying, reading and splitting the text corpus."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from gm.atomic import write_bytes_atomic
from gm.errors import UserError

TINY_SHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
TINY_SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
TINY_SHAKESPEARE_FILE = "tinyshakespeare.txt"
TRAIN_FRACTION = 0.9  # nanoGPT's split, so numbers compare with published ones


@dataclass(frozen=True)
class Corpus:
    """A corpus's text and its identity (sha256 of the bytes), which keys every cache."""

    path: Path
    text: str
    sha256: str


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def read_corpus(path: str | os.PathLike) -> Corpus:
    """Read a UTF-8 text file; a missing, unreadable, non-UTF-8 or empty file is a ``UserError``."""
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"corpus file {path} does not exist; pass data.path=FILE with a text file")
    if not path.is_file():
        raise UserError(f"corpus path {path} is not a file; pass data.path=FILE with a text file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read corpus {path}: {e.strerror}") from e
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(
            f"corpus {path} is not UTF-8 text (bad byte at offset {e.start}); "
            "convert it to UTF-8 or pass another data.path="
        ) from e
    if not text.strip():
        raise UserError(f"corpus {path} is empty; pass data.path= with a file that has text")
    return Corpus(path=path, text=text, sha256=sha256_bytes(data))


def download(url: str, dest: Path, sha256: str, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest`` after checking its sha256; never leaves a partial file."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = response.read()
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise UserError(
            f"could not download the corpus from {url} ({reason}); "
            "pass data.path=FILE with a local copy of the text"
        ) from e
    got = sha256_bytes(data)
    if got != sha256:
        raise UserError(
            f"the corpus downloaded from {url} has sha256 {got[:12]}…, expected {sha256[:12]}…; "
            "pass data.path=FILE with a trusted copy"
        )
    return write_bytes_atomic(dest, data)


def resolve_corpus(
    path: str | os.PathLike | None,
    data_dir: str | os.PathLike,
    url: str | None = TINY_SHAKESPEARE_URL,
    sha256: str | None = TINY_SHAKESPEARE_SHA256,
    filename: str = TINY_SHAKESPEARE_FILE,
) -> Corpus:
    """The corpus: ``path`` if given, else the cached copy in ``data_dir``, else a download.

    A cached or downloaded copy must match ``sha256``; a user's own ``path`` is any UTF-8 text.
    """
    if path is not None:
        return read_corpus(path)
    cached = Path(data_dir).expanduser() / filename
    if cached.is_file():
        corpus = read_corpus(cached)
        if sha256 is None or corpus.sha256 == sha256:
            return corpus
        raise UserError(
            f"the cached corpus {cached} has the wrong sha256 ({corpus.sha256[:12]}…); "
            "delete it to download it again, or pass data.path=FILE"
        )
    if url is None:
        raise UserError(f"no corpus at {cached} and no download source; pass data.path=FILE")
    return read_corpus(download(url, cached, sha256))


def split_text(text: str, train_fraction: float = TRAIN_FRACTION) -> tuple[str, str]:
    """First ``train_fraction`` of the raw text for training, the rest for validation."""
    n = int(len(text) * train_fraction)
    return text[:n], text[n:]
