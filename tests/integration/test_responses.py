"""The responses service against real PostgreSQL and the real broker (one app for the whole module)."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from services.responses.app import create_app
from services.responses.settings import ResponsesSettings
from shared.events import RESPONSES, ContactErased
from shared.security import issue_api_key
from shared.survey_links import SurveyLink
from tests.conftest import SECRET_KEY
from tests.support.responses import create_survey, link_for
from tests.support.stack import TopicReader, publish, running, settings_from, wait_until

pytestmark = pytest.mark.integration

MAX_ANSWER_CHARS = 200
SURVEY = {
    "name": "Support NPS",
    "questions": [
        {
            "id": "nps",
            "type": "nps",
            "required": True,
            "text": "<script>alert('x')</script> How likely are you to recommend us?",
        },
        {"id": "why", "type": "open", "text": "What is the main reason for your score?"},
        {"id": "consent", "type": "consent", "text": "May we contact you about your answer?"},
    ],
    "thank_you_text": "Thanks, <b>friend</b>!",
}


@pytest.fixture(scope="module")
async def client(stack_env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_from(ResponsesSettings, stack_env, max_answer_chars=MAX_ANSWER_CHARS)
    async with running(create_app(settings)) as c:
        yield c


@pytest.fixture
async def survey(client: httpx.AsyncClient, auth: dict[str, str]) -> dict:
    return await create_survey(client, auth, SURVEY)


def completed_for(value: dict, link: SurveyLink) -> bool:
    return (
        value["type"] == "closeloop.ResponseCompleted.v1"
        and value["data"]["invitation_id"] == link.invitation_id
    )


def plain(answers: list[dict]) -> list[dict]:
    return [{k: a[k] for k in ("question_id", "type", "value")} for a in answers]


def tampered(token: str) -> str:
    """Return ``token`` with one character in the middle changed: the ciphertext itself, not the
    base64 padding bits of the last character, so that only the authentication tag can catch it."""
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]


async def submit(client: httpx.AsyncClient, token: str, answers: dict) -> httpx.Response:
    return await client.post(f"/v1/public/surveys/{token}/responses", json={"answers": answers})


# --- survey definitions ------------------------------------------------------------------


async def test_a_survey_is_created_listed_and_read(client, auth, survey):
    assert uuid.UUID(survey["id"]) and survey["version"] == 1
    assert [q["id"] for q in survey["questions"]] == ["nps", "why", "consent"]
    assert survey["questions"][0]["required"] is True and survey["questions"][1]["required"] is False
    assert (await client.get(f"/v1/surveys/{survey['id']}", headers=auth)).json() == survey
    assert [s["id"] for s in (await client.get("/v1/surveys", headers=auth)).json()] == [survey["id"]]
    assert (await client.get("/v1/surveys")).status_code == 401


def _with_questions(*questions: dict) -> dict:
    return {**SURVEY, "questions": list(questions)}


NPS_Q = {"id": "nps", "type": "nps", "text": "Recommend us?"}


@pytest.mark.parametrize(
    "body, field",
    [
        (_with_questions(NPS_Q, {"id": "stars", "type": "stars", "text": "Rate us"}), "questions.1.type"),
        (_with_questions(NPS_Q, {"id": "nps", "type": "open", "text": "Why?"}), "questions.1.id"),
        (_with_questions({"id": "Not A Slug", "type": "nps", "text": "?"}), "questions.0.id"),
        (_with_questions({"id": "why", "type": "open", "text": "Why?"}), "questions"),
        (
            _with_questions(
                NPS_Q,
                {"id": "c1", "type": "consent", "text": "?"},
                {"id": "c2", "type": "consent", "text": "?"},
            ),
            "questions.2.type",
        ),
        (_with_questions(), "questions"),
        ({"questions": [NPS_Q]}, "name"),
    ],
    ids=["type", "duplicate-id", "slug", "no-scored-question", "two-consents", "no-questions", "no-name"],
)
async def test_bad_survey_definitions_are_refused_naming_the_field(client, auth, body, field):
    response = await client.post("/v1/surveys", json=body, headers=auth)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in response.json()["errors"]]
    assert (await client.get("/v1/surveys", headers=auth)).json() == []


async def test_one_workspace_never_sees_another_workspaces_surveys(client, auth, survey, workspace):
    other = "ws-" + secrets.token_hex(5)
    other_auth = {"Authorization": f"Bearer {issue_api_key(SECRET_KEY, other)}"}
    assert (await client.get(f"/v1/surveys/{survey['id']}", headers=other_auth)).status_code == 404
    assert (await client.get(f"/v1/surveys/{survey['id']}/responses", headers=other_auth)).status_code == 404
    assert (await client.get("/v1/surveys", headers=other_auth)).json() == []
    # A link signed for the other workspace cannot reach this workspace's survey either.
    token, _ = link_for(other, survey["id"])
    assert (await client.get(f"/v1/public/surveys/{token}")).status_code == 404
    assert (await submit(client, token, {"nps": 5})).status_code == 404
    page = await client.get(f"/s/{token}")
    assert page.status_code == 404 and "no longer available" in page.text
    assert (await client.get(f"/v1/surveys/{survey['id']}/responses", headers=auth)).json() == []


# --- the HTML survey page ----------------------------------------------------------------


async def test_the_html_page_is_answered_and_publishes_response_completed(
    client, broker, auth, survey, workspace
):
    token, link = link_for(workspace, survey["id"], locale="de-CH")
    async with TopicReader(broker.bootstrap_servers, RESPONSES) as reader:
        first = await client.get(f"/s/{token}")
        assert first.status_code == 200 and first.headers["content-type"].startswith("text/html")
        html = first.text
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; How likely" in html
        assert "<script>alert" not in html and html.count("<script") == 1  # only the page's own script
        # The survey has English texts only: the page says so, whatever the contact's locale.
        assert '<meta name="viewport"' in html and '<html lang="en" dir="ltr">' in html
        assert "<legend>" in html and "<textarea" in html and "src=" not in html and "<link" not in html
        assert html.count('type="radio" name="nps"') == 11 and html.count('type="radio" name="consent"') == 2
        assert " checked" not in html and len(html) < 15_000
        assert first.headers["referrer-policy"] == "no-referrer"
        # The score clicked in the email is saved and behind the respondent; Back shows it chosen.
        page = await client.get(f"/s/{token}", params={"score": "9"})
        assert page.status_code == 200 and 'name="nps"' not in page.text and "?q=nps" in page.text
        back = await client.get(f"/s/{token}", params={"q": "nps"})
        assert 'name="nps" value="9" checked' in back.text and back.text.count(" checked") == 1

        sent = await client.post(f"/s/{token}", data={"nps": "3", "why": "Too <b>slow</b>", "consent": "yes"})
        assert sent.status_code == 303, sent.text
        assert sent.headers["location"].endswith(f"/s/{token}/thanks")
        thanks = await client.get(sent.headers["location"])
        assert thanks.status_code == 200 and "Thanks, &lt;b&gt;friend&lt;/b&gt;!" in thanks.text

        [event] = await reader.wait_for(lambda v: completed_for(v, link))
    assert event["workspaceid"] == workspace
    data = event["data"]
    assert plain(data["answers"]) == [
        {"question_id": "nps", "type": "nps", "value": 3},
        {"question_id": "why", "type": "open", "value": "Too <b>slow</b>"},
        {"question_id": "consent", "type": "consent", "value": True},
    ]
    assert data["consent_to_contact"] is True and data["survey_version"] == 1 and data["locale"] == "en"
    assert (data["request_id"], data["contact_id"], data["survey_id"], data["kind"], data["channel"]) == (
        link.request_id,
        link.contact_id,
        survey["id"],
        "transactional",
        "email",
    )

    again = await client.get(f"/s/{token}")
    assert again.status_code == 200 and "already answered" in again.text and "<form" not in again.text
    twice = await client.post(f"/s/{token}", data={"nps": "10"})
    assert twice.status_code == 409 and "already answered" in twice.text
    [stored] = (await client.get(f"/v1/surveys/{survey['id']}/responses", headers=auth)).json()
    assert stored["answers"][0]["value"] == 3
    # One response by its id (what the console's response page reads); another workspace gets a 404.
    one = await client.get(f"/v1/responses/{stored['id']}", headers=auth)
    assert one.status_code == 200 and one.json() == stored
    other = {"Authorization": f"Bearer {issue_api_key(SECRET_KEY, workspace + '-other')}"}
    missing = await client.get(f"/v1/responses/{stored['id']}", headers=other)
    assert missing.status_code == 404 and missing.json()["errors"][0]["field"] == "response_id"


@pytest.mark.parametrize("score", ["11", "-1", "abc", "9.5", "9" * 40])
async def test_a_score_in_the_link_outside_the_scale_is_refused_and_not_stored(
    client, auth, survey, workspace, score
):
    token, _ = link_for(workspace, survey["id"])
    page = await client.get(f"/s/{token}", params={"score": score})
    assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
    assert '<p class="alert" role="alert" id="notice">The score in your link was not saved' in page.text
    assert " checked" not in page.text and 'name="nps"' in page.text  # the question is asked as usual
    assert (await client.get(f"/v1/surveys/{survey['id']}/responses", headers=auth)).json() == []
    # The respondent answers normally.
    sent = await client.post(f"/s/{token}", data={"nps": "7"})
    assert sent.status_code == 303 and sent.headers["location"].endswith("/thanks")
    [stored] = (await client.get(f"/v1/surveys/{survey['id']}/responses", headers=auth)).json()
    assert stored["answers"] == [{"question_id": "nps", "type": "nps", "value": 7}]


async def test_a_score_in_the_link_for_a_first_question_without_a_score_is_refused(client, auth, workspace):
    body = {**SURVEY, "questions": [SURVEY["questions"][1], SURVEY["questions"][0]]}  # open text first
    survey = await create_survey(client, auth, body)
    token, _ = link_for(workspace, survey["id"])
    page = await client.get(f"/s/{token}", params={"score": "9"})
    assert page.status_code == 422 and "this question is not answered with a score" in page.text
    assert " checked" not in page.text
    assert (await client.get(f"/v1/surveys/{survey['id']}/responses", headers=auth)).json() == []


async def test_html_and_json_agree_on_progress_after_a_score_in_the_link(client, survey, workspace):
    token, _ = link_for(workspace, survey["id"])
    page = await client.get(f"/s/{token}", params={"score": "9"})
    assert page.status_code == 200
    n, total = map(int, re.search(r"Question (\d+) of (\d+)", page.text).groups())  # type: ignore[union-attr]
    progress = (await client.get(f"/v1/public/surveys/{token}")).json()["progress"]
    assert (n, total) == (2, 3)
    assert progress == {"done": n - 1, "total": total}
    assert f'data-done="{progress["done"]}"' in page.text


async def test_an_invalid_form_is_shown_again_with_the_errors_and_nothing_is_stored(
    client, survey, workspace
):
    token, _ = link_for(workspace, survey["id"])
    bad = await client.post(f"/s/{token}", data={"nps": "11", "why": "<i>meh</i>", "consent": "yes"})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("text/html")
    assert 'id="err-nps">Choose a whole number from 0 to 10.' in bad.text
    assert (
        ">&lt;i&gt;meh&lt;/i&gt;</textarea>" in bad.text and 'name="consent" value="yes" checked' in bad.text
    )
    missing = await client.post(f"/s/{token}", data={})
    assert missing.status_code == 422 and 'id="err-nps">This question needs an answer.' in missing.text
    too_long = await client.post(f"/s/{token}", data={"nps": "5", "why": "x" * (MAX_ANSWER_CHARS + 1)})
    assert too_long.status_code == 422 and 'id="err-why">' in too_long.text
    assert (await client.get(f"/v1/public/surveys/{token}")).json()["answered"] is False


async def test_broken_links_get_friendly_html_pages(client, survey, workspace):
    token, _ = link_for(workspace, survey["id"])
    expired, _ = link_for(workspace, survey["id"], ttl_s=-60)
    unknown, _ = link_for(workspace, str(uuid.uuid4()))
    assert tampered(token) != token and len(tampered(token)) == len(token)
    cases = [
        (tampered(token), 404, "not valid"),
        ("no-dot-at-all", 404, "not valid"),
        ("abc.d%C3%A9f", 404, "not valid"),
        (expired, 410, "expired"),
        (unknown, 404, "no longer available"),
    ]
    for bad, status, text in cases:
        for response in (
            await client.get(f"/s/{bad}"),
            await client.post(f"/s/{bad}", data={"nps": "5"}),
            await client.get(f"/s/{bad}/thanks"),
        ):
            assert response.status_code == status, (bad, response.text)
            assert response.headers["content-type"].startswith("text/html") and text in response.text


async def test_links_of_the_first_format_still_open_until_they_expire(client, auth, survey, workspace):
    from shared.security import sign_token
    from shared.survey_links import PURPOSE

    claims = {
        "ws": workspace,
        "inv": str(uuid.uuid4()),
        "req": str(uuid.uuid4()),
        "svy": survey["id"],
        "con": str(uuid.uuid4()),
        "knd": "transactional",
        "chn": "email",
        "loc": "en",
    }
    old = sign_token(SECRET_KEY, PURPOSE, claims, ttl_s=3600)
    expired = sign_token(SECRET_KEY, PURPOSE, {**claims, "inv": str(uuid.uuid4())}, ttl_s=-60)
    assert "." in old  # readable base64 JSON with a MAC: what invitations in mailboxes still carry
    page = await client.get(f"/s/{old}")
    # Sent to an address before links carried their respondent: the consent question is still asked.
    assert page.status_code == 200 and 'name="consent"' in page.text
    assert (await client.post(f"/s/{old}", data={"nps": "9"})).status_code == 303
    assert (await client.get(f"/s/{expired}")).status_code == 410


# --- the JSON API for the same link -------------------------------------------------------


async def test_json_survey_and_response(client, broker, auth, survey, workspace):
    token, link = link_for(workspace, survey["id"], channel="sms", kind="retention")
    shown = (await client.get(f"/v1/public/surveys/{token}")).json()
    assert shown["answered"] is False and shown["survey_id"] == survey["id"] and shown["version"] == 1
    assert [(q["id"], q["min"], q["max"]) for q in shown["questions"]] == [
        ("nps", 0, 10),
        ("why", None, None),
        ("consent", None, None),
    ]
    assert shown["form_url"].endswith(f"/s/{token}")

    async with TopicReader(broker.bootstrap_servers, RESPONSES) as reader:
        created = await submit(client, token, {"nps": 10, "consent": False})
        assert created.status_code == 201, created.text
        assert uuid.UUID(created.json()["id"]) and created.json()["consent_to_contact"] is False
        [event] = await reader.wait_for(lambda v: completed_for(v, link))
    assert event["data"]["response_id"] == created.json()["id"]
    assert plain(event["data"]["answers"]) == [
        {"question_id": "nps", "type": "nps", "value": 10},
        {"question_id": "consent", "type": "consent", "value": False},
    ]
    assert (event["data"]["kind"], event["data"]["channel"], event["data"]["consent_to_contact"]) == (
        "retention",
        "sms",
        False,
    )
    assert (await client.get(f"/v1/public/surveys/{token}")).json()["answered"] is True

    second = await submit(client, token, {"nps": 2})
    assert second.status_code == 409 and second.headers["content-type"] == "application/problem+json"
    [stored] = (await client.get(f"/v1/surveys/{survey['id']}/responses", headers=auth)).json()
    assert stored["id"] == created.json()["id"] and stored["invitation_id"] == link.invitation_id


INVITATION_TRACE = "0af7651916cd43dd8448eb211c80319c"
PROXY_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def trace_of(event: dict) -> tuple[str, str]:
    _, trace, span, _ = event["traceparent"].split("-")
    return trace, span


async def test_the_answer_continues_the_trace_the_link_carries(client, broker, survey, workspace):
    """The invitation's trace rides in the link: the response's events continue it, even when a proxy
    in front of the survey pages starts a trace of its own; a link without one opens and answers in
    the request's trace."""
    traced, traced_link = link_for(
        workspace, survey["id"], traceparent=f"00-{INVITATION_TRACE}-b7ad6b7169203331-01"
    )
    untraced, untraced_link = link_for(workspace, survey["id"])
    assert untraced_link.traceparent is None
    proxy = {"traceparent": f"00-{PROXY_TRACE}-00f067aa0ba902b7-01"}
    async with TopicReader(broker.bootstrap_servers, RESPONSES) as reader:
        assert (await client.get(f"/s/{traced}", params={"score": "2"}, headers=proxy)).status_code == 200
        sent = await client.post(f"/s/{traced}", data={"nps": "2", "consent": "yes"}, headers=proxy)
        assert sent.status_code == 303, sent.text
        page = await client.get(f"/s/{untraced}", headers=proxy)
        assert page.status_code == 200 and 'name="nps"' in page.text
        body = {"answers": {"nps": 9}}
        answered = await client.post(f"/v1/public/surveys/{untraced}/responses", json=body, headers=proxy)
        assert answered.status_code == 201, answered.text
        started, completed = await reader.wait_for(
            lambda v: v["data"].get("invitation_id") == traced_link.invitation_id, count=2
        )
        [other] = await reader.wait_for(lambda v: completed_for(v, untraced_link))
    assert (started["type"], completed["type"]) == (
        "closeloop.ResponseStarted.v1",
        "closeloop.ResponseCompleted.v1",
    )
    for event in (started, completed):
        trace, span = trace_of(event)
        assert trace == INVITATION_TRACE and span not in ("b7ad6b7169203331", "00f067aa0ba902b7")
    assert trace_of(other)[0] == PROXY_TRACE


@pytest.mark.parametrize(
    "answers, field",
    [
        ({"nps": 11}, "answers.nps"),
        ({"nps": -1}, "answers.nps"),
        ({"nps": 7.5}, "answers.nps"),
        ({"nps": "7"}, "answers.nps"),
        ({"nps": True}, "answers.nps"),
        ({"why": "no score"}, "answers.nps"),
        ({"nps": 5, "colour": "blue"}, "answers.colour"),
        ({"nps": 5, "why": "x" * (MAX_ANSWER_CHARS + 1)}, "answers.why"),
        ({"nps": 5, "consent": "yes"}, "answers.consent"),
        ({"nps": 5, "consent": ""}, "answers.consent"),
        ({"nps": ""}, "answers.nps"),
    ],
    ids=[
        "11",
        "-1",
        "float",
        "string",
        "bool",
        "missing",
        "unknown-question",
        "too-long",
        "consent-not-bool",
        "consent-blank",
        "score-blank",
    ],
)
async def test_bad_answers_are_refused_naming_the_field_and_nothing_is_stored(
    client, survey, workspace, answers, field
):
    token, _ = link_for(workspace, survey["id"])
    response = await submit(client, token, answers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]
    # Nothing was stored: the invitation can still be answered.
    assert (await submit(client, token, {"nps": 5})).status_code == 201


async def test_malformed_bodies_are_refused(client, survey, workspace):
    token, _ = link_for(workspace, survey["id"])
    not_an_object = await client.post(f"/v1/public/surveys/{token}/responses", json={"answers": [9]})
    assert not_an_object.status_code == 422 and not_an_object.json()["errors"][0]["field"] == "answers"
    not_json = await client.post(
        f"/v1/public/surveys/{token}/responses",
        content=b"{nope",
        headers={"content-type": "application/json"},
    )
    assert not_json.status_code == 400
    assert (await client.get(f"/v1/public/surveys/{token}")).json()["answered"] is False


async def test_broken_links_get_problem_json(client, survey, workspace):
    token, _ = link_for(workspace, survey["id"])
    expired, _ = link_for(workspace, survey["id"], ttl_s=-60)
    unknown, _ = link_for(workspace, str(uuid.uuid4()))
    for bad, status in [(tampered(token), 404), (expired, 410), (unknown, 404), ("x.y", 404)]:
        for response in (
            await client.get(f"/v1/public/surveys/{bad}"),
            await submit(client, bad, {"nps": 5}),
        ):
            assert response.status_code == status, (bad, response.text)
            assert response.headers["content-type"] == "application/problem+json"


async def test_two_simultaneous_responses_for_one_invitation_store_exactly_one(
    client, auth, survey, workspace
):
    token, _ = link_for(workspace, survey["id"])
    first, second = await asyncio.gather(submit(client, token, {"nps": 9}), submit(client, token, {"nps": 1}))
    assert sorted([first.status_code, second.status_code]) == [201, 409], (first.text, second.text)
    winner = first if first.status_code == 201 else second
    stored = (await client.get(f"/v1/surveys/{survey['id']}/responses", headers=auth)).json()
    assert [r["id"] for r in stored] == [winner.json()["id"]]


async def test_simultaneous_whole_form_posts_on_a_fresh_link_complete_one_response(
    client, broker, auth, survey, workspace
):
    """A form post through a link without a response is stored in one statement (the response, its
    answers, ResponseStarted and ResponseCompleted); the posts that lose the race see it answered."""
    token, link = link_for(workspace, survey["id"])
    form = {"nps": "4", "why": "Slow", "consent": "yes"}
    async with TopicReader(broker.bootstrap_servers, RESPONSES) as reader:
        posts = await asyncio.gather(*(client.post(f"/s/{token}", data=form) for _ in range(3)))
        started, completed = await reader.wait_for(
            lambda v: v["data"].get("invitation_id") == link.invitation_id, count=2
        )
    assert sorted(p.status_code for p in posts) == [303, 409, 409]
    assert [p.headers["location"] for p in posts if p.status_code == 303] == [
        f"http://testserver/s/{token}/thanks"
    ]
    assert (started["type"], completed["type"]) == (
        "closeloop.ResponseStarted.v1",
        "closeloop.ResponseCompleted.v1",
    )
    assert started["data"]["response_id"] == completed["data"]["response_id"]
    assert plain(completed["data"]["answers"]) == [
        {"question_id": "nps", "type": "nps", "value": 4},
        {"question_id": "why", "type": "open", "value": "Slow"},
        {"question_id": "consent", "type": "consent", "value": True},
    ]
    assert completed["data"]["consent_to_contact"] is True
    [stored] = (await client.get(f"/v1/surveys/{survey['id']}/responses", headers=auth)).json()
    assert stored["id"] == completed["data"]["response_id"] and stored["completed_at"] is not None
    assert [a["value"] for a in stored["answers"]] == [4, "Slow", True]


# --- erasure -----------------------------------------------------------------------------


async def test_contact_erased_blanks_that_contacts_free_text(client, producer, auth, survey, workspace):
    erased_token, erased = link_for(workspace, survey["id"])
    kept_token, kept = link_for(workspace, survey["id"])
    assert (await submit(client, erased_token, {"nps": 2, "why": "Ada's story"})).status_code == 201
    assert (await submit(client, kept_token, {"nps": 9, "why": "Grace's story"})).status_code == 201

    event = ContactErased(workspace_id=workspace, contact_id=erased.contact_id, erased_at=datetime.now(UTC))
    await publish(producer, event)

    async def answers_by_contact() -> dict[str, list]:
        rows = (await client.get(f"/v1/surveys/{survey['id']}/responses", headers=auth)).json()
        return {r["contact_id"]: r for r in rows}

    async def erased_done() -> dict | None:
        rows = await answers_by_contact()
        return rows if rows[erased.contact_id]["erased"] else None

    rows = await wait_until(erased_done, message="the contact's answers are erased")
    assert [a["value"] for a in rows[erased.contact_id]["answers"]] == [2, None]
    assert [a["value"] for a in rows[kept.contact_id]["answers"]] == [9, "Grace's story"]
    assert rows[kept.contact_id]["erased"] is False
    # The erased person's link no longer works (a new response would be new personal data); others' do.
    page = await client.get(f"/s/{erased_token}")
    assert page.status_code == 404 and "no longer available" in page.text
    assert (await client.get(f"/v1/public/surveys/{erased_token}")).status_code == 404
    assert (await client.post(f"/s/{erased_token}", data={"nps": "9"})).status_code == 404
    assert (await client.get(f"/v1/public/surveys/{kept_token}")).json()["answered"] is True


# --- security headers ----------------------------------------------------------------------


def assert_locked_down(response: httpx.Response, what: str) -> None:
    csp = response.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp, (what, csp)
    assert response.headers.get("x-content-type-options") == "nosniff", what
    assert response.headers.get("referrer-policy") == "no-referrer", what


async def test_every_html_page_and_picture_is_locked_down(client, auth, survey, workspace):
    token, _ = link_for(workspace, survey["id"])
    expired, _ = link_for(workspace, survey["id"], ttl_s=-60)
    unknown, _ = link_for(workspace, str(uuid.uuid4()))
    kiosk = (
        await client.post(f"/v1/surveys/{survey['id']}/kiosks", json={"location_id": "door"}, headers=auth)
    ).json()
    key = kiosk["url"].rsplit("/", 1)[1]
    pages = {
        "survey page": await client.get(f"/s/{token}"),
        "refused link score": await client.get(f"/s/{token}", params={"score": "99"}),
        "refused form": await client.post(f"/s/{token}", data={"nps": "11"}),
        "tampered link": await client.get(f"/s/{tampered(token)}"),
        "expired link": await client.get(f"/s/{expired}"),
        "unknown survey": await client.get(f"/s/{unknown}"),
        "tampered thanks": await client.get(f"/s/{tampered(token)}/thanks"),
    }
    assert (await client.post(f"/s/{token}", data={"nps": "9"})).status_code == 303
    pages["thank-you page"] = await client.get(f"/s/{token}/thanks")
    pages["answered page"] = await client.get(f"/s/{token}")
    pages["answered form"] = await client.post(f"/s/{token}", data={"nps": "9"})
    pages["QR code (svg)"] = await client.get(f"/v1/kiosks/{kiosk['id']}/qr.svg", headers=auth)
    pages["QR code (png)"] = await client.get(f"/v1/kiosks/{kiosk['id']}/qr.png", headers=auth)
    pages["kiosk start"] = await client.get(f"/k/{key}")
    pages["unknown kiosk"] = await client.get("/k/abcdefghijkl")
    pages["API docs"] = await client.get("/docs")
    pages["API reference"] = await client.get("/redoc")
    pages["docs sign-in redirect"] = await client.get("/docs/oauth2-redirect")
    await client.post(f"/v1/surveys/{survey['id']}/close", headers=auth)
    pages["closed survey"] = await client.get(f"/s/{link_for(workspace, survey['id'])[0]}")
    for what, response in pages.items():
        assert response.status_code < 500, what
        assert_locked_down(response, what)
    html = [w for w, r in pages.items() if r.headers.get("content-type", "").startswith("text/html")]
    assert len(html) >= 15, html


# --- bad input behind a valid link (the OpenAPI fuzz test cannot forge a token) --------------

BAD_VALUES = [
    "a\x00b",
    "\ud800",
    "x" * 10_000,
    "ünïcødé ✓ 🎉 مرحبا",
    2**63,
    -(2**63) - 1,
    2**31,
    1.5,
    [],
    {},
    True,
]
BAD_RAW = ["a%00b", "%ED%A0%80", "x" * 10_000, "%F0%9F%8E%89", str(2**63), "-1e309", "[]"]


async def test_no_bad_value_behind_a_valid_link_gives_a_500(client, auth, workspace):
    body = {
        **SURVEY,
        "questions": [
            *SURVEY["questions"],
            {
                "id": "pick",
                "type": "multiple_choice",
                "text": "?",
                "options": [{"id": "a", "text": "A"}, {"id": "b", "text": "B"}],
            },
        ],
    }
    survey = await create_survey(client, auth, body)
    token, _ = link_for(workspace, survey["id"])
    failures = []

    async def check(response: httpx.Response, what: str) -> None:
        if response.status_code >= 500:
            failures.append(f"{what}: {response.status_code}")

    for qid in ("nps", "why", "consent", "pick", "nope"):
        for value in BAD_VALUES:
            raw = (
                json.dumps({"value": value}, ensure_ascii=True)
                if value != "\ud800"
                else '{"value": "\\ud800"}'
            )
            put = await client.put(
                f"/v1/public/surveys/{token}/answers/{qid}",
                content=raw,
                headers={"content-type": "application/json"},
            )
            await check(put, f"PUT {qid}={str(value)[:12]!r}")
            whole = (
                json.dumps({"answers": {qid: value}})
                if value != "\ud800"
                else f'{{"answers": {{"{qid}": "\\ud800"}}}}'
            )
            post = await client.post(
                f"/v1/public/surveys/{token}/responses",
                content=whole,
                headers={"content-type": "application/json"},
            )
            await check(post, f"POST {qid}={str(value)[:12]!r}")
        for raw_value in BAD_RAW:
            form = await client.post(
                f"/s/{token}",
                content=f"_shown=nps,why&{qid}={raw_value}",
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            await check(form, f"form {qid}={raw_value[:12]!r}")
    for raw_value in BAD_RAW:
        await check(await client.get(f"/s/{token}?score={raw_value}"), f"score={raw_value[:12]!r}")
        await check(await client.get(f"/s/{token}?q={raw_value}"), f"q={raw_value[:12]!r}")
        await check(await client.get(f"/s/{token}?_shown={raw_value}"), f"_shown={raw_value[:12]!r}")
        await check(
            await client.post(
                f"/s/{token}",
                content=f"_shown={raw_value}",
                headers={"content-type": "application/x-www-form-urlencoded"},
            ),
            f"_shown post={raw_value[:12]!r}",
        )
    assert not failures, failures
    # Nothing half-written: the link still takes a whole, valid response.
    done = await client.post(
        f"/v1/public/surveys/{token}/responses", json={"answers": {"nps": 8, "pick": ["b"]}}
    )
    assert done.status_code == 201, done.text
