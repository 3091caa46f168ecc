"""Request and response bodies for integrations: their kind, secret and config (a field mapping)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.trigger.schemas.common import SOURCE_PATTERN, Clean, Kind, Strict


class FieldMapping(Strict):
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


class IntegrationConfig(Strict):
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
        None, pattern=SOURCE_PATTERN, description="What rules match on (event.source); default the kind"
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
