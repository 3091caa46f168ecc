"""Request and response bodies for rules, their audit log and the dry run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.trigger.schemas.common import SOURCE_PATTERN, CapIn, Clean, Locale, Strict
from services.trigger.schemas.contacts import ContactFields
from shared.vocabulary import Channel, SurveyKind

_RULE_EXAMPLE: dict[str, Any] = {
    "name": "CSAT 24 hours after a solved ticket",
    "source": "zendesk",
    "event_type": "ticket.status_changed",
    "conditions": {
        "all": [
            {"field": "event.current", "op": "equals", "value": "solved"},
            {"field": "contact.plan", "op": "in", "value": ["pro", "enterprise"]},
        ]
    },
    "survey_id": "8b0e2b8e-0c1f-4a57-9d5e-3f7f3b1d2a10",
    "channel": "whatsapp",
    "fallback_channels": ["sms", "email"],
    "delay_seconds": 86400,
    "sample_percent": 50,
}


class RuleCreate(Clean):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_RULE_EXAMPLE]})

    name: str = Field(min_length=1, max_length=200)
    source: str | None = Field(
        None, pattern=SOURCE_PATTERN, description="Only events from this source; default any"
    )
    event_type: str = Field(min_length=1, max_length=200, description="Exact, 'ticket.*' or '*'")
    conditions: dict[str, Any] | None = Field(
        None, description="{field, op, value} leaves combined with all / any / not"
    )
    survey_id: str = Field(min_length=1, max_length=36)
    kind: SurveyKind = "transactional"
    channel: Channel = "email"
    fallback_channels: list[Channel] = Field(default_factory=list, max_length=4)
    locale: str | None = Locale
    delay_seconds: int = Field(0, ge=0, le=365 * 24 * 3600)
    recurrence_days: int | None = Field(None, ge=1, le=3650, description="Ask again every N days")
    sample_percent: float = Field(100, ge=0, le=100)
    survey_cap: CapIn | None = Field(None, description="At most N of this survey per contact per D days")
    exempt_from_caps: bool = False
    respect_quiet_hours: bool = True
    enabled: bool = True


class RulePatch(Clean):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"enabled": False}]})

    name: str | None = Field(None, min_length=1, max_length=200)
    source: str | None = Field(None, pattern=SOURCE_PATTERN)
    event_type: str | None = Field(None, min_length=1, max_length=200)
    conditions: dict[str, Any] | None = None
    survey_id: str | None = Field(None, min_length=1, max_length=36)
    kind: SurveyKind | None = None
    channel: Channel | None = None
    fallback_channels: list[Channel] | None = Field(None, max_length=4)
    locale: str | None = Locale
    delay_seconds: int | None = Field(None, ge=0, le=365 * 24 * 3600)
    recurrence_days: int | None = Field(None, ge=1, le=3650)
    sample_percent: float | None = Field(None, ge=0, le=100)
    survey_cap: CapIn | None = None
    exempt_from_caps: bool | None = None
    respect_quiet_hours: bool | None = None
    enabled: bool | None = None


class RuleOut(RuleCreate):
    id: str
    version: int
    created_at: datetime | None = None
    updated_at: datetime | None = None


class AuditEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    entity: str
    entity_id: str
    action: str
    actor: str
    at: datetime
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class DryRunContact(ContactFields):
    model_config = ConfigDict(extra="forbid")

    external_id: str | None = Field(None, min_length=1, max_length=200)
    opted_out: bool = False
    opted_out_channels: list[Channel] = Field(default_factory=list)


class DryRunRequest(Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "source": "zendesk",
                    "event_type": "ticket.status_changed",
                    "properties": {"current": "solved"},
                    "contact": {"external_id": "cus_42"},
                }
            ]
        },
    )

    source: str = Field("api", max_length=40)
    event_type: str = Field(min_length=1, max_length=200)
    occurred_at: datetime | None = Field(None, strict=False, description="ISO 8601 with a time zone")
    properties: dict[str, Any] = Field(default_factory=dict)
    contact: DryRunContact = Field(
        description="external_id alone uses the stored contact and its history; other fields override it"
    )
    rules: list[RuleCreate] | None = Field(None, max_length=50, description="Draft rules to try instead")


class DryRunRule(BaseModel):
    rule_id: str | None
    rule_name: str
    matched: bool
    conditions: list[dict[str, Any]]
    outcome: str | None
    reason: str
    send_at: datetime | None = None
    channel: str | None = None
    fallback_channels: list[str] = Field(default_factory=list)


class DryRunResult(BaseModel):
    contact_known: bool
    history: int = Field(description="Surveys requested for this contact within the longest cap window")
    rules: list[DryRunRule]
