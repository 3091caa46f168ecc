"""Contacts against real PostgreSQL and the broker: upserts by id and/or email, bulk import through
the API and the command line (over real HTTP), opt-outs in both directions, and erasure."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import uvicorn

from closeloop import contacts_import
from closeloop.infra import free_port
from services.trigger.app import create_app
from shared.events import CUSTOMER_EVENTS, ContactOptedOut, utcnow
from shared.security import issue_api_key
from tests.conftest import SECRET_KEY
from tests.support import trigger as fx
from tests.support.access import key_auth
from tests.support.stack import TopicReader, publish, wait_until
from tests.support.trigger import ours

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def svc(stack_env: dict[str, str]) -> AsyncIterator[SimpleNamespace]:
    """The trigger app served over real HTTP (the import CLI is a separate HTTP client)."""
    port = free_port()
    app = create_app(fx.trigger_settings(stack_env, role=fx.ALL_BUT_SCHEDULER, import_max_rows=50))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    serving = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started, timeout_s=30, message="the trigger app serves")
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        yield SimpleNamespace(client=client, url=url)
    server.should_exit = True
    await serving


async def test_upsert_by_external_id_and_or_email(svc, auth):
    client = svc.client
    by_email = await client.post(
        "/v1/contacts", json={"email": "Lin@Example.com", "name": "Lin"}, headers=auth
    )
    assert by_email.status_code == 201 and by_email.json()["external_id"] is None
    assert by_email.json()["email"] == "lin@example.com"
    again = await client.post("/v1/contacts", json={"email": "lin@example.com", "plan": "pro"}, headers=auth)
    assert (
        again.status_code == 200
        and again.json()["id"] == by_email.json()["id"]
        and again.json()["name"] == "Lin"
    )
    adopted = await client.post(
        "/v1/contacts", json={"external_id": "crm-lin", "email": "lin@example.com"}, headers=auth
    )
    assert adopted.status_code == 200 and adopted.json()["id"] == by_email.json()["id"]
    assert adopted.json()["external_id"] == "crm-lin" and adopted.json()["plan"] == "pro"
    full = {
        "email": "lin@example.com",
        "phone": "+31 6 1234 5678",
        "locale": "nl-NL",
        "timezone": "Europe/Amsterdam",
        "country": "NL",
        "company": "Acme",
        "role": "decision maker",
        "attributes": {"segment": "smb"},
    }
    put = await client.put("/v1/contacts/crm-lin", json=full, headers=auth)
    assert (
        put.status_code == 200
        and put.json()["role"] == "decision maker"
        and put.json()["attributes"] == {"segment": "smb"}
    )
    merged = await client.put("/v1/contacts/crm-lin", json={"attributes": {"seats": 12}}, headers=auth)
    assert (
        merged.json()["attributes"] == {"segment": "smb", "seats": 12} and merged.json()["company"] == "Acme"
    )
    for body, field in (
        ({}, "body"),
        ({"name": "No id"}, "body"),
        ({"email": "not-an-email"}, "email"),
        ({"external_id": "x", "timezone": "Moon/Base"}, "timezone"),
        ({"external_id": "x", "phone": "call me"}, "phone"),
    ):
        bad = await client.post("/v1/contacts", json=body, headers=auth)
        assert bad.status_code == 422, body
        assert bad.json()["errors"][0]["field"] == field, bad.json()


async def test_import_csv_and_json_lines_with_a_per_row_error_report(svc, auth):
    csv_body = (
        "external_id,email,name,plan,Seats,opted_out\n"
        "imp-1,imp1@example.com,Imp One,pro,10,\n"
        "imp-2,not-an-email,Imp Two,pro,20,\n"
        "imp-3,imp3@example.com,Imp Three,free,,yes\n"
        ",,Nobody,,,\n"
        "imp-4,imp4@example.com,Imp Four,,,maybe\n"
    )
    response = await svc.client.post(
        "/v1/contacts/import", content=csv_body, headers={**auth, "content-type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["rows"], result["created"], result["updated"], result["failed"]) == (5, 2, 0, 3)
    assert [(e["row"], e["field"]) for e in result["errors"]] == [(2, "email"), (4, "row"), (5, "opted_out")]
    one = (await svc.client.get("/v1/contacts/imp-1", headers=auth)).json()
    assert one["plan"] == "pro" and one["attributes"] == {"seats": "10"}
    assert (await svc.client.get("/v1/contacts/imp-3", headers=auth)).json()["opted_out"] is True

    lines = "\n".join(
        [
            json.dumps({"external_id": "imp-1", "plan": "enterprise"}),
            "{broken",
            json.dumps({"email": "imp5@example.com", "tier": "gold"}),
        ]
    )
    response = await svc.client.post(
        "/v1/contacts/import", content=lines, headers={**auth, "content-type": "application/x-ndjson"}
    )
    result = response.json()
    assert (result["created"], result["updated"], result["failed"]) == (1, 1, 1)
    assert result["errors"][0]["row"] == 2
    assert (await svc.client.get("/v1/contacts/imp-1", headers=auth)).json()["plan"] == "enterprise"

    atomic = await svc.client.post(
        "/v1/contacts/import",
        params={"atomic": "true"},
        content=csv_body,
        headers={**auth, "content-type": "text/csv"},
    )
    assert atomic.status_code == 422 and atomic.json()["created"] == 0 and atomic.json()["failed"] == 3
    for content_type, body, field in (
        ("application/pdf", b"%PDF", "content-type"),
        ("text/csv", b"name,plan\nA,pro\n", "header"),
        ("text/csv", b"external_id\n" + b"x\n" * 51, "body"),
        ("text/csv", b'external_id,note\nx,"' + b"n" * 200_000 + b'"\n', "body"),
        ("text/csv", b"external_id\n\xff\xfe\n", "body"),
    ):
        bad = await svc.client.post(
            "/v1/contacts/import", content=body, headers={**auth, "content-type": content_type}
        )
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == field


async def test_import_from_the_command_line_in_chunks(svc, auth, workspace, tmp_path: Path):
    # What a CRM's import script holds: an integration key (events and contacts, nothing else).
    api_key = key_auth(workspace, "integration")["Authorization"].removeprefix("Bearer ")
    path = tmp_path / "contacts.csv"
    rows = ["external_id,email,name,role"] + [
        f"cli-{i},cli{i}@example.com,Person {i},user" for i in range(120)
    ]
    rows[57] = "cli-56,broken-email,Person 56,user"
    path.write_text("\n".join(rows) + "\n")
    errors = tmp_path / "errors.csv"
    out, err = io.StringIO(), io.StringIO()
    args = contacts_import.configure(argparse.ArgumentParser()).parse_args(
        [str(path), "--url", svc.url, "--api-key", api_key, "--chunk", "50", "--errors", str(errors)]
    )
    code = await asyncio.to_thread(contacts_import.run, args, out=out, err=err)
    assert code == 1, err.getvalue()
    assert "120 rows: 119 created, 0 updated, 1 failed" in out.getvalue()
    assert "row 57: email:" in out.getvalue()  # numbered across chunks
    assert err.getvalue().count("rows") >= 3  # a progress line per chunk
    assert errors.read_text().splitlines()[1].startswith("57,email,")
    assert (await svc.client.get("/v1/contacts/cli-119", headers=auth)).json()["role"] == "user"

    jsonl = tmp_path / "more.jsonl"
    jsonl.write_text(
        "\n".join(json.dumps({"external_id": f"cli-{i}", "plan": "pro"}) for i in range(3)) + "\n"
    )
    code = await asyncio.to_thread(contacts_import.main, [str(jsonl), "--url", svc.url, "--api-key", api_key])
    assert code == 0 and (await svc.client.get("/v1/contacts/cli-2", headers=auth)).json()["plan"] == "pro"
    assert (
        await asyncio.to_thread(
            contacts_import.main, [str(jsonl), "--url", svc.url, "--api-key", "clk_nope.nope.nope"]
        )
        == 2
    )
    viewer = key_auth(workspace, "viewer")["Authorization"].removeprefix("Bearer ")
    args = contacts_import.configure(argparse.ArgumentParser()).parse_args(
        [str(jsonl), "--url", svc.url, "--api-key", viewer]
    )
    err = io.StringIO()
    code = await asyncio.to_thread(contacts_import.run, args, out=io.StringIO(), err=err)
    assert code == 2 and "403" in err.getvalue() and "'contacts:write'" in err.getvalue()


async def test_opting_out_through_the_api_is_published_and_honoured(svc, auth, broker, workspace, producer):
    client = svc.client
    await fx.known_survey(client, auth, producer, "s")
    await client.post(
        "/v1/rules", json={"name": "r", "event_type": "ticket.solved", "survey_id": "s"}, headers=auth
    )
    await client.put(
        "/v1/contacts/leaver", json={"email": "leaver@example.com", "phone": "+31612345678"}, headers=auth
    )
    async with TopicReader(broker.bootstrap_servers, CUSTOMER_EVENTS) as reader:
        sms_only = await client.post("/v1/contacts/leaver/opt-out", json={"channel": "sms"}, headers=auth)
        assert sms_only.json()["opted_out"] is False and sms_only.json()["opted_out_channels"] == ["sms"]
        everything = await client.post("/v1/contacts/leaver/opt-out", headers=auth)
        assert everything.json()["opted_out"] is True
        again = await client.post("/v1/contacts/leaver/opt-out", headers=auth)
        assert again.status_code == 200
        published = await reader.wait_for(
            lambda v: ours(v, workspace) and v["type"] == "closeloop.ContactOptedOut.v1", count=2
        )
        assert [p["data"]["channel"] for p in published] == ["sms", None]
        assert published[1]["data"]["source"] == "api"
    accepted = await client.post(
        "/v1/events",
        json={"id": "after-opt-out", "type": "ticket.solved", "data": {"contact": {"external_id": "leaver"}}},
        headers=auth,
    )
    assert accepted.json()["surveys_requested"] == 0
    decisions = (await client.get("/v1/contacts/leaver/decisions", headers=auth)).json()
    assert [d["outcome"] for d in decisions] == ["opted_out"]
    back = await client.delete("/v1/contacts/leaver/opt-out", headers=auth)
    assert back.json()["opted_out"] is False and back.json()["opted_out_channels"] == []
    assert (await client.post("/v1/contacts/nobody/opt-out", headers=auth)).status_code == 404
    bad = await client.post("/v1/contacts/leaver/opt-out", json={"channel": "fax"}, headers=auth)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "channel"


async def test_an_opt_out_from_another_service_is_honoured(svc, auth, producer, workspace):
    contact = (
        await svc.client.put("/v1/contacts/unsubscriber", json={"email": "u@example.com"}, headers=auth)
    ).json()
    event = ContactOptedOut(
        workspace_id=workspace,
        contact_id=contact["id"],
        channel="email",
        source="dispatch:unsubscribe-link",
        opted_out_at=utcnow(),
    )
    event_id = await publish(producer, event)
    for _ in range(2):  # a redelivery is a no-op
        await publish(producer, event, event_id=event_id)

    async def opted_out() -> bool:
        response = await svc.client.get("/v1/contacts/unsubscriber", headers=auth)
        return response.json()["opted_out_channels"] == ["email"]

    await wait_until(opted_out, timeout_s=30, message="the opt-out is honoured")


async def test_erasure_removes_personal_data_and_tells_every_service(svc, auth, broker, workspace, producer):
    client = svc.client
    await fx.known_survey(client, auth, producer, "s")
    await client.post(
        "/v1/rules",
        json={"name": "later", "event_type": "ticket.solved", "survey_id": "s", "delay_seconds": 3600},
        headers=auth,
    )
    contact = (
        await client.put(
            "/v1/contacts/forget-me", json={"email": "forget@example.com", "name": "Forget Me"}, headers=auth
        )
    ).json()
    accepted = await client.post(
        "/v1/events",
        json={
            "id": "e-forget",
            "type": "ticket.solved",
            "data": {"contact": {"external_id": "forget-me"}, "note": "call Forget Me"},
        },
        headers=auth,
    )
    event_id = accepted.json()["event_id"]
    async with TopicReader(broker.bootstrap_servers, CUSTOMER_EVENTS) as reader:
        erased = await client.delete("/v1/contacts/forget-me", headers=auth)
        assert erased.status_code == 204
        [message] = await reader.wait_for(
            lambda v: ours(v, workspace) and v["type"] == "closeloop.ContactErased.v1"
        )
        assert message["data"]["contact_id"] == contact["id"]
    assert (await client.get("/v1/contacts/forget-me", headers=auth)).status_code == 404
    stored = (await client.get(f"/v1/events/{event_id}", headers=auth)).json()
    assert stored["properties"] == {"erased": True}
    assert [d["outcome"] for d in stored["decisions"]] == [
        "delayed"
    ]  # the audit trail stays, without personal data
    assert (
        await client.get("/v1/contacts", params={"email": "forget@example.com"}, headers=auth)
    ).json() == []
    assert (await client.delete("/v1/contacts/forget-me", headers=auth)).status_code == 404


async def test_contacts_are_private_to_their_workspace(svc, auth):
    from shared.security import issue_api_key
    from tests.conftest import SECRET_KEY

    await svc.client.put("/v1/contacts/private", json={"email": "p@example.com"}, headers=auth)
    other = {"Authorization": f"Bearer {issue_api_key(SECRET_KEY, 'ws-another-one')}"}
    assert (await svc.client.get("/v1/contacts/private", headers=other)).status_code == 404
    assert (await svc.client.delete("/v1/contacts/private", headers=other)).status_code == 404
    assert (await svc.client.get("/v1/contacts/private", headers=auth)).status_code == 200


async def test_the_contact_id_other_services_use_is_looked_up_and_both_ids_are_shown(
    svc, auth, workspace, producer
):
    """Tasks, invitations and events name a contact by its closeloop id: it finds the contact here, in this
    workspace only, and every trigger answer that names a contact gives both ids, labelled."""
    client = svc.client
    contact = (
        await client.put("/v1/contacts/crm-42", json={"email": "c42@example.com"}, headers=auth)
    ).json()
    found = await client.get(f"/v1/contacts/by-id/{contact['id']}", headers=auth)
    assert found.status_code == 200 and found.json() == contact
    assert (found.json()["id"], found.json()["external_id"]) == (contact["id"], "crm-42")
    by_email = (await client.post("/v1/contacts", json={"email": "noid@example.com"}, headers=auth)).json()
    assert (await client.get(f"/v1/contacts/by-id/{by_email['id']}", headers=auth)).json()[
        "external_id"
    ] is None
    other = {"Authorization": f"Bearer {issue_api_key(SECRET_KEY, workspace + '-b')}"}
    for path, headers in (
        (f"/v1/contacts/by-id/{contact['id']}", other),
        ("/v1/contacts/by-id/crm-42", auth),  # an external id is not a closeloop id
        ("/v1/contacts/by-id/00000000-0000-4000-8000-000000000000", auth),
    ):
        missing = await client.get(path, headers=headers)
        assert missing.status_code == 404 and missing.json()["errors"][0]["field"] == "contact_id"

    await fx.known_survey(client, auth, producer, "s")
    await client.post("/v1/rules", json={"name": "r", "event_type": "ids", "survey_id": "s"}, headers=auth)
    accepted = await client.post(
        "/v1/events",
        json={"id": "ids-1", "type": "ids", "data": {"contact": {"external_id": "crm-42"}}},
        headers=auth,
    )
    event = (await client.get(f"/v1/events/{accepted.json()['event_id']}", headers=auth)).json()
    both = {"contact_id": contact["id"], "contact_external_id": "crm-42"}
    assert {k: event[k] for k in both} == both
    assert [{k: d[k] for k in both} for d in event["decisions"]] == [both]
    listed = (await client.get("/v1/decisions", headers=auth)).json()
    per_contact = (await client.get("/v1/contacts/crm-42/decisions", headers=auth)).json()
    assert [{k: d[k] for k in both} for d in listed + per_contact] == [both, both]
    # Once erased, the decisions stay with an id that leads nowhere, and no external id.
    assert (await client.delete("/v1/contacts/crm-42", headers=auth)).status_code == 204
    assert (await client.get(f"/v1/contacts/by-id/{contact['id']}", headers=auth)).status_code == 404
    [kept] = (await client.get("/v1/decisions", headers=auth)).json()
    assert (kept["contact_id"], kept["contact_external_id"]) == (contact["id"], None)
