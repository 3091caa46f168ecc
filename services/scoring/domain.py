"""Pure score maths: classifying one answer, and NPS / CSAT / CES over many.

The definitions are the project's (ARCHITECTURE.md, "Scores"): NPS and NLS on 0–10 with promoters
9–10 (8–10 on the "European" scale), passives 7–8 and detractors 0–6; CSAT on 1–5, top-two box;
CES on a 1–7 agreement scale, 5–7 positive. Negative feedback is a detractor, CSAT 1–2 or CES 1–3.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from shared.vocabulary import Metric, NpsScale

Classification = Literal["promoter", "passive", "detractor", "positive", "neutral", "negative"]

METRICS: tuple[Metric, ...] = ("nps", "nls", "csat", "ces")
SCALES: dict[str, tuple[int, int]] = {"nps": (0, 10), "nls": (0, 10), "csat": (1, 5), "ces": (1, 7)}
Z_95 = 1.96


class ScoreOutOfRange(ValueError):
    """An answer's value is not on its metric's scale."""


@dataclass(frozen=True)
class AnswerView:
    type: str
    value: int | bool | str | None
    scale: tuple[int, int] | None = None
    """(lowest, highest) when the question used another scale than the metric's own."""


def to_csat_5(score: int, scale: tuple[int, int]) -> int:
    """Return a CSAT answer from another scale (1–10, emoji faces …) on the 1–5 scale.

    Proportional, so the top-two-box rule keeps its meaning: the top 40% of any scale is positive
    (7–10 on a 1–10 scale), the bottom 40% negative (1–4). Rollups then hold one scale per metric.
    """
    low, high = scale
    if high <= low or not low <= score <= high:
        raise ScoreOutOfRange(f"csat score must be an integer from {low} to {high}, got {score!r}")
    return int(1 + (score - low) * 4 / (high - low) + 0.5)


@dataclass(frozen=True)
class Scored:
    metric: Metric
    score: int
    classification: Classification
    negative: bool


def classify(metric: Metric, score: int, *, nps_scale: NpsScale = "standard") -> Classification:
    """Return the class of one ``score`` on ``metric``; raises ``ScoreOutOfRange`` off the scale."""
    low, high = SCALES[metric]
    if isinstance(score, bool) or not isinstance(score, int) or not low <= score <= high:
        raise ScoreOutOfRange(f"{metric} score must be an integer from {low} to {high}, got {score!r}")
    if metric in ("nps", "nls"):
        promoter_min = 8 if nps_scale == "european" else 9
        if score >= promoter_min:
            return "promoter"
        return "passive" if score >= 7 else "detractor"
    positive_min, negative_max = (4, 2) if metric == "csat" else (5, 3)
    if score >= positive_min:
        return "positive"
    return "negative" if score <= negative_max else "neutral"


def is_negative(classification: Classification) -> bool:
    """Return whether a class counts as negative feedback (a detractor or a low CSAT/CES)."""
    return classification in ("detractor", "negative")


def primary_score(answers: Iterable[AnswerView]) -> tuple[Metric, int] | None:
    """Return the first answered score question as (metric, value), or None when there is none.

    A skipped score question (value None) is not an answer, so the next one counts.
    """
    for answer in answers:
        if answer.type in SCALES and answer.value is not None:
            value = answer.value
            if isinstance(value, bool) or not isinstance(value, int):
                raise ScoreOutOfRange(f"{answer.type} answer must be an integer, got {value!r}")
            if answer.type == "csat" and answer.scale is not None and tuple(answer.scale) != SCALES["csat"]:
                value = to_csat_5(value, tuple(answer.scale))  # type: ignore[arg-type]
            return answer.type, value  # type: ignore[return-value]
    return None


def score_answers(answers: Iterable[AnswerView], *, nps_scale: NpsScale = "standard") -> Scored | None:
    """Return the response's primary score, classified, or None when it has no score answer."""
    found = primary_score(answers)
    if found is None:
        return None
    metric, score = found
    classification = classify(metric, score, nps_scale=nps_scale)
    return Scored(metric, score, classification, is_negative(classification))


def first_comment(answers: Iterable[AnswerView]) -> str | None:
    """Return the first non-blank open answer, stripped."""
    for answer in answers:
        if answer.type == "open" and isinstance(answer.value, str) and answer.value.strip():
            return answer.value.strip()
    return None


@dataclass(frozen=True)
class Tally:
    """Counts of one metric over many responses: positive = promoters, neutral = passives,
    negative = detractors for NPS and NLS."""

    positive: int = 0
    neutral: int = 0
    negative: int = 0
    total: int = 0
    """Sum of the raw scores, for the mean."""

    @property
    def n(self) -> int:
        return self.positive + self.neutral + self.negative


def tally(histogram: Mapping[int, int], metric: Metric, *, nps_scale: NpsScale = "standard") -> Tally:
    """Return the counts of a {score: how many} histogram, classified on ``metric``'s scale."""
    counts = {"positive": 0, "neutral": 0, "negative": 0}
    total = 0
    for score, count in histogram.items():
        classification = classify(metric, score, nps_scale=nps_scale)
        bucket = {"promoter": "positive", "passive": "neutral", "detractor": "negative"}.get(
            classification, classification
        )
        counts[bucket] += count
        total += score * count
    return Tally(total=total, **counts)


def net_score(promoters: int, detractors: int, n: int) -> float | None:
    """Return NPS (or NLS) = % promoters − % detractors, −100…+100; None without responses."""
    if n == 0:
        return None
    return (promoters - detractors) / n * 100


def net_score_margin_of_error(promoters: int, detractors: int, n: int) -> float | None:
    """Return the 95% margin of error of a net score in points; None without responses.

    The net score is the mean of a variable that is +1 for a promoter, −1 for a detractor and 0
    otherwise; its variance is p + d − (p − d)², with p and d the shares of promoters and detractors.
    """
    if n == 0:
        return None
    p, d = promoters / n, detractors / n
    variance = max(p + d - (p - d) ** 2, 0.0)
    return Z_95 * math.sqrt(variance / n) * 100


def share_margin_of_error(count: int, n: int) -> float | None:
    """Return the 95% margin of error of a share (e.g. CSAT) in percentage points; None when n is 0."""
    if n == 0:
        return None
    p = count / n
    return Z_95 * math.sqrt(p * (1 - p) / n) * 100


def share_percent(count: int, n: int) -> float | None:
    """Return ``count`` as a percentage of ``n``; None when n is 0 (CSAT = share of 4–5)."""
    return None if n == 0 else count / n * 100


def mean(total: int, n: int) -> float | None:
    """Return the mean score; None when n is 0."""
    return None if n == 0 else total / n


@dataclass(frozen=True)
class Summary:
    metric: Metric
    n: int
    positive: int
    neutral: int
    negative: int
    score: float | None
    """NPS/NLS: net score; CSAT: % of 4–5; CES: % of 5–7."""
    mean: float | None
    margin_of_error: float | None


def summarise(metric: Metric, counts: Tally) -> Summary:
    """Return the headline figures of one metric from its counts."""
    n = counts.n
    if metric in ("nps", "nls"):
        score = net_score(counts.positive, counts.negative, n)
        moe = net_score_margin_of_error(counts.positive, counts.negative, n)
    else:
        score = share_percent(counts.positive, n)
        moe = share_margin_of_error(counts.positive, n)
    return Summary(
        metric, n, counts.positive, counts.neutral, counts.negative, score, mean(counts.total, n), moe
    )
