"""Trigger reads its API's input strictly: a boolean is true or false and a number a JSON number — no
"yes" for true, no "1" or 1.0 for an integer — in bodies and in query parameters (rules have their own
cases in test_trigger_rules.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.trigger.app import create_app
from tests.support import trigger as fx
from tests.support.stack import running

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def client(stack_env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(fx.trigger_settings(stack_env, role="api"))) as client:
        yield client


@pytest.mark.parametrize(
    "method, path, body, field",
    [
        ("post", "/v1/integrations", {"name": "x", "enabled": "yes"}, "enabled"),
        (
            "post",
            "/v1/integrations",
            {"name": "x", "kind": "hubspot", "config": {"portal_ids": ["1"]}},
            "config",
        ),
        ("put", "/v1/contacts/strict", {"email": "s@example.com", "opted_out": "true"}, "opted_out"),
        ("put", "/v1/settings", {"frequency_cap": {"max_surveys": "1", "days": 30}}, "frequency_cap"),
        ("put", "/v1/settings", {"frequency_cap": {"max_surveys": 1.0, "days": 30}}, "frequency_cap"),
        ("put", "/v1/retention", {"anonymise_after_days": "30"}, "anonymise_after_days"),
        ("put", "/v1/retention", {"anonymise_after_days": 30.0}, "anonymise_after_days"),
        ("put", "/v1/retention", {"anonymise_after_days": 0}, "anonymise_after_days"),
        ("put", "/v1/retention", {"anonymise_after_days": 3651}, "anonymise_after_days"),
        ("put", "/v1/retention", {}, "anonymise_after_days"),
        (
            "post",
            "/v1/rules/dry-run",
            {"event_type": "t", "contact": {"external_id": "x", "opted_out": "no"}},
            "contact",
        ),
    ],
)
async def test_a_value_of_the_wrong_type_is_refused_not_guessed(client, auth, method, path, body, field):
    response = await client.request(method.upper(), path, json=body, headers=auth)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"].startswith(field)
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_boolean_query_parameter_is_true_or_false(client, auth):
    rows = "external_id,email\nq-1,q1@example.com\n"
    headers = {**auth, "content-type": "text/csv"}
    for word in ("yes", "1", "on"):
        response = await client.post(f"/v1/contacts/import?atomic={word}", content=rows, headers=headers)
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == "atomic"
    assert (
        await client.post("/v1/contacts/import?atomic=true", content=rows, headers=headers)
    ).status_code == 200


async def test_an_import_reads_words_for_booleans_in_csv_cells_only(client, auth):
    """A CSV cell is text, so it may say yes; a JSON line has booleans of its own."""
    lines = '{"external_id": "j-1", "opted_out": "yes"}\n{"external_id": "j-2", "opted_out": true}\n'
    jsonl = await client.post(
        "/v1/contacts/import", content=lines, headers={**auth, "content-type": "application/x-ndjson"}
    )
    assert jsonl.status_code == 200, jsonl.text
    assert [(e["row"], e["field"]) for e in jsonl.json()["errors"]] == [(1, "opted_out")]
    csv = await client.post(
        "/v1/contacts/import",
        content="external_id,opted_out\nc-1,yes\n",
        headers={**auth, "content-type": "text/csv"},
    )
    assert csv.json()["failed"] == 0
    assert (await client.get("/v1/contacts/c-1", headers=auth)).json()["opted_out"] is True
    assert (await client.get("/v1/contacts/j-2", headers=auth)).json()["opted_out"] is True


async def test_the_retention_policy_is_set_read_back_audited_and_cleared(client, auth):
    assert (await client.get("/v1/retention", headers=auth)).json() == {
        "anonymise_after_days": None,
        "last_run": None,
    }
    put = await client.put("/v1/retention", json={"anonymise_after_days": 90}, headers=auth)
    assert put.status_code == 200 and put.json()["anonymise_after_days"] == 90
    assert (await client.get("/v1/retention", headers=auth)).json()["anonymise_after_days"] == 90
    cleared = await client.put("/v1/retention", json={"anonymise_after_days": None}, headers=auth)
    assert cleared.json()["anonymise_after_days"] is None
    audit = (await client.get("/v1/audit", params={"entity": "settings"}, headers=auth)).json()
    changes = [(e["before"], e["after"]) for e in audit if "anonymise_after_days" in (e["after"] or {})]
    assert sorted(changes, key=str) == sorted(
        [
            ({"anonymise_after_days": None}, {"anonymise_after_days": 90}),
            ({"anonymise_after_days": 90}, {"anonymise_after_days": None}),
        ],
        key=str,
    )
