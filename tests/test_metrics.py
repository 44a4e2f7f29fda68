"""Metrics are exact ratios of summed nats, tokens and characters."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from gm.metrics import LanguageModelMetrics, overfitting_onset
from gm.training.schedule import warmup_cosine


def test_loss_ppl_bpc_from_sums() -> None:
    m = LanguageModelMetrics()
    m.update(torch.full((1, 5), 2.0), 5)
    m.update(torch.full((3, 5), 2.0), 45)  # a subword batch: 3 characters per token
    out = m.compute()
    assert out["loss"].item() == pytest.approx(40 / 20)
    assert out["ppl"].item() == pytest.approx(math.exp(2.0), rel=1e-6)
    assert out["bpc"].item() == pytest.approx(40 / (50 * math.log(2)), rel=1e-6)
    assert m.loss_by_position() == pytest.approx([2.0])  # no positions unless asked


def test_large_losses_do_not_overflow() -> None:
    m = LanguageModelMetrics()
    for _ in range(1000):
        m.update(torch.full((10, 100), 5.0), 1000)
    assert math.isfinite(m.compute()["ppl"].item())


def test_loss_by_position() -> None:
    m = LanguageModelMetrics(seq_len=3)
    m.update(torch.tensor([[3.0, 2.0, 1.0], [5.0, 2.0, 1.0]]), 6)
    assert m.loss_by_position() == pytest.approx([4.0, 2.0, 1.0, 14 / 6])
    m.update(torch.tensor([[1.0, 2.0, 7.0]]), 3)  # positions accumulate over batches
    assert m.loss_by_position() == pytest.approx([3.0, 2.0, 3.0, 24 / 9])


def test_one_token_and_one_character_are_scored_exactly() -> None:
    """The empty-metric guards (clamp to 1) must not touch a metric of one token."""
    m = LanguageModelMetrics(seq_len=1)
    m.update(torch.tensor([[1.5]]), 1)
    out = m.compute()
    assert out["loss"].item() == pytest.approx(1.5)
    assert out["bpc"].item() == pytest.approx(1.5 / math.log(2))
    assert m.loss_by_position() == pytest.approx([1.5, 1.5])


def test_the_sums_add_up_across_processes() -> None:
    """Under DDP every state is summed over the processes: two processes that saw the same
    batch give twice the counts and the same ratios."""
    m = LanguageModelMetrics(seq_len=2)
    m.update(torch.tensor([[1.0, 3.0]]), 4)
    m.sync(dist_sync_fn=lambda t, group=None: [t, t.clone()], distributed_available=lambda: True)
    assert (m.nats.item(), m.tokens.item(), m.chars.item()) == (8.0, 4, 8)
    assert m.position_nats.tolist() == [2.0, 6.0] and m.position_tokens.tolist() == [2, 2]


def test_sums_keep_their_dtypes_under_a_precision_change() -> None:
    """Lightning's bf16-true calls ``.to(bfloat16)`` on the whole task: the sums must stay
    float64 and integer (torchmetrics alone would make them bf16)."""
    m = LanguageModelMetrics(seq_len=2).to(torch.bfloat16)
    assert (m.nats.dtype, m.tokens.dtype, m.position_nats.dtype) == (
        torch.float64,
        torch.int64,
        torch.float64,
    )
    m.update(torch.full((1, 2), 1.001), 2)
    assert m.compute()["loss"].item() == pytest.approx(1.001, rel=1e-6)
    counts = (m.tokens, m.chars, m.position_tokens)
    assert all(c.dtype == torch.int64 for c in counts)  # counts stay exact integers


def test_the_sums_follow_the_module_to_its_device() -> None:
    """Moved with the task (to a GPU in training; to ``meta`` here, any machine), the sums
    and the values they reset to go too."""
    m = LanguageModelMetrics(seq_len=2).to("meta")
    m.reset()
    assert {getattr(m, k).device.type for k in m._defaults} == {"meta"}


def test_warmup_then_cosine() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = warmup_cosine(opt, total_steps=110, warmup_steps=10, min_lr_ratio=0.1)
    lrs = []
    for _ in range(110):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0)
    assert lrs[60] == pytest.approx(0.1 + 0.9 * 0.5, abs=1e-6)  # half way down the cosine
    assert all(a >= b for a, b in itertools.pairwise(lrs[10:]))
    assert lrs[-1] > 0.1 and lrs[-1] == pytest.approx(0.1, abs=1e-3)


def _curve(val: list[float], train: list[float]) -> list[dict[str, float]]:
    return [
        {"epoch": e, "step": 10 * (e + 1), "val/loss": v, "train/loss": t}
        for e, (v, t) in enumerate(zip(val, train, strict=True))
    ]


def test_no_onset_while_validation_improves() -> None:
    assert overfitting_onset(_curve([3.0, 2.5, 2.2, 2.1], [3.1, 2.6, 2.2, 2.0])) is None
    assert overfitting_onset([]) is None


def test_onset_is_the_minimum_before_validation_rises_while_training_falls() -> None:
    onset = overfitting_onset(_curve([3.0, 2.4, 2.2, 2.3, 2.5], [3.1, 2.5, 2.1, 1.9, 1.7]))
    assert onset == {"epoch": 2, "step": 30, "val/loss": 2.2, "rise": pytest.approx(0.3)}


def test_a_rise_with_training_loss_rising_too_is_not_overfitting() -> None:
    """Divergence (both losses up) is not overfitting."""
    assert overfitting_onset(_curve([3.0, 2.4, 2.6], [3.1, 2.5, 2.7])) is None


def test_only_validations_after_the_minimum_count() -> None:
    """An earlier, worse validation with a lower training loss (training rose, then
    validation improved) is not overfitting: only what follows the minimum counts."""
    assert overfitting_onset(_curve([2.0, 1.5, 1.6], [1.0, 1.2, 1.3])) is None


def test_a_rise_right_after_the_minimum_is_the_onset() -> None:
    onset = overfitting_onset(_curve([2.0, 1.5, 1.6], [2.0, 1.5, 1.4]))
    assert onset is not None and onset["epoch"] == 1


def test_ties_are_not_a_rise_nor_a_fall() -> None:
    """Validation equal to the minimum is no rise; training equal to it is no fall."""
    assert overfitting_onset(_curve([2.0, 1.5, 1.5], [2.0, 1.5, 1.4])) is None
    assert overfitting_onset(_curve([2.0, 1.5, 1.6], [2.0, 1.5, 1.5])) is None
