"""Zendesk webhooks: the signature, event subscriptions (``zen:event-type:…``), and trigger or
automation bodies (the standard shape, or a mapping)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from services.trigger.sources.common import (
    ContactRef,
    Incoming,
    PayloadError,
    SignatureError,
    SignedRequest,
    check_age,
    constant_time_equal,
    event_key,
    id_text,
    parse_email,
    parse_json,
    parse_time,
    required_header,
)
from services.trigger.sources.generic import apply_mapping
from services.trigger.sources.standard import parse_standard_shape


def zendesk_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Return ``X-Zendesk-Webhook-Signature``: base64 HMAC-SHA256 of timestamp + body."""
    return base64.b64encode(
        hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    ).decode()


def verify_zendesk(secret: str, request: SignedRequest, *, tolerance_s: float) -> None:
    """Accept a signature of the signing secret over a timestamp within the tolerance and the body."""
    signature = required_header(request.headers, "x-zendesk-webhook-signature")
    timestamp = required_header(request.headers, "x-zendesk-webhook-signature-timestamp")
    when = parse_time(timestamp)
    if when is None:
        raise SignatureError(
            "X-Zendesk-Webhook-Signature-Timestamp is not an ISO 8601 time",
            header="x-zendesk-webhook-signature-timestamp",
        )
    check_age(request.now - when.timestamp(), tolerance_s, "x-zendesk-webhook-signature-timestamp")
    if not constant_time_equal(signature, zendesk_signature(secret, timestamp, request.body)):
        raise SignatureError(
            "X-Zendesk-Webhook-Signature does not match this integration's signing secret",
            header="x-zendesk-webhook-signature",
        )


def parse_zendesk(body: bytes, headers: Mapping[str, str], mapping: Mapping[str, Any]) -> list[Incoming]:
    """Zendesk event subscriptions (``zen:event-type:…``) or a trigger/automation's custom JSON body."""
    obj = parse_json(body)
    if not isinstance(obj, dict):
        raise PayloadError("Zendesk sends a JSON object.", field="body")
    invocation = headers.get("x-zendesk-webhook-invocation-id")
    event_type = obj.get("type")
    if isinstance(event_type, str) and event_type.startswith("zen:event-type:"):
        return [_zendesk_event(obj, event_type.removeprefix("zen:event-type:"))]
    if mapping:
        return [apply_mapping(obj, mapping, event_id=invocation)]
    return [parse_standard_shape(obj, event_id=None if id_text(obj.get("id")) else invocation)]


def _zendesk_event(obj: dict[str, Any], event_type: str) -> Incoming:
    """Return an event subscription's event: its requester (or user) is the contact."""
    event_id = id_text(obj.get("id"))
    if event_id is None:
        raise PayloadError("id is missing from the Zendesk event", field="id")
    detail: dict[str, Any] = obj["detail"] if isinstance(obj.get("detail"), dict) else {}
    change: dict[str, Any] = obj["event"] if isinstance(obj.get("event"), dict) else {}
    subject = str(obj.get("subject") or "")
    if subject.startswith("zen:user:") or event_type.startswith("user."):
        contact = ContactRef(
            external_id=id_text(detail.get("id")),
            email=parse_email(detail.get("email"), "detail.email"),
            fields={"name": detail["name"]} if isinstance(detail.get("name"), str) else {},
        )
    else:
        contact = ContactRef(external_id=id_text(detail.get("requester_id")))
    if not contact.external_id and not contact.email:
        raise PayloadError(
            "The Zendesk event names no requester (detail.requester_id).", field="detail.requester_id"
        )
    properties: dict[str, Any] = {k: v for k, v in detail.items() if not isinstance(v, dict | list)}
    for key in ("current", "previous"):
        value = change.get(key)
        properties[key] = (
            value.get("status", value) if isinstance(value, dict) and "status" in value else value
        )
    properties.update(
        {"detail": detail, "event": change, "subject": subject, "account_id": obj.get("account_id")}
    )
    return Incoming(
        source_event_id=event_key(event_id),
        event_type=event_type,
        occurred_at=parse_time(obj.get("time")),
        contact=contact,
        properties=properties,
    )
