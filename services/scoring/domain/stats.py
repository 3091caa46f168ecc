"""Honest numbers over many answers: counts, scores, 95% intervals that do not collapse at small n or
at the boundaries, and the tests that say whether a change between two periods is real.

- Shares (CSAT and CES top box, star ratings, loyalty cells, response rates): the Wilson score
  interval.
- Net scores (NPS, NLS): the adjusted Wald interval of Rocks (2016, *The American Statistician*):
  add ¾ of an observation to the promoters and to the detractors (3 in all, the passives get 1½),
  then take the trinomial-variance interval around the adjusted net score, clipped to ±100.
- Differences between periods: a two-sided z-test with the pooled variance — trinomial for net
  scores, binomial (the two-proportion test) for shares. Significant means p < 0.05.

docs/scoring.md has the formulas and a worked example. ``Z_95`` is 1.96 throughout.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from services.scoring.domain.scores import NET_METRICS, SCALES, NpsScale, classify

Z_95 = 1.96
SIGNIFICANCE = 0.05

# Student's t, 97.5th percentile, by degrees of freedom (for the interval of a mean).
_T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
          2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
          2.052, 2.048, 2.045, 2.042)  # fmt: skip
_T_975_LARGE = ((40, 2.021), (60, 2.000), (120, 1.980))


@dataclass(frozen=True)
class Tally:
    """Counts of one metric over many answers: positive = promoters, neutral = passives,
    negative = detractors for NPS and NLS."""

    positive: int = 0
    neutral: int = 0
    negative: int = 0
    total: int = 0
    """Sum of the raw scores, for the mean."""
    total_sq: int = 0
    """Sum of the squared scores, for the spread of the mean."""

    @property
    def n(self) -> int:
        return self.positive + self.neutral + self.negative

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.positive + other.positive,
            self.neutral + other.neutral,
            self.negative + other.negative,
            self.total + other.total,
            self.total_sq + other.total_sq,
        )


_BUCKET = {"promoter": "positive", "passive": "neutral", "detractor": "negative"}


@cache
def _buckets(metric: str, nps_scale: NpsScale) -> dict[int, str]:
    """Return each score of ``metric``'s scale with its bucket (reports classify many histograms)."""
    low, high = SCALES[metric]
    return {
        score: _BUCKET.get(c, c)
        for score in range(low, high + 1)
        for c in [classify(metric, score, nps_scale=nps_scale)]
    }


def tally(histogram: Mapping[int, int], metric: str, *, nps_scale: NpsScale = "standard") -> Tally:
    """Return the counts of a {score: how many} histogram, classified on ``metric``'s scale."""
    counts = {"positive": 0, "neutral": 0, "negative": 0}
    total = total_sq = 0
    buckets = _buckets(metric, nps_scale)
    for score, count in histogram.items():
        if not count:
            continue
        bucket = buckets.get(score)
        if bucket is None:
            classify(metric, score, nps_scale=nps_scale)  # raises ScoreOutOfRange with the reason
        counts[bucket] += count  # type: ignore[index]
        total += score * count
        total_sq += score * score * count
    return Tally(total=total, total_sq=total_sq, **counts)


def net_score(promoters: int, detractors: int, n: int) -> float | None:
    """Return NPS (or NLS) = % promoters − % detractors, −100…+100; None without responses."""
    if n == 0:
        return None
    return (promoters - detractors) / n * 100


def net_score_margin_of_error(promoters: int, detractors: int, n: int) -> float | None:
    """Return the plain (Wald) 95% margin of a net score in points; None without responses.

    The net score is the mean of a variable that is +1 for a promoter, −1 for a detractor and 0
    otherwise; its variance is p + d − (p − d)². This margin is 0 whenever everyone agreed (n = 1,
    all promoters): reports use ``net_score_interval`` instead, which never collapses.
    """
    if n == 0:
        return None
    p, d = promoters / n, detractors / n
    variance = max(p + d - (p - d) ** 2, 0.0)
    return Z_95 * math.sqrt(variance / n) * 100


def net_score_interval(promoters: int, detractors: int, n: int) -> tuple[float, float] | None:
    """Return the 95% interval of a net score in points (adjusted Wald); None without responses."""
    if n == 0:
        return None
    n_adj = n + 3
    p, d = (promoters + 0.75) / n_adj, (detractors + 0.75) / n_adj
    centre = p - d
    half = Z_95 * math.sqrt((p + d - centre**2) / n_adj)
    return max(centre - half, -1.0) * 100, min(centre + half, 1.0) * 100


def wilson_interval(count: int, n: int) -> tuple[float, float] | None:
    """Return the Wilson 95% interval of ``count`` out of ``n`` in percent; None when n is 0."""
    if n == 0:
        return None
    z2 = Z_95 * Z_95
    p = count / n
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z_95 / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # At 0 and n the bound is exactly 0 or 1 (rounding would leave a hair's breadth).
    low = 0.0 if count == 0 else max(centre - half, 0.0)
    high = 1.0 if count == n else min(centre + half, 1.0)
    return low * 100, high * 100


def share_margin_of_error(count: int, n: int) -> float | None:
    """Return half the width of the Wilson interval of a share, in points; None when n is 0."""
    interval = wilson_interval(count, n)
    return None if interval is None else (interval[1] - interval[0]) / 2


def share_percent(count: int, n: int) -> float | None:
    """Return ``count`` as a percentage of ``n``; None when n is 0 (CSAT = share of 4–5)."""
    return None if n == 0 else count / n * 100


def mean(total: int, n: int) -> float | None:
    """Return the mean score; None when n is 0."""
    return None if n == 0 else total / n


def t_975(df: int) -> float:
    """Return Student's t at 97.5% for ``df`` degrees of freedom (a table; the next smaller df between rows)."""
    if df <= len(_T_975):
        return _T_975[df - 1]
    value = _T_975[-1]
    for at_least, t in _T_975_LARGE:
        if df >= at_least:
            value = t
    return value if df < 1000 else Z_95


def mean_interval(counts: Tally) -> tuple[float, float] | None:
    """Return the t-interval of the mean score; None below two answers (no spread to measure)."""
    n = counts.n
    if n < 2:
        return None
    m = counts.total / n
    variance = max((counts.total_sq - n * m * m) / (n - 1), 0.0)
    half = t_975(n - 1) * math.sqrt(variance / n)
    return m - half, m + half


@dataclass(frozen=True)
class Summary:
    metric: str
    n: int
    positive: int
    neutral: int
    negative: int
    score: float | None
    """NPS/NLS: net score; CSAT and ratings: % of 4–5; CES: % of 5–7."""
    mean: float | None
    margin_of_error: float | None
    """Half the width of the 95% interval of ``score``, in points."""
    low: float | None = None
    high: float | None = None
    """The 95% interval of ``score`` (for small n it is not centred on the score)."""
    mean_low: float | None = None
    mean_high: float | None = None


def score_interval(metric: str, counts: Tally) -> tuple[float, float] | None:
    """Return the 95% interval of ``metric``'s score for ``counts``."""
    if metric in NET_METRICS:
        return net_score_interval(counts.positive, counts.negative, counts.n)
    return wilson_interval(counts.positive, counts.n)


def score_of(metric: str, counts: Tally) -> float | None:
    """Return the headline score: the net score for NPS/NLS, the top-box share otherwise."""
    if metric in NET_METRICS:
        return net_score(counts.positive, counts.negative, counts.n)
    return share_percent(counts.positive, counts.n)


def summarise(metric: str, counts: Tally) -> Summary:
    """Return the headline figures of one metric from its counts."""
    n = counts.n
    interval = score_interval(metric, counts)
    low, high = interval if interval else (None, None)
    means = mean_interval(counts)
    return Summary(
        metric,
        n,
        counts.positive,
        counts.neutral,
        counts.negative,
        score_of(metric, counts),
        mean(counts.total, n),
        None if interval is None else (interval[1] - interval[0]) / 2,
        low,
        high,
        means[0] if means else None,
        means[1] if means else None,
    )


@dataclass(frozen=True)
class Change:
    """A figure against the same figure in the previous period."""

    difference: float | None
    """Current minus previous, in points."""
    z: float | None
    p_value: float | None
    significant: bool
    """p < 0.05 and both periods have at least the workspace's minimum n."""


def two_sided_p(z: float) -> float:
    """Return the two-sided p-value of a standard normal ``z``."""
    return math.erfc(abs(z) / math.sqrt(2))


def net_score_change(current: Tally, previous: Tally, *, min_n: int = 1) -> Change:
    """Return the difference of two net scores with the z-test on the pooled trinomial variance.

    Under "no change", both periods share one distribution: p and d are pooled over both, the
    variance of one answer is p + d − (p − d)², and the difference has variance var × (1/n₁ + 1/n₂).
    """
    n1, n2 = current.n, previous.n
    if n1 == 0 or n2 == 0:
        return Change(None, None, None, False)
    diff = (current.positive - current.negative) / n1 - (previous.positive - previous.negative) / n2
    p = (current.positive + previous.positive) / (n1 + n2)
    d = (current.negative + previous.negative) / (n1 + n2)
    variance = max(p + d - (p - d) ** 2, 0.0) * (1 / n1 + 1 / n2)
    return _change(diff, variance, enough=min(n1, n2) >= min_n)


def share_change(count1: int, n1: int, count2: int, n2: int, *, min_n: int = 1) -> Change:
    """Return the difference of two shares with the pooled two-proportion z-test."""
    if n1 == 0 or n2 == 0:
        return Change(None, None, None, False)
    pooled = (count1 + count2) / (n1 + n2)
    variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    return _change(count1 / n1 - count2 / n2, variance, enough=min(n1, n2) >= min_n)


def _change(diff: float, variance: float, *, enough: bool) -> Change:
    if variance <= 0:
        # Both periods answered identically and unanimously: no evidence of any change.
        return Change(diff * 100, None, 1.0, False)
    z = diff / math.sqrt(variance)
    p = two_sided_p(z)
    return Change(diff * 100, z, p, enough and p < SIGNIFICANCE)


def metric_change(metric: str, current: Tally, previous: Tally, *, min_n: int = 1) -> Change:
    """Return the change of ``metric``'s score between two periods, with its test."""
    if metric in NET_METRICS:
        return net_score_change(current, previous, min_n=min_n)
    return share_change(current.positive, current.n, previous.positive, previous.n, min_n=min_n)
