"""CRM connectors and their call log."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from services.dispatch.catalogue import BY_NAME
from services.dispatch.schemas.common import Flag

MatchBy = Literal["email", "contact_id"]
Kind = Literal["hubspot", "zendesk", "generic"]
Auth = Literal["none", "bearer", "basic", "header"]
Secret = SecretStr | None


class GenericMapping(BaseModel):
    """One public event type to one HTTP call (templates: docs/webhooks.md, *CRM connectors*)."""

    model_config = ConfigDict(extra="forbid")

    event_type: str = Field(description="A public event type, e.g. `response.scored`")
    method: Literal["POST", "PUT", "PATCH", "DELETE", "GET"] = "POST"
    url: str = Field(
        max_length=2000,
        pattern=r"^https?://[^{}/?#]+(/.*)?$",
        description="http(s) URL; placeholders such as `{{data.contact_id}}` only after the host",
    )
    body: dict[str, Any] | list[Any] | None = Field(None, description="JSON template; null: no body")

    @field_validator("event_type")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in BY_NAME:
            raise ValueError(f"unknown event type {value!r}; the public catalogue has {sorted(BY_NAME)}")
        return value


class _Credentials(BaseModel):
    access_token: Secret = Field(None, max_length=500, description="hubspot: a private app's token")
    email: str | None = Field(None, max_length=254, description="zendesk: the agent's email (basic auth)")
    api_token: Secret = Field(None, max_length=500, description="zendesk: an API token")
    token: Secret = Field(None, max_length=2000, description="generic, auth `bearer`")
    username: str | None = Field(None, max_length=200, description="generic, auth `basic`")
    password: Secret = Field(None, max_length=500, description="generic, auth `basic`")
    header_name: str | None = Field(
        None, max_length=100, pattern=r"^[A-Za-z0-9-]+$", description="generic, auth `header`"
    )
    header_value: Secret = Field(None, max_length=2000, description="generic, auth `header`")


class CrmConnectorIn(_Credentials):
    """A connector; its credentials are stored encrypted and never shown again."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"kind": "hubspot", "name": "HubSpot", "access_token": "pat-na1-…", "match_by": "email"}
            ]
        },
    )

    kind: Kind
    name: str = Field(min_length=1, max_length=200)
    subdomain: str | None = Field(
        None, pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="zendesk: `acme` for acme.zendesk.com"
    )
    auth: Auth = Field("none", description="generic: how calls authenticate")
    mappings: list[GenericMapping] = Field(
        default_factory=list, max_length=20, description="generic: the calls"
    )
    match_by: MatchBy = Field(
        "email",
        description="hubspot. `email`: the respondent's email (`?idProperty=email`); `contact_id`: closeloop's "
        "contact id is the HubSpot record id",
    )
    burst_per_10s: int = Field(100, ge=1, le=1000, description="At most this many requests in any 10 seconds")
    detractor_notes: bool = Field(
        False, description="hubspot: add a note to the contact on negative feedback"
    )


class CrmConnectorPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    enabled: Flag | None = None
    match_by: MatchBy | None = None
    burst_per_10s: int | None = Field(None, ge=1, le=1000)
    mappings: list[GenericMapping] | None = Field(None, max_length=20)
    detractor_notes: Flag | None = None


class CrmCredentialsIn(_Credentials):
    """New credentials for the connector's kind (and, generic, its ``auth``)."""

    model_config = ConfigDict(extra="forbid")


class CrmConnectorOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    name: str
    match_by: str | None
    subdomain: str | None
    auth: str | None
    mappings: list[dict[str, Any]] | None
    burst_per_10s: int
    detractor_notes: bool | None
    enabled: bool
    prepared: bool = Field(description="The closeloop contact properties exist in the CRM")
    has_credentials: bool = Field(
        True, description="Credentials are stored (encrypted); they are never returned"
    )
    created_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _from_row(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return value
        return {
            "id": value.id,
            "kind": value.kind,
            "name": value.name,
            "match_by": value.config.get("match_by"),
            "subdomain": value.config.get("subdomain"),
            "auth": value.config.get("auth"),
            "mappings": value.config.get("mappings"),
            "detractor_notes": value.config.get("detractor_notes"),
            "burst_per_10s": value.config.get("burst_per_10s", 100),
            "enabled": value.enabled,
            "prepared": value.prepared,
            "created_at": value.created_at,
        }


class CrmAttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    method: str
    path: str
    status_code: int | None
    error: str | None = Field(
        description="Our words: the status code and its reason, or the connection error"
    )
    duration_ms: int
    attempted_at: datetime


class CrmCallOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    event_id: str
    event_type: str
    status: Literal["scheduled", "sending", "done", "failed", "cancelled"]
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime
    done_at: datetime | None
    created_at: datetime
    requests: list[CrmAttemptOut] = Field(default_factory=list)
