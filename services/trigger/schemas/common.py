"""What the trigger API's bodies share: the integration ``Kind`` (channels and survey kinds are
``shared.vocabulary``'s), checked text (locales, time zones, source names), the NUL-free ``Clean``
base and a cap."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from services.trigger.sources.common import without_nul
from shared.timezones import is_timezone

Kind = Literal["standard-webhooks", "hubspot", "zendesk", "cloudevents", "generic"]
Locale = Field(None, max_length=20, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
SOURCE_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,39}$"


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


class CapIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_surveys: int = Field(ge=1, le=1000)
    days: int = Field(ge=1, le=3650)
