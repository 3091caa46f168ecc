"""Request and response bodies of the scoring API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.vocabulary import Interval, LoyaltyCell, NpsScale, ScoreMetric, SurveyKind, TargetStatus

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


class MetricsOut(BaseModel):
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
        populate_by_name=True,
    )

    survey_id: str | None
    since: date | None = Field(serialization_alias="from")
    until: date | None = Field(serialization_alias="to")
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


class LoyaltyMatrixOut(MatrixOut):
    model_config = ConfigDict(
        populate_by_name=True,
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

    survey_id: str | None
    since: date | None = Field(serialization_alias="from")
    until: date | None = Field(serialization_alias="to")
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


class ResponseRateOut(RateOut):
    model_config = ConfigDict(populate_by_name=True)

    survey_id: str | None
    since: date | None = Field(serialization_alias="from")
    until: date | None = Field(serialization_alias="to")
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


class ThemesOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    survey_id: str | None
    since: date | None = Field(serialization_alias="from")
    until: date | None = Field(serialization_alias="to")
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


class CommentsOut(BaseModel):
    theme: str
    comments: list[CommentOut]


class SuggestionOut(BaseModel):
    term: str
    language: str | None
    score: float = Field(description="c-TF-IDF weight in detractors' comments.")
    detractor_mentions: int
    mentions: int


class SuggestionsOut(BaseModel):
    suggestions: list[SuggestionOut]


class ThemeRuleIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"keywords": {"en": ["delivery", "courier"], "nl": ["levering", "bezorger"]}}]
        },
    )

    keywords: dict[Literal["en", "nl", "de", "fr", "es"], list[str]] = Field(
        description="Keywords or phrases per language; matched on lemmas (plurals and verb forms match)."
    )


class ThemeRuleOut(BaseModel):
    theme: str
    keywords: dict[str, list[str]]


class AcceptSuggestionIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"term": "invoice", "language": "en"}]}
    )

    term: str = Field(min_length=2, max_length=60)
    language: Literal["en", "nl", "de", "fr", "es"] = "en"
    theme: str | None = Field(
        None,
        min_length=1,
        max_length=60,
        description="Add to this theme; default: a new theme named after the term.",
    )


class NotifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: bool = Field(True, description="Email the owner.")
    chat: str | None = Field(None, max_length=500, description="A chat channel (or incoming-webhook URL).")
    webhook: bool = Field(False, description="Deliver to the integrators' webhook subscriptions.")


class TargetIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Support CSAT",
                    "metric": "csat",
                    "survey_id": "svy-support",
                    "filters": ["channel=email"],
                    "team": "support-nl",
                    "direction": "at_least",
                    "threshold": 80,
                    "window_days": 30,
                    "owner": "lead@example.com",
                    "notify": {"email": True, "chat": "#cx-alerts", "webhook": True},
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=200)
    metric: ScoreMetric
    question_id: str | None = Field(None, min_length=1, max_length=64)
    survey_id: str | None = Field(None, min_length=1, max_length=64)
    filters: list[str] = Field([], max_length=20, description="The segment: `dim=value` / `dim!=value`.")
    team: str | None = Field(
        None, min_length=1, max_length=100, description="Shorthand for the filter team=<team>."
    )
    direction: Literal["at_least", "at_most"] = "at_least"
    threshold: float = Field(
        ge=-100, le=100, description="In the metric's score units: NPS points or a percentage."
    )
    window_days: int = Field(30, ge=1, le=366)
    owner: str | None = Field(None, max_length=320)
    notify: NotifyIn = NotifyIn()


class TargetOut(TargetIn):
    id: str
    status: TargetStatus | None = Field(description="Null until first evaluated.")
    value: float | None
    n: int
    low: float | None
    high: float | None
    evaluated_at: datetime | None
    changed_at: datetime | None


class NotificationRuleIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Zeroes to the NL team",
                    "metric": "nps",
                    "max_score": 0,
                    "filters": ["country=NL"],
                    "channel": "chat",
                    "to": "#nl-support",
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=200)
    metric: ScoreMetric
    max_score: int | None = Field(
        None, ge=0, le=10, description="Answers at or below; default: the negative-feedback threshold."
    )
    filters: list[str] = Field([], max_length=20)
    channel: Literal["email", "chat", "webhook"]
    to: str = Field(
        min_length=1, max_length=500, description="Email address, chat channel or URL; ignored for webhook."
    )


class NotificationRuleOut(NotificationRuleIn):
    id: str


class NegativeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nps: int = Field(6, ge=0, le=10)
    nls: int = Field(6, ge=0, le=10)
    csat: int = Field(2, ge=1, le=5)
    ces: int = Field(3, ge=1, le=7)
    rating: int = Field(2, ge=1, le=5)


class WorkspaceSettingsIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"min_n": 10, "negative": {"nps": 6, "csat": 2, "ces": 3}}]},
    )

    min_n: int = Field(5, ge=1, le=1000, description="Groups with fewer answers show 'too few answers'.")
    negative: NegativeIn = Field(
        NegativeIn(), description="The highest score that is negative feedback, per metric."
    )


class WorkspaceSettingsOut(WorkspaceSettingsIn):
    pass


class SurveyScoringIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"nps_scale": "european"}]})

    nps_scale: NpsScale = Field(
        description="`standard`: promoters 9–10; `european`: promoters 8–10. "
        "Applies to responses scored from now on and to reports."
    )


class SurveyScoringOut(SurveyScoringIn):
    survey_id: str
    configured: bool = Field(description="False when the workspace default applies.")


class SurveyOut(BaseModel):
    survey_id: str
    name: str | None
    version: int | None
    open: bool
    published: bool = Field(description="A SurveyPublished event was seen.")
    answered: bool = Field(description="It has scored responses.")
    nps_scale: NpsScale
    questions: list[dict[str, object]]


class SurveysOut(BaseModel):
    surveys: list[SurveyOut]
