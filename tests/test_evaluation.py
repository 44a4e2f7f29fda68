"""The three inference modes compute what their names promise, and bpc counts characters.

Each test here was checked against the broken code it guards: `evaluate()` not carrying
the state between batches, the stateless mode computing chunk mode, bpc counting the
input tokens' characters instead of the targets'.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from gm.data.streams import StreamBatches
from gm.evaluation import (
    eval_modes,
    evaluate,
    metric_key,
    mode_nll,
    scores,
    warmed_up,
)
from gm.models import BengioMLP, KneserNeyLM, RecurrentLM
from gm.modes import MODES

V, B, T, K = 12, 3, 8, 4


def models():
    # Built at collection time: seeded here, so they do not depend on what ran before.
    with torch.random.fork_rng():
        torch.manual_seed(0)
        ngram = KneserNeyLM(V, order=3)
        ngram.fit(torch.randint(0, V, (500,)))
        gru = RecurrentLM(V, "gru", 8, 16, 2).eval()
        with torch.no_grad():
            # A freshly initialised GRU barely uses its state (its three losses can agree to
            # 1e-6); larger weights make state matter, so the modes tell apart.
            for p in gru.parameters():
                p.mul_(4)
        return [gru, BengioMLP(V, context=4).eval(), ngram]


def batches_of(x: torch.Tensor, y: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``K`` consecutive chunks of ``T`` tokens of the same ``B`` streams."""
    return list(zip(x.split(T, 1), y.split(T, 1), strict=True))


@pytest.mark.parametrize("model", models(), ids=["gru", "mlp", "ngram"])
def test_each_mode_equals_its_definition(model) -> None:
    x, y = torch.randint(0, V, (B, K * T)), torch.randint(0, V, (B, K * T))
    scores = evaluate(model, batches_of(x, y), torch.ones(V, dtype=torch.long), T)

    def nll(logits: torch.Tensor, targets: torch.Tensor) -> float:
        return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten()).item()

    with torch.no_grad():
        # stateful: K batches carrying the state = one forward over the whole stream
        stateful = nll(model(x)[0], y)
        # chunk: every chunk from a zero state
        chunk = nll(torch.cat([model(c)[0] for c in x.split(T, 1)], 1), y)
        # stateless: every token alone from a zero state
        alone = torch.cat([model(x[:, t : t + 1])[0] for t in range(K * T)], 1)
        stateless = nll(alone, y)
    for mode, expected in zip(MODES, (stateful, chunk, stateless), strict=True):
        assert scores[mode].compute()["loss"].item() == pytest.approx(expected, rel=1e-5), mode
    # Not vacuous: the three definitions differ by several times the tolerance above.
    for a, b in ((stateful, chunk), (chunk, stateless), (stateful, stateless)):
        assert abs(a - b) > 5e-5 * max(a, b)


@pytest.mark.parametrize("model", models(), ids=["gru", "mlp", "ngram"])
def test_one_chunk_from_zero_state_is_the_same_in_stateful_and_chunk(model) -> None:
    x, y = torch.randint(0, V, (B, T)), torch.randint(0, V, (B, T))
    stateful, _ = mode_nll(model, x, y, "stateful", None)
    chunk, _ = mode_nll(model, x, y, "chunk")
    torch.testing.assert_close(stateful, chunk)


def test_an_unknown_mode_names_the_modes() -> None:
    x = torch.randint(0, V, (B, T))
    with pytest.raises(ValueError, match=r"unknown mode 'carried'.*stateful"):
        mode_nll(models()[0], x, x, "carried")


def test_each_mode_is_logged_under_its_own_tag() -> None:
    # val/loss is the stateful loss, as the checkpoint monitor and early stopping read it.
    assert [metric_key("bpc", m) for m in MODES] == [
        "val/bpc",
        "val/bpc_chunk",
        "val/bpc_stateless",
    ]
    assert metric_key("loss", "stateful") == "val/loss"


def test_bpc_counts_the_characters_of_the_targets() -> None:
    """A subword vocabulary: each token decodes to 1–4 characters."""
    model = models()[0]
    x, y = torch.randint(0, V, (B, K * T)), torch.randint(0, V, (B, K * T))
    char_lengths = torch.randint(1, 5, (V,))
    assert char_lengths[x].sum() != char_lengths[y].sum()  # the test can tell them apart
    scores = evaluate(model, batches_of(x, y), char_lengths, T)
    for mode in MODES:
        out = scores[mode].compute()
        nats = out["loss"].item() * y.numel()
        expected = nats / (char_lengths[y].sum().item() * math.log(2))
        assert out["bpc"].item() == pytest.approx(expected, rel=1e-5), mode


def test_modes_order_and_loss_by_position_on_a_sequence_that_needs_memory() -> None:
    """A period-24 sequence over 12 symbols: each symbol has two successors, told apart
    by the symbol before it. A trigram knows the sequence exactly when it sees two tokens
    of context; alone, a token leaves two choices."""
    order = torch.randperm(V)
    period = torch.cat([order, order.roll(5)])  # each symbol followed by two different ones
    ids = period.repeat(40)
    model = KneserNeyLM(V, order=3)
    model.fit(ids)
    scores = evaluate(model, StreamBatches(ids, 4, 6), torch.ones(V, dtype=torch.long), 6)
    loss = {m: scores[m].compute()["loss"].item() for m in MODES}
    assert loss["stateful"] + 0.05 < loss["chunk"] < loss["stateless"] - 0.1, loss
    chunk = scores["chunk"].loss_by_position()
    stateless = scores["stateless"].loss_by_position()
    stateful = scores["stateful"].loss_by_position()
    assert len(chunk) == 6 + 1 and chunk[-1] == pytest.approx(loss["chunk"])
    # A chunk's first token has no context (as stateless); from its third on, full context.
    assert chunk[0] == pytest.approx(stateless[0], abs=1e-4)
    assert chunk[2:6] == pytest.approx(stateful[2:6], abs=1e-4)


@pytest.mark.parametrize("length", [2 * T, T // 2, 3, 3 * T + 5])
@pytest.mark.parametrize("model", models(), ids=["gru", "mlp", "ngram"])
def test_a_chunk_mode_at_any_length_is_windows_from_a_zero_state(model, length) -> None:
    """chunkN over batches of T tokens = the stream cut into windows of N (the last one
    shorter), each from a zero state: across a batch cut when N > T, inside a batch when
    N < T, and where the windows and the chunks never line up."""
    x, y = torch.randint(0, V, (B, K * T)), torch.randint(0, V, (B, K * T))
    mode = eval_modes([length], T)[2]
    assert mode == f"chunk{length}"
    # One chunk alone starts a window (its offset, when not given, is the stream's start).
    with torch.no_grad():
        alone, _ = mode_nll(model, x[:, :T], y[:, :T], mode)
        first = torch.cat([model(w)[0] for w in x[:, :T].split(length, 1)], 1)
    first = F.cross_entropy(first.flatten(0, 1).float(), y[:, :T].flatten(), reduction="none")
    torch.testing.assert_close(alone.flatten(), first)
    scores = evaluate(model, batches_of(x, y), torch.ones(V, dtype=torch.long), T, [mode])
    with torch.no_grad():
        windows = torch.cat([model(w)[0] for w in x.split(length, 1)], 1)
    expected = F.cross_entropy(windows.flatten(0, 1).float(), y.flatten()).item()
    assert scores[mode].compute()["loss"].item() == pytest.approx(expected, rel=1e-5)


def test_extra_chunk_lengths_become_modes_of_their_own() -> None:
    assert eval_modes([], 128) == list(MODES)
    assert eval_modes([128, 256, 256, 64], 128) == [
        "stateful", "chunk", "chunk256", "chunk64", "stateless",
    ]  # fmt: skip
    assert metric_key("bpc", "chunk256") == "val/bpc_chunk256"


@pytest.mark.slow
def test_the_warmed_up_stateful_score_does_not_depend_on_the_batch(tmp_path, shakespeare) -> None:
    """A GRU trained for 200 steps on Tiny Shakespeare, scored on 32,768 validation tokens
    cut into 1, 8 and 64 streams. With eval.warmup (every stream read in after the 256
    tokens before it, every token scored) the three stateful losses agree within 1e-4 of
    each other (measured: 6e-5); from zeros they spread over 1.3e-3."""
    import numpy as np

    from gm.data.datamodule import TextDataModule
    from gm.state import detach_state

    torch.manual_seed(0)
    dm = TextDataModule(data_dir=tmp_path, path=str(shakespeare), batch_size=32, seq_len=64)
    tok = dm.prepare()
    model = RecurrentLM(tok.vocab_size, "gru", 32, 128, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    state = None
    for _, (x, y) in zip(range(200), StreamBatches(dm.train_ids, 32, 64), strict=False):
        logits, state = model(x, state)
        state = detach_state(state)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    val, ones = np.asarray(dm.val_ids)[:32768], torch.ones(tok.vocab_size, dtype=torch.long)

    def stateful(batch: int, warmup: int) -> float:
        batches = StreamBatches(
            val, batch, 64, warmup=warmup, before=dm.train_ids, complete=warmup > 0
        )
        return evaluate(model, batches, ones, 64, ["stateful"])["stateful"].compute()["loss"].item()

    warm = [stateful(b, 256) for b in (1, 8, 64)]
    cold = [stateful(b, 0) for b in (1, 8, 64)]
    assert max(warm) - min(warm) < 1e-4 * min(warm), warm
    assert max(cold) - min(cold) > 5e-4 * min(cold), cold  # the protocol is what changes it


@pytest.mark.parametrize("model", models(), ids=["gru", "mlp", "ngram"])
def test_the_warmed_up_stateful_mode_reads_the_text_before_each_stream_first(model) -> None:
    """With a warm-up of W tokens and complete streams, the stateful score is each stream's
    text predicted after the W tokens before it (the ``before`` text for the first),
    every target scored once: one forward from zeros over the warm-up and the stream."""
    W, L = 5, K * T + 3  # a last, shorter chunk of 2 inputs
    ids, before = torch.randint(0, V, (B * L,)), torch.randint(0, V, (W,))
    batches = StreamBatches(ids, B, T, warmup=W, before=before, complete=True)
    metric = evaluate(model, batches, torch.ones(V, dtype=torch.long), T, ["stateful"])
    metric = metric["stateful"]
    text = torch.cat([before, ids])
    with torch.no_grad():
        total = 0.0
        for i in range(B):
            start = W + i * L  # where stream i starts in `text`
            context = text[start - W : start + L]
            logits = model(context[None, :-1])[0][0, W:]
            total += F.cross_entropy(logits.float(), context[W + 1 :], reduction="sum").item()
    assert metric.tokens.item() == B * (L - 1)  # every target of every stream, once
    assert metric.compute()["loss"].item() == pytest.approx(total / (B * (L - 1)), rel=1e-5)
    assert warmed_up(model, None) is None  # no warm-up: the zero state


def test_scores_are_the_evaluation_in_plain_numbers() -> None:
    model = models()[0]
    x, y = torch.randint(0, V, (B, K * T)), torch.randint(0, V, (B, K * T))
    lengths = torch.randint(1, 4, (V,))
    modes = eval_modes([2 * T], T)
    got = scores(model, batches_of(x, y), lengths, T, modes)
    metrics = evaluate(model, batches_of(x, y), lengths, T, modes)
    assert list(got) == modes
    for mode in modes:
        expected = {k: v.item() for k, v in metrics[mode].compute().items()}
        assert got[mode] == pytest.approx(expected) and set(got[mode]) == {"loss", "ppl", "bpc"}
        assert all(isinstance(v, float) for v in got[mode].values())
    assert list(scores(model, batches_of(x, y), lengths, T)) == list(MODES)  # the default
