"""Request and response bodies of the dispatch API, and the workspace settings it stores."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

from services.dispatch import domain
from shared.timezones import is_timezone
from shared.vocabulary import SEND_CHANNELS, Channel, SendChannel, SurveyKind

InvitationStatus = Literal["scheduled", "sending", "sent", "failed"]


def _example(value: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [value]})


# --- workspace settings ------------------------------------------------------------------------


class Branding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        None, max_length=100, description="Shown in the email header and the NPS question."
    )
    colour: str = Field("#2563eb", description="Buttons and accents, #rrggbb.")
    logo_url: HttpUrl | None = Field(None, description="https URL of a logo (loaded by the mail client).")
    footer: str | None = Field(
        None, max_length=500, description="Postal address or legal line under every email."
    )

    @field_validator("colour")
    @classmethod
    def _colour(cls, value: str) -> str:
        if not domain.HEX_COLOUR.match(value):
            raise ValueError("use a colour as #rrggbb")
        return value


class QuietHours(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: str = Field("21:00", description="Local time (HH:MM) from which nothing is sent.")
    end: str = Field("08:00", description="Local time (HH:MM) at which sending resumes.")
    channels: list[SendChannel] = Field(
        default_factory=lambda: list(SEND_CHANNELS),
        description="Channels that keep quiet hours.",
    )
    default_timezone: str = Field("UTC", description="For contacts whose timezone is not known.")

    @field_validator("start", "end")
    @classmethod
    def _time(cls, value: str) -> str:
        domain.parse_hhmm(value)
        return value

    @field_validator("default_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if not is_timezone(value):
            raise ValueError(f"{value!r} is not an IANA timezone such as Europe/Amsterdam")
        return value


class Reminders(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(0, ge=0, le=5, description="Reminders after the invitation; 0 sends none.")
    interval_days: float = Field(3, gt=0, le=60, description="Days between the invitation and each reminder.")
    channel: SendChannel | None = Field(
        None, description="Remind on another channel; null: the invitation's."
    )


class WorkspaceConfig(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "branding": {
                        "name": "Acme",
                        "colour": "#0f766e",
                        "footer": "Acme Ltd, 1 Main St, Springfield",
                    },
                    "quiet_hours": {"start": "21:00", "end": "08:00", "default_timezone": "Europe/Amsterdam"},
                    "reminders": {"count": 1, "interval_days": 3, "channel": "sms"},
                    "open_tracking": False,
                    "link_ttl_days": 14,
                }
            ]
        },
    )

    branding: Branding = Field(default_factory=Branding)
    quiet_hours: QuietHours | None = Field(None, description="null: send at any hour.")
    reminders: Reminders = Field(default_factory=Reminders)
    open_tracking: bool | None = Field(
        None, description="Add a 1×1 tracking pixel to emails; null: the deployment default."
    )
    link_ttl_days: int | None = Field(None, ge=1, le=365, description="null: the deployment default.")


# --- channels -------------------------------------------------------------------------------


class ChannelConfigIn(BaseModel):
    """Credentials and addresses of one channel; omitted fields fall back to the deployment's defaults."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "account_sid": "ACxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                    "auth_token": "your-auth-token",
                    "from": "+14155550100",
                    "rate_per_minute": 60,
                }
            ]
        },
    )

    base_url: HttpUrl | None = Field(None, description="sms/whatsapp: a Twilio-compatible API base URL.")
    account_sid: str | None = Field(None, min_length=2, max_length=64, description="sms/whatsapp")
    auth_token: str | None = Field(
        None, min_length=8, max_length=200, description="sms/whatsapp (write-only)"
    )
    from_: str | None = Field(None, alias="from", max_length=64, description="sms/whatsapp: E.164 or MG… SID")
    webhook_url: HttpUrl | None = Field(None, description="chat: Slack-compatible incoming webhook URL")
    mail_from: str | None = Field(None, max_length=300, description="email: From header")
    reply_to: str | None = Field(None, max_length=300, description="email: Reply-To header")
    rate_per_minute: int | None = Field(
        None, ge=1, le=100_000, description="Sends per minute on this channel."
    )

    @field_validator("from_")
    @classmethod
    def _sender(cls, value: str | None) -> str | None:
        if value is None or value.startswith("MG"):
            return value
        if domain.normalise_phone(value) is None:
            raise ValueError("use an E.164 number such as +14155550100, or a Messaging Service SID (MG…)")
        return domain.normalise_phone(value)

    def stored(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return data


class ChannelConfigOut(BaseModel):
    channel: Channel
    configured: bool
    config: dict[str, Any] = Field(description="The workspace's own values; secrets are masked.")
    effective_sender: str | None = None


# --- invitations -------------------------------------------------------------------------------


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
                    "survey_url": "https://surveys.example.com/s/eyJ3cyI6…",
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
    model_config = _example(
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
    counts: dict[str, int]
    rates: dict[str, float | None]
    bounced: int
    complained: int
    failed: int
    pending: int


# --- templates ---------------------------------------------------------------------------------


class Embed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str | None = Field(None, max_length=300)
    low: int = Field(0, ge=0, le=10)
    high: int = Field(10, ge=0, le=10)
    low_label: str | None = Field(None, max_length=40)
    high_label: str | None = Field(None, max_length=40)

    @model_validator(mode="after")
    def _range(self) -> Embed:
        if self.low >= self.high:
            raise ValueError("low must be below high")
        return self


class TemplateIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Support CSAT, German email",
                    "survey_id": "svy-support",
                    "channel": "email",
                    "locale": "de",
                    "subject": "{{ first_name }}, wie hat {{ agent_first_name or 'unser Team' }} Ihnen geholfen?",
                    "text": "{{ greeting }}\n\nBitte bewerten Sie uns: {{ survey_url }}\n",
                    "html": '<p>{{ greeting }}</p><p><a href="{{ survey_url }}">Jetzt bewerten</a></p>',
                    "embed": {"question": "Wie zufrieden waren Sie?", "low": 1, "high": 5},
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=200)
    survey_id: str | None = Field(None, max_length=64, description="null: every survey")
    channel: SendChannel
    locale: str | None = Field(None, max_length=20, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
    kind: SurveyKind | None = Field(None, description="null: every kind")
    subject: str | None = Field(None, max_length=500, description="email only; null: the built-in subject")
    text: str = Field(min_length=1, max_length=20_000, description="plain text (email) or the whole message")
    html: str | None = Field(
        None, max_length=100_000, description="email only: the content inside the branded layout"
    )
    embed: Embed | None = Field(None, description="email only: the embedded question; null: the default")
    no_embed: bool = Field(False, description="email only: no embedded question at all")


class TemplateOut(BaseModel):
    id: str
    name: str
    survey_id: str | None
    channel: str
    locale: str | None
    kind: str | None
    subject: str | None
    text: str
    html: str | None
    embed: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


class PreviewIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "template_id": None,
                    "channel": "email",
                    "kind": "transactional",
                    "recipient": {"name": "Ada Lovelace", "email": "ada@example.com"},
                    "context": {"agent": "Grace Hopper", "product": "Acme Cloud"},
                }
            ]
        },
    )

    template_id: str | None = Field(None, description="Preview a stored template …")
    template: TemplateIn | None = Field(
        None, description="… or one not stored yet; neither: the built-in one."
    )
    channel: SendChannel = "email"
    kind: SurveyKind = "transactional"
    survey_id: str = Field("preview", max_length=64)
    locale: str | None = Field(None, max_length=20)
    recipient: dict[str, str | None] = Field(default_factory=dict, description="name, email, phone")
    context: dict[str, str] = Field(
        default_factory=dict, description="merge fields: agent, product, ticket_id …"
    )


class PreviewOut(BaseModel):
    subject: str
    text: str
    html: str | None
    template_id: str | None


# --- webhooks ----------------------------------------------------------------------------------


class SubscriptionIn(BaseModel):
    model_config = _example(
        {
            "url": "https://crm.example.com/hooks/closeloop",
            "event_types": ["followup.opened"],
            "description": "CRM",
        }
    )

    url: HttpUrl
    event_types: list[str] = Field(default_factory=list, max_length=50, description="empty: every type")
    description: str | None = Field(None, max_length=500)


class SubscriptionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl | None = None
    event_types: list[str] | None = Field(None, max_length=50)
    description: str | None = Field(None, max_length=500)
    enabled: bool | None = Field(None, description="true re-enables a subscription disabled after failures")


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
    error: str | None
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
