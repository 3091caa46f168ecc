"""The generic connector, for CRMs without a native one: each mapping turns a public event
(``services.dispatch.catalogue``) into one HTTP call — method, URL template, JSON template — with the
connector's auth (none, bearer token, basic, or one header).

Templates read the delivery body (``{id, type, version, timestamp, workspace_id, data}``) by dotted
path: ``{{data.contact_id}}``, ``{{data.scores.0.score}}``. A JSON string that is exactly one
placeholder becomes the value itself (a number stays a number, a missing one null); placeholders
inside longer strings are replaced by text; in the URL they are percent-encoded."""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import quote

from services.dispatch.crm.request import Request

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")


def lookup(body: Any, path: str) -> Any:
    value = body
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def render(template: Any, body: dict[str, Any]) -> Any:
    """Return ``template`` with its placeholders filled from ``body``."""
    if isinstance(template, str):
        whole = PLACEHOLDER.fullmatch(template.strip())
        if whole:
            return lookup(body, whole.group(1))
        return PLACEHOLDER.sub(lambda m: _text(lookup(body, m.group(1))), template)
    if isinstance(template, dict):
        return {k: render(v, body) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, body) for v in template]
    return template


def render_url(template: str, body: dict[str, Any]) -> str:
    return PLACEHOLDER.sub(lambda m: quote(_text(lookup(body, m.group(1))), safe=""), template)


def planned(mapping: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """What to queue for one mapping and one event: the call, rendered now (the event's data as it was)."""
    method = mapping["method"]
    return {
        "method": method,
        "url": render_url(mapping["url"], body),
        "json": render(mapping.get("body"), body)
        if method != "GET" and mapping.get("body") is not None
        else None,
    }


def request(queued: dict[str, Any]) -> Request:
    return Request(queued["method"], queued["url"], queued.get("json"), absolute=True)


def authorization(auth: str, credentials: dict[str, Any]) -> dict[str, str]:
    if auth == "bearer":
        return {"Authorization": f"Bearer {credentials['token']}"}
    if auth == "basic":
        raw = f"{credentials['username']}:{credentials['password']}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
    if auth == "header":
        return {credentials["header_name"]: credentials["header_value"]}
    return {}
