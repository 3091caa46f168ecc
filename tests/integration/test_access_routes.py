"""Every role against every route of every service, as the permission table says.

The calls are generated from each service's OpenAPI (``x-permission`` names what the route declared),
so a new route is covered the day it is added. For each route and each role:

- a role whose permissions (``shared.access.PERMISSIONS``, the table docs/console.md shows) include the
  route's gets past the check: anything but 401 and 403 (a 404 or a 422 about the sampled input is fine);
- any other role gets 403 problem+json naming the missing permission — before the body is read: it
  sends a body that is not even JSON;
- nobody (no credential, the same broken body) gets 401 with ``WWW-Authenticate: Bearer``.

Owners, analysts and agents call with console user tokens, the other roles with API keys: both kinds of
credential go through every route.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from closeloop.cli import SETTINGS as APPS
from shared.access import PERMISSIONS, Permission, Role
from tests.integration.test_input_fuzz import sample
from tests.support.access import key_auth, person_auth
from tests.support.apps import api_alone
from tests.support.stack import publish, running

PEOPLE = {Role.OWNER, Role.ANALYST, Role.AGENT}
"""Roles that call with a user token (the console's, for a signed-in person); the others with keys."""
NOT_JSON = b'{"this is": not json'


def credential(workspace: str, role: Role) -> dict[str, str]:
    if role in PEOPLE:
        return person_auth(workspace, role, user_id=f"u-{role}", name=f"A {role}")
    return key_auth(workspace, role)


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Yield (method, template, operation) of every operation."""
    for template, item in document["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield method.upper(), template, op


def request_for(document: dict[str, Any], template: str, op: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Return the URL (path and required query parameters sampled from the schema) and the JSON body."""
    params = op.get("parameters", [])
    path = template.format(
        **{
            p["name"]: quote(str(sample(document, p.get("schema", {}))), safe="")
            for p in params
            if p["in"] == "path"
        }
    )
    query = {
        p["name"]: str(sample(document, p.get("schema", {})))
        for p in params
        if p["in"] == "query" and p.get("required")
    }
    schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    kwargs: dict[str, Any] = {"params": query}
    if schema is not None:
        kwargs["json"] = sample(document, schema)
    return path, kwargs


@pytest.fixture(params=list(APPS))
async def service(request, settings_for) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    async with api_alone(request.param, settings_for) as client:
        yield request.param, client


async def test_every_role_gets_what_the_permission_table_gives_it_on_every_route(service, workspace):
    name, client = service
    document = (await client.get("/openapi.json")).json()
    checked: dict[str, int] = {"allowed": 0, "forbidden": 0, "anonymous": 0}
    failures: list[str] = []
    for method, template, op in operations(document):
        declared = op.get("x-permission")
        assert declared, f"{name}: {method} {template} declares no permission"
        if declared == "public":
            continue
        path, kwargs = request_for(document, template, op)
        where = f"{name}: {method} {template}"
        broken = {"content": NOT_JSON, "headers": {"content-type": "application/json"}}
        anonymous = await client.request(method, path, params=kwargs["params"], **broken)
        checked["anonymous"] += 1
        if anonymous.status_code != 401 or anonymous.headers.get("www-authenticate") != "Bearer":
            failures.append(f"{where} anonymous: {anonymous.status_code} {anonymous.text[:120]}")
        for role in Role:
            allowed = declared == "authenticated" or Permission(declared) in PERMISSIONS[role]
            auth = credential(workspace, role)
            if allowed:
                answer = await client.request(method, path, headers=auth, **kwargs)
                checked["allowed"] += 1
                if answer.status_code in (401, 403) or answer.status_code >= 500:
                    failures.append(f"{where} as {role}: {answer.status_code} {answer.text[:160]}")
                continue
            headers = {**auth, "content-type": "application/json"}
            answer = await client.request(
                method, path, params=kwargs["params"], content=NOT_JSON, headers=headers
            )
            checked["forbidden"] += 1
            if (
                answer.status_code != 403
                or not answer.headers["content-type"].startswith("application/problem+json")
                or f"'{declared}'" not in answer.json()["detail"]
            ):
                failures.append(f"{where} as {role}: {answer.status_code} {answer.text[:160]}")
    assert checked["anonymous"] >= 5 and checked["allowed"] > checked["anonymous"] and checked["forbidden"], (
        checked
    )
    assert not failures, f"{len(failures)} of {sum(checked.values())} calls:\n" + "\n".join(failures[:40])


async def test_the_openapi_of_every_route_says_who_may_call_it(service):
    _, client = service
    document = (await client.get("/openapi.json")).json()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for method, template, op in operations(document):
        declared = op["x-permission"]
        if declared == "public":
            assert op["security"] == [] and "**Access:** public — " in op["description"], (method, template)
            continue
        assert op["security"] == [{"bearer": []}], (method, template)
        if declared != "authenticated":
            roles = [str(r) for r in Role if Permission(declared) in PERMISSIONS[r]]
            assert op["x-roles"] == roles, (method, template)
            assert f"permission `{declared}`" in op["description"], (method, template)


async def test_a_user_token_is_taken_like_a_key_and_an_expired_one_says_how_to_get_a_new_one(
    settings_for, workspace
):
    async with api_alone("scoring", settings_for) as client:
        fresh = await client.get("/v1/metrics", headers=person_auth(workspace, "viewer"))
        assert fresh.status_code == 200, fresh.text
        expired = person_auth(workspace, "viewer", ttl_s=60, now=time.time() - 120)
        refused = await client.get("/v1/metrics", headers=expired)
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
        detail = refused.json()["detail"]
        assert "expired" in detail and "POST /v1/token" in detail and "sign in again" in detail
        forged = person_auth(workspace, "viewer")["Authorization"][:-3] + "abc"
        assert (await client.get("/v1/metrics", headers={"Authorization": forged})).status_code == 401


async def test_without_a_key_the_answer_says_where_to_get_one(settings_for):
    async with api_alone("trigger", settings_for) as client:
        answer = await client.post("/v1/rules", content=b"{", headers={"content-type": "application/json"})
    assert answer.status_code == 401 and answer.headers["content-type"].startswith("application/problem+json")
    detail = answer.json()["detail"]
    assert "console" in detail and "closeloop workspace create <workspace> --owner <email>" in detail
    assert json.loads(answer.text)["errors"][0]["field"] == "Authorization"


async def test_who_to_call_is_on_a_case_for_those_who_work_cases_or_read_contacts_not_for_viewers(
    settings_for, producer, workspace
):
    from services.followup.app import create_app
    from services.followup.settings import FollowUpSettings
    from tests.integration.test_followup_cases import case_for, negative
    from tests.support.followup import ADA

    async with running(create_app(settings_for(FollowUpSettings))) as client:
        event = negative(workspace)
        await publish(producer, event)
        case = await case_for(client, key_auth(workspace), event.response_id)
        for role in (Role.AGENT, Role.ANALYST, Role.INTEGRATION, Role.VIEWER):
            auth = credential(workspace, role)
            detail = (await client.get(f"/v1/cases/{case['id']}", headers=auth)).json()
            listed = (await client.get("/v1/cases", headers=auth)).json()["items"]
            contacts = [detail["contact"], *(c["contact"] for c in listed if c["id"] == case["id"])]
            assert len(contacts) == 2
            if role == Role.VIEWER:
                assert all(
                    c == {**EMPTY_CONTACT, "locale": ADA.locale, "timezone": ADA.timezone} for c in contacts
                )
                assert detail["comment"] == event.comment  # the answer is a response's, which viewers read
            else:
                assert all(
                    (c["name"], c["email"], c["phone"]) == (ADA.name, ADA.email, ADA.phone) for c in contacts
                )


EMPTY_CONTACT = {"known": True, "name": None, "email": None, "phone": None, "company": None}
