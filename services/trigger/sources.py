"""Inbound sources, pure: how each vendor signs its webhooks, and how its payloads become events.

Every source is verified the way its vendor documents it, with constant-time comparisons and a
timestamp tolerance where the scheme has a timestamp; then its body is normalised into
``Incoming`` events (source event id, type, time, contact reference, properties). No I/O here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pydantic_core
from pydantic import ValidationError

from services.trigger.schemas import InboundEvent, without_nul
from shared import standard_webhooks

KINDS = ("standard-webhooks", "hubspot", "zendesk", "cloudevents", "generic")
AUTH_MODES = ("standard-webhooks", "header", "basic", "bearer")
DEFAULT_AUTH = {"cloudevents": "standard-webhooks", "generic": "header"}
DEFAULT_SECRET_HEADER = "x-closeloop-secret"
CONTACT_FIELDS = ("name", "phone", "locale", "timezone", "country", "company", "role", "plan")
MAPPING_KEYS = (
    "event_type",
    "event_type_value",
    "event_id",
    "occurred_at",
    "properties",
    "contact_external_id",
    "contact_email",
    *(f"contact_{f}" for f in CONTACT_FIELDS),
)
MAX_ID = 200
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")
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


class SignatureError(ValueError):
    """The request is not signed by the integration's secret; ``header`` names what is at fault."""

    def __init__(self, message: str, *, header: str) -> None:
        super().__init__(message)
        self.header = header


class PayloadError(ValueError):
    """The (authentic) body cannot be turned into events; ``field`` names the part at fault."""

    def __init__(self, message: str, *, field: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.errors = errors or [{"field": field, "message": message}]


class MalformedPayload(PayloadError):
    """The body is not JSON at all."""


# Not frozen: a frozen dataclass's __init__ costs four times as much, and a HubSpot batch makes a
# hundred of each. Nothing changes them after parsing (``dataclasses.replace`` makes a new one).
@dataclass(slots=True)
class ContactRef:
    external_id: str | None = None
    email: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Incoming:
    """One normalised inbound event."""

    source_event_id: str
    event_type: str
    occurred_at: datetime | None
    contact: ContactRef | None
    properties: dict[str, Any]
    object_ref: tuple[str, str] | None = None
    """(object type, id) of a CRM object whose contact must be looked up (HubSpot deals, tickets)."""


@dataclass(frozen=True)
class SignedRequest:
    method: str
    uris: tuple[str, ...]
    """Every URI the sender may have signed: the public URL first, then the one this server saw."""
    headers: Mapping[str, str]
    """Lower-case names."""
    body: bytes
    now: float
    """Unix seconds."""


# --- verification ----------------------------------------------------------------------------


def _required(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise SignatureError(f"the {name} header is missing", header=name)
    return value


def _check_age(age_s: float, tolerance_s: float, header: str) -> None:
    if age_s > tolerance_s:
        raise SignatureError(
            f"{header} is more than {tolerance_s:g}s old; the request is stale or replayed", header=header
        )
    if age_s < -tolerance_s:
        raise SignatureError(
            f"{header} is more than {tolerance_s:g}s in the future; check the sender's clock", header=header
        )


def _matches(candidate: str, expected: str) -> bool:
    return hmac.compare_digest(candidate.strip().encode(), expected.encode())


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
        signature = _required(headers, "x-hubspot-signature-v3")
        timestamp = _required(headers, "x-hubspot-request-timestamp")
        if not timestamp.isdigit():
            raise SignatureError(
                "X-HubSpot-Request-Timestamp must be Unix milliseconds", header="x-hubspot-request-timestamp"
            )
        _check_age(request.now - int(timestamp) / 1000, tolerance_s, "x-hubspot-request-timestamp")
        for uri in request.uris:
            if _matches(
                signature, hubspot_v3_signature(secret, request.method, uri, request.body, timestamp)
            ):
                return
        raise SignatureError(
            "X-HubSpot-Signature-v3 does not match this integration's client secret (the signed URI is the "
            "webhook URL HubSpot calls: check CLOSELOOP_TRIGGER_PUBLIC_URL)",
            header="x-hubspot-signature-v3",
        )
    signature = _required(headers, "x-hubspot-signature")
    version = headers.get("x-hubspot-signature-version", "v1").lower()
    if version not in ("v1", "v2"):
        raise SignatureError(
            "X-HubSpot-Signature-Version must be v1 or v2", header="x-hubspot-signature-version"
        )
    for uri in request.uris:
        if _matches(
            signature.lower(), hubspot_legacy_signature(secret, version, request.method, uri, request.body)
        ):
            return
    raise SignatureError(
        f"X-HubSpot-Signature ({version}) does not match this integration's client secret",
        header="x-hubspot-signature",
    )


def zendesk_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Return ``X-Zendesk-Webhook-Signature``: base64 HMAC-SHA256 of timestamp + body."""
    return base64.b64encode(
        hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    ).decode()


def verify_zendesk(secret: str, request: SignedRequest, *, tolerance_s: float) -> None:
    signature = _required(request.headers, "x-zendesk-webhook-signature")
    timestamp = _required(request.headers, "x-zendesk-webhook-signature-timestamp")
    when = parse_time(timestamp)
    if when is None:
        raise SignatureError(
            "X-Zendesk-Webhook-Signature-Timestamp is not an ISO 8601 time",
            header="x-zendesk-webhook-signature-timestamp",
        )
    _check_age(request.now - when.timestamp(), tolerance_s, "x-zendesk-webhook-signature-timestamp")
    if not _matches(signature, zendesk_signature(secret, timestamp, request.body)):
        raise SignatureError(
            "X-Zendesk-Webhook-Signature does not match this integration's signing secret",
            header="x-zendesk-webhook-signature",
        )


def verify_standard(secret: str, request: SignedRequest) -> str:
    """Return the ``webhook-id`` of a Standard Webhooks request signed with ``secret``."""
    try:
        return standard_webhooks.verify(secret, dict(request.headers), request.body, now=request.now)
    except standard_webhooks.SignatureError as exc:
        raise SignatureError(str(exc), header=exc.header) from exc
    except (binascii.Error, ValueError) as exc:
        raise SignatureError(
            "this integration's secret is not a whsec_ secret", header="webhook-signature"
        ) from exc


def verify_shared_secret(secret: str, config: Mapping[str, Any], request: SignedRequest, mode: str) -> None:
    """Unsigned sources: the integration's secret in a header, as HTTP basic auth or as a bearer token."""
    headers = request.headers
    if mode == "header":
        name = str(config.get("secret_header") or DEFAULT_SECRET_HEADER).lower()
        if not _matches(_required(headers, name), secret):
            raise SignatureError(f"the {name} header does not match this integration's secret", header=name)
        return
    authorization = _required(headers, "authorization")
    scheme, _, credentials = authorization.partition(" ")
    if mode == "bearer":
        if scheme.lower() != "bearer" or not _matches(credentials, secret):
            raise SignatureError(
                "the bearer token does not match this integration's secret", header="authorization"
            )
        return
    if scheme.lower() != "basic":
        raise SignatureError("send HTTP basic auth: Authorization: Basic …", header="authorization")
    try:
        user, _, password = base64.b64decode(credentials.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise SignatureError("the basic auth credentials are not base64", header="authorization") from exc
    expected_user = str(config.get("basic_username") or "closeloop")
    # Both compared, always, so the time taken does not tell which one was wrong.
    user_ok = _matches(user, expected_user)
    password_ok = _matches(password, secret)
    if not (user_ok and password_ok):
        raise SignatureError("the basic auth user name or password is wrong", header="authorization")


def verify(
    kind: str, secret: str, config: Mapping[str, Any], request: SignedRequest, *, tolerance_s: float
) -> str | None:
    """Verify ``request`` for an integration of ``kind``; return the sender's message id if it has one."""
    if kind == "hubspot":
        verify_hubspot(
            secret, request, tolerance_s=tolerance_s, legacy=bool(config.get("allow_legacy_signatures"))
        )
        return None
    if kind == "zendesk":
        verify_zendesk(secret, request, tolerance_s=tolerance_s)
        return request.headers.get("x-zendesk-webhook-invocation-id")
    mode = (
        "standard-webhooks" if kind == "standard-webhooks" else str(config.get("auth") or DEFAULT_AUTH[kind])
    )
    if mode == "standard-webhooks":
        return verify_standard(secret, request)
    verify_shared_secret(secret, config, request, mode)
    return None


# --- normalisation -----------------------------------------------------------------------------


def parse_json(body: bytes) -> Any:
    try:
        # pydantic-core's parser: about three times the standard library's speed on a webhook, and
        # it refuses what PostgreSQL could not store anyway (a lone UTF-16 surrogate).
        value = pydantic_core.from_json(body)
    except ValueError as exc:
        if "recursion limit" in str(exc):
            raise MalformedPayload("The body nests too deeply.", field="body") from exc
        raise MalformedPayload(f"The body is not valid JSON ({exc}).", field="body") from exc
    # PostgreSQL cannot store NUL in text or JSON; in valid JSON it can only come as \u0000.
    return without_nul(value) if b"\\u0000" in body else value


def parse_time(value: Any) -> datetime | None:
    """Return an aware datetime from ISO 8601 text or Unix seconds/milliseconds; naive means UTC."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        number = float(value)
        try:
            return datetime.fromtimestamp(number / 1000 if number > 10**11 else number, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def dig(data: Any, path: str) -> Any:
    """Return the value at a dot path (``ticket.requester.id``, ``items.0.id``) or None."""
    current = data
    for part in path.split("."):
        if isinstance(current, Mapping):
            current = current.get(part)
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return current


def _id_text(value: Any) -> str | None:
    if value is None or isinstance(value, bool | dict | list):
        return None
    text = str(value).strip()
    return text or None


def event_key(*parts: Any) -> str:
    """Return a dedup key from ``parts``; long keys are hashed to fit the column."""
    key = ":".join(map(str, parts))
    return key if len(key) <= MAX_ID else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def body_digest(item: Any) -> str:
    canonical = json.dumps(item, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _email(value: Any, where: str) -> str | None:
    text = _id_text(value)
    if text is None:
        return None
    if not _EMAIL.match(text):
        raise PayloadError(f"{text!r} is not an email address", field=where)
    return text.lower()


def _contact_from_model(contact: Any) -> ContactRef:
    data = contact.model_dump(exclude_none=True)
    return ContactRef(
        external_id=data.pop("external_id", None),
        email=str(data.pop("email")).lower() if data.get("email") else None,
        attributes=data.pop("attributes", {}),
        fields={k: v for k, v in data.items() if k in CONTACT_FIELDS},
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
    source_id = event_id or (str(obj["id"]) if _id_text(obj.get("id")) else None) or body_digest(obj)
    return Incoming(
        source_event_id=event_key(source_id),
        event_type=event.type,
        occurred_at=event.timestamp,
        contact=_contact_from_model(event.data.contact),
        properties=event.data.model_dump(mode="json", exclude={"contact"}),
    )


def apply_mapping(obj: Any, mapping: Mapping[str, Any], *, event_id: str | None) -> Incoming:
    """Normalise a body of any shape with an integration's field mapping (dot paths into the body)."""
    if not isinstance(obj, dict):
        raise PayloadError("Each event must be a JSON object.", field="body")

    def text(key: str) -> str | None:
        path = mapping.get(key)
        return _id_text(dig(obj, path)) if path else None

    event_type = mapping.get("event_type_value") or text("event_type")
    if not event_type:
        raise PayloadError(
            f"The mapped event type ({mapping.get('event_type')!r}) is missing from the body.",
            field="event_type",
        )
    external_id, email = text("contact_external_id"), _email(text("contact_email"), "contact_email")
    if not external_id and not email:
        raise PayloadError(
            "The mapped contact (contact_external_id or contact_email) is missing from the body.",
            field="contact",
        )
    occurred_raw = dig(obj, mapping["occurred_at"]) if mapping.get("occurred_at") else None
    occurred_at = parse_time(occurred_raw) if occurred_raw is not None else None
    if occurred_raw is not None and occurred_at is None:
        raise PayloadError(f"The mapped time {occurred_raw!r} is not an ISO 8601 time.", field="occurred_at")
    properties = dig(obj, mapping["properties"]) if mapping.get("properties") else obj
    source_id = text("event_id") or event_id or body_digest(obj)
    fields = {f: v for f in CONTACT_FIELDS if (v := text(f"contact_{f}")) is not None}
    return Incoming(
        source_event_id=event_key(source_id),
        event_type=event_type[:200],
        occurred_at=occurred_at,
        contact=ContactRef(external_id=external_id and external_id[:200], email=email, fields=fields),
        properties=properties if isinstance(properties, dict) else {"value": properties},
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
        object_id = _id_text(item.get("objectId"))
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
        return ContactRef(external_id=object_id, email=text.lower() if _EMAIL.match(text) else None)
    if name in _HUBSPOT_CONTACT_FIELDS:
        return ContactRef(external_id=object_id, fields={_HUBSPOT_CONTACT_FIELDS[name]: str(value)[:200]})
    return ContactRef(external_id=object_id, attributes={name: value})


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
    return [parse_standard_shape(obj, event_id=None if _id_text(obj.get("id")) else invocation)]


def _zendesk_event(obj: dict[str, Any], event_type: str) -> Incoming:
    event_id = _id_text(obj.get("id"))
    if event_id is None:
        raise PayloadError("id is missing from the Zendesk event", field="id")
    detail: dict[str, Any] = obj["detail"] if isinstance(obj.get("detail"), dict) else {}
    change: dict[str, Any] = obj["event"] if isinstance(obj.get("event"), dict) else {}
    subject = str(obj.get("subject") or "")
    if subject.startswith("zen:user:") or event_type.startswith("user."):
        contact = ContactRef(
            external_id=_id_text(detail.get("id")),
            email=_email(detail.get("email"), "detail.email"),
            fields={"name": detail["name"]} if isinstance(detail.get("name"), str) else {},
        )
    else:
        contact = ContactRef(external_id=_id_text(detail.get("requester_id")))
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


_CE_ATTRIBUTES = ("specversion", "id", "source", "type", "time", "subject", "datacontenttype", "dataschema")


def parse_cloudevents(body: bytes, headers: Mapping[str, str], mapping: Mapping[str, Any]) -> list[Incoming]:
    """CloudEvents 1.0 over HTTP: structured, batch, or binary mode (``ce-*`` headers)."""
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/cloudevents-batch+json":
        items = parse_json(body)
        if not isinstance(items, list):
            raise PayloadError("A CloudEvents batch is a JSON array of events.", field="body")
        return [_cloudevent(item, mapping, f"{i}.") for i, item in enumerate(items)]
    if content_type == "application/cloudevents+json":
        return [_cloudevent(parse_json(body), mapping, "")]
    if "ce-specversion" in headers:
        attributes: dict[str, Any] = {
            name: headers[f"ce-{name}"] for name in _CE_ATTRIBUTES if f"ce-{name}" in headers
        }
        if content_type.endswith("json") or content_type == "":
            attributes["data"] = parse_json(body) if body else None
        else:
            attributes["data"] = body.decode(errors="replace")
        return [_cloudevent(attributes, mapping, "")]
    raise PayloadError(
        "Not a CloudEvent: send Content-Type application/cloudevents+json (structured), "
        "application/cloudevents-batch+json (batch) or ce-* headers (binary).",
        field="content-type",
    )


def _cloudevent(obj: Any, mapping: Mapping[str, Any], where: str) -> Incoming:
    if not isinstance(obj, dict):
        raise PayloadError("A CloudEvent is a JSON object.", field=where.rstrip(".") or "body")
    if obj.get("specversion") != "1.0":
        raise PayloadError("specversion must be 1.0", field=f"{where}specversion")
    for name in ("id", "source", "type"):
        if not isinstance(obj.get(name), str) or not obj[name]:
            raise PayloadError(f"the CloudEvents attribute {name!r} is required", field=f"{where}{name}")
    occurred_at = parse_time(obj.get("time")) if obj.get("time") else None
    if obj.get("time") and occurred_at is None:
        raise PayloadError("time must be an RFC 3339 timestamp", field=f"{where}time")
    data = obj.get("data")
    key = event_key(obj["source"], obj["id"])
    if mapping:
        mapped = apply_mapping(data if isinstance(data, dict) else {}, mapping, event_id=key)
        return Incoming(
            key,
            mapped.event_type if mapping.get("event_type") else obj["type"],
            occurred_at,
            mapped.contact,
            mapped.properties,
        )
    properties = dict(data) if isinstance(data, dict) else {"data": data}
    raw_contact = properties.pop("contact", None)
    if isinstance(raw_contact, dict):
        standard = parse_standard_shape(
            {"type": obj["type"], "data": {"contact": raw_contact}}, event_id=key, where=f"{where}data."
        )
        contact = standard.contact
    elif _id_text(obj.get("subject")):
        contact = ContactRef(external_id=str(obj["subject"])[:200])
    else:
        raise PayloadError(
            "Name the contact in data.contact or in the subject attribute.", field=f"{where}subject"
        )
    properties.update({"ce_source": obj["source"], "ce_subject": obj.get("subject")})
    return Incoming(key, str(obj["type"])[:200], occurred_at, contact, properties)


def parse_generic(body: bytes, mapping: Mapping[str, Any], event_id: str | None) -> list[Incoming]:
    """Any JSON object (or array of objects) read through the integration's field mapping."""
    obj = parse_json(body)
    if not mapping:
        if isinstance(obj, list):
            return [parse_standard_shape(o, event_id=None, where=f"{i}.") for i, o in enumerate(obj)]
        return [parse_standard_shape(obj, event_id=event_id)]
    items = obj if isinstance(obj, list) else [obj]
    return [apply_mapping(item, mapping, event_id=event_id if len(items) == 1 else None) for item in items]


def parse(
    kind: str, body: bytes, headers: Mapping[str, str], config: Mapping[str, Any], message_id: str | None
) -> tuple[list[Incoming], int]:
    """Return (events, ignored) from a verified request of an integration of ``kind``."""
    mapping = config.get("mapping") or {}
    if kind == "hubspot":
        return parse_hubspot(body, config)
    if kind == "zendesk":
        return parse_zendesk(body, headers, mapping), 0
    if kind == "cloudevents":
        return parse_cloudevents(body, headers, mapping), 0
    if kind == "standard-webhooks" and not mapping:
        obj = parse_json(body)
        if not isinstance(obj, dict):
            raise PayloadError("The body must be a JSON object.", field="body")
        return [parse_standard_shape(obj, event_id=message_id)], 0
    return parse_generic(body, mapping, message_id), 0
