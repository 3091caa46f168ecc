"""Request and response bodies of the trigger API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

Channel = Literal["email", "sms", "whatsapp", "chat", "link"]


class IntegrationCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "Helpdesk", "kind": "standard-webhooks"}]}
    )

    name: str = Field(min_length=1, max_length=200)
    kind: Literal["standard-webhooks"] = "standard-webhooks"


class IntegrationOut(BaseModel):
    id: str
    name: str
    kind: str
    enabled: bool
    webhook_url: str
    secret: str | None = Field(None, description="Shown once, when the integration is created.")


class ContactUpsert(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"email": "ada@example.com", "name": "Ada Lovelace", "locale": "en"}]
        },
    )

    email: EmailStr | None = None
    name: str | None = Field(None, max_length=200)
    phone: str | None = Field(None, max_length=40, pattern=r"^\+?[0-9 ()-]{5,40}$")
    locale: str | None = Field(None, max_length=20, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
    attributes: dict[str, Any] = Field(default_factory=dict)
    opted_out: bool | None = None


class ContactOut(BaseModel):
    id: str
    external_id: str
    email: str | None
    name: str | None
    phone: str | None
    locale: str | None
    attributes: dict[str, Any]
    opted_out: bool


class RuleCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "CSAT after a solved ticket",
                    "event_type": "ticket.solved",
                    "survey_id": "8b0e…",
                    "channel": "email",
                    "delay_seconds": 3600,
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=200)
    event_type: str = Field(min_length=1, max_length=200)
    survey_id: str = Field(min_length=1, max_length=36)
    channel: Channel = "email"
    delay_seconds: int = Field(0, ge=0, le=365 * 24 * 3600)


class RuleOut(RuleCreate):
    id: str
    enabled: bool


class EventContact(BaseModel):
    external_id: str = Field(min_length=1, max_length=200)
    email: EmailStr | None = None
    name: str | None = Field(None, max_length=200)
    phone: str | None = Field(None, max_length=40)
    locale: str | None = Field(None, max_length=20)


class InboundEvent(BaseModel):
    """A Standard Webhooks payload: ``type``, ``timestamp`` and ``data`` naming the contact."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "ticket.solved",
                    "timestamp": "2026-11-23T10:00:00Z",
                    "data": {
                        "contact": {"external_id": "cus_42", "email": "ada@example.com", "name": "Ada"},
                        "ticket_id": "T-1001",
                    },
                }
            ]
        }
    )

    type: str = Field(min_length=1, max_length=200)
    timestamp: datetime | None = None
    data: InboundEventData


class InboundEventData(BaseModel):
    model_config = ConfigDict(extra="allow")

    contact: EventContact


class EventAccepted(BaseModel):
    status: Literal["accepted", "duplicate"]
    event_id: str
    surveys_requested: int


class DecisionOut(BaseModel):
    rule_id: str
    contact_id: str
    outcome: str
    reason: str
    request_id: str | None
    send_at: datetime | None


InboundEvent.model_rebuild()
