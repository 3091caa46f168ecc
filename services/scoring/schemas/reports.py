"""Bodies of the reports: figures, trends, the matrix, response rates, themes and comments."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.vocabulary import Interval, LoyaltyCell, NpsScale, ScoreMetric, SurveyKind

NULL_WHEN_TOO_FEW = " Null in a group with fewer answers than the workspace's minimum n."


class ChangeOut(BaseModel):
    """The same figure in the previous period of the same length, and whether the change is real."""

    previous_from: date
    previous_to: date
    previous_n: int
    previous_score: float | None
    difference: float | None = Field(description="Current minus previous score, in points.")
    p_value: float | None = Field(
        description="Two-sided: NPS/NLS by the z-test on the pooled trinomial variance, shares by the pooled "
        "two-proportion z-test."
    )
    significant: bool = Field(description="p < 0.05 and both periods have at least the minimum n.")


class ReportScope(BaseModel):
    """What a report repeats of its request: the survey (null: the workspace) and the period."""

    model_config = ConfigDict(populate_by_name=True)

    survey_id: str | None
    since: date | None = Field(serialization_alias="from")
    until: date | None = Field(serialization_alias="to")


class MetricOut(BaseModel):
    metric: ScoreMetric
    question_id: str | None = Field(
        None, description="The question counted; null: every question of the metric."
    )
    n: int
    too_few_answers: bool = Field(
        False, description="A group with n below the workspace's minimum n: no score."
    )
    positive: int | None = Field(
        description="Promoters for NPS/NLS; 4–5 for CSAT and stars; 5–7 for CES." + NULL_WHEN_TOO_FEW
    )
    neutral: int | None = Field(
        description="Passives for NPS/NLS; 3 for CSAT and stars; 4 for CES." + NULL_WHEN_TOO_FEW
    )
    negative: int | None = Field(
        description="Detractors for NPS/NLS; 1–2 for CSAT and stars; 1–3 for CES." + NULL_WHEN_TOO_FEW
    )
    score: float | None = Field(
        description="NPS/NLS: net score (−100…+100); CSAT and stars: % of 4–5; CES: % of 5–7. Null when n is 0."
        + NULL_WHEN_TOO_FEW
    )
    mean: float | None
    margin_of_error: float | None = Field(
        description="Half the width of the 95% interval of `score`, in points (`low`…`high` is the interval)."
    )
    low: float | None = Field(
        None, description="95% interval of `score`: Wilson for shares, adjusted Wald for NPS/NLS."
    )
    high: float | None = None
    mean_low: float | None = Field(None, description="95% t-interval of the mean; null below two answers.")
    mean_high: float | None = None
    change: ChangeOut | None = Field(None, description="With `compare=previous`.")


class GroupOut(BaseModel):
    value: str | None = Field(description="The group's value of `group_by`; null: responses without it.")
    metrics: list[MetricOut]


class MetricsOut(ReportScope):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "survey_id": None,
                    "from": "2026-11-01",
                    "to": "2026-11-30",
                    "scale": "standard",
                    "kind": ["transactional", "relationship"],
                    "filters": ["country=NL", "plan!=free"],
                    "group_by": "team",
                    "min_n": 5,
                    "metrics": [
                        {
                            "metric": "csat",
                            "question_id": None,
                            "n": 40,
                            "too_few_answers": False,
                            "positive": 30,
                            "neutral": 6,
                            "negative": 4,
                            "score": 75.0,
                            "mean": 3.85,
                            "margin_of_error": 13.0,
                            "low": 59.81,
                            "high": 85.81,
                            "mean_low": 3.52,
                            "mean_high": 4.18,
                            "change": None,
                        }
                    ],
                    "groups": [],
                }
            ]
        },
    )

    scale: NpsScale
    kind: list[SurveyKind] | None = Field(
        None, description="The kinds counted; null: every kind (one survey)."
    )
    filters: list[str] = []
    group_by: str | None = None
    min_n: int = 5
    metrics: list[MetricOut]
    groups: list[GroupOut] = Field([], description="With `group_by`: the same figures per group.")


class NpsOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "survey_id": "5f1c…",
                    "scale": "standard",
                    "n": 3,
                    "promoters": 1,
                    "passives": 1,
                    "detractors": 1,
                    "nps": 0.0,
                    "margin_of_error": 61.11,
                    "low": -61.11,
                    "high": 61.11,
                }
            ]
        }
    )

    survey_id: str
    scale: NpsScale
    n: int
    promoters: int
    passives: int
    detractors: int
    nps: float | None = Field(description="% promoters − % detractors, −100…+100; null when n is 0.")
    margin_of_error: float | None = Field(description="Half the width of the 95% interval, in NPS points.")
    low: float | None = Field(None, description="The 95% interval (adjusted Wald); null when n is 0.")
    high: float | None = None


class TrendPoint(MetricOut):
    period_start: date


class SeriesOut(BaseModel):
    value: str | None
    points: list[TrendPoint]


class TrendOut(BaseModel):
    survey_id: str | None
    metric: ScoreMetric
    question_id: str | None = None
    interval: Interval
    scale: NpsScale
    filters: list[str] = []
    group_by: str | None = None
    points: list[TrendPoint] = Field(description="One point per period that has answers, oldest first.")
    series: list[SeriesOut] = Field([], description="With `group_by`: one series per group.")


class CellOut(BaseModel):
    count: int | None
    share: float | None = Field(description="% of the respondents who answered both questions.")
    low: float | None = Field(description="Wilson 95% interval of the share.")
    high: float | None


class MatrixOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    n: int = Field(description="Respondents who answered an NPS and an NLS question in one response.")
    too_few_answers: bool = False
    cells: dict[LoyaltyCell, CellOut]


class MatrixGroup(MatrixOut):
    value: str | None


class MatrixPoint(MatrixOut):
    period_start: date


class LoyaltyMatrixOut(ReportScope, MatrixOut):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "survey_id": "svy-1",
                    "from": None,
                    "to": None,
                    "scale": "standard",
                    "n": 120,
                    "too_few_answers": False,
                    "cells": {
                        "pure": {"count": 48, "share": 40.0, "low": 31.7, "high": 48.9},
                        "false": {"count": 12, "share": 10.0, "low": 5.8, "high": 16.7},
                        "trapped": {"count": 18, "share": 15.0, "low": 9.7, "high": 22.5},
                        "disloyal": {"count": 20, "share": 16.7, "low": 11.0, "high": 24.4},
                        "undecided": {"count": 22, "share": 18.3, "low": 12.4, "high": 26.2},
                    },
                    "groups": [],
                    "points": [],
                }
            ]
        },
    )

    scale: NpsScale
    filters: list[str] = []
    group_by: str | None = None
    interval: Interval | None = None
    groups: list[MatrixGroup] = []
    points: list[MatrixPoint] = Field([], description="With `interval`: the matrix per period, oldest first.")


class RateOut(BaseModel):
    invited: int
    sent: int
    delivered: int = Field(description="Delivered, or sent and neither bounced nor failed, or answered.")
    opened: int
    clicked: int
    bounced: int
    responded: int
    too_few_answers: bool = False
    response_rate: float | None = Field(description="% responded of delivered; null with nothing delivered.")
    low: float | None = Field(description="Wilson 95% interval of the rate.")
    high: float | None


class RateGroup(RateOut):
    value: str | None


class ResponseRateOut(ReportScope, RateOut):
    filters: list[str] = []
    group_by: str | None = None
    groups: list[RateGroup] = []


class ThemeOut(BaseModel):
    theme: str
    mentions: int
    share: float | None = Field(description="% of the scope's comments that mention the theme.")
    too_few_answers: bool = False
    negative_share: float | None = Field(
        description="% of the mentions (with a sentiment) that are negative."
    )
    negative_low: float | None = None
    negative_high: float | None = None
    nps_n: int = Field(description="Respondents mentioning the theme who answered an NPS question.")
    nps: float | None = Field(description="NPS of the respondents who mention the theme.")
    nps_low: float | None = None
    nps_high: float | None = None


class ThemesOut(ReportScope):
    filters: list[str] = []
    comments: int = Field(description="Comments in the scope.")
    themes: list[ThemeOut]


class CommentOut(BaseModel):
    response_id: str
    survey_id: str
    question_id: str
    day: date
    text: str
    language: str | None
    confidence: Literal["high", "low", "unscored"]
    sentiment: float | None = Field(description="−1 … 1; null when the language has no lexicon.")
    label: Literal["positive", "neutral", "negative"] | None
    nps: int | None


class NewCommentOut(BaseModel):
    response_id: str
    survey_id: str
    question_id: str
    day: str
    text: str
    language: str | None
    sentiment: float | None = Field(description="−1 … 1; null when the language has no lexicon.")
    label: Literal["positive", "neutral", "negative"] | None
    nps: int | None
    themes: list[str] = Field(description="The workspace's themes the comment mentions.")


class NewCommentsOut(BaseModel):
    comments: list[NewCommentOut]


class CommentsOut(BaseModel):
    theme: str
    comments: list[CommentOut]
    next_cursor: str | None = Field(
        None, description="Pass as ?cursor= for the next page; null on the last page."
    )


class SuggestionOut(BaseModel):
    term: str
    language: str | None
    score: float = Field(description="c-TF-IDF weight in detractors' comments.")
    detractor_mentions: int
    mentions: int


class SuggestionsOut(BaseModel):
    suggestions: list[SuggestionOut]
