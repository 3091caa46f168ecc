"""Acknowledge, then evaluate, against real PostgreSQL and the broker: a webhook is answered once its
events are stored, and the evaluator applies the rules after — woken by NOTIFY, sharing the work
between replicas, handing back what a crashed one held, and setting aside an event it cannot
evaluate instead of stopping at it."""

from __future__ import annotations

import asyncio
import gc
import json
import secrets
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from services.trigger import store
from services.trigger.app import create_app
from services.trigger.evaluator import Evaluator
from shared.events import SURVEY_REQUESTS, new_id
from tests.support import trigger as fx
from tests.support.stack import TopicReader, running, wait_until
from tests.support.trigger import ours
from tests.support.webhooks import signed, ticket_solved

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def api_only(stack_env: dict[str, str]) -> AsyncIterator[SimpleNamespace]:
    """The API half alone (CLOSELOOP_ROLE=api): it stores, and nothing evaluates or publishes until a
    test does what a worker would."""
    app = create_app(fx.trigger_settings(stack_env, role="api"))
    async with running(app) as client:
        runtime = app.state.runtime
        yield SimpleNamespace(client=client, runtime=runtime, evaluator=runtime.deps.evaluator)


@pytest.fixture(scope="module")
async def whole(stack_env: dict[str, str]) -> AsyncIterator[SimpleNamespace]:
    """Both halves in one process, looking for stored events only once a minute: NOTIFY must wake it."""
    app = create_app(fx.trigger_settings(stack_env, role=fx.ALL_BUT_SCHEDULER, evaluate_poll_ms=60_000))
    async with running(app) as client:
        yield SimpleNamespace(client=client, runtime=app.state.runtime)


async def _source(svc: SimpleNamespace, auth: dict[str, str]) -> tuple[str, str]:
    """A webhook integration and a rule on it (its survey recorded as the consumer would)."""
    client = svc.client
    await fx.recorded_survey(svc.runtime, fx.workspace_of(auth), "csat")
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
    path, secret = await _source(api_only, auth)
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
    path, secret = await _source(api_only, auth)
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
    path, secret = await _source(api_only, auth)
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
    path, secret = await _source(api_only, auth)
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
    path, secret = await _source(api_only, auth)
    accepted = [await _post(api_only.client, path, secret, f"shared-{i}") for i in range(6)]
    runtime = api_only.runtime
    other = Evaluator(
        runtime.db,
        runtime.outbox,
        runtime.deps.caches,
        dsn=api_only.evaluator.dsn,
        batch=2,
    )
    await asyncio.gather(other.evaluate_pending(), api_only.evaluator.evaluate_pending(limit=2))
    await api_only.evaluator.evaluate_pending()
    events = [await _event(api_only.client, auth, a["event_id"]) for a in accepted]
    assert [len(e["decisions"]) for e in events] == [1] * 6
    assert all(e["status"] == "evaluated" for e in events)


async def test_the_api_half_runs_no_background_work_and_the_worker_half_serves_no_api(
    api_only, stack_env, auth
):
    # The api half: no consumer; stored events stay pending (no evaluator) — see the first test.
    assert api_only.runtime.consumer is None
    assert (await api_only.client.get("/v1/rules", headers=auth)).status_code == 200

    # A worker-only role (like --role worker, but without the scheduler).
    worker = create_app(fx.trigger_settings(stack_env, role="relay,consumer,evaluator", worker_nice=0))
    async with running(worker) as client:
        assert (await client.get("/healthz")).status_code == 200
        # Nothing else runs in a worker's event loop: its passes are larger, cheaper per event.
        assert worker.state.runtime.deps.evaluator.batch == 500
        assert api_only.evaluator.batch == 100
        assert (await client.get("/v1/rules", headers=auth)).status_code == 404
        path, secret = await _source(api_only, auth)
        body, headers = signed(secret, ticket_solved("nobody", "nobody@example.com", "N"))
        # A valid, signed webhook is not taken either: a worker's port is for health checks.
        assert (await client.post(path, content=body, headers=headers)).status_code == 404


# --- requests of many events: stored as one batch, moved into events by the evaluator -----------


async def _hubspot(svc: SimpleNamespace, auth: dict[str, str]) -> tuple[str, str]:
    """A HubSpot integration and a rule on it (its survey recorded as the consumer would)."""
    client = svc.client
    await fx.recorded_survey(svc.runtime, fx.workspace_of(auth), "nps")
    secret = "hubspot-secret-" + new_id()
    integration = await client.post(
        "/v1/integrations", json={"name": "CRM", "kind": "hubspot", "secret": secret}, headers=auth
    )
    assert integration.status_code == 201, integration.text
    rule = await client.post(
        "/v1/rules",
        json={
            "name": "New customers",
            "source": "hubspot",
            "event_type": "contact.propertyChange",
            "survey_id": "nps",
            "channel": "email",
        },
        headers=auth,
    )
    assert rule.status_code == 201, rule.text
    return "/v1/" + integration.json()["webhook_url"].split("/v1/", 1)[1], secret


async def _post_batch(client: Any, path: str, secret: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    body = fx.dumps(events)
    headers = fx.hubspot_v3_headers(secret, "http://testserver" + path, body)
    response = await client.post(path, content=body, headers=headers)
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


async def _count(api_only: Any, sql: str, **params: Any) -> int:
    async with api_only.runtime.db.sessionmaker() as session:
        return int((await session.execute(text(sql), params)).scalar_one())


async def _drain(api_only: Any, workspace: str) -> None:
    """Evaluate until nothing of the workspace waits (another module app's evaluator may be holding
    some of it for a moment)."""

    async def done() -> bool:
        await api_only.evaluator.evaluate_pending()
        return (
            await _count(
                api_only,
                "SELECT (SELECT count(*) FROM trigger.received_batches WHERE workspace_id = :ws AND error IS NULL)"
                " + (SELECT count(*) FROM trigger.received_events WHERE workspace_id = :ws AND evaluated_at IS NULL)",
                ws=workspace,
            )
            == 0
        )

    await wait_until(done, timeout_s=10, message="the workspace's stored events evaluated")


async def test_a_batch_is_stored_as_one_row_and_each_event_is_decided_once_however_often_delivered(
    api_only, auth, workspace
):
    path, secret = await _hubspot(api_only, auth)
    base = secrets.randbelow(10**9) * 10
    batch = [fx.lifecycle_customer(base + i, event_id=base + i) for i in range(3)]

    first = await _post_batch(api_only.client, path, secret, batch)
    assert (first["received"], first["duplicates"], first["surveys_requested"]) == (3, 0, None)
    ids = [e["event_id"] for e in first["events"]]
    assert (
        await _count(
            api_only, "SELECT count(*) FROM trigger.received_batches WHERE workspace_id = :ws", ws=workspace
        )
        == 1
    )
    assert (
        await _count(api_only, "SELECT count(*) FROM trigger.received_events WHERE id = ANY(:ids)", ids=ids)
        == 0
    )
    # The answer names each event by an id derived from its source identity; it can be looked up
    # while the event still waits in its batch.
    waiting = await _event(api_only.client, auth, ids[0])
    assert waiting["status"] == "pending" and waiting["decisions"] == []
    assert waiting["source_event_id"] == first["events"][0]["source_event_id"]
    assert waiting["properties"]["propertyValue"] == "customer"
    assert ids[0] == store.event_id_for(workspace, waiting["source"], waiting["source_event_id"])

    # HubSpot redelivers the batch before it was evaluated: acknowledged, stored again as a batch.
    retried = [{**e, "attemptNumber": 1} for e in batch]
    again = await _post_batch(api_only.client, path, secret, retried)
    assert [e["event_id"] for e in again["events"]] == ids

    await _drain(api_only, workspace)
    assert (
        await _count(
            api_only, "SELECT count(*) FROM trigger.received_batches WHERE workspace_id = :ws", ws=workspace
        )
        == 0
    )
    events = [await _event(api_only.client, auth, i) for i in ids]
    assert [e["status"] for e in events] == ["evaluated"] * 3
    assert [len(e["decisions"]) for e in events] == [1] * 3  # decided once, not once per delivery

    # Once the events are stored, a third delivery is answered as the duplicate it is.
    third = await _post_batch(api_only.client, path, secret, batch)
    assert third["status"] == "duplicate" and third["duplicates"] == 3
    assert [e["event_id"] for e in third["events"]] == ids
    await _drain(api_only, workspace)
    assert [len((await _event(api_only.client, auth, i))["decisions"]) for i in ids] == [1] * 3


async def test_a_batch_whose_events_cannot_be_stored_is_set_aside_and_does_not_block_the_next(
    api_only, auth, workspace
):
    path, secret = await _hubspot(api_only, auth)
    poison_id = new_id()
    too_long = {
        "id": poison_id,
        "source_event_id": poison_id,
        "event_type": "x" * 300,  # longer than the column: the move into received_events fails
        "occurred_at": "2026-11-23T10:00:00Z",
        "payload": {},
        "contact": {"external_id": "p-1"},
    }
    async with api_only.runtime.db.unit_of_work() as session:
        await session.execute(
            text(
                "INSERT INTO trigger.received_batches (workspace_id, source, count, events) "
                "VALUES (:ws, 'hubspot', 1, :events)"
            ),
            {"ws": workspace, "events": json.dumps([too_long])},
        )
    base = secrets.randbelow(10**9) * 10
    behind = await _post_batch(
        api_only.client, path, secret, [fx.lifecycle_customer(base + i, event_id=base + i) for i in range(2)]
    )

    await _drain(api_only, workspace)

    failed = await _event(api_only.client, auth, poison_id)
    assert failed["status"] == "failed" and "too long" in failed["error"]
    fine = [await _event(api_only.client, auth, e["event_id"]) for e in behind["events"]]
    assert [e["status"] for e in fine] == ["evaluated"] * 2

    # What deploy/README tells an operator: fix the cause, clear the mark, and the evaluator retries it.
    repaired = json.dumps([{**too_long, "event_type": "ticket.solved"}])
    async with api_only.runtime.db.unit_of_work() as session:
        await session.execute(
            text(
                "UPDATE trigger.received_batches SET events = :events, error = NULL "
                "WHERE workspace_id = :ws AND error IS NOT NULL"
            ),
            {"ws": workspace, "events": repaired},
        )
    await _drain(api_only, workspace)
    assert (await _event(api_only.client, auth, poison_id))["status"] == "evaluated"


async def test_the_batch_retried_alone_is_the_one_locked_even_with_an_older_one_released_meanwhile(
    api_only, auth, workspace
):
    path, secret = await _hubspot(api_only, auth)
    base = secrets.randbelow(10**9) * 10
    older, newer = [
        await _post_batch(
            api_only.client,
            path,
            secret,
            [fx.lifecycle_customer(base + i, event_id=base + i) for i in (n, n + 1)],
        )
        for n in (0, 2)
    ]
    db = api_only.runtime.db
    async with db.sessionmaker() as other, db.unit_of_work() as ours:
        await other.begin()
        held = await other.execute(
            text(
                "SELECT seq FROM trigger.received_batches WHERE workspace_id = :ws ORDER BY seq LIMIT 1 FOR UPDATE"
            ),
            {"ws": workspace},
        )
        [older_seq] = held.scalars().all()
        fetch = store.session_fetch(ours)
        [[locked]] = await fetch(
            "SELECT seq FROM trigger.received_batches WHERE workspace_id = $1 AND error IS NULL "
            "ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED",
            workspace,
        )
        assert locked != older_seq  # the older batch is another evaluator's for now
        await other.rollback()  # ... and it lets go before this one moves its batch
        assert await store.explode_batches(fetch, seq=locked) == 1
    async with db.sessionmaker() as session:
        waiting = await session.execute(
            text("SELECT seq FROM trigger.received_batches WHERE workspace_id = :ws"), {"ws": workspace}
        )
        assert waiting.scalars().all() == [older_seq]  # only the batch this transaction locked was moved
    await _drain(api_only, workspace)
    events = [await _event(api_only.client, auth, e["event_id"]) for e in older["events"] + newer["events"]]
    assert [e["status"] for e in events] == ["evaluated"] * 4


async def test_erasing_a_contact_erases_its_events_still_waiting_in_a_batch(api_only, auth, workspace):
    path, secret = await _hubspot(api_only, auth)
    contact = str(secrets.randbelow(10**9))
    await api_only.client.put(f"/v1/contacts/{contact}", json={"email": "batch@example.com"}, headers=auth)
    waiting = await _post_batch(
        api_only.client,
        path,
        secret,
        [fx.lifecycle_customer(int(contact)), fx.lifecycle_customer(int(contact) + 1)],
    )
    erased = await api_only.client.delete(f"/v1/contacts/{contact}", headers=auth)
    assert erased.status_code in (200, 202, 204), erased.text

    await _drain(api_only, workspace)

    gone, kept = [await _event(api_only.client, auth, e["event_id"]) for e in waiting["events"]]
    assert (
        gone["status"] == "evaluated" and gone["decisions"] == [] and gone["properties"] == {"erased": True}
    )
    assert kept["status"] == "evaluated" and len(kept["decisions"]) == 1
    assert (await api_only.client.get(f"/v1/contacts/{contact}", headers=auth)).status_code == 404


async def test_a_lost_connection_fails_a_pass_not_the_evaluator_which_listens_anew(api_only, auth):
    """The evaluator is a worker: a pass that fails for the database's sake is retried after a wait,
    on a new listening connection, and the events wait for it."""
    path, secret = await _source(api_only, auth)
    runtime = api_only.runtime
    evaluator = Evaluator(
        runtime.db, runtime.outbox, runtime.deps.caches, dsn=api_only.evaluator.dsn, poll_interval_s=0.05
    )
    evaluate_pending = evaluator.evaluate_pending
    listeners: list[Any] = []

    async def the_first_loses_its_connection(*, limit: int | None = None) -> int:
        listeners.append(evaluator._listener)
        if len(listeners) == 1:
            raise OperationalError("SELECT …", None, ConnectionResetError("connection lost"))
        return await evaluate_pending(limit=limit)

    evaluator.evaluate_pending = the_first_loses_its_connection  # type: ignore[method-assign]
    working = asyncio.create_task(evaluator.run())
    try:
        accepted = await _post(api_only.client, path, secret, "after-a-lost-connection")
        event = await fx.evaluated(api_only.client, auth, accepted["event_id"])
    finally:
        evaluator.stop()
        await working
    assert [d["outcome"] for d in event["decisions"]] == ["sent"]
    assert listeners[0] is not None and listeners[1] is not None and listeners[1] is not listeners[0]
    assert evaluator._listener is None  # closed when the worker stopped


async def test_a_started_service_keeps_what_startup_built_out_of_the_collectors_sight(stack_env):
    # Every service's lifespan freezes what startup built, so a full collection no longer walks it.
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    app = create_app(fx.trigger_settings(stack_env, role="api"))
    async with running(app) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert gc.get_freeze_count() > 10_000


# Last: the module-scoped app it starts keeps evaluating in the background until the module ends.
async def test_notify_wakes_the_evaluator_without_waiting_for_its_poll(whole, auth):
    path, secret = await _source(whole, auth)
    accepted = await _post(whole.client, path, secret, "woken")
    # The evaluator polls once a minute here; only the NOTIFY sent at commit can wake it in time.
    event = await fx.evaluated(whole.client, auth, accepted["event_id"])
    assert [d["outcome"] for d in event["decisions"]] == ["sent"]
