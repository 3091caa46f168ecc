"""Invitations, their reminders and the funnel report, as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.dispatch.schemas.common import example

InvitationStatus = Literal["scheduled", "sending", "sent", "failed"]


class FunnelStep(BaseModel):
    """How far an invitation got at one step of the funnel, and whether anyone saw it happen."""

    reached: bool
    at: datetime | None = Field(description="When it was observed; null when not reached or only inferred.")
    inferred: bool = Field(
        description="Reached only by inference: a later step was observed (a click without a delivery report "
        "means the message was delivered and opened), never reported by a provider, a link or the survey."
    )


class InvitationOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "3f2a1c9e-8d4b-4e61-9a55-0c7e2b1d9f10",
                    "request_id": "b7c1…",
                    "contact_id": "5d0e…",
                    "survey_id": "svy-csat",
                    "kind": "transactional",
                    "channel": "email",
                    "status": "sent",
                    "recipient_email": "ada@example.com",
                    "recipient_name": "Ada Lovelace",
                    "survey_url": "https://surveys.example.com/s/Q2m7wF0b…",
                    "short_url": "https://go.example.com/l/q7Jx2LmPa0",
                    "message_id": "<invitation.3f2a1c9e-8d4b-4e61-9a55-0c7e2b1d9f10@example.com>",
                    "attempts": 1,
                    "last_error": None,
                    "created_at": "2026-11-23T10:00:00Z",
                    "send_at": "2026-11-23T10:00:00Z",
                    "sent_at": "2026-11-23T10:00:01Z",
                    "delivered_at": "2026-11-23T10:00:03Z",
                }
            ]
        },
    )

    id: str
    request_id: str
    contact_id: str
    survey_id: str
    kind: str
    channel: str
    status: InvitationStatus
    recipient_email: str | None
    recipient_name: str | None
    recipient_phone: str | None = None
    locale: str | None = None
    template_id: str | None = None
    survey_url: str
    short_url: str | None = None
    message_id: str | None
    provider_message_id: str | None = None
    fallback_channels: list[str] = Field(default_factory=list)
    attempts: int
    last_error: str | None
    created_at: datetime
    send_at: datetime
    sent_at: datetime | None
    expires_at: datetime | None = None
    delivered_at: datetime | None = None
    opened_at: datetime | None = None
    clicked_at: datetime | None = None
    bounced_at: datetime | None = None
    complained_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    reminders_sent: int = 0
    funnel: dict[str, FunnelStep] = Field(
        default_factory=dict,
        description="Each step invited → delivered → opened → clicked → started → completed: reached or not, "
        "and whether it was observed (a provider callback, the short link, the open pixel, a response) or only "
        "inferred from a later step.",
    )


class ReminderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    seq: int
    channel: str
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    sent_at: datetime | None
    message_id: str | None


class FunnelOut(BaseModel):
    model_config = example(
        {
            "group": None,
            "counts": {
                "invited": 120,
                "delivered": 118,
                "opened": 80,
                "clicked": 51,
                "started": 47,
                "completed": 44,
            },
            "observed": {
                "invited": 120,
                "delivered": 110,
                "opened": 31,
                "clicked": 51,
                "started": 47,
                "completed": 44,
            },
            "inferred": {
                "invited": 0,
                "delivered": 8,
                "opened": 49,
                "clicked": 0,
                "started": 0,
                "completed": 0,
            },
            "rates": {
                "delivered": 0.9833,
                "opened": 0.678,
                "clicked": 0.6375,
                "started": 0.9216,
                "completed": 0.9362,
            },
            "bounced": 2,
            "complained": 0,
            "failed": 2,
            "pending": 5,
        }
    )

    group: str | None = None
    counts: dict[str, int] = Field(description="Invitations that reached each step, observed or inferred.")
    observed: dict[str, int] = Field(
        default_factory=dict,
        description="Of those, the ones whose step was observed: a provider callback (delivered, opened), the "
        "short link or the open pixel (clicked, opened), a response (started, completed).",
    )
    inferred: dict[str, int] = Field(
        default_factory=dict,
        description="The rest: counted because a later step was observed (e.g. delivered and opened for a click "
        "without a delivery report). counts = observed + inferred.",
    )
    rates: dict[str, float | None]
    bounced: int
    complained: int
    failed: int
    pending: int
