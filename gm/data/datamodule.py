"""The DataModule: corpus -> 90/10 split -> tokenizer -> cached ids -> stream batches.

Nothing here holds the corpus whole: it is scanned and encoded in chunks, once, and every
run after the first opens the scan and the memory-mapped ids without reading the text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np

from gm.data.corpus import Corpus, cache_dir, resolve_corpus, split_bounds
from gm.data.ids import split_ids
from gm.data.streams import BATCH_SIZE, SEQ_LEN, RandomWindows, StreamBatches, epoch_batches
from gm.data.tokenizer import Tokenizer, build_tokenizer
from gm.errors import UserError


class TextDataModule(L.LightningDataModule):
    """Tiny Shakespeare (or any text) as contiguous streams for truncated BPTT."""

    def __init__(
        self,
        data_dir: str,
        path: str | None = None,
        source: str = "tinyshakespeare",
        encoding: str = "utf-8",
        splits: list[float] | None = None,
        url: str | None = None,
        sha256: str | None = None,
        tokenizer: str = "char",
        batch_size: int = BATCH_SIZE,
        seq_len: int = SEQ_LEN,
        carry_state: bool = True,
        shuffle: bool | None = None,
        seed: int = 0,
        eval_batch_size: int | None = None,
        warmup: int = 0,
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
        self.source = {"source": source, "encoding": encoding, "url": url, "sha256": sha256}
        self.splits = splits
        self.tokenizer_kind = tokenizer
        self.tokenizer_options = tokenizer_options
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.carry_state = carry_state
        # Random windows are the windowed regime's default; shuffle=false keeps them in order.
        self.shuffle = (not carry_state) if shuffle is None else shuffle
        self.seed = seed
        # Validation and test: their own number of streams. warmup > 0 is the protocol whose
        # stateful score does not depend on that number: each stream read in after
        # ``warmup`` unscored tokens of the text before it (gm.evaluation.warmed_up), and
        # every token scored (a last, shorter chunk).
        self.eval_batch_size = eval_batch_size or batch_size
        self.warmup = warmup
        self.corpus: Corpus | None = None
        self.bounds: list[tuple[int, int]] = []  # each split's character range
        self.tokenizer: Tokenizer | None = None
        self.train_ids: np.ndarray | None = None  # memory-mapped, read-only
        self.val_ids: np.ndarray | None = None
        self.test_ids: np.ndarray | None = None  # with three data.splits

    def prepare(self) -> Tokenizer:
        """Resolve the corpus, build the tokenizer and encode both splits (idempotent)."""
        if self.tokenizer is not None:
            return self.tokenizer
        corpus = self.corpus = resolve_corpus(self.path, self.data_dir, **self.source)
        self.bounds = split_bounds(corpus.chars, self.splits)
        cache = cache_dir(self.data_dir)
        self.tokenizer = build_tokenizer(
            self.tokenizer_kind, corpus, self.bounds[0][1], cache, **self.tokenizer_options
        )
        ids = [
            split_ids(corpus, self.tokenizer, self.bounds, i, cache)
            for i in range(len(self.bounds))
        ]
        self.train_ids, self.val_ids, self.test_ids = [*ids, None][:3]
        # Fail now, with a sentence, if a split is too short for one batch.
        self.val_batches()
        self.test_batches()
        self.train_dataloader()
        return self.tokenizer

    def stats(self) -> dict[str, Any]:
        """Split sizes in tokens and characters, and characters per token of the validation."""
        val_chars = self.bounds[1][1] - self.bounds[1][0]
        return {
            "tokenizer": self.tokenizer.kind,
            "vocab_size": self.tokenizer.vocab_size,
            "train_tokens": len(self.train_ids),
            "val_tokens": len(self.val_ids),
            "val_chars": val_chars,
            "chars_per_token": val_chars / max(1, len(self.val_ids)),
            "corpus_sha256": self.corpus.sha256,  # which text, wherever it was read from
            **({"test_tokens": len(self.test_ids)} if self.test_ids is not None else {}),
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
            self.val_ids, self.eval_batch_size, self.seq_len, split="validation",
            warmup=self.warmup, before=self.train_ids, complete=self.warmup > 0, **self.ranks(),
            batch_key=self._eval_batch_key,
        )  # fmt: skip

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

    def test_batches(self) -> StreamBatches | None:
        """The test split as contiguous streams, or None without one."""
        if self.test_ids is None:
            return None
        return StreamBatches(
            self.test_ids, self.eval_batch_size, self.seq_len, split="test",
            warmup=self.warmup, before=self.val_ids, complete=self.warmup > 0,
            batch_key=self._eval_batch_key,
        )  # fmt: skip

    @property
    def _eval_batch_key(self) -> str:
        """The setting to lower when an evaluation split is too short for its batch."""
        return "data.batch_size" if self.eval_batch_size == self.batch_size else "eval.batch_size"
