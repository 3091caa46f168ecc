"""Any JSON, read through an integration's field mapping (dot paths into the body); and the shared
secret that unsigned senders prove themselves with (a header, basic auth or a bearer token)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from services.trigger.sources.common import (
    REF_FIELDS,
    ContactRef,
    Incoming,
    PayloadError,
    SignatureError,
    SignedRequest,
    body_digest,
    constant_time_equal,
    dig,
    event_key,
    id_text,
    parse_email,
    parse_json,
    parse_time,
    required_header,
)
from services.trigger.sources.standard import parse_standard_shape

DEFAULT_SECRET_HEADER = "x-closeloop-secret"


def verify_shared_secret(secret: str, config: Mapping[str, Any], request: SignedRequest, mode: str) -> None:
    """Unsigned sources: the integration's secret in a header, as HTTP basic auth or as a bearer token."""
    headers = request.headers
    if mode == "header":
        name = str(config.get("secret_header") or DEFAULT_SECRET_HEADER).lower()
        if not constant_time_equal(required_header(headers, name), secret):
            raise SignatureError(f"the {name} header does not match this integration's secret", header=name)
        return
    authorization = required_header(headers, "authorization")
    scheme, _, credentials = authorization.partition(" ")
    if mode == "bearer":
        if scheme.lower() != "bearer" or not constant_time_equal(credentials, secret):
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
    user_ok = constant_time_equal(user, expected_user)
    password_ok = constant_time_equal(password, secret)
    if not (user_ok and password_ok):
        raise SignatureError("the basic auth user name or password is wrong", header="authorization")


def apply_mapping(obj: Any, mapping: Mapping[str, Any], *, event_id: str | None) -> Incoming:
    """Normalise a body of any shape with an integration's field mapping (dot paths into the body)."""
    if not isinstance(obj, dict):
        raise PayloadError("Each event must be a JSON object.", field="body")

    def text(key: str) -> str | None:
        path = mapping.get(key)
        return id_text(dig(obj, path)) if path else None

    event_type = mapping.get("event_type_value") or text("event_type")
    if not event_type:
        raise PayloadError(
            f"The mapped event type ({mapping.get('event_type')!r}) is missing from the body.",
            field="event_type",
        )
    external_id, email = text("contact_external_id"), parse_email(text("contact_email"), "contact_email")
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
    fields: dict[str, Any] = {f: v for f in REF_FIELDS if (v := text(f"contact_{f}")) is not None}
    return Incoming(
        source_event_id=event_key(source_id),
        event_type=event_type[:200],
        occurred_at=occurred_at,
        contact=ContactRef(external_id=external_id and external_id[:200], email=email, fields=fields),
        properties=properties if isinstance(properties, dict) else {"value": properties},
    )


def parse_generic(body: bytes, mapping: Mapping[str, Any], event_id: str | None) -> list[Incoming]:
    """Any JSON object (or array of objects) read through the integration's field mapping."""
    obj = parse_json(body)
    if not mapping:
        if isinstance(obj, list):
            return [parse_standard_shape(o, event_id=None, where=f"{i}.") for i, o in enumerate(obj)]
        return [parse_standard_shape(obj, event_id=event_id)]
    items = obj if isinstance(obj, list) else [obj]
    return [apply_mapping(item, mapping, event_id=event_id if len(items) == 1 else None) for item in items]
