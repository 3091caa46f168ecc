"""The survey page's front door (``services/responses/fastpath.py``) against real PostgreSQL and the real
broker: what it answers itself — the page, an answer, the form post — it answers as FastAPI's stack
did (errors naming the field, headers, metrics, traces), and what it does not answer reaches FastAPI
whole (other methods, query strings, bodies it does not vouch for)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import REGISTRY

from services.responses.app import create_app
from services.responses.settings import ResponsesSettings
from shared.events import RESPONSES
from shared.headers import LOCKED_POLICY
from tests.support.responses import create_survey, link_for
from tests.support.stack import TopicReader, running, settings_from

pytestmark = pytest.mark.integration

MAX_BODY_BYTES = 4096
SURVEY = {
    "name": "Front door NPS",
    "questions": [
        {"id": "nps", "type": "nps", "required": True, "text": "How likely are you to recommend us?"},
        {"id": "why", "type": "open", "text": "Why?"},
    ],
}
ANSWERS = "/v1/public/surveys/{token}/answers/{question_id}"
REQUEST_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture(scope="module")
async def client(stack_env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_from(ResponsesSettings, stack_env, max_body_bytes=MAX_BODY_BYTES)
    async with running(create_app(settings)) as c:
        yield c


@pytest.fixture
async def survey(client: httpx.AsyncClient, auth: dict[str, str]) -> dict:
    return await create_survey(client, auth, SURVEY)


@pytest.fixture
def token(survey: dict, workspace: str) -> str:
    return link_for(workspace, survey["id"])[0]


def requests_counted(method: str, route: str, status: int) -> float:
    labels = {"service": "responses", "method": method, "route": route, "status": str(status)}
    return REGISTRY.get_sample_value("closeloop_http_requests_total", labels) or 0.0


def fields(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"] == "application/problem+json", response.text
    return [e["field"] for e in response.json().get("errors", [])]


async def started(client: httpx.AsyncClient, token: str) -> bool:
    return bool((await client.get(f"/v1/public/surveys/{token}")).json()["started"])


async def test_the_page_an_answer_and_a_form_post_are_counted_under_their_route_templates(
    client, survey, workspace
):
    page, put, post = (
        link_for(workspace, survey["id"])[0],
        *(link_for(workspace, survey["id"])[0] for _ in "ab"),
    )
    counted = [
        ("GET", "/s/{token}", 200),
        ("PUT", ANSWERS, 200),
        ("POST", "/s/{token}", 303),
        ("PUT", ANSWERS, 422),
    ]
    before = [requests_counted(*c) for c in counted]
    assert (await client.get(f"/s/{page}")).status_code == 200
    assert (
        await client.put(ANSWERS.format(token=put, question_id="nps"), json={"value": 9})
    ).status_code == 200
    assert (await client.post(f"/s/{post}", data={"nps": "9"})).status_code == 303
    assert (
        await client.put(ANSWERS.format(token=put, question_id="nps"), json={"value": 11})
    ).status_code == 422
    assert [requests_counted(*c) - b for c, b in zip(counted, before, strict=True)] == [1, 1, 1, 1]


async def test_answers_and_form_posts_on_a_link_without_a_trace_continue_the_requests_trace(
    client, broker, survey, workspace
):
    put, put_link = link_for(workspace, survey["id"])
    post, post_link = link_for(workspace, survey["id"])
    assert put_link.traceparent is None and post_link.traceparent is None
    proxy = {"traceparent": f"00-{REQUEST_TRACE}-00f067aa0ba902b7-01"}
    async with TopicReader(broker.bootstrap_servers, RESPONSES) as reader:
        answered = await client.put(
            ANSWERS.format(token=put, question_id="nps"), json={"value": 9}, headers=proxy
        )
        assert answered.status_code == 200, answered.text
        assert (await client.post(f"/s/{post}", data={"nps": "9"}, headers=proxy)).status_code == 303
        events = await reader.wait_for(
            lambda v: v["data"].get("invitation_id") in (put_link.invitation_id, post_link.invitation_id),
            count=3,
        )
    assert sorted(e["type"] for e in events) == [
        "closeloop.ResponseCompleted.v1",
        "closeloop.ResponseStarted.v1",
        "closeloop.ResponseStarted.v1",
    ]
    for event in events:
        _, trace, span, _ = event["traceparent"].split("-")
        assert trace == REQUEST_TRACE and span != "00f067aa0ba902b7", event["type"]


@pytest.mark.parametrize(
    "body, content_type, status, field",
    [
        (b"{nope", "application/json", 400, None),
        (b"", "application/json", 422, "body"),
        (b"[9]", "application/json", 422, "body"),
        (b'"9"', "application/json", 422, "body"),
        (b"{}", "application/json", 422, "value"),
        (b'{"value": 9, "colour": "blue"}', "application/json", 422, "colour"),
        (b'{"value": "a\\u0000b"}', "application/json", 422, "value"),
        (b'{"value": 11}', "application/json", 422, "answers.nps"),
        (b'{"value": 9}', "text/plain", 422, "body"),
        (b"value=9", "application/x-www-form-urlencoded", 422, "body"),
    ],
    ids=[
        "not-json",
        "empty",
        "a-list",
        "a-string",
        "no-value",
        "unknown-field",
        "nul",
        "off-scale",
        "text-plain",
        "a-form",
    ],
)
async def test_a_bad_answer_body_is_refused_naming_the_field_and_nothing_is_stored(
    client, token, body, content_type, status, field
):
    url = ANSWERS.format(token=token, question_id="nps")
    response = await client.put(url, content=body, headers={"content-type": content_type})
    assert response.status_code == status, response.text
    assert fields(response) == ([field] if field else [])
    assert response.json()["instance"] == url
    assert not await started(client, token)


async def test_bad_tokens_and_bad_path_values_are_refused(client, token):
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    page = await client.get(f"/s/{forged}", headers={"accept-language": "nl"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert 'lang="nl"' in page.text and page.headers["cache-control"] == "no-store"
    posted = await client.post(f"/s/{forged}", data={"nps": "9"})
    assert posted.status_code == 404 and posted.headers["content-type"].startswith("text/html")
    answered = await client.put(ANSWERS.format(token=forged, question_id="nps"), json={"value": 9})
    assert answered.status_code == 404 and fields(answered) == ["token"]
    assert fields(await client.get("/s/a%00b")) == ["token"]
    assert fields(await client.post("/s/a%00b", data={"nps": "9"})) == ["token"]
    nul_question = await client.put(ANSWERS.format(token=token, question_id="n%00ps"), json={"value": 9})
    assert nul_question.status_code == 422 and fields(nul_question) == ["question_id"]
    unknown = await client.put(ANSWERS.format(token=token, question_id="colour"), json={"value": 9})
    assert unknown.status_code == 422 and fields(unknown) == ["question_id"]
    nul_field = await client.post(f"/s/{token}", data={"nps": "9", "why": "a\x00b"})
    assert nul_field.status_code == 422 and fields(nul_field) == ["why"]
    no_boundary = await client.post(
        f"/s/{token}", content=b"--x\r\n", headers={"content-type": "multipart/form-data"}
    )
    assert no_boundary.status_code == 400 and "boundary" in no_boundary.json()["detail"]
    assert not await started(client, token)


async def test_what_the_front_door_does_not_answer_reaches_fastapi(client, token):
    url = ANSWERS.format(token=token, question_id="nps")
    for method, path, status in [
        ("HEAD", f"/s/{token}", 405),
        ("OPTIONS", f"/s/{token}", 405),
        ("DELETE", f"/s/{token}", 405),
        ("PATCH", url, 405),
        ("GET", url, 405),
        ("POST", url, 405),
        ("PUT", f"/s/{token}", 405),
        ("PUT", f"{url}/more", 404),
        ("PUT", f"/v1/public/surveys/{token}/answer/nps", 404),
    ]:
        response = await client.request(
            method, path, json={"value": 9} if method in ("PUT", "POST") else None
        )
        assert response.status_code == status, (method, path, response.text)
        if method != "HEAD":
            assert response.headers["content-type"] == "application/problem+json", (method, path)
        assert response.headers["content-security-policy"] == LOCKED_POLICY, (method, path)
    too_long = await client.get(f"/s/{token}", params={"q": "x" * 64})
    assert too_long.status_code == 422 and fields(too_long) == ["q"]
    earlier = await client.get(f"/s/{token}", params={"q": "nps"})
    assert earlier.status_code == 200 and 'name="nps"' in earlier.text
    assert not await started(client, token)


async def test_bodies_over_the_limit_are_refused_and_bodies_of_unknown_length_are_read(
    client, survey, workspace
):
    token = link_for(workspace, survey["id"])[0]
    url = ANSWERS.format(token=token, question_id="why")
    big = {"value": "x" * MAX_BODY_BYTES}
    for response in (
        await client.put(url, json=big),
        await client.post(f"/s/{token}", data={"nps": "9", "why": "x" * MAX_BODY_BYTES}),
    ):
        assert response.status_code == 413 and fields(response) == ["body"], response.text
    assert not await started(client, token)

    async def chunks(body: bytes) -> AsyncIterator[bytes]:
        yield body[:5]
        yield body[5:]

    json_ = {"content-type": "application/json"}
    streamed = await client.put(url, content=chunks(b'{"value": "streamed"}'), headers=json_)
    assert streamed.status_code == 200 and streamed.json()["value"] == "streamed", streamed.text
    form = {"content-type": "application/x-www-form-urlencoded"}
    posted = await client.post(f"/s/{token}", content=chunks(b"nps=9&why=streamed"), headers=form)
    assert posted.status_code == 303 and posted.headers["location"].endswith(f"/s/{token}/thanks")
    too_much = await client.put(
        url, content=chunks(b'{"value": "' + b"x" * MAX_BODY_BYTES + b'"}'), headers=json_
    )
    assert too_much.status_code == 413 and fields(too_much) == ["body"]


async def test_answers_redirects_and_problems_carry_the_security_headers(client, token):
    url = ANSWERS.format(token=token, question_id="nps")
    answered = await client.put(url, json={"value": 9})
    assert answered.status_code == 200
    assert answered.json() == {
        "question_id": "nps",
        "value": 9,
        "progress": {"done": 1, "total": 2},
        "next_questions": ["why"],
    }
    for response in (
        answered,
        await client.put(url, json={"value": 11}),
        await client.post(f"/s/{token}", data={"nps": "9"}),
        await client.put(ANSWERS.format(token=str(uuid.uuid4()), question_id="nps"), json={"value": 9}),
    ):
        assert response.headers["content-security-policy"] == LOCKED_POLICY, response.text
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    page = await client.get(f"/s/{token}")
    assert "script-src 'sha256-" in page.headers["content-security-policy"]


async def test_a_page_kept_per_survey_version_carries_each_respondents_own_link_and_answers(
    client, auth, survey, workspace
):
    first, second = (link_for(workspace, survey["id"])[0] for _ in "ab")
    pages = [(await client.get(f"/s/{t}")).text for t in (first, second, first)]
    assert f'action="http://testserver/s/{first}"' in pages[0] and second not in pages[0]
    assert (
        f'data-save="http://testserver/v1/public/surveys/{second}/answers/"' in pages[1]
        and first not in pages[1]
    )
    assert pages[0] == pages[2] and pages[0].replace(first, "~") == pages[1].replace(second, "~")
    assert (await client.put(ANSWERS.format(token=first, question_id="nps"), json={"value": 9})).is_success
    assert f'href="http://testserver/s/{first}?q=nps"' in (await client.get(f"/s/{first}")).text  # "why" next
    assert 'value="9" checked' in (await client.get(f"/s/{first}?q=nps")).text
    assert " checked" not in (await client.get(f"/s/{second}")).text

    piped = {
        **SURVEY,
        "questions": [{**SURVEY["questions"][0], "text": "Would you recommend us, {first_name|friend}?"}],
    }
    piped_id = (await create_survey(client, auth, piped))["id"]
    for name in ("Ada", "Grace", ""):
        token = link_for(workspace, piped_id, context={"first_name": name})[0]
        assert f"Would you recommend us, {name or 'friend'}?" in (await client.get(f"/s/{token}")).text


async def test_a_first_answer_read_and_written_at_once_checks_what_the_read_finds(
    client, auth, survey, workspace
):
    # The page read once, this process knows the survey's version: a first answer is read and written
    # in one statement, which applies only when the read finds what it assumed.
    def first_answer() -> tuple[str, str]:
        token = link_for(workspace, survey["id"])[0]
        return token, ANSWERS.format(token=token, question_id="nps")

    assert (await client.get(f"/s/{first_answer()[0]}")).status_code == 200
    token, url = first_answer()
    saved = await client.put(url, json={"value": 9})
    assert saved.status_code == 200 and saved.json()["progress"] == {"done": 1, "total": 2}
    assert (await client.get(f"/v1/public/surveys/{token}")).json()["answers"] == {"nps": 9}
    assert (await client.put(url, json={"value": 11})).status_code == 422  # checked as before

    assert (await client.post(f"/v1/surveys/{survey['id']}/close", headers=auth)).is_success
    token, url = first_answer()
    assert (await client.put(url, json={"value": 9})).status_code == 410
    assert (await client.post(f"/v1/surveys/{survey['id']}/reopen", headers=auth)).is_success
    assert not await started(client, token)

    edited = {**SURVEY, "questions": [{**SURVEY["questions"][0], "text": "Recommend us?"}]}
    assert (await client.put(f"/v1/surveys/{survey['id']}", json=edited, headers=auth)).json()["version"] == 2
    token, url = first_answer()  # the version this process knew is not the survey's any more
    assert (await client.put(url, json={"value": 7})).status_code == 200
    shown = (await client.get(f"/v1/public/surveys/{token}")).json()
    assert shown["version"] == 2 and shown["answers"] == {"nps": 7}


async def test_a_form_post_read_and_written_at_once_checks_what_the_read_finds(
    client, auth, survey, workspace
):
    assert (
        await client.get(f"/s/{link_for(workspace, survey['id'])[0]}")
    ).status_code == 200  # version known
    token = link_for(workspace, survey["id"])[0]
    posted = await client.post(f"/s/{token}", data={"nps": "3", "why": "Slow"})
    assert posted.status_code == 303 and posted.headers["location"].endswith(f"/s/{token}/thanks")
    assert (await client.get(f"/v1/public/surveys/{token}")).json()["answered"] is True
    assert (await client.post(f"/s/{token}", data={"nps": "9"})).status_code == 409  # answered already
    refused = await client.post(f"/s/{link_for(workspace, survey['id'])[0]}", data={"nps": "11"})
    assert refused.status_code == 422 and 'class="error" id="err-nps"' in refused.text

    assert (await client.post(f"/v1/surveys/{survey['id']}/close", headers=auth)).is_success
    token = link_for(workspace, survey["id"])[0]
    assert (await client.post(f"/s/{token}", data={"nps": "3"})).status_code == 410
    assert (await client.post(f"/v1/surveys/{survey['id']}/reopen", headers=auth)).is_success
    assert not await started(client, token)

    edited = {**SURVEY, "questions": [{**SURVEY["questions"][0], "text": "Recommend us?"}]}
    assert (await client.put(f"/v1/surveys/{survey['id']}", json=edited, headers=auth)).json()["version"] == 2
    token = link_for(workspace, survey["id"])[0]
    assert (await client.post(f"/s/{token}", data={"nps": "8"})).status_code == 303
    shown = (await client.get(f"/v1/public/surveys/{token}")).json()
    assert shown["version"] == 2 and shown["answered"] and shown["answers"] == {"nps": 8}
