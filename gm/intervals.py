"""A score over seeds: its mean, spread and 95 % interval, and the difference of two.

A handful of runs that differ only by seed is a small sample, so every interval uses
Student's t distribution (n − 1 degrees of freedom) rather than the normal one: with 3 seeds
the 95 % half-width is 4.30 standard errors, not 1.96. Two groups trained apart are compared
with Welch's interval (no equal-variance assumption); two scores of the same runs (one
model in two inference modes) are compared run by run, as paired differences.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

LEVEL = 0.95  # the confidence level of every interval gm reports


@dataclass(frozen=True)
class Summary:
    """``n`` values as their mean, sample standard deviation and t-interval of the mean.

    With one value there is no spread to measure: ``sd``, ``low`` and ``high`` are None."""

    n: int
    mean: float
    sd: float | None
    low: float | None
    high: float | None

    @property
    def half_width(self) -> float | None:
        """Half the interval's width: the ``±`` of ``mean ± half_width``."""
        return None if self.high is None else self.high - self.mean

    def excludes(self, value: float = 0.0) -> bool:
        """Whether the interval lies wholly on one side of ``value`` (False without one)."""
        return self.low is not None and self.high is not None and not self.low <= value <= self.high


def summarize(values: Sequence[float], level: float = LEVEL) -> Summary:
    """The mean of ``values`` with its Student-t interval at ``level``."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("summarize needs at least one value")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"summarize takes finite values, not {values}")
    n, mean = len(values), math.fsum(values) / len(values)
    if n < 2:
        return Summary(n, mean, None, None, None)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    return Summary(n, mean, sd, mean - half, mean + half)


@dataclass(frozen=True)
class Difference:
    """``mean(a) − mean(b)`` of two groups with Welch's interval at ``LEVEL``."""

    estimate: float
    low: float
    high: float
    df: float  # Welch–Satterthwaite degrees of freedom (inf when neither group varies)
    n: tuple[int, int]

    @property
    def decided(self) -> bool:
        """Whether the interval excludes 0: the sign of the difference is settled."""
        return not self.low <= 0.0 <= self.high


def difference(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Difference:
    """``mean(a) − mean(b)`` for two independent groups (Welch's t-interval); each needs at
    least two values, since a group of one says nothing of its own spread."""
    sa, sb = summarize(a), summarize(b)  # only their means and spreads: any level
    if sa.sd is None or sb.sd is None:
        raise ValueError("difference needs at least two values in each group")
    va, vb = sa.sd**2 / sa.n, sb.sd**2 / sb.n
    estimate, se = sa.mean - sb.mean, math.sqrt(va + vb)
    if se == 0.0:  # neither group varies (a count-based model): the difference is exact
        return Difference(estimate, estimate, estimate, math.inf, (sa.n, sb.n))
    df = (va + vb) ** 2 / (va**2 / (sa.n - 1) + vb**2 / (sb.n - 1))
    half = t_quantile(0.5 + level / 2, df) * se
    return Difference(estimate, estimate - half, estimate + half, df, (sa.n, sb.n))


def paired(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Summary:
    """``a[i] − b[i]`` for each run ``i``, summarised: two scores of the same runs (the same
    weights in two inference modes), so that what the seeds share cancels out."""
    if len(a) != len(b):
        raise ValueError(f"paired differences need as many values in each ({len(a)}, {len(b)})")
    return summarize([x - y for x, y in zip(a, b, strict=True)], level)


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t distribution with ``df`` degrees of freedom."""
    if not 0.0 < p < 1.0 or not df > 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, not p={p}, df={df}")
    if math.isinf(df):
        return NormalDist().inv_cdf(p)
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        high *= 2.0
    for _ in range(200):  # bisection: the CDF is increasing, each step halves the bracket
        middle = (low + high) / 2
        if t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
        if high - low <= 1e-13 * high:
            break
    return (low + high) / 2


def t_cdf(t: float, df: float) -> float:
    """P(T ≤ t) for Student's t with ``df`` degrees of freedom (through the regularized
    incomplete beta function)."""
    tail = 0.5 * _incomplete_beta(df / 2, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), by its continued fraction."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    # The fraction converges fast below its mean; above it, I_x(a, b) = 1 − I_(1−x)(b, a).
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b), by the modified Lentz method."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    fraction = d
    for m in range(1, 300):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            fraction *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return fraction
