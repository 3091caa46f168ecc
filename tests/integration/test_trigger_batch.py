"""Set-based evaluation against real PostgreSQL: a claimed batch of mixed events (a send, a send capped by
an earlier one in the same batch or by the stored history, an opted-out contact, a delay, conditions
not met, a contact known by email alone, a redelivered event) is decided exactly as evaluating the same
events one at a time decides them."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import text

from services.trigger.app import create_app
from services.trigger.evaluator import Evaluator
from shared.access import issue_api_key
from shared.clock import Clock
from shared.events import CustomerEventReceived, SurveyRequested
from tests.conftest import SECRET_KEY
from tests.support import trigger as fx
from tests.support.stack import running
from tests.support.webhooks import signed

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class FrozenClock(Clock):
    """A clock that does not move: both evaluations decide at the same moment."""

    def now(self) -> datetime:
        return NOW


@pytest.fixture(scope="module")
async def api_only(stack_env: dict[str, str]) -> AsyncIterator[SimpleNamespace]:
    """The API half alone: it stores webhooks' events, and only the test evaluates them."""
    app = create_app(fx.trigger_settings(stack_env, role="api"))
    async with running(app) as client:
        runtime = app.state.runtime
        base = runtime.deps.evaluator
        evaluator = Evaluator(base.db, base.outbox, base.caches, dsn=base.dsn, clock=FrozenClock())
        yield SimpleNamespace(client=client, runtime=runtime, evaluator=evaluator)


async def _workspace(svc: SimpleNamespace) -> tuple[str, dict[str, str], str, str]:
    """A workspace with a cap, three rules, an opted-out contact and a webhook integration."""
    workspace = "ws-" + secrets.token_hex(5)
    auth = {"Authorization": f"Bearer {issue_api_key(SECRET_KEY, workspace)}"}
    client = svc.client
    for survey in ("csat", "vip", "nps"):
        await fx.recorded_survey(svc.runtime, workspace, survey)
    settings = {"frequency_cap": {"max_surveys": 1, "days": 30}}
    assert (await client.put("/v1/settings", json=settings, headers=auth)).status_code == 200
    rules = [
        {"name": "csat", "event_type": "ticket.solved", "survey_id": "csat"},
        {
            "name": "vip",
            "event_type": "ticket.solved",
            "survey_id": "vip",
            "conditions": {"field": "event.priority", "op": "equals", "value": "high"},
        },
        {"name": "later", "event_type": "order.delivered", "survey_id": "nps", "delay_seconds": 3600},
    ]
    for body in rules:
        response = await client.post("/v1/rules", json={**body, "channel": "email"}, headers=auth)
        assert response.status_code == 201, response.text
    opted = {"email": "opted@example.com", "opted_out": True}
    assert (await client.put("/v1/contacts/opted", json=opted, headers=auth)).status_code in (200, 201)
    integration = (await client.post("/v1/integrations", json={"name": "Helpdesk"}, headers=auth)).json()
    path = "/v1/" + integration["webhook_url"].split("/v1/", 1)[1]
    return workspace, auth, path, integration["secret"]


async def _post(
    svc: SimpleNamespace,
    path: str,
    secret: str,
    msg_id: str,
    event_type: str,
    contact: dict[str, Any],
    **data: Any,
) -> str:
    """Post one signed webhook; return what its answer says of the event."""
    payload = {
        "type": event_type,
        "timestamp": (NOW - timedelta(minutes=10)).isoformat(),
        "data": {"contact": contact, **data},
    }
    body, headers = signed(secret, payload, msg_id=msg_id)
    response = await svc.client.post(path, content=body, headers=headers)
    assert response.status_code == 202, response.text
    return str(response.json()["status"])


async def _pending(svc: SimpleNamespace, workspace: str) -> int:
    async with svc.runtime.db.unit_of_work() as session:
        count = await session.scalar(
            text(
                "SELECT count(*) FROM trigger.received_events "
                "WHERE workspace_id = :ws AND evaluated_at IS NULL"
            ),
            {"ws": workspace},
        )
    return int(count or 0)


async def _decisions(svc: SimpleNamespace, workspace: str) -> list[tuple[Any, ...]]:
    """The workspace's decisions, rule ids replaced by the rules' names, in the events' order."""
    async with svc.runtime.db.unit_of_work() as session:
        names = dict(
            (
                await session.execute(
                    text("SELECT id, name FROM trigger.rules WHERE workspace_id = :ws"), {"ws": workspace}
                )
            ).all()
        )
        rows = (
            await session.execute(
                text(
                    """
SELECT e.source_event_id, d.rule_id, d.outcome, d.reason, d.send_at, d.channel,
       d.request_id IS NOT NULL, d.schedule_id IS NOT NULL,
       (SELECT count(*) FROM trigger.contact_surveys AS h WHERE h.request_id = d.request_id),
       (SELECT c.workspace_id = d.workspace_id AND e.contact_id = c.id
        FROM trigger.contacts AS c WHERE c.id = d.contact_id)
FROM trigger.decisions AS d JOIN trigger.received_events AS e ON e.id = d.received_event_id
WHERE d.workspace_id = :ws
ORDER BY e.seq, d.rule_id
"""
                ),
                {"ws": workspace},
            )
        ).all()
    decided = []
    for source_event_id, rule_id, outcome, reason, *rest in rows:
        for rule, name in names.items():
            reason = reason.replace(rule, name)
        decided.append((source_event_id, names[rule_id], outcome, reason, *rest))
    arrival = {row[0]: i for i, row in reversed(list(enumerate(decided)))}
    return sorted(decided, key=lambda row: (arrival[row[0]], row[1]))


def _contact(name: str) -> dict[str, str]:
    return {"external_id": name, "email": f"{name}@example.com"}


# (webhook id, event type, contact, data) in the order they arrive; m-1 is delivered twice.
EVENTS: list[tuple[str, str, dict[str, str], dict[str, str]]] = [
    ("m-1", "ticket.solved", _contact("matched"), {"priority": "low"}),
    ("m-2", "ticket.solved", _contact("matched"), {"priority": "high"}),
    ("m-1", "ticket.solved", _contact("matched"), {"priority": "low"}),
    ("o-1", "ticket.solved", _contact("opted"), {}),
    ("l-1", "order.delivered", _contact("later"), {}),
    ("earlier-2", "ticket.solved", _contact("earlier"), {}),
    ("mail-1", "ticket.solved", {"email": "Only@Example.com"}, {}),
    ("mail-2", "ticket.solved", {"email": "only@example.com"}, {}),
]


async def _scenario(svc: SimpleNamespace, *, one_by_one: bool) -> list[list[tuple[Any, ...]]]:
    """Two workspaces (with the same contact ids) given the same events; evaluated together in one
    pass, or one event per pass. Return each workspace's decisions."""
    sources = [await _workspace(svc) for _ in range(2)]
    for workspace, _, path, secret in sources:
        # A survey sent before the batch: the stored history caps the contact's next one.
        await _post(svc, path, secret, "earlier-1", "ticket.solved", _contact("earlier"))
        while await _pending(svc, workspace):
            await svc.evaluator.evaluate_pending(limit=1)
    for i, (msg_id, event_type, contact, data) in enumerate(EVENTS):
        repeated = any(earlier == msg_id for earlier, *_ in EVENTS[:i])
        for _, _, path, secret in sources:
            status = await _post(svc, path, secret, msg_id, event_type, contact, **data)
            assert status == ("duplicate" if repeated else "accepted")
    workspaces = [workspace for workspace, *_ in sources]
    assert [await _pending(svc, w) for w in workspaces] == [7, 7]  # m-1 is stored once
    if one_by_one:
        while sum([await _pending(svc, w) for w in workspaces]):
            await svc.evaluator.evaluate_pending(limit=1)
    else:
        assert await svc.evaluator.evaluate_pending(limit=1000) >= 14  # one pass for both workspaces
        assert [await _pending(svc, w) for w in workspaces] == [0, 0]
    return [await _decisions(svc, w) for w in workspaces]


async def test_a_batch_of_mixed_events_is_decided_as_evaluating_them_one_at_a_time(api_only):
    together = await _scenario(api_only, one_by_one=False)
    alone = await _scenario(api_only, one_by_one=True)
    assert together == alone
    assert together[0] == together[1]
    decided = together[0]
    outcomes = {(source_event_id, rule): outcome for source_event_id, rule, outcome, *_ in decided}
    assert outcomes == {
        ("earlier-1", "csat"): "sent",
        ("earlier-1", "vip"): "conditions_not_met",
        ("m-1", "csat"): "sent",
        ("m-1", "vip"): "conditions_not_met",
        ("m-2", "csat"): "suppressed_by_cap",  # capped by m-1, in the same batch
        ("m-2", "vip"): "suppressed_by_cap",
        ("o-1", "csat"): "opted_out",
        ("o-1", "vip"): "conditions_not_met",
        ("l-1", "later"): "delayed",
        ("earlier-2", "csat"): "suppressed_by_cap",  # capped by the stored history
        ("earlier-2", "vip"): "conditions_not_met",
        ("mail-1", "csat"): "sent",
        ("mail-1", "vip"): "conditions_not_met",
        ("mail-2", "csat"): "suppressed_by_cap",  # the same contact, known by its email
        ("mail-2", "vip"): "conditions_not_met",
    }
    # One request (and one history row) per send, none for the rest; the delay is scheduled.
    for _, _, outcome, _, send_at, _, requested, scheduled, history, own_contact in decided:
        assert own_contact  # the event's contact, of its own workspace
        assert requested == (outcome == "sent") and history == (1 if outcome == "sent" else 0)
        assert scheduled == (outcome == "delayed")
        if outcome == "delayed":
            assert send_at == NOW - timedelta(minutes=10) + timedelta(hours=1)


async def test_a_webhook_s_events_are_decided_in_one_span_of_its_trace(api_only):
    """The events one request brought are decided in one span of the evaluator's, a child of the
    request's: what each causes is published in the request's trace, and another request's events
    in a span of their own."""
    svc = api_only
    workspace, auth, _, _ = await _workspace(svc)
    secret = "hubspot-secret-" + workspace
    integration = (
        await svc.client.post(
            "/v1/integrations", json={"name": "HubSpot", "kind": "hubspot", "secret": secret}, headers=auth
        )
    ).json()
    rule = {
        "name": "new customer",
        "source": "hubspot",
        "event_type": "contact.propertyChange",
        "survey_id": "nps",
        "channel": "link",
    }
    assert (await svc.client.post("/v1/rules", json=rule, headers=auth)).status_code == 201
    path = "/v1/" + integration["webhook_url"].split("/v1/", 1)[1]
    traces = {}
    for n, trace in enumerate(("4bf92f3577b34da6a3ce929d0e0e4736", "0af7651916cd43dd8448eb211c80319c")):
        body = fx.dumps(
            [fx.lifecycle_customer(9000 + 10 * n + i, event_id=9000 + 10 * n + i) for i in range(3)]
        )
        headers = {
            **fx.hubspot_v3_headers(secret, "http://testserver" + path, body),
            "traceparent": f"00-{trace}-00f067aa0ba902b7-01",
        }
        response = await svc.client.post(path, content=body, headers=headers)
        assert response.status_code == 202, response.text
        traces[trace] = n
    # Stored as two batches: the evaluator moves them into events, then decides them.
    assert await svc.evaluator.evaluate_pending(limit=1000) >= 6
    assert await _pending(svc, workspace) == 0
    async with svc.runtime.db.unit_of_work() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT payload->>'type', payload->>'traceparent' FROM trigger.outbox "
                    "WHERE payload->>'workspaceid' = :ws AND payload->>'type' = ANY(CAST(:types AS text[]))"
                ),
                {"ws": workspace, "types": [CustomerEventReceived.type_name(), SurveyRequested.type_name()]},
            )
        ).all()
    spans: dict[str, set[str]] = {}
    for _, traceparent in rows:
        _, trace, span, _ = traceparent.split("-")
        assert span != "00f067aa0ba902b7"  # the evaluator's own span, not the request's
        spans.setdefault(trace, set()).add(span)
    assert len(rows) == 12  # each of the six events: received, and a survey requested
    assert set(spans) == set(traces) and all(len(s) == 1 for s in spans.values())
    assert len(set.union(*spans.values())) == 2
