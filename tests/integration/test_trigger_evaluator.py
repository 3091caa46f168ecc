"""Acknowledge, then evaluate, against real PostgreSQL and the broker: a webhook is answered once its
events are stored, and the evaluator applies the rules after — woken by NOTIFY, sharing the work
between replicas, handing back what a crashed one held, and setting aside an event it cannot
evaluate instead of stopping at it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import text

from services.trigger.app import create_app
from services.trigger.evaluator import Evaluator
from shared.events import SURVEY_REQUESTS, new_id
from tests.support import trigger as fx
from tests.support.stack import TopicReader, running
from tests.support.trigger import ours
from tests.support.webhooks import signed, ticket_solved

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def api_only(stack_env: dict[str, str]) -> AsyncIterator[SimpleNamespace]:
    """The API half alone (CLOSELOOP_ROLE=api): it stores, and nothing evaluates or publishes until a
    test does what a worker would."""
    app = create_app(fx.trigger_settings(stack_env, role="api", run_scheduler=False))
    async with running(app) as client:
        runtime = app.state.runtime
        yield SimpleNamespace(client=client, runtime=runtime, evaluator=runtime.extras["evaluator"])


@pytest.fixture(scope="module")
async def whole(stack_env: dict[str, str]) -> AsyncIterator[SimpleNamespace]:
    """Both halves in one process, looking for stored events only once a minute: NOTIFY must wake it."""
    app = create_app(fx.trigger_settings(stack_env, run_scheduler=False, evaluate_poll_ms=60_000))
    async with running(app) as client:
        yield SimpleNamespace(client=client)


async def _source(client: Any, auth: dict[str, str]) -> tuple[str, str]:
    integration = (await client.post("/v1/integrations", json={"name": "Helpdesk"}, headers=auth)).json()
    rule = await client.post(
        "/v1/rules",
        json={"name": "CSAT", "event_type": "ticket.solved", "survey_id": "csat", "channel": "email"},
        headers=auth,
    )
    assert rule.status_code == 201, rule.text
    return "/v1/" + integration["webhook_url"].split("/v1/", 1)[1], integration["secret"]


async def _post(client: Any, path: str, secret: str, external_id: str) -> dict[str, Any]:
    body, headers = signed(secret, ticket_solved(external_id, f"{external_id}@example.com", "Ada"))
    response = await client.post(path, content=body, headers=headers)
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


async def _event(client: Any, auth: dict[str, str], event_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/events/{event_id}", headers=auth)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_a_webhook_is_acknowledged_when_stored_and_decided_by_the_evaluator(
    api_only, auth, broker, workspace
):
    path, secret = await _source(api_only.client, auth)
    async with TopicReader(broker.bootstrap_servers, SURVEY_REQUESTS) as reader:
        accepted = await _post(api_only.client, path, secret, "cus_1")
        assert accepted["status"] == "accepted" and accepted["surveys_requested"] is None
        stored = await _event(api_only.client, auth, accepted["event_id"])
        assert stored["status"] == "pending" and stored["decisions"] == [] and stored["contact_id"] is None
        contact = await api_only.client.get("/v1/contacts/cus_1", headers=auth)
        assert contact.status_code == 404  # the contact is upserted when the rules run

        assert await api_only.evaluator.evaluate_pending() >= 1
        await api_only.runtime.relay.publish_pending()  # what a worker's relay does
        decided = await _event(api_only.client, auth, accepted["event_id"])
        assert decided["status"] == "evaluated" and decided["evaluated_at"] is not None
        assert [d["outcome"] for d in decided["decisions"]] == ["sent"]
        assert (
            decided["contact_id"]
            == (await api_only.client.get("/v1/contacts/cus_1", headers=auth)).json()["id"]
        )
        [request] = await reader.wait_for(lambda v: ours(v, workspace))
        assert request["data"]["recipient"]["email"] == "cus_1@example.com"

    # Evaluated once: another pass finds nothing of this workspace to do.
    await api_only.evaluator.evaluate_pending()
    again = await _event(api_only.client, auth, accepted["event_id"])
    assert again["decisions"] == decided["decisions"]


async def test_events_a_crashed_or_busy_evaluator_holds_are_skipped_then_handed_back(
    api_only, auth, workspace
):
    path, secret = await _source(api_only.client, auth)
    accepted = [await _post(api_only.client, path, secret, f"held-{i}") for i in range(3)]
    ids = [a["event_id"] for a in accepted]
    db = api_only.runtime.db
    # Another evaluator claims the three events and has not committed (busy, or about to crash).
    async with db.sessionmaker() as held:
        await held.begin()
        claimed = await held.execute(
            text(
                "SELECT id FROM trigger.received_events WHERE id = ANY(:ids) AND evaluated_at IS NULL "
                "FOR UPDATE SKIP LOCKED"
            ),
            {"ids": ids},
        )
        assert sorted(r[0] for r in claimed) == sorted(ids)
        await api_only.evaluator.evaluate_pending()
        assert {(await _event(api_only.client, auth, i))["status"] for i in ids} == {"pending"}
        await held.rollback()  # the crash: its claim ends with its transaction
    await api_only.evaluator.evaluate_pending()
    events = [await _event(api_only.client, auth, i) for i in ids]
    assert [e["status"] for e in events] == ["evaluated"] * 3
    assert [[d["outcome"] for d in e["decisions"]] for e in events] == [["sent"]] * 3


async def test_an_event_that_cannot_be_evaluated_is_set_aside_and_does_not_block_the_rest(
    api_only, auth, workspace
):
    path, secret = await _source(api_only.client, auth)
    poison = new_id()
    async with api_only.runtime.db.unit_of_work() as session:
        await session.execute(
            text(
                "INSERT INTO trigger.received_events (id, workspace_id, source, source_event_id, event_type, "
                "occurred_at, payload, contact) VALUES (:id, :ws, 'api', :id, 'ticket.solved', now(), "
                "'{}'::jsonb, '\"not a contact\"'::jsonb)"
            ),
            {"id": poison, "ws": workspace},
        )
    behind = await _post(api_only.client, path, secret, "behind-the-poison")

    await api_only.evaluator.evaluate_pending()

    failed = await _event(api_only.client, auth, poison)
    assert failed["status"] == "failed" and "contact reference must be an object" in failed["error"]
    fine = await _event(api_only.client, auth, behind["event_id"])
    assert fine["status"] == "evaluated" and [d["outcome"] for d in fine["decisions"]] == ["sent"]


async def test_erasing_a_contact_erases_its_events_still_waiting_for_the_rules(api_only, auth, workspace):
    path, secret = await _source(api_only.client, auth)
    await api_only.client.put("/v1/contacts/leaving", json={"email": "leaving@example.com"}, headers=auth)
    waiting = await _post(api_only.client, path, secret, "leaving")
    erased = await api_only.client.delete("/v1/contacts/leaving", headers=auth)
    assert erased.status_code in (200, 202, 204), erased.text

    await api_only.evaluator.evaluate_pending()

    event = await _event(api_only.client, auth, waiting["event_id"])
    assert event["status"] == "evaluated" and event["decisions"] == []
    assert event["properties"] == {"erased": True}
    assert (await api_only.client.get("/v1/contacts/leaving", headers=auth)).status_code == 404


async def test_a_second_evaluator_shares_the_backlog_without_deciding_anything_twice(
    api_only, auth, workspace
):
    path, secret = await _source(api_only.client, auth)
    accepted = [await _post(api_only.client, path, secret, f"shared-{i}") for i in range(6)]
    runtime = api_only.runtime
    other = Evaluator(
        runtime.db,
        runtime.outbox,
        runtime.extras["caches"],
        dsn=api_only.evaluator.dsn,
        batch=2,
    )
    await asyncio.gather(other.evaluate_pending(), api_only.evaluator.evaluate_pending(limit=2))
    await api_only.evaluator.evaluate_pending()
    events = [await _event(api_only.client, auth, a["event_id"]) for a in accepted]
    assert [len(e["decisions"]) for e in events] == [1] * 6
    assert all(e["status"] == "evaluated" for e in events)


async def test_notify_wakes_the_evaluator_without_waiting_for_its_poll(whole, auth):
    path, secret = await _source(whole.client, auth)
    accepted = await _post(whole.client, path, secret, "woken")
    # The evaluator polls once a minute here; only the NOTIFY sent at commit can wake it in time.
    event = await fx.evaluated(whole.client, auth, accepted["event_id"])
    assert [d["outcome"] for d in event["decisions"]] == ["sent"]


async def test_the_api_half_runs_no_background_work_and_the_worker_half_serves_no_api(
    api_only, stack_env, auth
):
    # The api half: no consumer; stored events stay pending (no evaluator) — see the first test.
    assert api_only.runtime.consumer is None
    assert (await api_only.client.get("/v1/rules", headers=auth)).status_code == 200

    worker = create_app(
        fx.trigger_settings(stack_env, role="worker", worker_nice=0, run_scheduler=False, run_consumers=False)
    )
    async with running(worker) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/v1/rules", headers=auth)).status_code == 404
        path, secret = await _source(api_only.client, auth)
        body, headers = signed(secret, ticket_solved("nobody", "nobody@example.com", "N"))
        # A valid, signed webhook is not taken either: a worker's port is for health checks.
        assert (await client.post(path, content=body, headers=headers)).status_code == 404
