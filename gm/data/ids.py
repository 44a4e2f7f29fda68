"""Token ids on disk: a split is encoded once, streamed, into a ``.npy`` file of the
smallest unsigned integer type that holds the vocabulary, and every run opens it
memory-mapped. Batches are sliced from the map and widened to int64 one at a time
(``gm.data.streams``), so a run holds about one byte per token of a corpus in the page
cache, not eight in its own memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from gm.data.corpus import Corpus, split_bounds
from gm.data.tokenizer import Tokenizer

SPLIT_NAMES = ("train", "val", "test")


def id_dtype(vocab_size: int) -> np.dtype:
    """uint8 for up to 256 tokens, uint16 up to 65,536, else uint32."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    raise ValueError(f"a vocabulary of {vocab_size} tokens is too large")


def open_ids(path: Path) -> np.ndarray | None:
    """The ids in ``path``, memory-mapped read-only; None when the file is missing or is
    not a whole one-dimensional integer array (truncated, damaged): it is then rebuilt."""
    try:
        ids = np.load(path, mmap_mode="r")
    except (OSError, ValueError, EOFError):
        return None
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        return None
    return ids


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


def cached_ids(pieces: Iterable[str], tokenizer: Tokenizer, cache: Path) -> np.ndarray:
    """The ids of the text given as ``pieces``: opened from ``cache`` when it holds them,
    else encoded piece by piece, written there and opened."""
    ids = open_ids(cache)
    if ids is None:  # (also a truncated or damaged cache: encoded again and rewritten)
        write_ids(cache, tokenizer.encode_pieces(pieces), id_dtype(tokenizer.vocab_size))
        ids = open_ids(cache)
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
