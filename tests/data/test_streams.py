"""Stream layout: contiguous rows, one chunk per batch, in order; random windows."""

from __future__ import annotations

import pytest
import torch

from gm.data.streams import RandomWindows, StreamBatches, as_streams
from gm.errors import UserError


def test_rows_continue_across_batches() -> None:
    ids = torch.arange(1000)
    batches = StreamBatches(ids, batch_size=4, seq_len=10)
    streams = as_streams(ids, 4)
    assert streams.shape == (4, 250)
    assert len(batches) == (250 - 1) // 10  # remainder dropped
    seen = list(batches)
    for k in range(len(seen) - 1):
        x, y = seen[k]
        x_next, _ = seen[k + 1]
        # Row i of batch k+1 starts exactly where row i of batch k stopped.
        assert torch.equal(x_next[:, 0], x[:, -1] + 1)
        assert torch.equal(y, x + 1)  # targets are the inputs shifted by one
    assert all(x.shape == (4, 10) for x, _ in seen)
    # Reading the rows back gives each stream's prefix, untouched.
    assert torch.equal(
        torch.cat([x for x, _ in seen], 1), torch.from_numpy(streams[:, : len(seen) * 10])
    )


def test_too_short_split_is_a_sentence() -> None:
    with pytest.raises(UserError) as e:
        StreamBatches(torch.arange(87), batch_size=8, seq_len=10)
    assert str(e.value) == (
        "the train split has 87 tokens, fewer than one batch needs (8 streams × 11 = 88); "
        "lower data.batch_size or data.seq_len, or use a longer corpus"
    )
    with pytest.raises(UserError, match="the validation split has 50 tokens"):
        StreamBatches(torch.arange(50), batch_size=8, seq_len=10, split="validation")


def test_the_smallest_corpus_and_settings_that_make_a_batch() -> None:
    """8 × (10 + 1) tokens are one batch: T inputs plus the last target per stream."""
    assert len(StreamBatches(torch.arange(88), batch_size=8, seq_len=10)) == 1
    assert len(StreamBatches(torch.arange(10 * 31), batch_size=10, seq_len=10)) == 3
    assert len(StreamBatches(torch.arange(2), batch_size=1, seq_len=1)) == 1
    for b, t in ((0, 10), (4, 0), (-1, 10)):
        with pytest.raises(UserError) as e:
            StreamBatches(torch.arange(1000), batch_size=b, seq_len=t)
        assert str(e.value) == (f"data.batch_size and data.seq_len must be positive, got {b}, {t}")


def test_batches_are_indexed_within_the_epoch_only() -> None:
    batches = StreamBatches(torch.arange(100), batch_size=2, seq_len=7)
    assert len(batches) == 7
    batches[6]
    for k in (7, -1):
        with pytest.raises(IndexError, match=str(k)):
            batches[k]


def test_random_windows_are_real_windows_drawn_per_epoch() -> None:
    ids = torch.arange(5000)
    loader = RandomWindows(ids, batch_size=8, seq_len=16, seed=3)
    assert len(loader) == len(StreamBatches(ids, 8, 16))
    first = [x.clone() for x, _ in loader]
    for x, y in zip(first, (y for _, y in loader), strict=True):
        assert torch.equal(x[:, 1:] - x[:, :-1], torch.ones(8, 15, dtype=torch.long))
        assert torch.equal(y, x + 1)
    assert all(torch.equal(a, b) for a, (b, _) in zip(first, loader, strict=True))  # same epoch
    loader.sampler.set_epoch(1)
    assert not torch.equal(first[0], next(iter(loader))[0])


def test_unshuffled_windows_are_the_stream_chunks() -> None:
    ids = torch.arange(2000)
    ordered = RandomWindows(ids, batch_size=4, seq_len=10, seed=0, shuffle=False)
    for (a, ya), (b, yb) in zip(ordered, StreamBatches(ids, 4, 10), strict=True):
        assert torch.equal(a, b) and torch.equal(ya, yb)


def test_both_loaders_resume_at_the_saved_position() -> None:
    ids = torch.arange(3000)
    for make in (lambda: StreamBatches(ids, 4, 10), lambda: RandomWindows(ids, 4, 10, seed=1)):
        full = [x for x, _ in make()]
        loader = make()
        it = iter(loader)
        for _ in range(3):
            next(it)
        resumed = make()
        resumed.load_state_dict(loader.state_dict())
        rest = [x for x, _ in resumed]
        assert len(rest) == len(full) - 3
        assert all(torch.equal(a, b) for a, b in zip(rest, full[3:], strict=True))
        # A position saved at the end of an epoch starts the next epoch from its beginning.
        done = make()
        done.load_state_dict({"position": len(full)})
        assert len(list(done)) == len(full)


@pytest.mark.parametrize("world_size", [2, 4])
def test_ranks_own_whole_streams_whose_union_is_the_single_process_layout(world_size) -> None:
    ids = torch.arange(1000)
    whole = list(StreamBatches(ids, batch_size=8, seq_len=10))
    per_rank = [
        list(StreamBatches(ids, batch_size=8, seq_len=10, rank=r, world_size=world_size))
        for r in range(world_size)
    ]
    assert {len(batches) for batches in per_rank} == {len(whole)}  # same number of batches
    for k, (x, y) in enumerate(whole):
        # Rank r's rows are a contiguous block; stacked in rank order they are the batch.
        assert torch.equal(torch.cat([batches[k][0] for batches in per_rank]), x)
        assert torch.equal(torch.cat([batches[k][1] for batches in per_rank]), y)


@pytest.mark.parametrize("shuffle", [True, False])
def test_random_windows_are_split_by_rank_too(shuffle) -> None:
    ids = torch.arange(1000)
    whole = list(RandomWindows(ids, 8, 10, seed=3, shuffle=shuffle))
    halves = [list(RandomWindows(ids, 8, 10, 3, shuffle, rank=r, world_size=2)) for r in (0, 1)]
    for k, (x, _) in enumerate(whole):
        assert torch.equal(torch.cat([halves[0][k][0], halves[1][k][0]]), x)


def test_a_batch_the_processes_cannot_share_evenly_is_a_sentence() -> None:
    with pytest.raises(UserError) as e:
        StreamBatches(torch.arange(1000), batch_size=8, seq_len=10, rank=0, world_size=3)
    assert str(e.value) == (
        "data.batch_size=8 must be divisible by the 3 training processes (trainer.devices × "
        "trainer.num_nodes), so that every process owns as many whole streams"
    )


def test_every_window_start_can_be_drawn() -> None:
    """Windows start anywhere from the first token to the last that leaves T + 1."""
    ids = torch.arange(13)  # T = 10: starts 0, 1, 2
    loader = RandomWindows(ids, batch_size=1, seq_len=10, seed=0)
    starts = set()
    for epoch in range(40):
        loader.set_epoch(epoch)
        starts |= {int(x[0, 0]) for x, _ in loader}
    assert starts == {0, 1, 2}


def test_each_stream_is_warmed_up_on_the_text_before_it() -> None:
    """Row i's warm-up is the ``warmup`` tokens before its stream starts: the split's own
    text, and for the first stream the text the split follows (``before``)."""
    ids, before = torch.arange(100), torch.arange(1000, 1010)
    batches = StreamBatches(ids, batch_size=4, seq_len=5, warmup=3, before=before)
    expected = torch.tensor([[1007, 1008, 1009], [22, 23, 24], [47, 48, 49], [72, 73, 74]])
    assert batches.warmup.dtype == torch.long and torch.equal(batches.warmup, expected)
    # A process of two owns the last two streams, and their warm-up.
    second = StreamBatches(ids, 4, 5, rank=1, world_size=2, warmup=3, before=before)
    assert torch.equal(second.warmup, expected[2:])
    assert StreamBatches(ids, 4, 5).warmup is None  # no warm-up: zeros
    with pytest.raises(UserError, match=r"eval.warmup=3 needs 3 tokens .* the first has 0"):
        StreamBatches(ids, 4, 5, warmup=3)  # nothing before the first stream
    one = StreamBatches(ids, 4, 5, warmup=1, before=before)
    assert torch.equal(one.warmup, expected[:, -1:])
    with pytest.raises(UserError, match=r"the first has 2"):
        StreamBatches(ids, 4, 5, warmup=3, before=before[:2])


@pytest.mark.parametrize("length,batch", [(103, 4), (101, 4), (100, 1), (104, 4), (96, 1)])
def test_complete_streams_score_every_token(length: int, batch: int) -> None:
    """With ``complete`` a last, shorter chunk scores the rest of each stream: the targets
    cover every token of every stream but its first; without it, whole chunks only."""
    ids = torch.arange(length)
    complete = StreamBatches(ids, batch, 5, complete=True)
    per_stream = length // batch
    targets = torch.cat([y for _, y in complete], 1)
    assert torch.equal(targets, torch.from_numpy(as_streams(ids, batch)[:, 1:]))
    assert len(complete) == -(-(per_stream - 1) // 5)  # ceil: the partial chunk counts
    whole = StreamBatches(ids, batch, 5)
    assert len(whole) == (per_stream - 1) // 5
    assert all(x.shape == (batch, 5) for x, _ in whole)
    with pytest.raises(IndexError):
        complete[len(complete)]
