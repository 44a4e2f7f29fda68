"""The DataModule: corpus -> tokenizer -> cached ids -> 90/10 split -> stream batches."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor

from gm.atomic import write_bytes_atomic
from gm.data.corpus import Corpus, resolve_corpus, split_text
from gm.data.streams import BATCH_SIZE, SEQ_LEN, RandomWindows, StreamBatches, epoch_batches
from gm.data.tokenizer import Tokenizer, build_tokenizer
from gm.errors import UserError


def cached_ids(text: str, tokenizer: Tokenizer, cache: Path | None) -> Tensor:
    """Token ids of ``text``, read from ``cache`` when present, else encoded and stored there."""
    if cache is not None and cache.is_file():
        try:
            return torch.from_numpy(np.load(cache).astype(np.int64))
        except (ValueError, EOFError, OSError):
            pass  # a truncated or damaged cache is encoded again and rewritten below
    ids = np.asarray(tokenizer.encode(text), dtype=np.int32)
    if cache is not None:
        buffer = io.BytesIO()
        np.save(buffer, ids)
        write_bytes_atomic(cache, buffer.getvalue())  # a concurrent or killed run never sees half
    return torch.from_numpy(ids.astype(np.int64))


class TextDataModule(L.LightningDataModule):
    """Tiny Shakespeare (or any UTF-8 text) as contiguous streams for truncated BPTT."""

    def __init__(
        self,
        data_dir: str,
        path: str | None = None,
        tokenizer: str = "char",
        batch_size: int = BATCH_SIZE,
        seq_len: int = SEQ_LEN,
        carry_state: bool = True,
        shuffle: bool | None = None,
        seed: int = 0,
        **tokenizer_options: Any,
    ) -> None:
        super().__init__()
        if carry_state and shuffle:
            raise UserError(
                "data.shuffle=true would break the carried hidden state (each batch must continue "
                "the previous one); set data.carry_state=false to train on shuffled windows"
            )
        self.data_dir = Path(data_dir).expanduser()
        self.path = path
        self.tokenizer_kind = tokenizer
        self.tokenizer_options = tokenizer_options
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.carry_state = carry_state
        # Random windows are the windowed regime's default; shuffle=false keeps them in order.
        self.shuffle = (not carry_state) if shuffle is None else shuffle
        self.seed = seed
        self.corpus: Corpus | None = None
        self.tokenizer: Tokenizer | None = None
        self.train_ids: Tensor | None = None
        self.val_ids: Tensor | None = None

    def prepare(self) -> Tokenizer:
        """Resolve the corpus, build the tokenizer and encode both splits (idempotent)."""
        if self.tokenizer is not None:
            return self.tokenizer
        self.corpus = resolve_corpus(self.path, self.data_dir)
        train_text, val_text = split_text(self.corpus.text)
        cache_dir = self.data_dir / "cache"
        self.tokenizer = build_tokenizer(
            self.tokenizer_kind, self.corpus, train_text, cache_dir, **self.tokenizer_options
        )
        key = f"{self.corpus.sha256[:16]}-{self.tokenizer.kind}-{self.tokenizer.fingerprint}"
        self.train_ids = cached_ids(train_text, self.tokenizer, cache_dir / f"{key}-train.npy")
        self.val_ids = cached_ids(val_text, self.tokenizer, cache_dir / f"{key}-val.npy")
        # Fail now, with a sentence, if either split is too short for one batch.
        self.val_batches()
        self.train_dataloader()
        return self.tokenizer

    def stats(self) -> dict[str, Any]:
        """Split sizes in tokens and characters, and characters per token of the validation."""
        _, val_text = split_text(self.corpus.text)
        return {
            "tokenizer": self.tokenizer.kind,
            "vocab_size": self.tokenizer.vocab_size,
            "train_tokens": int(self.train_ids.numel()),
            "val_tokens": int(self.val_ids.numel()),
            "val_chars": len(val_text),
            "chars_per_token": len(val_text) / max(1, self.val_ids.numel()),
        }

    def setup(self, stage: str) -> None:
        self.prepare()

    def ranks(self) -> dict[str, int]:
        """This process's ``rank`` among ``world_size`` (0 of 1 outside DDP)."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return {"rank": 0, "world_size": 1}
        return {"rank": trainer.global_rank, "world_size": trainer.world_size}

    def val_batches(self) -> StreamBatches:
        """The validation split as contiguous streams (always evaluated with carried state)."""
        return StreamBatches(
            self.val_ids, self.batch_size, self.seq_len, split="validation", **self.ranks()
        )

    def train_dataloader(self) -> StreamBatches | RandomWindows:
        # data.batch_size is the global batch: each DDP process owns a block of its rows.
        if self.carry_state:
            loader = StreamBatches(
                self.train_ids, self.batch_size, self.seq_len, split="training", **self.ranks()
            )
        else:
            loader = RandomWindows(
                self.train_ids,
                self.batch_size,
                self.seq_len,
                seed=self.seed,
                shuffle=self.shuffle,
                **self.ranks(),
            )
        trainer = getattr(self, "trainer", None)
        if trainer is not None:  # a resume must know where a (limited) epoch ends
            loader.epoch_length = epoch_batches(len(loader), trainer.limit_train_batches)
        return loader

    def val_dataloader(self) -> StreamBatches:
        return self.val_batches()
