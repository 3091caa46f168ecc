"""The workspace's dispatch settings (branding, quiet hours, reminders …) and its channels' configuration."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator
from pydantic.json_schema import JsonDict

from services.dispatch import domain
from services.dispatch.schemas.common import Flag, HeaderLine
from shared.timezones import is_timezone
from shared.vocabulary import SEND_CHANNELS, Channel, SendChannel

DEPRECATED: JsonDict = {"deprecated": True}


class Branding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: HeaderLine | None = Field(None, max_length=100, description="Shown at the top of every email.")
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

    branding: Branding = Field(
        default_factory=Branding,
        description="Deprecated: branding belongs to responses (`PUT /v1/branding` there), which tells dispatch "
        "by event; once it has, its branding wins over this one. Answered for one more release.",
        json_schema_extra=DEPRECATED,
    )
    quiet_hours: QuietHours | None = Field(
        None,
        description="null: send at any hour. Deprecated: quiet hours belong to trigger (`PUT /v1/settings` "
        "there), which tells dispatch by event; once it has, its quiet hours win over these. Answered for one "
        "more release.",
        json_schema_extra=DEPRECATED,
    )
    reminders: Reminders = Field(default_factory=Reminders)
    open_tracking: Flag | None = Field(
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
    mail_from: HeaderLine | None = Field(None, max_length=300, description="email: From header")
    reply_to: HeaderLine | None = Field(None, max_length=300, description="email: Reply-To header")
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
