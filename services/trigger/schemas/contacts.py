"""Request and response bodies for contacts, opt-outs and the bulk import."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

from services.trigger.schemas.common import Clean, Locale, Strict, TimeZone
from shared.vocabulary import Channel


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
    # Read from a ``Contact`` or from a row of ``CONTACT_COLUMNS`` (a mapping); a null JSON column is empty.
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(
        description="The contact's id in closeloop: what every event and every service's API calls "
        "`contact_id` (`GET /v1/contacts/by-id/{id}`)"
    )
    external_id: str | None = Field(
        description="The contact's id in your CRM (`GET /v1/contacts/{external_id}`); null for a contact "
        "known by email alone"
    )
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

    @field_validator("attributes", mode="before")
    @classmethod
    def _attributes(cls, value: Any) -> Any:
        return value or {}

    @field_validator("opted_out_channels", mode="before")
    @classmethod
    def _opted_out_channels(cls, value: Any) -> Any:
        return value or []


class OptOut(Strict):
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
