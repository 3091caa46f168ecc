"""The follow-up service against real PostgreSQL and the real broker: the loop from detractor to won back."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.followup.app import create_app
from services.followup.settings import FollowUpSettings
from shared.events import (
    FOLLOWUPS,
    NOTIFICATIONS,
    SURVEY_REQUESTS,
    ContactErased,
    NegativeFeedbackDetected,
    SurveyClosed,
    new_id,
    utcnow,
)
from shared.security import issue_api_key
from tests.support.followup import detractor_answers, negative_feedback, retention_answer
from tests.support.stack import TopicReader, publish, running, settings_from, wait_until
from tests.support.surveys import set_retention_survey

pytestmark = pytest.mark.integration

RESOLUTION = {"root_cause": {"category": "Service", "cause": "Slow"}, "action_taken": "Called them."}


@pytest.fixture(scope="module")
async def client(stack_env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """One follow-up service for the whole module: joining the consumer group takes seconds."""
    settings = settings_from(FollowUpSettings, stack_env)
    async with running(create_app(settings)) as c:
        yield c


def negative(
    workspace: str,
    *,
    consent: bool = True,
    kind: str = "transactional",
    contact_id: str = "c-1",
    score: int = 3,
    comment: str | None = "Two weeks late.",
) -> NegativeFeedbackDetected:
    return negative_feedback(
        workspace,
        consent=consent,
        kind=kind,
        contact_id=contact_id,
        scores=detractor_answers(score=score),
        comment=comment,
    )


async def task_for(client: httpx.AsyncClient, auth: dict[str, str], response_id: str) -> dict[str, Any]:
    """Wait for the task of ``response_id`` and return it with its history."""

    async def find() -> str | None:
        tasks = (await client.get("/v1/tasks", headers=auth)).json()
        return next((t["id"] for t in tasks if t["response_id"] == response_id), None)

    task_id = await wait_until(find, message=f"task for response {response_id}")
    return (await client.get(f"/v1/tasks/{task_id}", headers=auth)).json()


async def test_negative_feedback_with_consent_opens_one_task(client, producer, auth, workspace, broker):
    no_consent = negative(workspace, consent=False)
    from_retention = negative(workspace, kind="retention")
    detractor = negative(workspace, comment="Nobody called back.")
    last = negative(workspace, score=5)
    async with TopicReader(broker.bootstrap_servers, FOLLOWUPS) as followups:
        await publish(producer, no_consent)
        await publish(producer, from_retention)
        envelope_id = await publish(producer, detractor)
        await publish(producer, detractor, event_id=envelope_id)  # redelivered
        await publish(producer, detractor)  # the same feedback again under a new event id
        await publish(producer, last)
        # One contact, one partition: once the last task exists, every earlier event was handled.
        await task_for(client, auth, last.response_id)
        task = await task_for(client, auth, detractor.response_id)
        [opened] = await followups.wait_for(lambda v: v["data"].get("task_id") == task["id"])

    tasks = (await client.get("/v1/tasks", headers=auth)).json()
    assert sorted(t["response_id"] for t in tasks) == sorted([detractor.response_id, last.response_id])
    assert {
        k: task[k] for k in ("status", "score", "comment", "survey_id", "contact_id", "metric", "assignee")
    } == {
        "status": "open",
        "score": 3,
        "comment": "Nobody called back.",
        "survey_id": "svy-nps",
        "contact_id": "c-1",
        "metric": "nps",
        "assignee": None,
    }
    assert [h["kind"] for h in task["history"]] == ["opened"]
    assert opened["type"] == "closeloop.FollowUpOpened.v1"
    assert opened["data"]["response_id"] == detractor.response_id and opened["data"]["score"] == 3


async def test_the_loop_closes_when_the_retention_answer_comes_back(
    client, producer, auth, workspace, broker
):
    settings = await set_retention_survey(client, auth, producer, workspace=workspace)
    assert settings.status_code == 200, settings.text
    assert (await client.get("/v1/settings", headers=auth)).json() == {
        "retention_survey_id": "svy-retention",
        "retention_channel": "email",
        "retention_delay_seconds": 0,
        "notify_email": None,
        "configured": True,
    }
    feedback = negative(workspace)
    await publish(producer, feedback)
    task_id = (await task_for(client, auth, feedback.response_id))["id"]

    async with (
        TopicReader(broker.bootstrap_servers, SURVEY_REQUESTS) as requests,
        TopicReader(broker.bootstrap_servers, FOLLOWUPS) as followups,
    ):
        assigned = await client.post(
            f"/v1/tasks/{task_id}/assign", json={"assignee": "sam@acme.example"}, headers=auth
        )
        assert assigned.status_code == 200 and assigned.json()["assignee"] == "sam@acme.example"
        resolved = await client.post(
            f"/v1/tasks/{task_id}/resolve", json={"note": " Refunded the fee. "}, headers=auth
        )
        assert resolved.status_code == 200, resolved.text
        body = resolved.json()
        request_id = body["task"]["retention_request_id"]
        assert body["task"]["status"] == "resolved" and body["task"]["resolution_note"] == "Refunded the fee."
        assert body["retention_survey"] | {"detail": None} == {
            "requested": True,
            "survey_id": "svy-retention",
            "request_id": request_id,
            "detail": None,
        }

        [request] = await requests.wait_for(lambda v: v["workspaceid"] == workspace)
        assert request["type"] == "closeloop.SurveyRequested.v1"
        fields = (
            "workspace_id",
            "request_id",
            "contact_id",
            "survey_id",
            "kind",
            "channel",
            "send_at",
            "recipient",
            "reason",
        )
        assert {k: request["data"][k] for k in fields} | {"send_at": None} == {
            "workspace_id": workspace,
            "request_id": request_id,
            "contact_id": "c-1",
            "survey_id": "svy-retention",
            "kind": "retention",
            "channel": "email",
            "send_at": None,
            "recipient": None,
            "reason": f"followup:{task_id}",
        }
        again = await client.post(f"/v1/tasks/{task_id}/resolve", json={"note": "again"}, headers=auth)
        assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"
        late_assign = await client.post(f"/v1/tasks/{task_id}/assign", json={"assignee": "kim"}, headers=auth)
        assert late_assign.status_code == 409

        await publish(producer, retention_answer(workspace, request_id, score=5, negative=False))

        async def closed() -> dict[str, Any] | None:
            task = (await client.get(f"/v1/tasks/{task_id}", headers=auth)).json()
            return task if task["status"] == "closed" else None

        task = await wait_until(closed, message="task closed by the retention answer")
        kinds = [
            v["type"]
            for v in await followups.wait_for(lambda v: v["data"].get("task_id") == task_id, count=4)
        ]
    assert kinds == [
        "closeloop.FollowUpOpened.v1",
        "closeloop.FollowUpAssigned.v1",
        "closeloop.FollowUpResolved.v1",
        "closeloop.FollowUpOutcomeRecorded.v1",
    ]
    assert (task["won_back"], task["retention_score"]) == (True, 5)
    assert [(h["kind"], h["assignee"], h["note"], h["won_back"]) for h in task["history"]] == [
        ("opened", None, None, None),
        ("assigned", "sam@acme.example", None, None),
        ("resolved", None, "Refunded the fee.", None),
        ("outcome", None, None, True),
    ]

    # A second retention answer for the same request changes nothing; a later event on the same
    # partition proves it was handled.
    await publish(producer, retention_answer(workspace, request_id, score=1, negative=True))
    sentinel = negative(workspace)
    await publish(producer, sentinel)
    await task_for(client, auth, sentinel.response_id)
    after = (await client.get(f"/v1/tasks/{task_id}", headers=auth)).json()
    assert (after["won_back"], after["retention_score"], len(after["history"])) == (True, 5, 4)


async def test_a_negative_retention_answer_means_not_won_back(client, producer, auth, workspace):
    await set_retention_survey(client, auth, producer, workspace=workspace, retention_channel="sms")
    feedback = negative(workspace)
    await publish(producer, feedback)
    task_id = (await task_for(client, auth, feedback.response_id))["id"]
    resolved = (
        await client.post(f"/v1/tasks/{task_id}/resolve", json={"note": "Tried."}, headers=auth)
    ).json()
    await publish(
        producer,
        retention_answer(workspace, resolved["task"]["retention_request_id"], score=2, negative=True),
    )

    async def closed() -> dict[str, Any] | None:
        task = (await client.get(f"/v1/tasks/{task_id}", headers=auth)).json()
        return task if task["status"] == "closed" else None

    task = await wait_until(closed, message="task closed")
    assert (task["won_back"], task["retention_score"]) == (False, 2)
    assert (await client.get("/v1/tasks", params={"status": "closed"}, headers=auth)).json()[0][
        "id"
    ] == task_id
    assert (await client.get("/v1/tasks", params={"status": "open"}, headers=auth)).json() == []


async def test_resolving_without_a_retention_survey_says_why_none_was_sent(client, producer, auth, workspace):
    assert (await client.get("/v1/settings", headers=auth)).json()["configured"] is False
    feedback = negative(workspace)
    await publish(producer, feedback)
    task_id = (await task_for(client, auth, feedback.response_id))["id"]

    resolved = await client.post(
        f"/v1/tasks/{task_id}/resolve", json={"note": "Sorted by phone."}, headers=auth
    )

    assert resolved.status_code == 200
    body = resolved.json()
    assert body["task"]["status"] == "resolved" and body["task"]["retention_request_id"] is None
    assert body["retention_survey"]["requested"] is False
    assert "PUT /v1/settings" in body["retention_survey"]["detail"]


async def test_bad_input_is_refused_and_nothing_changes(client, producer, auth, workspace):
    feedback = negative(workspace)
    await publish(producer, feedback)
    task_id = (await task_for(client, auth, feedback.response_id))["id"]
    cases = [
        ("POST", f"/v1/tasks/{task_id}/resolve", {"note": "   "}, 422, "note"),
        ("POST", f"/v1/tasks/{task_id}/resolve", {}, 422, "note"),
        ("POST", f"/v1/tasks/{task_id}/assign", {"assignee": ""}, 422, "assignee"),
        ("POST", f"/v1/tasks/{new_id()}/resolve", {"note": "x"}, 404, "task_id"),
        ("POST", "/v1/tasks/not-a-task/assign", {"assignee": "sam"}, 404, "task_id"),
        ("GET", f"/v1/tasks/{new_id()}", None, 404, "task_id"),
        ("GET", "/v1/tasks?status=done", None, 422, "status"),
        ("GET", "/v1/tasks?limit=100000", None, 422, "limit"),
        ("PUT", "/v1/settings", {"retention_survey_id": ""}, 422, "retention_survey_id"),
        ("PUT", "/v1/settings", {}, 422, "retention_survey_id"),
        (
            "PUT",
            "/v1/settings",
            {"retention_survey_id": "s", "retention_channel": "fax"},
            422,
            "retention_channel",
        ),
    ]
    for method, path, body, status, field in cases:
        response = await client.request(method, path, json=body, headers=auth)
        assert response.status_code == status, (path, body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert field in [e["field"] for e in response.json()["errors"]], (path, response.json())
    malformed = await client.post(
        f"/v1/tasks/{task_id}/resolve",
        content=b"{not json",
        headers={**auth, "content-type": "application/json"},
    )
    assert malformed.status_code == 400

    task = (await client.get(f"/v1/tasks/{task_id}", headers=auth)).json()
    assert (task["status"], task["assignee"], len(task["history"])) == ("open", None, 1)
    assert (await client.get("/v1/settings", headers=auth)).json()["configured"] is False
    assert (await client.get("/v1/tasks")).status_code == 401


async def test_another_workspace_can_neither_see_nor_touch_a_task(
    client, producer, auth, workspace, stack_env
):
    feedback = negative(workspace)
    await publish(producer, feedback)
    task_id = (await task_for(client, auth, feedback.response_id))["id"]
    other = {
        "Authorization": "Bearer " + issue_api_key(stack_env["CLOSELOOP_SECRET_KEY"], "ws-other-" + workspace)
    }

    assert (await client.get("/v1/tasks", headers=other)).json() == []
    assert (await client.get(f"/v1/tasks/{task_id}", headers=other)).status_code == 404
    assert (
        await client.post(f"/v1/tasks/{task_id}/assign", json={"assignee": "eve"}, headers=other)
    ).status_code == 404
    assert (
        await client.post(f"/v1/tasks/{task_id}/resolve", json={"note": "x"}, headers=other)
    ).status_code == 404
    theirs = await set_retention_survey(
        client, other, producer, workspace="ws-other-" + workspace, survey_id="theirs"
    )
    assert theirs.status_code == 200, theirs.text
    assert (await client.get("/v1/settings", headers=auth)).json()["retention_survey_id"] is None
    task = (await client.get(f"/v1/tasks/{task_id}", headers=auth)).json()
    assert (task["status"], task["assignee"]) == ("open", None)


async def test_erasing_a_contact_blanks_their_comments(client, producer, auth, workspace):
    contact = "c-" + secrets.token_hex(4)
    feedback = negative(workspace, contact_id=contact, comment="My number is 555-0100.")
    kept = negative(workspace, comment="Someone else's words.")
    await publish(producer, feedback)
    await publish(producer, kept)
    task_id = (await task_for(client, auth, feedback.response_id))["id"]
    await task_for(client, auth, kept.response_id)

    await publish(producer, ContactErased(workspace_id=workspace, contact_id=contact, erased_at=utcnow()))

    async def blanked() -> bool:
        return (await client.get(f"/v1/tasks/{task_id}", headers=auth)).json()["comment"] is None

    await wait_until(blanked, message="comment blanked")
    others = [t for t in (await client.get("/v1/tasks", headers=auth)).json() if t["id"] != task_id]
    assert [t["comment"] for t in others] == ["Someone else's words."]


async def test_a_new_task_notifies_the_workspace_staff_address(client, producer, auth, workspace, broker):
    quiet = negative(workspace, contact_id="c-quiet")
    await publish(producer, quiet)
    await task_for(client, auth, quiet.response_id)  # no address yet: nobody is told

    saved = await client.put(
        "/v1/settings",
        headers=auth,
        json={"retention_survey_id": None, "notify_email": "cx-team@acme.example"},
    )
    assert saved.status_code == 200 and saved.json()["notify_email"] == "cx-team@acme.example"
    bad = await client.put(
        "/v1/settings", headers=auth, json={"retention_survey_id": None, "notify_email": "nope"}
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "notify_email"

    loud = negative(workspace, contact_id="c-loud", comment="Still broken.")
    async with TopicReader(broker.bootstrap_servers, NOTIFICATIONS) as notifications:
        await publish(producer, loud)
        task = await task_for(client, auth, loud.response_id)
        [notice] = await notifications.wait_for(lambda v: v["workspaceid"] == workspace)
    assert notice["type"] == "closeloop.NotificationRequested.v1"
    assert notice["data"]["to"] == "cx-team@acme.example" and notice["data"]["channel"] == "email"
    assert "NPS 3" in notice["data"]["subject"]
    assert "Still broken." in notice["data"]["body"] and task["id"] in notice["data"]["body"]
    assert (
        len([v for v in notifications.values() if isinstance(v, dict) and v["workspaceid"] == workspace]) == 1
    )


async def test_the_retention_survey_must_be_an_open_survey_of_the_workspace(
    client, producer, auth, workspace, stack_env
):
    """Followup knows surveys from responses' events: a retention survey nobody can answer — unknown,
    another workspace's, closed — is refused when it is set, naming the field and saying how to fix it."""
    unknown = await client.put("/v1/settings", json={"retention_survey_id": "svy-nobody"}, headers=auth)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "retention_survey_id"
    assert "Create the retention survey in responses first" in unknown.json()["detail"]

    elsewhere = "ws-else-" + workspace
    other = {"Authorization": "Bearer " + issue_api_key(stack_env["CLOSELOOP_SECRET_KEY"], elsewhere)}
    assert (
        await set_retention_survey(client, other, producer, workspace=elsewhere, survey_id="svy-else")
    ).is_success
    theirs = await client.put("/v1/settings", json={"retention_survey_id": "svy-else"}, headers=auth)
    assert theirs.status_code == 422 and theirs.json()["errors"][0]["field"] == "retention_survey_id"

    taken = await set_retention_survey(client, auth, producer, workspace=workspace, survey_id="svy-closing")
    assert taken.status_code == 200 and taken.json()["retention_survey_id"] == "svy-closing"
    await publish(producer, SurveyClosed(workspace_id=workspace, survey_id="svy-closing", closed_at=utcnow()))

    async def refused() -> httpx.Response | None:
        again = await client.put("/v1/settings", json={"retention_survey_id": "svy-closing"}, headers=auth)
        return again if again.status_code == 422 else None

    closed = await wait_until(refused, message="followup hears the survey closed")
    assert closed.json()["errors"][0]["field"] == "retention_survey_id"
    assert "is closed" in closed.json()["detail"] and "reopen" in closed.json()["detail"]

    # A case resolved now asks nobody: the survey that was set can no longer be answered.
    feedback = negative(workspace)
    await publish(producer, feedback)
    task_id = (await task_for(client, auth, feedback.response_id))["id"]
    resolved = await client.post(f"/v1/cases/{task_id}/resolve", json=RESOLUTION, headers=auth)
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["retention"]["status"] == "not_possible"
    assert resolved.json()["status"] == "closed"
