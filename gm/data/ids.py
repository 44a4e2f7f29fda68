"""Token ids on disk: a split is encoded once, streamed, into a ``.npy`` file of the
smallest unsigned integer type that holds the vocabulary, and every run opens it
memory-mapped. Batches are sliced from the map and widened to int64 one at a time
(``gm.data.streams``), so a run holds about one byte per token of a corpus in the page
cache, not eight in its own memory.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from gm.atomic import write_bytes_atomic
from gm.data.corpus import Corpus, split_bounds
from gm.data.tokenizer import Tokenizer

SPLIT_NAMES = ("train", "val", "test")


def id_dtype(vocab_size: int) -> np.dtype:
    """uint8 for up to 256 tokens, uint16 up to 65,536, else uint32."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    raise ValueError(f"a vocabulary of {vocab_size} tokens is too large")


def open_ids(path: Path, vocab_size: int | None = None) -> np.ndarray | None:
    """The ids in ``path``, memory-mapped read-only; None when it is not the file
    ``write_ids`` wrote (it is then rebuilt): missing, not a whole one-dimensional integer
    array (truncated, damaged), not the length and digest its ``.sum`` file records (a
    shorter or edited array that is still valid ``.npy``), or holding an id outside a
    vocabulary of ``vocab_size``."""
    try:
        ids = np.load(path, mmap_mode="r")
        recorded = json.loads(_sum_path(path).read_text())
    except (OSError, ValueError, EOFError):
        return None
    if ids.ndim != 1 or ids.dtype.kind not in "iu" or not isinstance(recorded, dict):
        return None
    if recorded.get("count") != len(ids) or recorded.get("blake2b") != _digest(ids):
        return None
    if vocab_size is not None and len(ids) and int(ids.max()) >= vocab_size:
        return None
    return ids


def _sum_path(path: Path) -> Path:
    return path.with_name(f"{path.name}.sum")


def _digest(ids: np.ndarray) -> str:
    """A digest of the ids' bytes, read in blocks (one pass over the page cache)."""
    digest = hashlib.blake2b(digest_size=16)
    for start in range(0, len(ids), 1 << 24):
        digest.update(np.ascontiguousarray(ids[start : start + (1 << 24)]).tobytes())
    return digest.hexdigest()


def write_ids(path: Path, arrays: Iterable[np.ndarray], dtype: np.dtype) -> None:
    """Write the concatenation of ``arrays`` to ``path`` as a ``.npy`` file, without holding
    it whole; the file appears only once complete, so a killed run or a concurrent one
    never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = path.with_name(f"{path.name}.{os.getpid()}.raw")
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        count = 0
        with raw.open("wb") as f:
            for array in arrays:
                f.write(np.ascontiguousarray(array, dtype=dtype).tobytes())
                count += len(array)
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False}
        with tmp.open("wb") as out, raw.open("rb") as f:
            np.lib.format.write_array_header_1_0(out, header | {"shape": (count,)})
            while block := f.read(1 << 24):
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        raw.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    # What the file holds, for open_ids to check (written last: without it, it is rebuilt).
    ids = np.load(path, mmap_mode="r")
    record = {"count": len(ids), "blake2b": _digest(ids)}
    write_bytes_atomic(_sum_path(path), json.dumps(record).encode())


def cached_ids(pieces: Iterable[str], tokenizer: Tokenizer, cache: Path) -> np.ndarray:
    """The ids of the text given as ``pieces``: opened from ``cache`` when it holds them,
    else encoded piece by piece, written there and opened."""
    ids = open_ids(cache, tokenizer.vocab_size)
    if ids is None:  # (also a truncated, shortened or edited cache: encoded again)
        write_ids(cache, tokenizer.encode_pieces(pieces), id_dtype(tokenizer.vocab_size))
        ids = open_ids(cache, tokenizer.vocab_size)
    return ids


def split_ids(
    corpus: Corpus,
    tokenizer: Tokenizer,
    bounds: list[tuple[int, int]],
    index: int,
    cache: Path,
) -> np.ndarray:
    """The ids of split ``index`` (0 training, 1 validation, 2 test) of ``corpus`` cut at
    ``bounds``, from the cache folder ``cache`` (``gm.data.corpus.cache_dir``): the array
    training read, for whoever scores that split later (encoded and cached on a miss)."""
    key = f"{corpus.sha256[:16]}-{tokenizer.kind}-{tokenizer.fingerprint}"
    bounds = [(int(a), int(b)) for a, b in bounds]
    # The 90/10 split's files keep their names; other splits name their range.
    start, end = bounds[index]
    where = "" if bounds == split_bounds(corpus.chars) else f"-{start}-{end}"
    path = Path(cache) / f"{key}-{SPLIT_NAMES[index]}{where}.npy"
    return cached_ids(corpus.chunks(start, end), tokenizer, path)
