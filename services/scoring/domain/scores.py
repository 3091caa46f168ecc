"""Classifying answers: one answer's class, every scored answer of a response, the loyalty cell.

The definitions are the project's (ARCHITECTURE.md, "Scores"): NPS and NLS on 0–10 with promoters
9–10 (8–10 on the "European" scale), passives 7–8 and detractors 0–6; CSAT on 1–5, top-two box;
CES on a 1–7 agreement scale, 5–7 positive; star ratings on 1–5 (other star counts mapped onto it),
4–5 positive. Negative feedback is, by default, a detractor, CSAT 1–2, CES 1–3 or 1–2 stars; a
workspace may move those thresholds (``NegativeRules``) without changing the classes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from shared.vocabulary import LoyaltyCell, ScoreMetric

Classification = Literal["promoter", "passive", "detractor", "positive", "neutral", "negative"]
NpsScale = Literal["standard", "european"]

SCALES: dict[str, tuple[int, int]] = {
    "nps": (0, 10),
    "nls": (0, 10),
    "csat": (1, 5),
    "ces": (1, 7),
    "rating": (1, 5),
}
"""Each metric's own scale; CSAT and star ratings on other scales are mapped onto 1–5."""

NET_METRICS = ("nps", "nls")


class ScoreOutOfRange(ValueError):
    """An answer's value is not on its metric's scale."""


@dataclass(frozen=True)
class AnswerView:
    type: str
    value: int | bool | str | None
    scale: tuple[int, int] | None = None
    """(lowest, highest) when the question used another scale than the metric's own."""
    question_id: str = ""


@dataclass(frozen=True)
class NegativeRules:
    """The highest score that still counts as negative feedback, per metric (a workspace setting)."""

    nps: int = 6
    nls: int = 6
    csat: int = 2
    ces: int = 3
    rating: int = 2

    def is_negative(self, metric: str, score: int) -> bool:
        return score <= getattr(self, metric)


def to_five_points(score: int, scale: tuple[int, int], *, metric: str = "csat") -> int:
    """Return an answer from another scale (1–10, 3–10 stars, emoji faces …) on the 1–5 scale.

    Proportional, so the top-two-box rule keeps its meaning: the top 40% of any scale is positive
    (7–10 on a 1–10 scale), the bottom 40% negative (1–4). Rollups then hold one scale per metric.
    """
    low, high = scale
    if high <= low or not low <= score <= high:
        raise ScoreOutOfRange(f"{metric} score must be an integer from {low} to {high}, got {score!r}")
    return int(1 + (score - low) * 4 / (high - low) + 0.5)


def to_csat_5(score: int, scale: tuple[int, int]) -> int:
    """Return a CSAT answer from another scale on the 1–5 scale (see ``to_five_points``)."""
    return to_five_points(score, scale, metric="csat")


@dataclass(frozen=True)
class Scored:
    metric: ScoreMetric
    score: int
    classification: Classification
    negative: bool
    question_id: str = ""


def classify(metric: str, score: int, *, nps_scale: NpsScale = "standard") -> Classification:
    """Return the class of one ``score`` on ``metric``; raises ``ScoreOutOfRange`` off the scale."""
    if metric not in SCALES:
        raise ScoreOutOfRange(f"{metric!r} is not a scored metric")
    low, high = SCALES[metric]
    if isinstance(score, bool) or not isinstance(score, int) or not low <= score <= high:
        raise ScoreOutOfRange(f"{metric} score must be an integer from {low} to {high}, got {score!r}")
    if metric in NET_METRICS:
        promoter_min = 8 if nps_scale == "european" else 9
        if score >= promoter_min:
            return "promoter"
        return "passive" if score >= 7 else "detractor"
    positive_min, negative_max = (5, 3) if metric == "ces" else (4, 2)
    if score >= positive_min:
        return "positive"
    return "negative" if score <= negative_max else "neutral"


def is_negative(classification: Classification) -> bool:
    """Return whether a class counts as negative feedback (a detractor or a low CSAT/CES)."""
    return classification in ("detractor", "negative")


def _value_on_own_scale(answer: AnswerView) -> int:
    value = answer.value
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScoreOutOfRange(f"{answer.type} answer must be an integer, got {value!r}")
    if answer.type in ("csat", "rating") and answer.scale is not None:
        scale = (int(answer.scale[0]), int(answer.scale[1]))
        if scale != SCALES[answer.type]:
            return to_five_points(value, scale, metric=answer.type)
    return value


def primary_score(answers: Iterable[AnswerView]) -> tuple[ScoreMetric, int] | None:
    """Return the first answered score question as (metric, value), or None when there is none.

    A skipped score question (value None) is not an answer, so the next one counts. Reports count
    every answer (``score_all``); the first one is kept on the response row for quick lookups.
    """
    for answer in answers:
        if answer.type in SCALES and answer.value is not None:
            return answer.type, _value_on_own_scale(answer)  # type: ignore[return-value]
    return None


def score_answers(answers: Iterable[AnswerView], *, nps_scale: NpsScale = "standard") -> Scored | None:
    """Return the response's first score, classified, or None when it has no score answer."""
    found = primary_score(answers)
    if found is None:
        return None
    metric, score = found
    classification = classify(metric, score, nps_scale=nps_scale)
    return Scored(metric, score, classification, is_negative(classification))


def score_all(
    answers: Iterable[AnswerView],
    *,
    nps_scale: NpsScale = "standard",
    negative: NegativeRules | None = None,
) -> tuple[Scored, ...]:
    """Return every answered score question of a response, classified, in the survey's order.

    Raises ``ScoreOutOfRange`` when any answer is off its scale: a response is scored whole or not at all.
    """
    negative = negative or NegativeRules()
    scored = []
    for answer in answers:
        if answer.type not in SCALES or answer.value is None:
            continue
        score = _value_on_own_scale(answer)
        classification = classify(answer.type, score, nps_scale=nps_scale)
        metric: ScoreMetric = answer.type  # type: ignore[assignment]
        scored.append(
            Scored(metric, score, classification, negative.is_negative(metric, score), answer.question_id)
        )
    return tuple(scored)


def loyalty_cell(nps: Classification, nls: Classification) -> LoyaltyCell:
    """Return the NPS × NLS cell of one respondent (the seed's "golden duo").

    High is a promoter, low a detractor, on each question's scale: pure loyalty (high/high), false
    loyalty (high NPS, low NLS), trapped loyalty (low NPS, high NLS), disloyalty (low/low). A passive
    on either question is *undecided*, so the four named cells keep exactly the seed's definition.
    """
    if "passive" in (nps, nls):
        return "undecided"
    if nps == "promoter":
        return "pure" if nls == "promoter" else "false"
    return "trapped" if nls == "promoter" else "disloyal"


def loyalty_pair(scored: tuple[Scored, ...]) -> tuple[Scored, Scored] | None:
    """Return the response's first NPS and first NLS answer, when it has both."""
    nps = next((s for s in scored if s.metric == "nps"), None)
    nls = next((s for s in scored if s.metric == "nls"), None)
    return (nps, nls) if nps and nls else None


def first_comment(answers: Iterable[AnswerView]) -> str | None:
    """Return the first non-blank open answer, stripped."""
    for answer in answers:
        if answer.type == "open" and isinstance(answer.value, str) and answer.value.strip():
            return answer.value.strip()
    return None
