"""CRM connectors and their call log."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from services.dispatch.schemas.common import Flag

MatchBy = Literal["email", "contact_id"]


class CrmConnectorIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"kind": "hubspot", "name": "HubSpot", "access_token": "pat-na1-…", "match_by": "email"}
            ]
        },
    )

    kind: Literal["hubspot"] = Field(description="The CRM (HubSpot; more kinds to come)")
    name: str = Field(min_length=1, max_length=200)
    access_token: SecretStr = Field(
        min_length=1,
        max_length=500,
        description="A HubSpot private app's token; stored encrypted, never shown again",
    )
    match_by: MatchBy = Field(
        "email",
        description="`email`: the respondent's email (`?idProperty=email`); `contact_id`: closeloop's contact id is "
        "the HubSpot record id",
    )
    burst_per_10s: int = Field(100, ge=1, le=1000, description="At most this many requests in any 10 seconds")


class CrmConnectorPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    enabled: Flag | None = None
    match_by: MatchBy | None = None
    burst_per_10s: int | None = Field(None, ge=1, le=1000)


class CrmCredentialsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    access_token: SecretStr = Field(min_length=1, max_length=500)


class CrmConnectorOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    name: str
    match_by: str
    burst_per_10s: int
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
            "match_by": value.config.get("match_by", "email"),
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
