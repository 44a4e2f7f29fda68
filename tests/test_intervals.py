"""Means, spreads and intervals over seeds, against values worked out by hand and tables."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from gm.intervals import Summary, difference, paired, summarize, t_cdf, t_quantile

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
    with pytest.raises(ValueError, match=r"p=1\.0, df=3"):
        t_quantile(1.0, 3)
    with pytest.raises(ValueError, match=r"p=0\.0, df=3"):  # refused itself, not by symmetry
        t_quantile(0.0, 3)
    with pytest.raises(ValueError, match="df=0"):
        t_quantile(0.975, 0)


def _t_cdf_closed_form(t: float, df: int) -> float:
    """Student's t CDF in closed form for 1–4 degrees of freedom (any statistics text)."""
    if df == 1:
        return 0.5 + math.atan(t) / math.pi
    if df == 2:
        return 0.5 + t / (2 * math.sqrt(2 + t * t))
    if df == 3:
        u = t / math.sqrt(3)
        return 0.5 + (u / (1 + u * u) + math.atan(u)) / math.pi
    w = t / math.sqrt(1 + t * t / 4)  # df == 4
    return 0.5 + 3 / 8 * w * (1 - t * t / (12 * (1 + t * t / 4)))


@pytest.mark.parametrize("df", [1, 2, 3, 4])
def test_t_cdf_matches_its_closed_forms_to_twelve_digits(df: int) -> None:
    # Small |t| takes the other branch of the incomplete beta's continued fraction.
    for t in (-30.0, -3.0, -1.5, -0.5, -0.1, 0.05, 0.3, 0.9, 1.0, 1.2, 2.0, 4.0, 12.0, 100.0):
        assert t_cdf(t, df) == pytest.approx(_t_cdf_closed_form(t, df), abs=1e-12), t
    assert (t_cdf(math.inf, df), t_cdf(-math.inf, df)) == (1.0, 0.0)


def test_t_cdf_with_many_degrees_of_freedom_is_the_normal() -> None:
    # Welch's df grows without bound when one group barely varies.
    normal = NormalDist()
    for t in (0.01, 0.3, 1.0, 1.9, 2.5, 5.0):
        assert t_cdf(t, 1e6) == pytest.approx(normal.cdf(t), abs=1e-6), t


def test_summary_of_four_values_by_hand() -> None:
    s = summarize([1.0, 2.0, 3.0, 4.0])
    # mean 2.5; sd = sqrt(5 / 3) = 1.29099; half-width = 3.18245 * 1.29099 / 2 = 2.05426
    assert (s.n, s.mean) == (4, 2.5)
    assert s.sd == pytest.approx(math.sqrt(5 / 3))
    assert s.half_width == pytest.approx(3.182446 * math.sqrt(5 / 3) / 2, rel=1e-6)
    assert (s.low, s.high) == pytest.approx((2.5 - 2.054261, 2.5 + 2.054261), abs=1e-5)
    assert s.excludes(0.0) and not s.excludes(2.0)
    assert summarize([0.9, 1.0, 1.1]).excludes()  # of 0 by default, though not of 1
    # An interval holds its ends: a value on either end is not excluded.
    edges = Summary(n=3, mean=1.0, sd=0.5, low=0.0, high=2.0)
    assert not edges.excludes(0.0) and not edges.excludes(2.0)
    assert edges.excludes(-1e-9) and edges.excludes(2.0 + 1e-9)


def test_one_value_has_no_spread_and_bad_values_are_refused() -> None:
    s = summarize([1.7])
    assert (s.n, s.mean, s.sd, s.low, s.high, s.half_width) == (1, 1.7, None, None, None, None)
    assert not s.excludes(0.0)  # no interval: nothing is decided
    with pytest.raises(ValueError, match=r"^summarize needs at least one value$"):
        summarize([])
    with pytest.raises(ValueError, match=r"finite values, not \[1\.0, nan\]"):
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
    # The other way round: the group whose variance is not 1 now comes first.
    swapped = difference([2.0, 4.0, 7.0], [1.0, 2.0, 3.0])
    assert (swapped.low, swapped.high) == pytest.approx((-3.081856, 7.748523), abs=1e-5)
    assert swapped.df == pytest.approx(d.df)


def test_a_difference_needs_two_values_a_side_and_is_exact_without_spread() -> None:
    with pytest.raises(ValueError, match=r"^difference needs at least two values in each group$"):
        difference([1.0], [2.0, 3.0])
    d = difference([1.5, 1.5], [1.0, 1.0])  # a count-based model: every seed the same
    assert (d.estimate, d.low, d.high, d.decided) == (0.5, 0.5, 0.5, True)
    assert (d.df, d.n) == (math.inf, (2, 2))


def test_paired_differences_are_taken_run_by_run() -> None:
    chunk, stateful = [3.0, 5.0, 4.0], [1.0, 2.0, 2.0]
    s = paired(chunk, stateful)  # differences 2, 3, 2
    assert s.mean == pytest.approx(7 / 3)
    assert s.sd == pytest.approx(math.sqrt(1 / 3))
    assert s.half_width == pytest.approx(4.302653 * math.sqrt(1 / 3) / math.sqrt(3), rel=1e-6)
    # The pairing removes what a seed moves in both: unpaired, the same numbers decide less.
    assert difference(chunk, stateful).high - difference(chunk, stateful).low > s.high - s.low
    # At another level: a narrower interval with the 95 % quantile of t with 2 df.
    at_90 = paired(chunk, stateful, level=0.90)
    assert at_90.half_width == pytest.approx(2.919986 * math.sqrt(1 / 3) / math.sqrt(3), rel=1e-6)
    with pytest.raises(ValueError, match=r"as many values in each \(2, 1\)"):
        paired([1.0, 2.0], [1.0])
