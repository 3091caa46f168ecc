"""The shape closeloop documents (Standard Webhooks and ``POST /v1/events``): ``{"type", "timestamp",
"data": {"contact": {...}, ...}}``; and the Standard Webhooks signature."""

from __future__ import annotations

import binascii
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.trigger.sources.common import (
    REF_FIELDS,
    ContactRef,
    Incoming,
    PayloadError,
    SignatureError,
    SignedRequest,
    body_digest,
    event_key,
    id_text,
)
from shared import standard_webhooks

# The shape's models: the validation of what every such webhook sends (``DirectEvent`` in the API's
# schemas extends ``InboundEvent`` with the sender's id).


class EventContact(BaseModel):
    external_id: str | None = Field(None, min_length=1, max_length=200)
    # A plain pattern rather than EmailStr: this runs for every webhook, and the API checks fully.
    email: str | None = Field(None, max_length=320, pattern=r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")
    name: str | None = Field(None, max_length=200)
    phone: str | None = Field(None, max_length=40)
    locale: str | None = Field(None, max_length=20)
    timezone: str | None = Field(None, max_length=64, description="IANA zone; unknown zones are ignored")
    country: str | None = Field(None, max_length=64)
    company: str | None = Field(None, max_length=200)
    role: str | None = Field(None, max_length=100)
    plan: str | None = Field(None, max_length=100)
    attributes: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _identified(self) -> EventContact:
        if not self.external_id and not self.email:
            raise ValueError("name the contact by external_id, email or both")
        return self


class InboundEventData(BaseModel):
    model_config = ConfigDict(extra="allow")

    contact: EventContact


class InboundEvent(BaseModel):
    """A Standard Webhooks payload: ``type``, ``timestamp`` and ``data`` naming the contact."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "ticket.solved",
                    "timestamp": "2026-11-23T10:00:00Z",
                    "data": {
                        "contact": {"external_id": "cus_42", "email": "ada@example.com", "name": "Ada"},
                        "ticket_id": "T-1001",
                    },
                }
            ]
        }
    )

    type: str = Field(min_length=1, max_length=200)
    timestamp: datetime | None = None
    data: InboundEventData


def verify_standard(secret: str, request: SignedRequest, *, tolerance_s: float) -> str:
    """Return the ``webhook-id`` of a Standard Webhooks request signed with ``secret``, its timestamp
    within ``tolerance_s`` of now."""
    try:
        return standard_webhooks.verify(
            secret, dict(request.headers), request.body, now=request.now, tolerance_s=tolerance_s
        )
    except standard_webhooks.SignatureError as exc:
        raise SignatureError(str(exc), header=exc.header) from exc
    except (binascii.Error, ValueError) as exc:
        raise SignatureError(
            "this integration's secret is not a whsec_ secret", header="webhook-signature"
        ) from exc


def _contact_from_model(contact: Any) -> ContactRef:
    """Return the ``EventContact`` of a validated event as a ``ContactRef``."""
    data = contact.model_dump(exclude_none=True)
    return ContactRef(
        external_id=data.pop("external_id", None),
        email=str(data.pop("email")).lower() if data.get("email") else None,
        attributes=data.pop("attributes", {}),
        fields={k: v for k, v in data.items() if k in REF_FIELDS},
    )


def parse_standard_shape(obj: Any, *, event_id: str | None, where: str = "") -> Incoming:
    """``{"type", "timestamp", "data": {"contact": {...}, ...}}``: the shape closeloop documents."""
    if not isinstance(obj, dict):
        raise PayloadError("The body must be a JSON object.", field=where or "body")
    try:
        event = InboundEvent.model_validate(obj)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in (where, *e["loc"]) if p != ""), "message": e["msg"]}
            for e in exc.errors()
        ]
        raise PayloadError(
            "The event does not have the expected shape: " + ", ".join(e["field"] for e in errors),
            field=errors[0]["field"],
            errors=errors,
        ) from exc
    if event.timestamp is not None and event.timestamp.tzinfo is None:
        raise PayloadError("timestamp needs a timezone, e.g. 2026-11-23T10:00:00Z", field=f"{where}timestamp")
    source_id = event_id or (str(obj["id"]) if id_text(obj.get("id")) else None) or body_digest(obj)
    return Incoming(
        source_event_id=event_key(source_id),
        event_type=event.type,
        occurred_at=event.timestamp,
        contact=_contact_from_model(event.data.contact),
        properties=event.data.model_dump(mode="json", exclude={"contact"}),
    )


InboundEvent.model_rebuild()
