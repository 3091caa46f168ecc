"""The integration kinds, and for each how a request is verified (``verify``) and how its body
becomes events (``parse``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.trigger.sources.cloudevents import parse_cloudevents
from services.trigger.sources.common import Incoming, PayloadError, SignedRequest, parse_json
from services.trigger.sources.generic import parse_generic, verify_shared_secret
from services.trigger.sources.hubspot import parse_hubspot, verify_hubspot
from services.trigger.sources.standard import parse_standard_shape, verify_standard
from services.trigger.sources.zendesk import parse_zendesk, verify_zendesk

DEFAULT_AUTH = {"cloudevents": "standard-webhooks", "generic": "header"}


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
        return verify_standard(secret, request, tolerance_s=tolerance_s)
    verify_shared_secret(secret, config, request, mode)
    return None


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
