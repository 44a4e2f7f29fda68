"""Token choice: greedy, truncation, and refused options."""

from __future__ import annotations

import pytest
import torch

from gm.errors import UserError
from gm.generation.sampling import SamplingOptions, sample_next

LOGITS = torch.tensor([[0.0, 3.0, 1.0, 2.9, -1.0]])


def draws(options: SamplingOptions, n: int = 300) -> set[int]:
    g = torch.Generator().manual_seed(0)
    return {int(sample_next(LOGITS, options, g)) for _ in range(n)}


def test_temperature_zero_is_argmax() -> None:
    assert draws(SamplingOptions(temperature=0.0)) == {1}


@pytest.mark.parametrize("temperature", [0.5, 0.8])
def test_temperature_sharpens_the_distribution_as_p_to_the_1_over_t(temperature: float) -> None:
    """Frequencies over 20,000 draws match softmax(logits / T) within 0.015; at T = 0.5 the
    untempered softmax would be off by 0.15, so dropping the division fails."""
    logits = torch.tensor([[0.5, 0.3, 0.2]]).log()
    g = torch.Generator().manual_seed(0)
    n = 20_000
    drawn = sample_next(logits.expand(n, 3), SamplingOptions(temperature), g)
    counts = torch.bincount(drawn, minlength=3)
    expected = (logits / temperature).softmax(-1)[0]
    assert (counts / n - expected).abs().max() < 0.015


def test_top_k_keeps_the_k_most_likely() -> None:
    assert draws(SamplingOptions(top_k=2)) == {1, 3}
    assert draws(SamplingOptions(top_k=1)) == {1}


def test_top_p_keeps_the_smallest_set_with_that_mass() -> None:
    p = LOGITS.softmax(-1)[0]
    assert p[1] < 0.5 < p[1] + p[3]
    assert draws(SamplingOptions(top_p=0.5)) == {1, 3}
    assert draws(SamplingOptions(top_p=1e-6)) == {1}
    assert draws(SamplingOptions()) == {0, 1, 2, 3, 4}


@pytest.mark.parametrize(
    "options,needle",
    [
        (SamplingOptions(temperature=-1), "temperature"),
        (SamplingOptions(temperature=float("nan")), "temperature"),
        (SamplingOptions(top_k=0), "top_k"),
        (SamplingOptions(top_k=6), "top_k"),
        (SamplingOptions(top_p=0.0), "top_p"),
        (SamplingOptions(top_p=1.5), "top_p"),
    ],
)
def test_out_of_range_options(options: SamplingOptions, needle: str) -> None:
    with pytest.raises(UserError, match=needle):
        options.check(vocab_size=5)


@pytest.mark.parametrize(
    "options",
    [
        SamplingOptions(),
        SamplingOptions(temperature=0.0),
        SamplingOptions(top_k=1),
        SamplingOptions(top_k=5),
        SamplingOptions(top_p=1e-6),
        SamplingOptions(top_p=1.0),
    ],
)
def test_options_on_the_boundaries_are_accepted(options: SamplingOptions) -> None:
    options.check(vocab_size=5)
