"""Case management against real PostgreSQL and the real broker: who to call, routing, statuses, notes,
resolution with root causes, erasure, bulk actions and the decision log."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from services.followup.app import create_app
from services.followup.settings import FollowUpSettings
from shared.clock import Clock
from shared.events import (
    FOLLOWUPS,
    SURVEY_REQUESTS,
    ContactErased,
    InvitationFailed,
    NegativeFeedbackDetected,
    Recipient,
    ResponseScored,
    ScoredAnswer,
    new_id,
    utcnow,
)
from tests.support.access import key_id_of, person_auth
from tests.support.followup import ADA, detractor_answers, negative_feedback, retention_answer
from tests.support.stack import TopicReader, publish, running, settings_from, wait_until
from tests.support.surveys import set_retention_survey

pytestmark = pytest.mark.integration

GRACE = "Grace (user:grace)"
NO_CONTACT_DETAILS = dict.fromkeys(("name", "email", "phone", "locale", "timezone", "company"))
"""A case's contact with none of its details: the customer never gave them, or they were erased."""


@pytest.fixture(scope="module")
async def app_and_clock(stack_env: dict[str, str]) -> AsyncIterator[tuple[Any, Clock]]:
    clock = Clock()
    settings = settings_from(FollowUpSettings, stack_env, escalation_interval_ms=3_600_000)
    app = create_app(settings, clock=clock)
    async with running(app) as client:
        yield client, clock


@pytest.fixture
def client(app_and_clock) -> httpx.AsyncClient:
    return app_and_clock[0]


NEGATIVE: dict[str, Any] = {
    "channel": "email",
    "respondent": ADA,
    "dimensions": {"country": "NL", "product": "pro"},
    "comment": "The parcel came two weeks late.",
}
"""This module's negative feedback unless a test says otherwise: Ada's, by email, from the Netherlands
on the pro plan."""


def negative(workspace: str, **fields: Any) -> NegativeFeedbackDetected:
    return negative_feedback(workspace, **{**NEGATIVE, **fields})


async def case_for(client: httpx.AsyncClient, auth: dict[str, str], response_id: str) -> dict[str, Any]:
    async def find() -> str | None:
        page = (await client.get("/v1/cases", params={"limit": 500}, headers=auth)).json()
        return next((c["id"] for c in page["items"] if c["response_id"] == response_id), None)

    case_id = await wait_until(find, message=f"case for response {response_id}")
    return (await client.get(f"/v1/cases/{case_id}", headers=auth)).json()


async def case_when(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    url: str,
    ready: Callable[[dict[str, Any]], Any],
    message: str,
) -> dict[str, Any]:
    """Wait until the case at ``url`` is ``ready``; return it."""

    async def check() -> dict[str, Any] | None:
        detail = (await client.get(url, headers=auth)).json()
        return detail if ready(detail) else None

    return await wait_until(check, message=message)


async def opened(
    client: httpx.AsyncClient, auth: dict[str, str], producer: Any, event: Any
) -> dict[str, Any]:
    """Publish ``event`` and return the case it opens."""
    await publish(producer, event)
    return await case_for(client, auth, event.response_id)


async def resolve(
    client: httpx.AsyncClient, auth: dict[str, str], url: str, category: str, cause: str, action_taken: str
) -> dict[str, Any]:
    """Resolve the case at ``url`` with the root cause ``category › cause`` (asserting it worked); return it."""
    body = {"root_cause": {"category": category, "cause": cause}, "action_taken": action_taken}
    return await put(client, auth, f"{url}/resolve", body, method="POST")


async def decisions(
    client: httpx.AsyncClient, auth: dict[str, str], response_id: str
) -> list[dict[str, Any]]:
    return (await client.get("/v1/decisions", params={"response_id": response_id}, headers=auth)).json()[
        "items"
    ]


async def test_a_case_shows_who_to_call_every_answer_and_its_due_times(client, producer, auth, workspace):
    both = detractor_answers() + (
        ScoredAnswer(question_id="csat", metric="csat", score=2, classification="negative", negative=True),
    )
    event = negative(workspace, scores=both)
    await publish(producer, event)
    await publish(producer, event)  # the same response again under a new event id
    case = await case_for(client, auth, event.response_id)

    assert case["contact"] == {"known": True, **ADA.model_dump()}
    assert [(a["metric"], a["score"]) for a in case["answers"]] == [("nps", 3), ("csat", 2)]
    assert (case["comment"], case["channel"], case["dimensions"]["country"]) == (
        "The parcel came two weeks late.",
        "email",
        "NL",
    )
    assert (case["status"], case["priority"], case["opened_because"], case["assignee"]) == (
        "open",
        "normal",
        "negative",
        None,
    )
    assert case["sla"]["first_contact_due_at"] and case["sla"]["first_contact_due_business_at"]
    assert [h["kind"] for h in case["history"]] == ["opened"]
    made = await decisions(client, auth, event.response_id)
    assert sorted((d["kind"], d["outcome"]) for d in made) == [("opening", "opened"), ("routing", "default")]
    assert "unassigned queue" in next(d["reason"] for d in made if d["kind"] == "routing")
    page = (await client.get("/v1/cases", headers=auth)).json()
    assert len([c for c in page["items"] if c["response_id"] == event.response_id]) == 1


async def test_kiosk_respondents_without_a_channel_and_customers_without_consent_get_no_case(
    client, producer, auth, workspace
):
    contact = "c-kiosk-" + secrets.token_hex(3)
    kiosk = negative(workspace, contact_id=contact, respondent=Recipient(name="Walk-in"), channel="link")
    no_consent = negative(workspace, contact_id=contact, consent=False)
    unknown = negative(workspace, contact_id=contact, respondent=None)  # an older producer did not say
    for event in (kiosk, no_consent, unknown):
        await publish(producer, event)
    case = await case_for(client, auth, unknown.response_id)  # one partition: the others were handled first
    assert case["contact"] == {"known": False, **NO_CONTACT_DETAILS}

    cases = (await client.get("/v1/cases", params={"contact_id": contact}, headers=auth)).json()["items"]
    assert [c["response_id"] for c in cases] == [unknown.response_id]
    [why_kiosk] = await decisions(client, auth, kiosk.response_id)
    [why_consent] = await decisions(client, auth, no_consent.response_id)
    assert (why_kiosk["outcome"], why_consent["outcome"]) == ("unreachable", "no_consent")
    assert "no way to reach" in why_kiosk["reason"] and "no consent" in why_consent["reason"]
    skipped = (await client.get("/v1/decisions", params={"outcome": "unreachable"}, headers=auth)).json()[
        "items"
    ]
    assert [d["response_id"] for d in skipped] == [kiosk.response_id]


async def put(
    client: httpx.AsyncClient, auth: dict[str, str], path: str, body: Any, *, method: str = "PUT"
) -> Any:
    response = await client.request(method, path, json=body, headers=auth)
    assert response.status_code in (200, 201), (path, response.text)
    return response.json()


async def agents_and_team(client, auth, names: list[str], **team: Any) -> dict[str, Any]:
    for name in names:
        await put(client, auth, f"/v1/agents/{name}", {"name": name.title(), "email": f"{name}@acme.example"})
    return await put(
        client,
        auth,
        "/v1/teams",
        {"name": "Benelux", "timezone": "Europe/Amsterdam", "members": names, **team},
        method="POST",
    )


async def test_routing_rules_in_order_then_round_robin_within_the_team(client, producer, auth, workspace):
    team = await agents_and_team(client, auth, ["ann", "bob", "cem"], lead_agent_id="cem")
    await put(client, auth, "/v1/agents/senior", {"name": "Senior"})
    rules = await put(
        client,
        auth,
        "/v1/routing-rules",
        {
            "rules": [
                {
                    "name": "furious",
                    "conditions": {"score": {"metric": "nps", "max": 1}},
                    "agent_id": "senior",
                    "priority": "urgent",
                },
                {
                    "name": "benelux",
                    "conditions": {"dimensions": {"country": ["NL", "BE"]}},
                    "team_id": team["id"],
                },
            ]
        },
    )
    assert [r["position"] for r in rules["rules"]] == [1, 2]
    contact = "c-route-" + secrets.token_hex(3)
    benelux = [negative(workspace, contact_id=contact, dimensions={"country": c}) for c in ("NL", "BE") * 3]
    furious = negative(
        workspace, contact_id=contact, scores=detractor_answers(score=0), dimensions={"country": "NL"}
    )
    elsewhere = negative(workspace, contact_id=contact, dimensions={"country": "DE"})
    for event in (*benelux, furious, elsewhere):
        await publish(producer, event)
    last = await case_for(client, auth, elsewhere.response_id)
    assert (last["team_id"], last["assignee"]) == (None, None)

    routed = [await case_for(client, auth, e.response_id) for e in benelux]
    assert [c["assignee"] for c in routed] == ["ann", "bob", "cem", "ann", "bob", "cem"]
    assert Counter(c["assignee"] for c in routed) == {"ann": 2, "bob": 2, "cem": 2}
    assert {c["team_id"] for c in routed} == {team["id"]}
    top = await case_for(client, auth, furious.response_id)
    assert (top["assignee"], top["priority"], top["team_id"]) == ("senior", "urgent", None)
    [why] = [d for d in await decisions(client, auth, benelux[0].response_id) if d["kind"] == "routing"]
    assert "rule 2 'benelux' matched" in why["reason"] and "round_robin: ann" in why["reason"]
    mine = (await client.get("/v1/cases", params={"assignee": "bob", "active": "true"}, headers=auth)).json()[
        "items"
    ]
    assert sorted(c["id"] for c in mine) == sorted(c["id"] for c in routed if c["assignee"] == "bob")


async def test_least_open_cases_gives_the_next_case_to_whoever_has_fewest(client, producer, auth, workspace):
    team = await agents_and_team(client, auth, ["dee", "eli"], strategy="least_open")
    await put(client, auth, "/v1/routing-rules", {"rules": [], "default_team_id": team["id"]})
    contact = "c-least-" + secrets.token_hex(3)
    first, second = negative(workspace, contact_id=contact), negative(workspace, contact_id=contact)
    one = await opened(client, auth, producer, first)
    # Hand a second case to the same agent by hand: the other now has fewer open cases.
    two = await opened(client, auth, producer, second)
    assert {one["assignee"], two["assignee"]} == {"dee", "eli"}
    await put(client, auth, f"/v1/cases/{two['id']}/assign", {"agent_id": one["assignee"]}, method="POST")
    third = negative(workspace, contact_id=contact)
    await publish(producer, third)
    assert (await case_for(client, auth, third.response_id))["assignee"] == two["assignee"]


async def test_a_case_moves_forward_gets_notes_is_resolved_with_a_root_cause_and_reopened(
    client, producer, auth, workspace, broker
):
    await set_retention_survey(client, auth, producer, workspace=workspace, retention_channel="email")
    await put(
        client,
        auth,
        "/v1/workflow",
        {"custom_statuses": [{"name": "refund_pending"}], "note_on_status_change": True},
    )
    await put(client, auth, "/v1/agents/grace", {"name": "Grace"})
    event = negative(workspace, channel="sms")
    case = await opened(client, auth, producer, event)
    url = f"/v1/cases/{case['id']}"
    # Grace works the case through the console: the history names her from her token (X-Actor is not believed).
    grace = {**person_auth(workspace, "agent", user_id="grace", name="Grace"), "X-Actor": "mallory"}

    async with (
        TopicReader(broker.bootstrap_servers, FOLLOWUPS) as followups,
        TopicReader(broker.bootstrap_servers, SURVEY_REQUESTS) as requests,
    ):
        assert (
            await client.post(f"{url}/status", json={"status": "in_progress"}, headers=grace)
        ).status_code == 422  # note required
        moved = await client.post(
            f"{url}/status", json={"status": "in_progress", "note": "Called Ada."}, headers=grace
        )
        assert moved.status_code == 200 and moved.json()["sla"]["first_contacted_at"] is not None
        for status, refused in (("open", 409), ("resolved", 409), ("closed", 409), ("done", 422)):
            answer = await client.post(f"{url}/status", json={"status": status, "note": "x"}, headers=grace)
            assert answer.status_code == refused, (status, answer.text)
        await put(
            client,
            grace,
            f"{url}/status",
            {"status": "refund_pending", "note": "Refund asked."},
            method="POST",
        )
        note = await client.post(
            f"{url}/notes",
            json={
                "body": "Prefers calls after 17:00.",
                "attachments": [{"url": "https://crm.example/t/1", "title": "Ticket"}],
            },
            headers=grace,
        )
        assert note.status_code == 201 and note.json()["author"] == GRACE
        wrong_cause = await client.post(
            f"{url}/resolve",
            json={"root_cause": {"category": "Delivery", "cause": "Rude"}, "action_taken": "x"},
            headers=grace,
        )
        assert wrong_cause.status_code == 422 and wrong_cause.json()["errors"][0]["field"] == "root_cause"
        resolved = await resolve(client, grace, url, "Delivery", "Late", "Refunded the shipping.")
        assert (
            resolved["status"],
            resolved["resolution"]["root_cause"],
            resolved["retention"]["status"],
        ) == ("resolved", "Late", "requested")
        assert resolved["retention"]["channel"] == "sms"  # the channel the customer answered on
        [request] = await requests.wait_for(lambda v: v["workspaceid"] == workspace)
        assert request["data"]["channel"] == "sms" and request["data"]["fallback_channels"] == [
            "email",
            "whatsapp",
        ]
        assert request["data"]["recipient"]["email"] == ADA.email and request["data"]["locale"] == "nl-NL"
        assert (
            await client.post(
                f"{url}/resolve",
                json={"root_cause": {"category": "Other", "cause": "Other"}, "action_taken": "x"},
                headers=grace,
            )
        ).status_code == 409
        assert (await client.post(f"{url}/reopen", json={}, headers=grace)).status_code == 422
        reopened = await put(
            client, grace, f"{url}/reopen", {"reason": "The refund never arrived."}, method="POST"
        )
        assert (reopened["status"], reopened["reopen_count"], reopened["retention"]["status"]) == (
            "in_progress",
            1,
            None,
        )
        kinds = [
            v["type"].split(".")[1]
            for v in await followups.wait_for(lambda v: v["data"].get("task_id") == case["id"], count=8)
        ]

    assert kinds == [
        "FollowUpOpened",
        "FollowUpNoteAdded",
        "FollowUpStatusChanged",
        "FollowUpNoteAdded",
        "FollowUpStatusChanged",
        "FollowUpNoteAdded",
        "FollowUpResolved",
        "FollowUpReopened",
    ]
    detail = (await client.get(url, headers=auth)).json()
    assert [(h["kind"], h["actor"]) for h in detail["history"]] == [
        ("opened", "system"),
        ("note_added", GRACE),
        ("status_changed", GRACE),
        ("note_added", GRACE),
        ("status_changed", GRACE),
        ("note_added", GRACE),
        ("resolved", GRACE),
        ("reopened", GRACE),
    ]
    assert [n["body"] for n in detail["notes"]] == [
        "Called Ada.",
        "Refund asked.",
        "Prefers calls after 17:00.",
    ]
    assert detail["notes"][2]["attachments"] == [{"url": "https://crm.example/t/1", "title": "Ticket"}]


async def test_erasing_a_contact_with_open_cases_keeps_them_anonymised(client, producer, auth, workspace):
    await set_retention_survey(client, auth, producer, workspace=workspace)
    contact = "c-erase-" + secrets.token_hex(3)
    event = negative(workspace, contact_id=contact, comment="Call me on 06-12345678.")
    case = await opened(client, auth, producer, event)
    url = f"/v1/cases/{case['id']}"
    await put(
        client,
        auth,
        f"{url}/notes",
        {"body": "Ada's husband answered.", "attachments": [{"url": "https://crm.example/ada"}]},
        method="POST",
    )

    await publish(producer, ContactErased(workspace_id=workspace, contact_id=contact, erased_at=utcnow()))

    detail = await case_when(client, auth, url, lambda c: c["erased"], "contact erased")
    assert detail["contact"] == {"known": True, **NO_CONTACT_DETAILS}
    assert (detail["contact_id"], detail["comment"], detail["status"]) == (None, None, "open")
    assert detail["notes"][0] | {"created_at": None, "id": None} == {
        "id": None,
        "author": f"key:{key_id_of(auth)}",
        "body": None,
        "attachments": [],
        "erased": True,
        "created_at": None,
    }
    assert [a["score"] for a in detail["answers"]] == [3]
    # Nobody is left to ask: resolving closes the case, retention survey not possible.
    resolved = await resolve(client, auth, url, "Other", "Other", "Nothing to do.")
    assert (resolved["status"], resolved["retention"]["status"]) == ("closed", "not_possible")


async def test_bulk_actions_apply_per_case(client, producer, auth, workspace):
    await put(client, auth, "/v1/agents/hal", {"name": "Hal"})
    contact = "c-bulk-" + secrets.token_hex(3)
    events = [negative(workspace, contact_id=contact) for _ in range(3)]
    for event in events:
        await publish(producer, event)
    ids = [(await case_for(client, auth, e.response_id))["id"] for e in events]

    async def bulk(**action: Any) -> Any:
        return await put(client, auth, "/v1/cases/bulk", action, method="POST")

    assigned = await bulk(case_ids=[*ids, new_id()], action="assign", agent_id="hal")
    assert (assigned["succeeded"], assigned["failed"]) == (3, 1)
    assert [r["status"] for r in assigned["results"]] == [200, 200, 200, 404]
    moved = await bulk(case_ids=ids, action="status", status="in_progress")
    assert {r["case"]["status"] for r in moved["results"]} == {"in_progress"}
    again = await bulk(case_ids=ids[:1], action="status", status="open")
    assert (again["failed"], again["results"][0]["status"]) == (1, 409)
    noted = await bulk(case_ids=ids, action="note", note="Mass call-back done.")
    assert noted["succeeded"] == 3
    missing = await client.post("/v1/cases/bulk", json={"case_ids": ids, "action": "status"}, headers=auth)
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "status"


async def test_bad_input_names_the_field(client, producer, auth, workspace):
    event = negative(workspace)
    case = await opened(client, auth, producer, event)
    url = f"/v1/cases/{case['id']}"
    cases = [
        ("GET", "/v1/cases?limit=100000", None, 422, "limit"),
        ("GET", "/v1/cases?cursor=%%%", None, 422, "cursor"),
        ("GET", "/v1/cases?priority=extreme", None, 422, "priority"),
        ("GET", f"/v1/cases/{new_id()}", None, 404, "case_id"),
        ("GET", "/v1/cases/zürich-€", None, 404, "case_id"),
        ("GET", "/v1/tasks/zürich-€", None, 404, "task_id"),
        ("POST", f"{url}/assign", {}, 422, "agent_id"),
        ("POST", f"{url}/assign", {"agent_id": "nobody"}, 422, "agent_id"),
        ("POST", f"{url}/assign", {"team_id": new_id()}, 422, "team_id"),
        ("POST", f"{url}/notes", {"body": " "}, 422, "body"),
        (
            "POST",
            f"{url}/notes",
            {"body": "x", "attachments": [{"url": "not a url"}]},
            422,
            "attachments.0.url",
        ),
        ("POST", f"{url}/priority", {"priority": "extreme"}, 422, "priority"),
        ("POST", f"{url}/resolve", {"action_taken": "x"}, 422, "root_cause"),
        ("POST", "/v1/teams", {"name": "T", "timezone": "Mars/Olympus"}, 422, "timezone"),
        ("POST", "/v1/teams", {"name": "T", "holiday_country": "XX"}, 422, "holiday_country"),
        ("POST", "/v1/teams", {"name": "T", "members": ["ghost"]}, 422, "members"),
        (
            "POST",
            "/v1/teams",
            {"name": "T", "notify_channel": "email", "notify_to": "nope"},
            422,
            "notify_to",
        ),
        (
            "POST",
            "/v1/teams",
            {"name": "T", "notify_channel": "chat", "notify_to": "slack"},
            422,
            "notify_to",
        ),
        (
            "POST",
            "/v1/teams",
            {"name": "T", "holiday_country": "NL", "holiday_subdivision": "XX"},
            422,
            "holiday_country",
        ),
        ("POST", "/v1/teams", {"name": "T", "day_start": "18:00", "day_end": "09:00"}, 422, "day_end"),
        ("PUT", "/v1/routing-rules", {"rules": [{"name": "r"}]}, 422, "rules.0.team_id"),
        ("PUT", "/v1/routing-rules", {"rules": [{"name": "r", "team_id": new_id()}]}, 422, "rules.0.team_id"),
        (
            "PUT",
            "/v1/escalation-ladder",
            {"steps": [{"name": "s", "trigger": "age", "action": "page"}]},
            422,
            "steps.0.action",
        ),
        (
            "PUT",
            "/v1/escalation-ladder",
            {"steps": [{"name": f"s{i}", "trigger": "age", "action": "notify_lead"} for i in range(51)]},
            422,
            "steps",
        ),
        ("PUT", "/v1/sla-policies", {"policies": [{"name": "a"}, {"name": "b"}]}, 422, "policies.1"),
        ("PUT", "/v1/workflow", {"custom_statuses": [{"name": "resolved"}]}, 422, "custom_statuses"),
        ("PUT", "/v1/root-causes", {"taxonomy": {"Delivery": []}}, 422, "taxonomy"),
        ("GET", "/v1/metrics?by=segment", None, 422, "dimension"),
        ("GET", "/v1/metrics?since=2026-12-01T00:00:00Z&until=2026-11-01T00:00:00Z", None, 422, "until"),
        ("GET", "/v1/decisions?kind=maybe", None, 422, "kind"),
    ]
    for method, path, body, status, field in cases:
        response = await client.request(method, path, json=body, headers=auth)
        assert response.status_code == status, (path, body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert field in [e["field"] for e in response.json()["errors"]], (path, response.json())
    legacy = await client.get("/v1/tasks", headers=auth)
    assert (
        legacy.headers["Deprecation"].startswith("@") and 'rel="successor-version"' in legacy.headers["Link"]
    )
    assert (await client.get(url, headers=auth)).json()["history"][-1]["kind"] == "opened"


async def test_a_retention_survey_dispatch_cannot_send_closes_the_case_instead_of_waiting(
    client, producer, auth, workspace
):
    # A kiosk respondent from an older producer: nobody said who answered, so the case opened and the
    # retention survey was requested; dispatch finds no way to reach them.
    await set_retention_survey(client, auth, producer, workspace=workspace)
    event = negative(workspace, respondent=None, channel="link")
    case = await opened(client, auth, producer, event)
    url = f"/v1/cases/{case['id']}"
    resolved = await resolve(client, auth, url, "Service", "Slow", "Apologised.")
    assert (resolved["status"], resolved["retention"]["status"]) == ("resolved", "requested")
    failed = InvitationFailed(
        workspace_id=workspace,
        invitation_id=new_id(),
        request_id=resolved["retention"]["request_id"],
        contact_id=event.contact_id,
        survey_id="svy-retention",
        kind="retention",
        channel="email",
        occurred_at=utcnow(),
        error="no email address for the contact",
    )
    await publish(producer, failed)

    detail = await case_when(client, auth, url, lambda c: c["status"] == "closed", "the case closed")
    assert detail["retention"]["status"] == "not_possible"
    assert (
        detail["history"][-1]["details"]["reason"]
        == "retention survey not possible: no email address for the contact"
    )


def scored_response(
    workspace: str, *, contact_id: str, loyalty: str | None, scores: tuple[ScoredAnswer, ...]
) -> ResponseScored:
    return ResponseScored(
        workspace_id=workspace,
        response_id=new_id(),
        request_id=new_id(),
        contact_id=contact_id,
        survey_id="svy-loyalty",
        kind="relationship",
        channel="email",
        scores=scores,
        loyalty=loyalty,
        consent_to_contact=True,
        respondent=ADA,
        negative=False,
        scored_at=utcnow(),
    )


async def test_workspace_rules_open_cases_on_false_loyalty_and_low_scores(client, producer, auth, workspace):
    contact = "c-loyal-" + secrets.token_hex(3)
    promoter = ScoredAnswer(
        question_id="nps", metric="nps", score=9, classification="promoter", negative=False
    )
    low_nls = ScoredAnswer(
        question_id="nls", metric="nls", score=4, classification="detractor", negative=False
    )
    csat_3 = ScoredAnswer(
        question_id="csat", metric="csat", score=3, classification="neutral", negative=False
    )
    before_rules = scored_response(workspace, contact_id=contact, loyalty="false", scores=(promoter, low_nls))
    sentinel = negative(workspace, contact_id=contact)
    await publish(producer, before_rules)
    await publish(producer, sentinel)
    # One partition: once the sentinel's case exists, the response before the rules was handled.
    await case_for(client, auth, sentinel.response_id)
    rules = await put(
        client, auth, "/v1/opening-rules", {"loyalty_cells": ["false", "trapped"], "score_below": {"csat": 4}}
    )
    assert rules == {"loyalty_cells": ["false", "trapped"], "score_below": {"csat": 4}}
    false_loyalty = scored_response(
        workspace, contact_id=contact, loyalty="false", scores=(promoter, low_nls)
    )
    low_csat = scored_response(workspace, contact_id=contact, loyalty=None, scores=(csat_3,))
    pure = scored_response(workspace, contact_id=contact, loyalty="pure", scores=(promoter,))
    for event in (false_loyalty, low_csat, pure):
        await publish(producer, event)
    loyal = await case_for(client, auth, false_loyalty.response_id)
    threshold = await case_for(client, auth, low_csat.response_id)
    assert (loyal["opened_because"], loyal["loyalty"], threshold["opened_because"]) == (
        "loyalty",
        "false",
        "threshold",
    )
    assert [(a["metric"], a["score"]) for a in loyal["answers"]] == [("nps", 9), ("nls", 4)]
    cases = (await client.get("/v1/cases", params={"contact_id": contact}, headers=auth)).json()["items"]
    assert sorted(c["response_id"] for c in cases) == sorted(
        [sentinel.response_id, false_loyalty.response_id, low_csat.response_id]
    )


async def test_agents_and_teams_are_listed_page_by_page(client, auth, workspace):
    team = await agents_and_team(client, auth, ["ann", "bob", "cem"], lead_agent_id="ann")
    first = (await client.get("/v1/agents", params={"limit": 2}, headers=auth)).json()
    assert [a["id"] for a in first["items"]] == ["ann", "bob"] and first["next_cursor"]
    rest = (
        await client.get("/v1/agents", params={"limit": 2, "cursor": first["next_cursor"]}, headers=auth)
    ).json()
    assert ([a["id"] for a in rest["items"]], rest["next_cursor"]) == (["cem"], None)
    teams = (await client.get("/v1/teams", headers=auth)).json()
    assert [(t["id"], t["members"], t["lead_agent_id"]) for t in teams["items"]] == [
        (team["id"], ["ann", "bob", "cem"], "ann")
    ]
    renamed = await put(
        client,
        auth,
        f"/v1/teams/{team['id']}",
        {"name": "Benelux", "members": ["bob"], "timezone": "Europe/Brussels"},
    )
    assert (renamed["members"], renamed["timezone"], renamed["lead_agent_id"]) == (
        ["bob"],
        "Europe/Brussels",
        None,
    )
    assert (await client.delete(f"/v1/teams/{team['id']}", headers=auth)).status_code == 204
    assert (await client.get(f"/v1/teams/{team['id']}", headers=auth)).status_code == 404


async def test_the_old_task_api_shows_a_case_being_worked_as_open(client, producer, auth, workspace):
    event = negative(workspace)
    case = await opened(client, auth, producer, event)
    await put(client, auth, f"/v1/cases/{case['id']}/status", {"status": "in_progress"}, method="POST")
    tasks = await client.get("/v1/tasks", params={"status": "open"}, headers=auth)
    assert tasks.headers["Link"] == '</v1/cases>; rel="successor-version"'
    assert [(t["id"], t["status"]) for t in tasks.json()] == [(case["id"], "open")]
    task = (await client.get(f"/v1/tasks/{case['id']}", headers=auth)).json()
    assert task["status"] == "open" and [h["kind"] for h in task["history"]] == ["opened", "status_changed"]


async def test_a_case_closed_by_hand_still_records_the_retention_answer(client, producer, auth, workspace):
    await set_retention_survey(client, auth, producer, workspace=workspace)
    event = negative(workspace)
    case = await opened(client, auth, producer, event)
    url = f"/v1/cases/{case['id']}"
    resolved = await resolve(client, auth, url, "Billing", "Error", "Credited.")
    closed = await put(client, auth, f"{url}/status", {"status": "closed"}, method="POST")
    assert (closed["status"], closed["retention"]["status"]) == ("closed", "requested")
    request_id = resolved["retention"]["request_id"]
    await publish(
        producer,
        retention_answer(workspace, request_id, score=4, negative=False, contact_id=event.contact_id),
    )

    detail = await case_when(
        client, auth, url, lambda c: c["retention"]["status"] == "answered", "the retention answer recorded"
    )
    assert (detail["status"], detail["retention"]["won_back"], detail["closed_at"]) == (
        "closed",
        True,
        closed["closed_at"],
    )
