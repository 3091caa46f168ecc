"""Outgoing webhook subscriptions and their delivery log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from services.dispatch.schemas.common import Flag


def _example(value: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [value]})


class SubscriptionIn(BaseModel):
    model_config = _example(
        {
            "url": "https://crm.example.com/hooks/closeloop",
            "event_types": ["followup.opened"],
            "description": "CRM",
        }
    )

    url: HttpUrl = Field(
        description="A public http(s) endpoint: loopback, private, link-local and metadata addresses are refused"
    )
    event_types: list[str] = Field(default_factory=list, max_length=50, description="empty: every type")
    description: str | None = Field(None, max_length=500)


class SubscriptionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl | None = None
    event_types: list[str] | None = Field(None, max_length=50)
    description: str | None = Field(None, max_length=500)
    enabled: Flag | None = Field(
        None, description="true re-enables a subscription disabled after failures (a JSON boolean)"
    )


class SubscriptionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    url: str
    event_types: list[str]
    description: str | None
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
