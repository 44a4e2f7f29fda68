"""Finding, downloading, verifying, scanning and splitting the text corpus, streamed: a
corpus of any size is read in chunks and its scan kept, so a second run reads nothing."""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from gm.atomic import write_bytes_atomic
from gm.errors import UserError

TRAIN_FRACTION = 0.9  # nanoGPT's split, so numbers compare with published ones


@dataclass(frozen=True)
class Source:
    """Where a named corpus comes from: a text file, or ``member`` of a zip archive, whose
    sha256 (of what is downloaded) and extracted size are known."""

    url: str
    sha256: str
    filename: str
    member: str | None = None
    size: int | None = None


SOURCES = {
    "tinyshakespeare": Source(
        url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        filename="tinyshakespeare.txt",
    ),
    # The Hutter prize's first 10^8 bytes of English Wikipedia, and its a-z-and-space form;
    # the archives' sha256 as TensorFlow Datasets and other projects pin them.
    "enwik8": Source(
        url="http://mattmahoney.net/dc/enwik8.zip",
        sha256="547994d9980ebed1288380d652999f38a14fe291a6247c157c3d33d4932534bc",
        filename="enwik8",
        member="enwik8",
        size=100_000_000,
    ),
    "text8": Source(
        url="http://mattmahoney.net/dc/text8.zip",
        sha256="a6640522afe85d1963ad56c05b0ede0a0c000dddc9671758a6cc09b7a38e5232",
        filename="text8",
        member="text8",
        size=100_000_000,
    ),
}


CHUNK_BYTES = 1 << 24  # the corpus is read 16 MiB at a time, never whole


@dataclass(frozen=True)
class Corpus:
    """A corpus file and what one streamed pass over it learned: its identity (sha256 of
    the bytes, which keys every cache), its size in bytes and characters, its alphabet
    (every distinct character, sorted), its lines, and where each 16 MiB chunk starts (as
    a character and a byte offset) so that any character range is read without the rest.
    The text itself is never held whole."""

    path: Path
    sha256: str
    size: int
    chars: int
    alphabet: str
    lines: int
    index: tuple[tuple[int, int], ...]  # (character offset, byte offset) of each chunk
    encoding: str = "utf-8"  # latin-1 reads a file byte by byte: one character per byte

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[str]:
        """Characters ``start``..``end`` of the text, in pieces of about 16 MiB."""
        end = self.chars if end is None else min(end, self.chars)
        if start >= end:
            return
        # The last chunk that starts at or before `start`.
        first = max(i for i, (c, _) in enumerate(self.index) if c <= start)
        position, offset = self.index[first]
        decoder = codecs.getincrementaldecoder(self.encoding)()
        with self.path.open("rb") as f:
            f.seek(offset)
            while position < end:
                data = f.read(CHUNK_BYTES)
                text = decoder.decode(data, final=not data)
                piece = text[max(0, start - position) : end - position]
                position += len(text)
                if piece:
                    yield piece
                if not data:
                    return

    def read(self, start: int = 0, end: int | None = None) -> str:
        """Characters ``start``..``end`` as one string (for texts that fit in memory)."""
        return "".join(self.chunks(start, end))


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def scan_corpus(path: Path, encoding: str = "utf-8") -> Corpus:
    """One streamed pass: sha256, sizes, alphabet, lines and the chunk index. A file that is
    not text in ``encoding`` or has no text is a ``UserError``."""
    digest, decoder = hashlib.sha256(), codecs.getincrementaldecoder(encoding)()
    chars = size = lines = 0
    seen = np.zeros(0x110000, dtype=bool)  # every code point that occurs
    index, text_found = [], False
    with path.open("rb") as f:
        while True:
            pending = len(decoder.getstate()[0])  # bytes of a character cut by the last chunk
            index.append((chars, size - pending))
            data = f.read(CHUNK_BYTES)
            try:
                text = decoder.decode(data, final=not data)
            except UnicodeDecodeError as e:
                raise UserError(
                    f"corpus {path} is not {encoding.upper()} text (bad byte near offset "
                    f"{size - pending + e.start}); convert it, pass another data.path=, or "
                    "read it byte by byte with data.encoding=latin-1"
                ) from e
            digest.update(data)
            size += len(data)
            chars += len(text)
            lines += data.count(b"\n")
            if data.isascii():  # (the common case, counted on the bytes directly)
                seen[:256] |= np.bincount(np.frombuffer(data, np.uint8), minlength=256) > 0
            elif text:
                points = np.frombuffer(text.encode("utf-32-le"), np.uint32)
                seen |= np.bincount(points, minlength=seen.size) > 0
            text_found = text_found or (bool(text) and not text.isspace())
            if not data:
                break
    if not text_found:
        raise UserError(f"corpus {path} is empty; pass data.path= with a file that has text")
    return Corpus(
        path=path,
        sha256=digest.hexdigest(),
        size=size,
        chars=chars,
        alphabet="".join(map(chr, np.flatnonzero(seen))),
        lines=lines,
        index=tuple(index[:-1] or [(0, 0)]),
        encoding=encoding,
    )


def read_corpus(
    path: str | os.PathLike, cache_dir: str | os.PathLike | None = None, encoding: str = "utf-8"
) -> Corpus:
    """The corpus at ``path`` read as ``encoding``; a missing, unreadable, undecodable or
    empty file is a ``UserError``. With ``cache_dir``, what a scan learned is kept there,
    keyed by the file's path, encoding, size and modification time, so the next run does
    not read the text."""
    try:
        encoding = codecs.lookup(encoding).name
    except LookupError as e:
        raise UserError(f"data.encoding={encoding} is not an encoding Python knows") from e
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"corpus file {path} does not exist; pass data.path=FILE with a text file")
    if not path.is_file():
        raise UserError(f"corpus path {path} is not a file; pass data.path=FILE with a text file")
    try:
        stat = path.stat()
        sidecar = None
        if cache_dir is not None:
            key = f"{path.resolve()}\0{encoding}"
            name = hashlib.sha256(key.encode()).hexdigest()[:16]
            sidecar = Path(cache_dir).expanduser() / f"corpus-{name}.json"
            known = _read_scan(sidecar, stat)
            if known is not None:
                return known
        corpus = scan_corpus(path, encoding)
    except OSError as e:
        raise UserError(f"cannot read corpus {path}: {e.strerror}") from e
    if sidecar is not None:
        record = asdict(corpus) | {"path": str(path), "mtime_ns": stat.st_mtime_ns}
        write_bytes_atomic(sidecar, json.dumps(record).encode())
    return corpus


def _read_scan(sidecar: Path, stat: os.stat_result) -> Corpus | None:
    """The kept scan of an unchanged file, or None (none kept, the file changed, damaged)."""
    try:
        record = json.loads(sidecar.read_text())
        if record.pop("mtime_ns") != stat.st_mtime_ns or record["size"] != stat.st_size:
            return None
        record["index"] = tuple((int(c), int(b)) for c, b in record["index"])
        return Corpus(**{**record, "path": Path(record["path"])})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def download(source: Source, dest: Path, timeout: float = 60.0) -> Path:
    """Fetch ``source`` into ``dest``: streamed to a temporary file, its sha256 checked, the
    archive's member extracted and its size checked; never leaves a partial file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{dest.name}.{os.getpid()}.download")
    digest = hashlib.sha256()
    try:
        try:
            with (
                urllib.request.urlopen(source.url, timeout=timeout) as response,
                tmp.open("wb") as f,
            ):
                while block := response.read(1 << 20):
                    digest.update(block)
                    f.write(block)
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise UserError(
                f"could not download the corpus from {source.url} ({reason}); "
                "pass data.path=FILE with a local copy of the text"
            ) from e
        got = digest.hexdigest()
        if got != source.sha256:
            raise UserError(
                f"the corpus downloaded from {source.url} has sha256 {got[:12]}…, expected "
                f"{source.sha256[:12]}…; pass data.path=FILE with a trusted copy"
            )
        if source.member is not None:
            _extract(tmp, source, dest)
        else:
            os.replace(tmp, dest)
        return dest
    finally:
        tmp.unlink(missing_ok=True)


def _extract(archive: Path, source: Source, dest: Path) -> None:
    part = dest.with_name(f"{dest.name}.{os.getpid()}.part")
    try:
        with zipfile.ZipFile(archive) as z, z.open(source.member) as src, part.open("wb") as out:
            while block := src.read(1 << 24):
                out.write(block)
        if source.size is not None and part.stat().st_size != source.size:
            raise UserError(
                f"{source.member} from {source.url} has {part.stat().st_size:,} bytes, "
                f"expected {source.size:,}; pass data.path=FILE with a trusted copy"
            )
        os.replace(part, dest)
    except (zipfile.BadZipFile, KeyError) as e:
        raise UserError(f"{source.url} is not a zip archive holding {source.member}") from e
    finally:
        part.unlink(missing_ok=True)


def cache_dir(data_dir: str | Path) -> Path:
    """Where ``data_dir`` keeps what is derived from a corpus: its scans, the id caches and
    trained SentencePiece models."""
    return Path(data_dir).expanduser() / "cache"


def resolve_corpus(
    path: str | os.PathLike | None,
    data_dir: str | os.PathLike,
    source: str = "tinyshakespeare",
    encoding: str = "utf-8",
    url: str | None = None,
    sha256: str | None = None,
) -> Corpus:
    """The corpus: ``path`` if given, else the cached copy of the named ``source`` in
    ``data_dir``, else a download (``url`` and ``sha256``: a mirror of it).

    A downloaded copy must match the source's sha256 (and a cached text file still does);
    a user's own ``path`` is any text in ``encoding``.
    """
    scans = cache_dir(data_dir)
    if path is not None:
        return read_corpus(path, scans, encoding)
    if source not in SOURCES:
        raise UserError(
            f"data.source={source} is not a corpus gm knows ({', '.join(SOURCES)}); "
            "pass data.path=FILE for your own text"
        )
    known = SOURCES[source]
    if url is not None or sha256 is not None:
        # Another archive, vouched for by its checksum: its size is its own.
        size = known.size if sha256 in (None, known.sha256) else None
        known = replace(known, url=url or known.url, sha256=sha256 or known.sha256, size=size)
    cached = Path(data_dir).expanduser() / known.filename
    if not cached.is_file():
        download(known, cached)
    corpus = read_corpus(cached, scans, encoding)
    if known.member is None and corpus.sha256 != known.sha256:
        raise UserError(
            f"the cached corpus {cached} has the wrong sha256 ({corpus.sha256[:12]}…); "
            "delete it to download it again, or pass data.path=FILE"
        )
    return corpus


def split_point(chars: int, train_fraction: float = TRAIN_FRACTION) -> int:
    """Where the training split of ``chars`` characters ends and validation begins."""
    return int(chars * train_fraction)


SPLITS = ("training", "validation", "test")


def split_bounds(chars: int, fractions: list[float] | None = None) -> list[tuple[int, int]]:
    """The character ranges of the training, validation and (with three fractions) test
    splits, in that order along the text: ``[0.9, 0.1]`` (the default) or e.g. ``[0.9,
    0.05, 0.05]``. Fractions that add up to less than 1 leave the end of the text out."""
    fractions = [TRAIN_FRACTION, 1 - TRAIN_FRACTION] if fractions is None else list(fractions)
    if len(fractions) not in (2, 3) or min(fractions) <= 0 or sum(fractions) > 1 + 1e-9:
        raise UserError(
            f"data.splits={fractions} must be two or three positive fractions (training, "
            "validation[, test]) that add up to at most 1, e.g. [0.9,0.05,0.05]"
        )
    ends = [split_point(chars, sum(fractions[: i + 1])) for i in range(len(fractions))]
    if sum(fractions) > 1 - 1e-9:
        ends[-1] = chars  # the whole text, whatever the rounding
    starts = [0, *ends[:-1]]
    return list(zip(starts, ends, strict=True))


def split_text(text: str, train_fraction: float = TRAIN_FRACTION) -> tuple[str, str]:
    """First ``train_fraction`` of the raw text for training, the rest for validation."""
    n = split_point(len(text), train_fraction)
    return text[:n], text[n:]
