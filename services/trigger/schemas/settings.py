"""Request and response body of the workspace settings: frequency cap, quiet hours, time zone."""

from __future__ import annotations

import re

from pydantic import ConfigDict, Field, field_validator

from services.trigger.schemas.common import CapIn, Strict, TimeZone
from shared.vocabulary import SEND_CHANNELS, SendChannel

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class QuietHoursIn(Strict):
    """When the workspace's contacts are not messaged; what dispatch's quiet hours offered, now kept here
    (trigger decides when to send) and published to dispatch as ``QuietHoursChanged``."""

    model_config = ConfigDict(extra="forbid")

    start: str = Field(description="HH:MM in the contact's time zone", examples=["21:00"])
    end: str = Field(description="HH:MM; before start means the next morning", examples=["08:00"])
    channels: list[SendChannel] = Field(
        default_factory=lambda: list(SEND_CHANNELS),
        min_length=1,
        description="The channels that keep quiet hours (default: every channel that sends a message; "
        "a link is never sent, so it never waits). To keep none, leave quiet_hours out.",
    )
    default_timezone: TimeZone | None = Field(
        None,
        max_length=64,
        description="For contacts without a time zone: the settings' default_timezone, which this sets "
        "too (give it in either place, or in both with the same value)",
    )

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError("use HH:MM, 24-hour clock")
        return value

    @field_validator("channels")
    @classmethod
    def _once_each(cls, value: list[SendChannel]) -> list[SendChannel]:
        return [c for c in SEND_CHANNELS if c in value]


class WorkspaceSettings(Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "frequency_cap": {"max_surveys": 1, "days": 30},
                    "quiet_hours": {
                        "start": "21:00",
                        "end": "08:00",
                        "channels": ["email", "sms", "whatsapp", "chat"],
                        "default_timezone": "Europe/Amsterdam",
                    },
                    "default_timezone": "Europe/Amsterdam",
                }
            ]
        },
    )

    frequency_cap: CapIn | None = Field(None, description="Across all surveys, per contact")
    quiet_hours: QuietHoursIn | None = Field(None, description="null: send at any hour")
    default_timezone: TimeZone = Field("UTC", max_length=64, description="For contacts without a time zone")
