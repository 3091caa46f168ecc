"""What the trigger API's bodies share: the integration ``Kind`` (channels and survey kinds are
``shared.vocabulary``'s), checked text (locales, time zones, source names), the ``Strict`` base (no
guessed types), the NUL-free ``Clean`` base and a cap."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

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


def _flag(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise ValueError("use true or false")


QueryFlag = Annotated[bool, BeforeValidator(_flag)]
"""A boolean query parameter: ``true`` or ``false`` only (not ``yes``, ``on`` or ``1``)."""


class Strict(BaseModel):
    """A request body read strictly: a boolean is ``true`` or ``false`` and a number a JSON number — no
    ``"yes"`` for true, no ``"1"`` or ``1.0`` for an integer, no ``true`` for 1. A value of another
    type is refused (422 naming the field), never guessed. Date-times stay ISO 8601 text."""

    model_config = ConfigDict(strict=True)


class Clean(Strict):
    """A request body whose text is stored: NUL characters (which PostgreSQL refuses) are dropped."""

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        return without_nul(data)


class CapIn(Strict):
    model_config = ConfigDict(extra="forbid")

    max_surveys: int = Field(ge=1, le=1000)
    days: int = Field(ge=1, le=3650)
