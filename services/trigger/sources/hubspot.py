"""HubSpot webhooks: the v3 signature (v1/v2 for legacy apps) and its batches of subscription events."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from services.trigger.sources.common import (
    EMAIL_PATTERN,
    ContactRef,
    Incoming,
    PayloadError,
    SignatureError,
    SignedRequest,
    check_age,
    constant_time_equal,
    event_key,
    id_text,
    parse_json,
    parse_time,
    required_header,
)

# HubSpot's v3 scheme signs the URI with these characters decoded (its documented table).
_HUBSPOT_DECODE = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
_HUBSPOT_DECODE_RE = re.compile("|".join(_HUBSPOT_DECODE), re.IGNORECASE)
# HubSpot contact properties that are contact fields here; any other property is an attribute.
_HUBSPOT_CONTACT_FIELDS = {
    "phone": "phone",
    "mobilephone": "phone",
    "hs_language": "locale",
    "country": "country",
    "company": "company",
}
# HubSpot's generic ``object.*`` subscriptions name the object type by id.
_HUBSPOT_OBJECT_TYPES = {"0-1": "contact", "0-2": "company", "0-3": "deal", "0-5": "ticket"}


def hubspot_uri(uri: str) -> str:
    """Return ``uri`` with the characters HubSpot's v3 scheme decodes, decoded."""
    return _HUBSPOT_DECODE_RE.sub(lambda m: _HUBSPOT_DECODE[m.group(0).upper()], uri)


def hubspot_v3_signature(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """Return ``X-HubSpot-Signature-v3``: base64 HMAC-SHA256 of method + URI + body + timestamp."""
    message = method.upper().encode() + hubspot_uri(uri).encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def hubspot_legacy_signature(secret: str, version: str, method: str, uri: str, body: bytes) -> str:
    """Return ``X-HubSpot-Signature`` v1 (secret + body) or v2 (secret + method + URI + body), hex SHA-256."""
    source = secret.encode() + (body if version == "v1" else method.upper().encode() + uri.encode() + body)
    return hashlib.sha256(source).hexdigest()


def verify_hubspot(secret: str, request: SignedRequest, *, tolerance_s: float, legacy: bool) -> None:
    """Accept a v3 signature within the tolerance; v1/v2 only when the integration allows legacy apps."""
    headers = request.headers
    if "x-hubspot-signature-v3" in headers or not legacy:
        signature = required_header(headers, "x-hubspot-signature-v3")
        timestamp = required_header(headers, "x-hubspot-request-timestamp")
        if not timestamp.isdigit():
            raise SignatureError(
                "X-HubSpot-Request-Timestamp must be Unix milliseconds", header="x-hubspot-request-timestamp"
            )
        check_age(request.now - int(timestamp) / 1000, tolerance_s, "x-hubspot-request-timestamp")
        for uri in request.uris:
            if constant_time_equal(
                signature, hubspot_v3_signature(secret, request.method, uri, request.body, timestamp)
            ):
                return
        raise SignatureError(
            "X-HubSpot-Signature-v3 does not match this integration's client secret (the signed URI is the "
            "webhook URL HubSpot calls: check CLOSELOOP_TRIGGER_PUBLIC_URL)",
            header="x-hubspot-signature-v3",
        )
    signature = required_header(headers, "x-hubspot-signature")
    version = headers.get("x-hubspot-signature-version", "v1").lower()
    if version not in ("v1", "v2"):
        raise SignatureError(
            "X-HubSpot-Signature-Version must be v1 or v2", header="x-hubspot-signature-version"
        )
    for uri in request.uris:
        if constant_time_equal(
            signature.lower(), hubspot_legacy_signature(secret, version, request.method, uri, request.body)
        ):
            return
    raise SignatureError(
        f"X-HubSpot-Signature ({version}) does not match this integration's client secret",
        header="x-hubspot-signature",
    )


def parse_hubspot(body: bytes, config: Mapping[str, Any]) -> tuple[list[Incoming], int]:
    """Return (events, ignored) from a HubSpot batch: a JSON array of subscription events."""
    items = parse_json(body)
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        raise PayloadError("HubSpot sends a JSON array of events.", field="body")
    portals = {str(p) for p in config.get("portal_ids") or ()}
    events, ignored = [], 0
    times: dict[int | str, datetime | None] = {}  # a batch's events mostly share their occurredAt
    for index, item in enumerate(items):
        where = f"{index}"
        if not isinstance(item, dict):
            raise PayloadError("Each HubSpot event is a JSON object.", field=where)
        subscription = item.get("subscriptionType")
        object_id = id_text(item.get("objectId"))
        if not isinstance(subscription, str) or "." not in subscription:
            raise PayloadError(
                "subscriptionType is missing, e.g. contact.propertyChange", field=f"{where}.subscriptionType"
            )
        if object_id is None:
            raise PayloadError("objectId is missing", field=f"{where}.objectId")
        if item.get("eventId") is None:
            raise PayloadError("eventId is missing", field=f"{where}.eventId")
        if portals and str(item.get("portalId")) not in portals:
            ignored += 1
            continue
        raw_time = item.get("occurredAt")
        if isinstance(raw_time, int | str) and not isinstance(raw_time, bool):  # 1, 1.0, True: one key
            if raw_time not in times:
                times[raw_time] = parse_time(raw_time)
            occurred_at = times[raw_time]
        else:
            occurred_at = parse_time(raw_time)
        if raw_time is not None and occurred_at is None:
            raise PayloadError("occurredAt is not Unix milliseconds", field=f"{where}.occurredAt")
        object_type, _, action = subscription.partition(".")
        if object_type == "object":
            object_type = _HUBSPOT_OBJECT_TYPES.get(
                str(item.get("objectTypeId")), f"object-{item.get('objectTypeId')}"
            )
        properties = dict(item)
        properties.pop("attemptNumber", None)
        if isinstance(item.get("propertyName"), str):
            properties.setdefault(item["propertyName"], item.get("propertyValue"))
        contact = _hubspot_contact(object_id, item) if object_type == "contact" else None
        events.append(
            Incoming(
                # HubSpot's eventId is not guaranteed unique on its own; with the portal, the
                # subscription, the object and the time it is, and a retry repeats all of them.
                source_event_id=event_key(
                    item.get("portalId"), item.get("subscriptionId"), item["eventId"], object_id, raw_time
                ),
                event_type=f"{object_type}.{action}"[:200],
                occurred_at=occurred_at,
                contact=contact,
                properties=properties,
                object_ref=None if contact else (f"{object_type}s", object_id),
            )
        )
    return events, ignored


def _hubspot_contact(object_id: str, item: dict[str, Any]) -> ContactRef:
    """The contact a ``contact.*`` event is about; a property change also updates the contact."""
    name, value = item.get("propertyName"), item.get("propertyValue")
    if not isinstance(name, str) or value in (None, "") or item.get("subscriptionType") == "contact.deletion":
        return ContactRef(external_id=object_id)
    if name == "email":
        text = str(value).strip()
        # An address HubSpot accepted but we cannot read must not fail the whole batch.
        return ContactRef(external_id=object_id, email=text.lower() if EMAIL_PATTERN.match(text) else None)
    if name in _HUBSPOT_CONTACT_FIELDS:
        return ContactRef(external_id=object_id, fields={_HUBSPOT_CONTACT_FIELDS[name]: str(value)[:200]})
    return ContactRef(external_id=object_id, attributes={name: value})
