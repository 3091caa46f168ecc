"""CloudEvents 1.0 over HTTP: structured, batch and binary mode (``ce-*`` headers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.trigger.sources.common import (
    ContactRef,
    Incoming,
    PayloadError,
    event_key,
    id_text,
    parse_json,
    parse_time,
)
from services.trigger.sources.generic import apply_mapping
from services.trigger.sources.standard import parse_standard_shape

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
    """Return one CloudEvent (its attributes and ``data``) as an event; ``where`` prefixes error fields."""
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
    elif id_text(obj.get("subject")):
        contact = ContactRef(external_id=str(obj["subject"])[:200])
    else:
        raise PayloadError(
            "Name the contact in data.contact or in the subject attribute.", field=f"{where}subject"
        )
    properties.update({"ce_source": obj["source"], "ce_subject": obj.get("subject")})
    return Incoming(key, str(obj["type"])[:200], occurred_at, contact, properties)
