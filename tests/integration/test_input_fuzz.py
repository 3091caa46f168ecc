"""Bad input never becomes a 500: every path, query and body field of every service's OpenAPI (the five
feedback services and the console) gets
NUL characters, lone surrogates, 10 KB ids, unicode and integers beyond 32 and 64 bits.

Each request is built from the operation's own schema (plausible values everywhere else), so it
reaches as deep into the service as its input allows; the answer must be below 500, and a 4xx must
be problem+json.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from shared.vocabulary import STACK_SERVICES
from tests.support.apps import api_alone

NUL = "a\x00b"
SURROGATE = "\ud800"
LONG = "x" * 10_000
UNICODE = "ünïcødé ✓ 🎉 مرحبا"
BAD_TEXT = (NUL, SURROGATE, LONG, UNICODE)
# In a URL a lone surrogate can only be sent as the UTF-8 bytes it would have: invalid UTF-8.
BAD_PATH = ("a%00b", "%ED%A0%80", LONG, quote(UNICODE))
BAD_INT = (2**63, -(2**63) - 1, 2**31)
BAD_INT_TEXT = tuple(str(i) for i in BAD_INT)


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    if "anyOf" in schema or "oneOf" in schema:
        options = [o for o in schema.get("anyOf", schema.get("oneOf", [])) if o.get("type") != "null"]
        if options:
            return _resolve(document, options[0])
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _resolve(document, schema["allOf"][0])
    return schema


def sample(document: dict[str, Any], schema: dict[str, Any], depth: int = 0) -> Any:
    """A plausible value for ``schema``: examples and defaults first, then the type's simplest."""
    schema = _resolve(document, schema)
    for key in ("example", "default"):
        if key in schema and schema[key] is not None:
            return schema[key]
    if schema.get("examples"):
        return schema["examples"][0]
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if depth > 4:
            return {}
        required = schema.get("required", [])
        return {
            name: sample(document, prop, depth + 1)
            for name, prop in schema.get("properties", {}).items()
            if name in required
        }
    if kind == "array":
        return [sample(document, schema.get("items", {}), depth + 1)] if schema.get("minItems") else []
    if kind == "integer":
        return max(schema.get("minimum", 1), 1)
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    if schema.get("format") == "email":
        return "ada@example.com"
    if schema.get("format") == "date-time":
        return "2026-11-30T12:00:00Z"
    if schema.get("format") == "date":
        return "2026-11-30"
    if schema.get("format") in ("uri", "url"):
        return "https://example.com/x"
    return "x" * max(schema.get("minLength", 1), 1)


def fields_of(
    document: dict[str, Any], schema: dict[str, Any], prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], str]]:
    """Yield (path, type) for every string and integer field of a body schema, nested objects too."""
    schema = _resolve(document, schema)
    if len(prefix) > 3:
        return
    for name, prop in schema.get("properties", {}).items():
        resolved = _resolve(document, prop)
        kind = resolved.get("type")
        if kind in ("string", "integer"):
            yield (*prefix, name), kind
        elif kind == "object" or "properties" in resolved:
            yield from fields_of(document, resolved, (*prefix, name))
        elif kind == "array" and _resolve(document, resolved.get("items", {})).get("type") in (
            "string",
            "integer",
        ):
            yield (*prefix, name, "0"), _resolve(document, resolved["items"])["type"]


def with_value(body: Any, path: tuple[str, ...], value: Any) -> Any:
    """Return a copy of ``body`` with ``value`` at ``path`` (a list index as "0")."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if head == "0":
        items = list(body) if isinstance(body, list) else []
        return [with_value(items[0] if items else {}, rest, value)] + items[1:]
    copy = dict(body) if isinstance(body, dict) else {}
    copy[head] = with_value(copy.get(head, {}), rest, value)
    return copy


def cases(document: dict[str, Any]) -> Iterator[tuple[str, str, str, dict[str, Any], str]]:
    """Yield (method, url, what, request kwargs, description) for every bad value of every field."""
    for template, item in document["paths"].items():
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            params = op.get("parameters", [])
            path_values = {
                p["name"]: str(sample(document, p.get("schema", {}))) for p in params if p["in"] == "path"
            }

            def url(
                overrides: dict[str, str], template: str = template, path_values: dict[str, str] = path_values
            ) -> str:
                values = {**{k: quote(v, safe="") for k, v in path_values.items()}, **overrides}
                return template.format(**values)

            body_schema = (
                op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            )
            body = sample(document, body_schema) if body_schema else None
            base: dict[str, Any] = {"json": body} if body_schema else {}
            for p in params:
                kind = _resolve(document, p.get("schema", {})).get("type")
                if p["in"] == "path":
                    bad = BAD_PATH + (BAD_INT_TEXT if kind == "integer" else ())
                    for value in bad:
                        yield (
                            method,
                            url({p["name"]: value}),
                            p["name"],
                            base,
                            f"path {p['name']}={value[:20]!r}",
                        )
                elif p["in"] == "query":
                    bad = BAD_PATH + (BAD_INT_TEXT if kind == "integer" else ())
                    for value in bad:
                        yield (
                            method,
                            f"{url({})}?{p['name']}={value}",
                            p["name"],
                            base,
                            f"query {p['name']}={value[:20]!r}",
                        )
            form_schema = (
                op.get("requestBody", {})
                .get("content", {})
                .get("application/x-www-form-urlencoded", {})
                .get("schema")
            )
            if form_schema:
                form = {k: str(v) for k, v in sample(document, form_schema).items()}
                for (name, *_), _kind in fields_of(document, form_schema):  # a list field: one item
                    for value in BAD_PATH:
                        others = "&".join(f"{k}={quote(v)}" for k, v in form.items() if k != name)
                        yield (
                            method,
                            url({}),
                            name,
                            {
                                "content": f"{others}&{name}={value}".lstrip("&"),
                                "headers": {"content-type": "application/x-www-form-urlencoded"},
                            },
                            f"form {name}={value[:20]!r}",
                        )
            if body_schema:
                for path, kind in fields_of(document, body_schema):
                    bad_values: tuple[Any, ...] = BAD_TEXT if kind == "string" else BAD_INT
                    for value in bad_values:
                        raw = json.dumps(with_value(body, path, value))
                        yield (
                            method,
                            url({}),
                            ".".join(path),
                            {"content": raw, "headers": {"content-type": "application/json"}},
                            f"body {'.'.join(path)}={str(value)[:20]!r}",
                        )


@pytest.fixture(params=STACK_SERVICES)
async def service(request, settings_for) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    async with api_alone(request.param, settings_for) as client:
        yield request.param, client


async def test_no_field_of_any_route_turns_bad_input_into_a_500(service, auth):
    name, client = service
    document = (await client.get("/openapi.json")).json()
    failures = []
    sent = 0
    for method, url, _field, kwargs, description in cases(document):
        headers = {**auth, **kwargs.pop("headers", {})} if "headers" in kwargs else dict(auth)
        response = await client.request(method.upper(), url, headers=headers, **kwargs)
        sent += 1
        if response.status_code >= 500:
            failures.append(f"{method.upper()} {url[:80]} {description}: {response.status_code}")
        elif (response.status_code >= 400 and response.status_code != 404) or response.status_code == 422:
            # The console's pages answer a refusal with a page (docs/console.md), unless the body limit
            # refused the request before any route; its API answers with problem+json.
            page = name == "console" and not url.startswith("/v1/")
            expected = ("text/html", "application/problem+json") if page else ("application/problem+json",)
            assert response.headers["content-type"].startswith(expected), (
                f"{method.upper()} {url[:80]} {description}: {response.headers['content-type']}"
            )
    assert sent > 30, f"{name}: only {sent} requests were generated from its OpenAPI"
    assert not failures, f"{name}: {len(failures)} of {sent} requests ended in 5xx:\n" + "\n".join(
        failures[:40]
    )


async def test_a_nul_is_refused_naming_the_field_in_the_path_the_query_and_the_body(settings_for, auth):
    async with api_alone("followup", settings_for) as client:
        query = await client.get("/v1/tasks", params={"assignee": "a\x00b"}, headers=auth)
        path = await client.get("/v1/tasks/a%00b", headers=auth)
        body = await client.put(
            "/v1/settings",
            content=json.dumps({"notify_email": "a@b.example", "retention_survey_id": "x\x00"}),
            headers={**auth, "content-type": "application/json"},
        )
    assert query.status_code == 422 and query.json()["errors"][0]["field"] == "assignee"
    assert path.status_code == 422 and path.json()["errors"][0]["field"] == "task_id"
    assert body.status_code == 422 and body.json()["errors"][0]["field"] == "retention_survey_id"
    assert "NUL" in body.json()["detail"]
