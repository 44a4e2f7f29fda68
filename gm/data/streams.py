"""Turning a token array into batches for truncated BPTT.

``StreamBatches`` (``data.carry_state=true``) lays the split out as ``B`` contiguous
streams and walks them ``T`` tokens at a time, so row *i* of batch *k+1* continues
row *i* of batch *k* and the hidden state can be carried from one batch to the
next. ``RandomWindows`` (``data.carry_state=false``) draws independent windows;
each starts from a zero state.

Under DDP (``world_size`` processes) both keep the single-process layout of
``batch_size`` rows and give process *r* its own contiguous block of
``batch_size / world_size`` rows: whole streams, so the state a process carries is
always the state of its own rows, and every process gets the same number of batches.

Both read the ids where they lie (a memory-mapped cache of uint8/16/32, or any array or
tensor) and widen only the batch at hand to int64.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from gm.errors import UserError

Batch = tuple[Tensor, Tensor]  # inputs [B, T], targets [B, T] (inputs shifted by one)
Ids = np.ndarray | Tensor  # one-dimensional token ids
# The study's chunk length T and batch B (conf/data/*.yaml say the same for runs): the
# defaults of code that is not given a config, and the window of models that predate
# recording their own.
SEQ_LEN = 128
BATCH_SIZE = 64


def as_array(ids: Ids) -> np.ndarray:
    """``ids`` as a numpy array, without a copy (a tensor shares its memory)."""
    return ids.numpy(force=True) if isinstance(ids, Tensor) else np.asarray(ids)


def widened(ids: np.ndarray) -> Tensor:
    """A batch's ids as an int64 tensor of its own (read out of a memory map)."""
    return torch.from_numpy(np.array(ids, dtype=np.int64))


def as_streams(ids: Ids, batch_size: int) -> np.ndarray:
    """Cut ``ids`` into ``batch_size`` contiguous rows of equal length; the remainder is
    dropped. A view: nothing is copied."""
    ids = as_array(ids)
    length = len(ids) // batch_size
    return ids[: batch_size * length].reshape(batch_size, length)


def rank_rows(batch_size: int, rank: int, world_size: int) -> slice:
    """The rows of a ``batch_size``-row batch that process ``rank`` of ``world_size`` owns."""
    if batch_size % world_size:
        raise UserError(
            f"data.batch_size={batch_size} must be divisible by the {world_size} training "
            "processes (trainer.devices × trainer.num_nodes), so that every process owns "
            "as many whole streams"
        )
    per_rank = batch_size // world_size
    return slice(rank * per_rank, (rank + 1) * per_rank)


def epoch_batches(length: int, limit: int | float) -> int:
    """The batches an epoch takes from a loader of ``length``, as Lightning counts them
    under ``trainer.limit_train_batches`` (an int is a count, a float a fraction)."""
    return min(length, limit) if isinstance(limit, int) else int(length * limit)


class Resumable:
    """A loader that remembers how many batches of the current pass it handed out.

    Lightning saves ``state_dict()`` in checkpoints and restores it on resume, so a run
    killed mid-epoch continues with the next batch, not the epoch's first.
    """

    num_batches: int
    epoch_length: int | None = None  # batches an epoch takes (limit_train_batches); None: all
    position = 0  # batches handed out in the current pass
    _resume_at = 0

    def _first_batch(self) -> int:
        start, self._resume_at = self._resume_at, 0
        # Saved at the end of an epoch, the position means "start the next one afresh".
        return start if start < (self.epoch_length or self.num_batches) else 0

    def state_dict(self) -> dict[str, int]:
        return {"position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume_at = self.position = int(state["position"])


class StreamBatches(Resumable):
    """``B`` contiguous streams, one chunk of ``T`` tokens (+1 target) per batch, in order."""

    def __init__(
        self,
        ids: Ids,
        batch_size: int,
        seq_len: int,
        split: str = "train",
        rank: int = 0,
        world_size: int = 1,
        warmup: int = 0,
        before: Ids | None = None,
        complete: bool = False,
        batch_key: str = "data.batch_size",  # the setting that gave batch_size, for messages
    ) -> None:
        if batch_size < 1 or seq_len < 1:
            raise UserError(
                f"data.batch_size and data.seq_len must be positive, got {batch_size}, {seq_len}"
            )
        rows = rank_rows(batch_size, rank, world_size)
        self.streams = as_streams(ids, batch_size)[rows]
        self.seq_len = seq_len
        self.warmup = self._warmup_inputs(ids, batch_size, rows, warmup, before)
        # Each chunk needs T inputs plus one more token for the last target.
        self.num_batches = max(0, (self.streams.shape[1] - 1) // seq_len)
        # complete: a last, shorter chunk scores the rest of every stream, so that every
        # token is scored whatever the number of streams (the evaluation protocol).
        self.rest = (self.streams.shape[1] - 1) % seq_len if complete else 0
        if self.num_batches == 0:
            need = batch_size * (seq_len + 1)
            raise UserError(
                f"the {split} split has {len(ids):,} tokens, fewer than one batch needs "
                f"({batch_size} streams × {seq_len + 1} = {need:,}); "
                f"lower {batch_key} or data.seq_len, or use a longer corpus"
            )

    @staticmethod
    def _warmup_inputs(
        ids: Ids, batch_size: int, rows: slice, warmup: int, before: Ids | None
    ) -> Tensor | None:
        """The ``warmup`` tokens that precede each stream's start (``[rows, warmup]``): the
        split's own text, and ``before`` it (the text the split follows) for the first
        stream; None without warm-up."""
        if warmup <= 0:
            return None
        ids = as_array(ids)
        length = len(ids) // batch_size
        prefix = as_array(before)[-warmup:] if before is not None else ids[:0]
        text = np.concatenate([prefix, ids[: batch_size * length]])
        starts = len(prefix) + np.arange(batch_size)[rows] * length
        if starts.min() < warmup:
            raise UserError(
                f"eval.warmup={warmup} needs {warmup:,} tokens before every stream, but the "
                f"first has {starts.min():,}; lower eval.warmup"
            )
        return widened(np.stack([text[s - warmup : s] for s in starts]))

    def __len__(self) -> int:
        return self.num_batches + bool(self.rest)

    def __getitem__(self, k: int) -> Batch:
        if not 0 <= k < len(self):
            raise IndexError(k)
        t = k * self.seq_len
        chunk = widened(self.streams[:, t : t + self.seq_len + 1])
        return chunk[:, :-1], chunk[:, 1:]

    def __iter__(self) -> Iterator[Batch]:
        for k in range(self._first_batch(), len(self)):
            self.position = k + 1
            yield self[k]


class RandomWindows(Resumable):
    """Independent windows of ``T`` (+1) tokens at random offsets; a fresh draw every epoch.

    An epoch has as many batches as the stream layout would, so both regimes see the
    same number of tokens per epoch.
    """

    def __init__(
        self,
        ids: Ids,
        batch_size: int,
        seq_len: int,
        seed: int,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.ids = as_array(ids)
        self.batch_size = batch_size
        # Every process draws the same windows and keeps its own rows of each batch.
        self.rows = rank_rows(batch_size, rank, world_size)
        self.seq_len = seq_len
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.num_batches = len(StreamBatches(ids, batch_size, seq_len))

    def __len__(self) -> int:
        return self.num_batches

    @property
    def sampler(self) -> RandomWindows:
        # Lightning calls ``loader.sampler.set_epoch(epoch)`` before every epoch (resumes
        # included), so the draw depends on the epoch number, not on how often we iterated.
        return self

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose windows ``__iter__`` draws."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[Batch]:
        n_windows = len(self.ids) - self.seq_len
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            starts = torch.randint(0, n_windows, (self.num_batches, self.batch_size), generator=g)
        else:  # the stream layout's chunks, in order, each from a zero state
            layout = StreamBatches(self.ids, self.batch_size, self.seq_len)
            rows = torch.arange(self.batch_size) * layout.streams.shape[1]
            starts = rows + torch.arange(self.num_batches)[:, None] * self.seq_len
        offsets = torch.arange(self.seq_len + 1)
        for k in range(self._first_batch(), self.num_batches):
            self.position = k + 1
            windows = widened(self.ids[(starts[k][self.rows, None] + offsets).numpy()])
            yield windows[:, :-1], windows[:, 1:]
