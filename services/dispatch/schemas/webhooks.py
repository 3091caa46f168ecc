"""Outgoing webhook subscriptions and their delivery log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, HttpUrl, field_validator

from services.dispatch.catalogue import SUBSCRIBABLE
from services.dispatch.schemas.common import Flag, example
from shared.vocabulary import ScoreMetric

SurveyIds = list[Annotated[str, Field(min_length=1, max_length=100)]]


def _known_types(value: list[str] | None) -> list[str] | None:
    unknown = sorted(set(value or ()) - SUBSCRIBABLE)
    if unknown:
        raise ValueError(
            f"unknown event types {unknown}; the public catalogue has {sorted(SUBSCRIBABLE)} (docs/webhooks.md)"
        )
    return value


class SubscriptionIn(BaseModel):
    model_config = example(
        {
            "url": "https://crm.example.com/hooks/closeloop",
            "event_types": ["response.scored", "case.opened"],
            "survey_ids": [],
            "metrics": ["nps"],
            "description": "CRM",
        }
    )

    url: HttpUrl = Field(
        description="A public http(s) endpoint: loopback, private, link-local and metadata addresses are refused"
    )
    event_types: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Public event types (docs/webhooks.md); empty: every type",
    )
    survey_ids: SurveyIds = Field(
        default_factory=list,
        max_length=100,
        description="Only events about these surveys; events that name no survey always pass. Empty: every survey",
    )
    metrics: list[ScoreMetric] = Field(
        default_factory=list,
        max_length=5,
        description="Only events about one of these metrics; events that name no metric always pass. Empty: all",
    )
    description: str | None = Field(None, max_length=500)
    notify_email: EmailStr | None = Field(
        None, description="Who is told by email when the subscription is disabled (failures, or a 410 answer)"
    )

    _types = field_validator("event_types")(_known_types)


class SubscriptionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl | None = None
    event_types: list[str] | None = Field(None, max_length=50)
    survey_ids: SurveyIds | None = Field(None, max_length=100)
    metrics: list[ScoreMetric] | None = Field(None, max_length=5)
    description: str | None = Field(None, max_length=500)
    notify_email: EmailStr | None = None
    _types = field_validator("event_types")(_known_types)
    enabled: Flag | None = Field(
        None, description="true re-enables a subscription disabled after failures (a JSON boolean)"
    )


class SubscriptionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    url: str
    event_types: list[str]
    survey_ids: list[str]
    metrics: list[str]
    description: str | None
    notify_email: str | None
    enabled: bool
    disabled_reason: str | None
    consecutive_failures: int
    created_at: datetime
    secret: str | None = Field(None, description="Shown once, when the subscription is created.")


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempt: int
    status_code: int | None
    error: str | None = Field(
        description="What went wrong, in our words: the status code and its standard reason, or the connection "
        "error; never the endpoint's reply body."
    )
    duration_ms: int
    attempted_at: datetime


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    msg_id: str
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime
    delivered_at: datetime | None
    created_at: datetime
    log: list[AttemptOut] = Field(default_factory=list)


class ReplayRangeIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"since": "2026-11-30T08:00:00Z", "until": "2026-11-30T12:00:00Z"}]},
    )

    since: AwareDatetime = Field(description="Deliveries created at or after this moment (with a time zone)")
    until: AwareDatetime = Field(description="… and before this one")


class ReplayRangeOut(BaseModel):
    replayed: int = Field(description="How many finished deliveries are being sent again")
