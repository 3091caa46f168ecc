"""Request and response bodies for events: posted events, a webhook's answer, received events and
their decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from services.trigger.sources.standard import InboundEvent


class DirectEvent(InboundEvent):
    """An event posted with the workspace API key; ``id`` is your own event id (deduplication)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "evt_123",
                    "type": "order.delivered",
                    "timestamp": "2026-11-23T10:00:00Z",
                    "data": {
                        "contact": {"external_id": "cus_42", "email": "ada@example.com"},
                        "order": "A-7",
                    },
                }
            ]
        }
    )

    id: str = Field(min_length=1, max_length=200)


_SURVEYS_REQUESTED = (
    "Surveys the rules requested for the event(s). `POST /v1/events` applies the rules before it "
    "answers; a webhook is acknowledged as soon as its events are stored and the rules are applied "
    "right after, so for a new webhook event this is `null`: `GET /v1/events/{event_id}` shows the "
    "decisions once `status` is `evaluated`."
)


class EventResult(BaseModel):
    # Read from the store's ``EventReceipt``.
    model_config = ConfigDict(from_attributes=True)

    source_event_id: str
    event_id: str | None
    status: Literal["accepted", "duplicate", "no_contact"]
    surveys_requested: int | None = Field(description=_SURVEYS_REQUESTED)


class EventAccepted(BaseModel):
    status: Literal["accepted", "duplicate", "ignored"]
    event_id: str
    surveys_requested: int | None = Field(description=_SURVEYS_REQUESTED)
    received: int = 1
    duplicates: int = 0
    ignored: int = 0
    events: list[EventResult] | None = Field(None, description="Per event, for batches")


_CONTACT_ID = (
    "The contact's id in closeloop: what every event and every service's API calls `contact_id` "
    "(`GET /v1/contacts/by-id/{id}`)"
)
_CONTACT_EXTERNAL_ID = (
    "The contact's id in your CRM (`GET /v1/contacts/{external_id}`); null for a contact known by email "
    "alone, or erased"
)


class DecisionOut(BaseModel):
    # Read from a ``Decision``, whose ``received_event_id`` is the event's id here.
    model_config = ConfigDict(from_attributes=True)

    id: str | None = None
    rule_id: str
    rule_version: int | None = None
    contact_id: str = Field(description=_CONTACT_ID)
    contact_external_id: str | None = Field(None, description=_CONTACT_EXTERNAL_ID)
    event_id: str | None = Field(None, validation_alias=AliasChoices("event_id", "received_event_id"))
    outcome: str
    reason: str
    request_id: str | None
    send_at: datetime | None
    channel: str | None = None
    created_at: datetime | None = None


class ReceivedEventOut(BaseModel):
    id: str
    source: str
    source_event_id: str
    event_type: str
    occurred_at: datetime
    contact_id: str | None = Field(
        description="Set once the event is evaluated (and it named a contact). " + _CONTACT_ID
    )
    contact_external_id: str | None = Field(None, description=_CONTACT_EXTERNAL_ID)
    received_at: datetime
    status: Literal["pending", "evaluated", "failed"] = Field(
        description="`pending`: stored, the rules not applied yet (usually for milliseconds); "
        "`evaluated`: `decisions` is complete; `failed`: the rules could not be applied (`error` says why)"
    )
    evaluated_at: datetime | None = None
    error: str | None = None
    properties: dict[str, Any]
    decisions: list[DecisionOut]
