"""Bodies of what a workspace configures: themes, targets, notification rules, settings, surveys."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.inputs import Flag, Integer, Number
from shared.vocabulary import NpsScale, ScoreMetric, TargetStatus


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

    email: Flag = Field(True, description="Email the owner.")
    chat: str | None = Field(None, max_length=500, description="A chat channel (or incoming-webhook URL).")
    webhook: Flag = Field(False, description="Deliver to the integrators' webhook subscriptions.")


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
    threshold: Number = Field(
        ge=-100, le=100, description="In the metric's score units: NPS points or a percentage."
    )
    window_days: Integer = Field(30, ge=1, le=366)
    owner: str | None = Field(None, max_length=320)
    notify: NotifyIn = NotifyIn()


class TargetOut(TargetIn):
    model_config = ConfigDict(from_attributes=True)

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
    max_score: Integer | None = Field(
        None, ge=0, le=10, description="Answers at or below; default: the negative-feedback threshold."
    )
    filters: list[str] = Field([], max_length=20)
    channel: Literal["email", "chat", "webhook"]
    to: str = Field(
        min_length=1, max_length=500, description="Email address, chat channel or URL; ignored for webhook."
    )


class NotificationRuleOut(NotificationRuleIn):
    model_config = ConfigDict(from_attributes=True)

    id: str


class NegativeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nps: Integer = Field(6, ge=0, le=10)
    nls: Integer = Field(6, ge=0, le=10)
    csat: Integer = Field(2, ge=1, le=5)
    ces: Integer = Field(3, ge=1, le=7)
    rating: Integer = Field(2, ge=1, le=5)


class WorkspaceSettingsIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"min_n": 10, "negative": {"nps": 6, "csat": 2, "ces": 3}}]},
    )

    min_n: Integer = Field(5, ge=1, le=1000, description="Groups with fewer answers show 'too few answers'.")
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
