"""Request and response bodies of the trigger API."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

from services.trigger.sources.common import without_nul
from services.trigger.sources.standard import InboundEvent
from shared.timezones import is_timezone

Channel = Literal["email", "sms", "whatsapp", "chat", "link"]
Kind = Literal["standard-webhooks", "hubspot", "zendesk", "cloudevents", "generic"]
SurveyKind = Literal["transactional", "relationship", "retention"]
Locale = Field(None, max_length=20, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
_SOURCE = r"^[a-z0-9][a-z0-9._-]{0,39}$"
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _timezone(value: str) -> str:
    if not is_timezone(value):
        raise ValueError(f"{value!r} is not an IANA time zone, e.g. Europe/Amsterdam")
    return value


TimeZone = Annotated[str, AfterValidator(_timezone)]


class Clean(BaseModel):
    """A request body whose text is stored: NUL characters (which PostgreSQL refuses) are dropped."""

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        return without_nul(data)


# --- integrations ----------------------------------------------------------------------------


class FieldMapping(BaseModel):
    """Where a body keeps the event's parts: dot paths into the JSON (``ticket.requester.email``)."""

    model_config = ConfigDict(extra="forbid")

    event_type: str | None = Field(None, max_length=200, description="Path of the event type")
    event_type_value: str | None = Field(None, max_length=200, description="A fixed event type instead")
    event_id: str | None = Field(
        None, max_length=200, description="Path of the sender's event id (deduplication); else a body hash"
    )
    occurred_at: str | None = Field(
        None, max_length=200, description="Path of the event time (ISO 8601 or Unix)"
    )
    properties: str | None = Field(
        None, max_length=200, description="Path of the properties; default the body"
    )
    contact_external_id: str | None = Field(None, max_length=200)
    contact_email: str | None = Field(None, max_length=200)
    contact_name: str | None = Field(None, max_length=200)
    contact_phone: str | None = Field(None, max_length=200)
    contact_locale: str | None = Field(None, max_length=200)
    contact_timezone: str | None = Field(None, max_length=200)
    contact_country: str | None = Field(None, max_length=200)
    contact_company: str | None = Field(None, max_length=200)
    contact_role: str | None = Field(None, max_length=200)
    contact_plan: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _complete(self) -> FieldMapping:
        if not (self.event_type or self.event_type_value):
            raise ValueError("a mapping needs event_type (a path) or event_type_value (a fixed type)")
        if not (self.contact_external_id or self.contact_email):
            raise ValueError("a mapping needs contact_external_id or contact_email")
        return self


class IntegrationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mapping: FieldMapping | None = None
    auth: Literal["standard-webhooks", "header", "basic", "bearer"] | None = Field(
        None,
        description="generic and cloudevents only: how the sender proves itself. Default: header "
        "(generic), standard-webhooks (cloudevents).",
    )
    secret_header: str | None = Field(
        None,
        max_length=100,
        pattern=r"^[A-Za-z0-9-]+$",
        description="auth=header: the header (X-Closeloop-Secret)",
    )
    basic_username: str | None = Field(
        None, max_length=100, description="auth=basic: the user name (closeloop)"
    )
    allow_legacy_signatures: bool = Field(False, description="hubspot: accept v1/v2 signatures (legacy apps)")
    portal_ids: list[int] | None = Field(None, description="hubspot: only events from these portals")
    access_token: str | None = Field(
        None,
        min_length=8,
        max_length=500,
        description="hubspot: a private-app token (scopes crm.objects.deals.read, tickets) to look up "
        "the contact of deal and ticket events; never shown again",
    )
    rate_limit_per_s: float | None = Field(
        None, gt=0, le=100_000, description="requests/s; default the service's"
    )


class IntegrationCreate(Clean):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "Helpdesk", "kind": "standard-webhooks"},
                {"name": "HubSpot", "kind": "hubspot", "secret": "<app client secret>"},
                {
                    "name": "Freshdesk",
                    "kind": "generic",
                    "source": "freshdesk",
                    "config": {
                        "auth": "basic",
                        "mapping": {
                            "event_type_value": "ticket.resolved",
                            "event_id": "freshdesk_webhook.ticket_id",
                            "contact_email": "freshdesk_webhook.ticket_contact_email",
                            "contact_name": "freshdesk_webhook.ticket_contact_name",
                        },
                    },
                },
            ]
        },
    )

    name: str = Field(min_length=1, max_length=200)
    kind: Kind = "standard-webhooks"
    source: str | None = Field(
        None, pattern=_SOURCE, description="What rules match on (event.source); default the kind"
    )
    secret: str | None = Field(
        None,
        min_length=8,
        max_length=500,
        description="hubspot: the app's client secret; zendesk: the webhook's signing secret (both "
        "required). Others: generated when left out.",
    )
    enabled: bool = True
    config: IntegrationConfig = Field(default_factory=IntegrationConfig)


class IntegrationUpdate(Clean):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"enabled": False}]})

    name: str | None = Field(None, min_length=1, max_length=200)
    enabled: bool | None = None
    secret: str | None = Field(None, min_length=8, max_length=500)
    config: IntegrationConfig | None = None


class IntegrationOut(BaseModel):
    id: str
    name: str
    kind: str
    source: str
    enabled: bool
    webhook_url: str
    config: dict[str, Any] = Field(default_factory=dict)
    secret: str | None = Field(None, description="Shown once, when the integration is created.")


# --- contacts ----------------------------------------------------------------------------------


class ContactFields(Clean):
    email: EmailStr | None = None
    name: str | None = Field(None, max_length=200)
    phone: str | None = Field(None, max_length=40, pattern=r"^\+?[0-9 ()./-]{5,40}$")
    locale: str | None = Locale
    timezone: TimeZone | None = Field(None, max_length=64, description="IANA zone, e.g. Europe/Amsterdam")
    country: str | None = Field(None, max_length=64)
    company: str | None = Field(None, max_length=200)
    role: str | None = Field(
        None, max_length=100, description="Role in the buying unit: decision maker, user, …"
    )
    plan: str | None = Field(None, max_length=100)
    attributes: dict[str, Any] | None = Field(
        None, description="Any custom fields; merged into the stored ones"
    )


class ContactUpsert(ContactFields):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "email": "ada@example.com",
                    "name": "Ada Lovelace",
                    "locale": "en",
                    "timezone": "Europe/London",
                    "plan": "enterprise",
                    "attributes": {"segment": "smb"},
                }
            ]
        },
    )

    opted_out: bool | None = None


class ContactCreate(ContactUpsert):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"external_id": "cus_42", "email": "ada@example.com", "name": "Ada"}]
        },
    )

    external_id: str | None = Field(None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _identified(self) -> ContactCreate:
        if not self.external_id and not self.email:
            raise ValueError("give external_id, email or both")
        return self


class ContactOut(BaseModel):
    id: str
    external_id: str | None
    email: str | None
    name: str | None
    phone: str | None
    locale: str | None
    timezone: str | None = None
    country: str | None = None
    company: str | None = None
    role: str | None = None
    plan: str | None = None
    attributes: dict[str, Any]
    opted_out: bool
    opted_out_channels: list[str] = Field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None


class OptOut(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{}, {"channel": "sms"}]})

    channel: Channel | None = Field(None, description="Leave out to opt out of every channel")


class ImportError_(BaseModel):
    row: int
    field: str
    message: str


class ImportResult(BaseModel):
    rows: int
    created: int
    updated: int
    failed: int
    errors: list[ImportError_]


# --- rules --------------------------------------------------------------------------------------


class CapIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_surveys: int = Field(ge=1, le=1000)
    days: int = Field(ge=1, le=3650)


class QuietHoursIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: str = Field(description="HH:MM in the contact's time zone", examples=["21:00"])
    end: str = Field(description="HH:MM; before start means the next morning", examples=["08:00"])

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError("use HH:MM, 24-hour clock")
        return value


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
    source: str | None = Field(None, pattern=_SOURCE, description="Only events from this source; default any")
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
    source: str | None = Field(None, pattern=_SOURCE)
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
    id: str
    entity: str
    entity_id: str
    action: str
    actor: str
    at: datetime
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class WorkspaceSettings(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "frequency_cap": {"max_surveys": 1, "days": 30},
                    "quiet_hours": {"start": "21:00", "end": "08:00"},
                    "default_timezone": "Europe/Amsterdam",
                }
            ]
        },
    )

    frequency_cap: CapIn | None = Field(None, description="Across all surveys, per contact")
    quiet_hours: QuietHoursIn | None = None
    default_timezone: TimeZone = Field("UTC", max_length=64, description="For contacts without a time zone")


# --- events ----------------------------------------------------------------------------------


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


class DecisionOut(BaseModel):
    id: str | None = None
    rule_id: str
    rule_version: int | None = None
    contact_id: str
    event_id: str | None = None
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
    contact_id: str | None = Field(description="Set once the event is evaluated (and it named a contact)")
    received_at: datetime
    status: Literal["pending", "evaluated", "failed"] = Field(
        description="`pending`: stored, the rules not applied yet (usually for milliseconds); "
        "`evaluated`: `decisions` is complete; `failed`: the rules could not be applied (`error` says why)"
    )
    evaluated_at: datetime | None = None
    error: str | None = None
    properties: dict[str, Any]
    decisions: list[DecisionOut]


class DryRunContact(ContactFields):
    model_config = ConfigDict(extra="forbid")

    external_id: str | None = Field(None, min_length=1, max_length=200)
    opted_out: bool = False
    opted_out_channels: list[Channel] = Field(default_factory=list)


class DryRunRequest(BaseModel):
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
    occurred_at: datetime | None = None
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
