"""Request and response body of the workspace settings: frequency cap, quiet hours, time zone."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.trigger.schemas.common import CapIn, TimeZone

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


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
