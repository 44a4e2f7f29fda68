"""Means, spreads and intervals over seeds, against values worked out by hand and tables."""

from __future__ import annotations

import math

import pytest

from gm.intervals import difference, paired, summarize, t_cdf, t_quantile

# Student's t, 97.5 % quantiles (any statistics table): the 95 % two-sided interval.
T_975 = {1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 9: 2.2622, 29: 2.0452, 120: 1.9799}


@pytest.mark.parametrize("df", sorted(T_975))
def test_t_quantiles_match_the_table(df: int) -> None:
    assert t_quantile(0.975, df) == pytest.approx(T_975[df], abs=1e-4)
    assert t_quantile(0.025, df) == pytest.approx(-T_975[df], abs=1e-4)  # symmetric
    assert t_cdf(T_975[df], df) == pytest.approx(0.975, abs=1e-5)


def test_t_tends_to_the_normal_and_takes_fractional_degrees() -> None:
    assert t_quantile(0.975, math.inf) == pytest.approx(1.95996, abs=1e-5)
    assert t_quantile(0.5, 3) == pytest.approx(0.0, abs=1e-12)
    # Welch's degrees of freedom are fractional: between its neighbours.
    assert T_975[3] < t_quantile(0.975, 2.5) < T_975[2]
    assert t_cdf(0.0, 7) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        t_quantile(1.0, 3)


def test_summary_of_four_values_by_hand() -> None:
    s = summarize([1.0, 2.0, 3.0, 4.0])
    # mean 2.5; sd = sqrt(5 / 3) = 1.29099; half-width = 3.18245 * 1.29099 / 2 = 2.05426
    assert (s.n, s.mean) == (4, 2.5)
    assert s.sd == pytest.approx(math.sqrt(5 / 3))
    assert s.half_width == pytest.approx(3.182446 * math.sqrt(5 / 3) / 2, rel=1e-6)
    assert (s.low, s.high) == pytest.approx((2.5 - 2.054261, 2.5 + 2.054261), abs=1e-5)
    assert s.excludes(0.0) and not s.excludes(2.0)


def test_one_value_has_no_spread_and_bad_values_are_refused() -> None:
    s = summarize([1.7])
    assert (s.n, s.mean, s.sd, s.low, s.high, s.half_width) == (1, 1.7, None, None, None, None)
    assert not s.excludes(0.0)  # no interval: nothing is decided
    with pytest.raises(ValueError):
        summarize([])
    with pytest.raises(ValueError):
        summarize([1.0, math.nan])


def test_welch_difference_by_hand() -> None:
    # means 2 and 13/3; variances 1 and 19/3; se^2 = 1/3 + 19/9 = 22/9
    # df = (22/9)^2 / ((1/3)^2 / 2 + (19/9)^2 / 2) = 2.61622
    d = difference([1.0, 2.0, 3.0], [2.0, 4.0, 7.0])
    assert d.estimate == pytest.approx(2 - 13 / 3)
    assert d.df == pytest.approx((22 / 9) ** 2 / ((1 / 3) ** 2 / 2 + (19 / 9) ** 2 / 2))
    half = t_quantile(0.975, d.df) * math.sqrt(22 / 9)
    assert (d.low, d.high) == pytest.approx((d.estimate - half, d.estimate + half))
    assert (d.low, d.high) == pytest.approx((-7.748523, 3.081856), abs=1e-5)
    assert not d.decided and d.n == (3, 3)
    assert difference([1.0, 1.1, 0.9], [3.0, 3.1, 2.9]).decided


def test_a_difference_needs_two_values_a_side_and_is_exact_without_spread() -> None:
    with pytest.raises(ValueError):
        difference([1.0], [2.0, 3.0])
    d = difference([1.5, 1.5], [1.0, 1.0])  # a count-based model: every seed the same
    assert (d.estimate, d.low, d.high, d.decided) == (0.5, 0.5, 0.5, True)


def test_paired_differences_are_taken_run_by_run() -> None:
    chunk, stateful = [3.0, 5.0, 4.0], [1.0, 2.0, 2.0]
    s = paired(chunk, stateful)  # differences 2, 3, 2
    assert s.mean == pytest.approx(7 / 3)
    assert s.sd == pytest.approx(math.sqrt(1 / 3))
    assert s.half_width == pytest.approx(4.302653 * math.sqrt(1 / 3) / math.sqrt(3), rel=1e-6)
    # The pairing removes what a seed moves in both: unpaired, the same numbers decide less.
    assert difference(chunk, stateful).high - difference(chunk, stateful).low > s.high - s.low
    with pytest.raises(ValueError):
        paired([1.0, 2.0], [1.0])
