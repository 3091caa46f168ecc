"""Survey definitions and the survey page in depth: versions, question types, logic, languages,
partial responses and resume, kiosks, branding, thank-you pages per outcome, rewards, the checklist.
Real PostgreSQL and the real broker; one app for the module."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from services.responses.app import create_app
from services.responses.settings import ResponsesSettings
from shared.events import RESPONSES
from shared.security import issue_api_key
from tests.conftest import SECRET_KEY
from tests.support.responses import create_survey, link_for
from tests.support.stack import TopicReader, running, settings_from

pytestmark = pytest.mark.integration

KIOSK_BURST = 3
NPS_LOGIC = {
    "name": "Support NPS",
    "default_locale": "en",
    "questions": [
        {
            "id": "nps",
            "type": "nps",
            "required": True,
            "text": {
                "en": "How likely are you to recommend us?",
                "nl": "Hoe waarschijnlijk is het dat u ons aanbeveelt?",
            },
        },
        {
            "id": "why_low",
            "type": "open",
            "text": {"en": "What went wrong with {product|our product}?", "nl": "Wat ging er mis?"},
            "show_if": [{"question": "nps", "max": 6}],
        },
        {
            "id": "why_high",
            "type": "open",
            "text": {"en": "What did you like most?", "nl": "Wat vond u het beste?"},
            "show_if": [{"question": "nps", "min": 9}],
        },
        {
            "id": "consent",
            "type": "consent",
            "text": {"en": "May we contact you?", "nl": "Mogen we contact opnemen?"},
            "show_if": [{"question": "nps", "max": 6}],
            "end_if": [{"question": "consent", "one_of": ["no"]}],
        },
        {
            "id": "playground",
            "type": "single_choice",
            "text": "Did your children enjoy the playground?",
            "options": [
                {"id": "yes", "text": "Yes"},
                {"id": "no", "text": "No"},
                {"id": "na", "text": "Did not use it"},
            ],
            "show_if": [{"attribute": "segment", "one_of": ["family"]}],
        },
        {"id": "agent", "type": "hidden"},
    ],
    "thank_you_text": {"en": "Thanks!", "nl": "Dank u!"},
}
EVERY_TYPE = {
    "name": "Every type",
    "questions": [
        {"id": "nps", "type": "nps", "text": "Recommend?"},
        {"id": "nls", "type": "nls", "text": "Come back?"},
        {"id": "csat", "type": "csat", "text": "Satisfied?"},
        {"id": "faces", "type": "csat", "style": "emoji", "text": "How do you feel?"},
        {"id": "csat10", "type": "csat", "style": "numbers", "points": 10, "text": "Satisfied (1-10)?"},
        {"id": "ces", "type": "ces", "text": "The company made it easy to handle my issue."},
        {"id": "stars", "type": "rating", "points": 5, "text": "Rate the food"},
        {
            "id": "channel",
            "type": "single_choice",
            "text": "How did you contact us?",
            "options": [{"id": "phone", "text": "Phone"}, {"id": "chat", "text": "Chat"}],
        },
        {
            "id": "topics",
            "type": "multiple_choice",
            "text": "Which topics?",
            "options": [
                {"id": "billing", "text": "Billing"},
                {"id": "delivery", "text": "Delivery"},
                {"id": "other", "text": "Other"},
            ],
        },
        {"id": "comment", "type": "open", "text": "Anything else?"},
        {"id": "consent", "type": "consent", "text": "May we contact you?"},
        {"id": "ticket_id", "type": "hidden"},
    ],
}


@pytest.fixture(scope="module")
async def client(stack_env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_from(
        ResponsesSettings,
        stack_env,
        max_answer_chars=300,
        kiosk_burst=KIOSK_BURST,
        kiosk_rate_per_minute=0.01,
    )
    async with running(create_app(settings)) as c:
        yield c


async def put_answer(client: httpx.AsyncClient, token: str, qid: str, value: object) -> httpx.Response:
    return await client.put(f"/v1/public/surveys/{token}/answers/{qid}", json={"value": value})


async def responses_of(
    client: httpx.AsyncClient, auth: dict[str, str], survey_id: str, **params: str
) -> list[dict]:
    response = await client.get(f"/v1/surveys/{survey_id}/responses", headers=auth, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def shown_ids(html: str) -> list[str]:
    return re.search(r'name="_shown" value="([^"]*)"', html).group(1).split(",")  # type: ignore[union-attr]


# --- versions ----------------------------------------------------------------------------


async def test_editing_a_survey_creates_a_version_and_responses_keep_theirs(client, auth, workspace):
    survey = await create_survey(client, auth, NPS_LOGIC)
    token, _ = link_for(workspace, survey["id"])
    assert (await put_answer(client, token, "nps", 9)).status_code == 200  # started on version 1

    edited = {**NPS_LOGIC, "questions": [{**NPS_LOGIC["questions"][0], "text": "Would you recommend us?"}]}
    updated = await client.put(f"/v1/surveys/{survey['id']}", json=edited, headers=auth)
    assert updated.status_code == 200 and updated.json()["version"] == 2
    versions = (await client.get(f"/v1/surveys/{survey['id']}/versions", headers=auth)).json()
    assert [v["version"] for v in versions] == [1, 2]
    one = (await client.get(f"/v1/surveys/{survey['id']}/versions/1", headers=auth)).json()
    assert len(one["definition"]["questions"]) == len(NPS_LOGIC["questions"])
    assert (await client.get(f"/v1/surveys/{survey['id']}/versions/3", headers=auth)).status_code == 404

    # The started response goes on with version 1 (its why_high question), a new link gets version 2.
    shown = (await client.get(f"/v1/public/surveys/{token}")).json()
    assert shown["version"] == 1 and shown["next_questions"] == ["why_high"]
    completed = await client.post(
        f"/v1/public/surveys/{token}/responses", json={"answers": {"why_high": "Fast"}}
    )
    assert completed.status_code == 201 and completed.json()["survey_version"] == 1
    fresh, _ = link_for(workspace, survey["id"])
    assert (await client.get(f"/v1/public/surveys/{fresh}")).json()["version"] == 2
    page = await client.get(f"/s/{fresh}")
    assert "Would you recommend us?" in page.text

    bad = await client.put(f"/v1/surveys/{survey['id']}", json={**NPS_LOGIC, "questions": []}, headers=auth)
    assert (
        bad.status_code == 422
        and (await client.get(f"/v1/surveys/{survey['id']}", headers=auth)).json()["version"] == 2
    )


# --- question types ----------------------------------------------------------------------


async def test_every_question_type_is_rendered_answered_and_published(client, broker, auth, workspace):
    survey = await create_survey(client, auth, EVERY_TYPE)
    token, link = link_for(workspace, survey["id"], context={"ticket_id": "T-42", "agent": "<b>Grace</b>"})
    html = (await client.get(f"/s/{token}")).text
    assert html.count('type="radio" name="nls"') == 11 and html.count('type="radio" name="csat10"') == 10
    assert html.count('type="radio" name="ces"') == 7 and "Very satisfied</span>" in html
    assert 'aria-label="Very dissatisfied"' in html and "😠" in html  # emoji faces keep a text label
    assert html.count('type="radio" name="stars"') == 5 and 'aria-label="4 of 5 stars"' in html
    assert html.count('type="checkbox" name="topics"') == 3 and 'name="channel" value="chat"' in html
    assert 'name="ticket_id"' not in html  # hidden fields are never shown

    form = {
        "nps": "8",
        "nls": "10",
        "csat": "4",
        "faces": "5",
        "csat10": "7",
        "ces": "6",
        "stars": "3",
        "channel": "chat",
        "topics": ["billing", "other"],
        "comment": "ok",
        "consent": "no",
    }
    async with TopicReader(broker.bootstrap_servers, RESPONSES) as reader:
        sent = await client.post(f"/s/{token}", data=form)
        assert sent.status_code == 303 and sent.headers["location"].endswith("/thanks"), sent.text
        [event] = await reader.wait_for(
            lambda v: (
                v["type"] == "closeloop.ResponseCompleted.v1"
                and v["data"]["invitation_id"] == link.invitation_id
            )
        )
    answers = {a["question_id"]: a for a in event["data"]["answers"]}
    assert answers["topics"]["value"] == "billing,other" and answers["topics"]["choices"] == [
        "billing",
        "other",
    ]
    assert answers["csat10"]["scale"] == [1, 10] and answers["stars"]["scale"] == [1, 5]
    assert answers["csat"]["scale"] is None and answers["channel"]["value"] == "chat"
    assert answers["consent"]["value"] is False and event["data"]["consent_to_contact"] is False
    assert event["data"]["hidden_fields"] == {"ticket_id": "T-42", "agent": "<b>Grace</b>"}
    [stored] = await responses_of(client, auth, survey["id"])
    assert stored["hidden_fields"]["ticket_id"] == "T-42" and stored["status"] == "completed"


@pytest.mark.parametrize(
    "qid, value",
    [
        ("stars", 6),
        ("csat10", 11),
        ("faces", 0),
        ("channel", "fax"),
        ("topics", ["billing", "billing"]),
        ("topics", []),
        ("topics", "billing"),
        ("ticket_id", "T-1"),
        ("nope", 1),
    ],
)
async def test_bad_answers_to_each_type_are_refused(client, auth, workspace, qid, value):
    survey = await create_survey(client, auth, EVERY_TYPE)
    token, _ = link_for(workspace, survey["id"])
    response = await client.post(
        f"/v1/public/surveys/{token}/responses", json={"answers": {"nps": 5, qid: value}}
    )
    if value == []:  # an empty choice is no answer at all
        assert response.status_code == 201
        return
    assert response.status_code == 422 and [e["field"] for e in response.json()["errors"]] == [
        f"answers.{qid}"
    ]


@pytest.mark.parametrize(
    "question, field",
    [
        (
            {"id": "c", "type": "single_choice", "text": "?", "options": [{"id": "a", "text": "A"}]},
            "questions.1.options",
        ),
        (
            {
                "id": "c",
                "type": "open",
                "text": "?",
                "options": [{"id": "a", "text": "A"}, {"id": "b", "text": "B"}],
            },
            "questions.1.options",
        ),
        ({"id": "c", "type": "csat", "text": "?", "points": 7}, "questions.1.points"),
        ({"id": "c", "type": "csat", "text": "?", "points": 10, "style": "emoji"}, "questions.1.style"),
        ({"id": "c", "type": "rating", "text": "?", "points": 11}, "questions.1.points"),
        (
            {"id": "c", "type": "open", "text": "?", "show_if": [{"question": "later", "max": 3}]},
            "questions.1.show_if.0.question",
        ),
        ({"id": "c", "type": "open", "text": "?", "show_if": [{"question": "nps"}]}, "questions.1.show_if.0"),
        (
            {"id": "c", "type": "open", "text": "?", "show_if": [{"attribute": "role"}]},
            "questions.1.show_if.0.one_of",
        ),
        ({"id": "c", "type": "open", "text": {"nl": "Waarom?"}}, "questions.1.text"),
        ({"id": "c", "type": "open"}, "questions.1.text"),
        ({"id": "c", "type": "open", "text": "Why?", "required": "yes"}, "questions.1.required"),
        ({"id": "c", "type": "open", "text": "Why?", "required": 1}, "questions.1.required"),
        ({"id": "c", "type": "rating", "text": "Stars?", "points": "5"}, "questions.1.points"),
        (
            {"id": "c", "type": "open", "text": "?", "show_if": [{"question": "nps", "max": "6"}]},
            "questions.1.show_if.0.max",
        ),
    ],
    ids=[
        "one-option",
        "options-on-open",
        "csat-points",
        "emoji-10",
        "stars",
        "later-question",
        "no-range",
        "attribute-values",
        "no-default-locale",
        "no-text",
        "required-yes",
        "required-1",
        "points-text",
        "max-text",
    ],
)
async def test_bad_questions_and_logic_are_refused_naming_the_field(client, auth, question, field):
    body = {"name": "x", "questions": [{"id": "nps", "type": "nps", "text": "?"}, question]}
    response = await client.post("/v1/surveys", json=body, headers=auth)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]


# --- logic, partial responses, resume ------------------------------------------------------


async def test_a_low_score_shows_the_follow_up_questions_and_consent_no_ends_the_survey(
    client, auth, workspace
):
    survey = await create_survey(client, auth, NPS_LOGIC)
    token, _ = link_for(
        workspace, survey["id"], context={"attr.segment": "family", "product": "<i>Widget</i>"}
    )
    first = await client.get(f"/s/{token}")
    # The questions after the score depend on it: the first page is the score alone.
    assert shown_ids(first.text) == ["nps"] and "Question 1 of 5" in first.text
    low = await client.post(f"/s/{token}", data={"_shown": "nps", "nps": "3"})
    assert low.status_code == 303 and not low.headers["location"].endswith("/thanks")
    second = await client.get(low.headers["location"])
    assert shown_ids(second.text) == ["why_low", "consent"] and "Question 2 of 4" in second.text
    assert "What went wrong with &lt;i&gt;Widget&lt;/i&gt;?" in second.text  # filled in, escaped
    done = await client.post(
        f"/s/{token}", data={"_shown": "why_low,consent", "why_low": "slow", "consent": "no"}
    )
    # "No" to contact skips the rest (the playground question) to the end.
    assert done.status_code == 303 and done.headers["location"].endswith("/thanks")
    [stored] = await responses_of(client, auth, survey["id"])
    assert [a["question_id"] for a in stored["answers"]] == ["nps", "why_low", "consent"]


async def test_a_promoter_gets_the_other_question_and_attributes_pick_questions(client, auth, workspace):
    survey = await create_survey(client, auth, NPS_LOGIC)
    family, _ = link_for(workspace, survey["id"], context={"attr.segment": "family"})
    single, _ = link_for(workspace, survey["id"], context={"attr.segment": "single"})
    for token, expected in ((family, ["why_high", "playground"]), (single, ["why_high"])):
        await client.post(f"/s/{token}", data={"_shown": "nps", "nps": "10"})
        assert shown_ids((await client.get(f"/s/{token}")).text) == expected
    shown = (await client.get(f"/v1/public/surveys/{single}")).json()
    assert shown["progress"] == {"done": 1, "total": 2} and shown["next_questions"] == ["why_high"]


async def test_score_in_the_link_is_recorded_at_once_and_each_answer_saved_as_given(
    client, broker, auth, workspace
):
    survey = await create_survey(client, auth, NPS_LOGIC)
    token, link = link_for(workspace, survey["id"], context={"agent": "Grace"})
    async with TopicReader(broker.bootstrap_servers, RESPONSES) as reader:
        page = await client.get(f"/s/{token}", params={"score": "2"})
        [started] = await reader.wait_for(
            lambda v: (
                v["type"] == "closeloop.ResponseStarted.v1"
                and v["data"]["invitation_id"] == link.invitation_id
            )
        )
    assert started["data"]["hidden_fields"] == {"agent": "Grace"} and started["data"]["survey_version"] == 1
    # The score's page is behind the respondent: the follow-up questions show at once.
    assert (
        shown_ids(page.text) == ["why_low", "consent"]
        and f'href="http://testserver/s/{token}?q=nps"' in page.text
    )
    [partial] = await responses_of(client, auth, survey["id"], status="partial")
    assert (
        partial["answers"] == [{"question_id": "nps", "type": "nps", "value": 2}]
        and partial["completed_at"] is None
    )

    # The same link again (a reload, a second click) neither records twice nor changes the answer.
    await client.get(f"/s/{token}", params={"score": "9"})
    assert (await responses_of(client, auth, survey["id"]))[0]["answers"][0]["value"] == 2

    # Answers are saved one by one, can be changed and cleared until the response is completed.
    saved = await put_answer(client, token, "why_low", "slow")
    assert saved.status_code == 200 and saved.json()["progress"] == {"done": 2, "total": 3}
    assert (await put_answer(client, token, "nps", 5)).status_code == 200
    assert (await put_answer(client, token, "why_low", None)).json()["value"] is None
    resumed = await client.get(f"/s/{token}")
    assert "consent" in shown_ids(resumed.text)
    assert 'name="nps"' not in resumed.text  # resumes where it was left, not at the start
    edit = await client.get(f"/s/{token}", params={"q": "nps"})
    assert shown_ids(edit.text) == ["nps"] and 'name="nps" value="5" checked' in edit.text

    assert (
        await client.post(f"/v1/public/surveys/{token}/responses", json={"answers": {"consent": True}})
    ).status_code == 201
    assert (await put_answer(client, token, "nps", 1)).status_code == 409
    assert (await client.post(f"/s/{token}", data={"nps": "1"})).status_code == 409
    assert "already answered" in (await client.get(f"/s/{token}")).text
    dropoff = (await client.get(f"/v1/surveys/{survey['id']}/dropoff", headers=auth)).json()
    assert dropoff["started"] == 1 and dropoff["completed"] == 1 and dropoff["completion_rate"] == 1.0


@pytest.mark.parametrize("blank", ["", "   ", "\t"])
async def test_a_blank_score_is_refused_and_does_not_start_the_response(client, auth, workspace, blank):
    survey = await create_survey(client, auth, NPS_LOGIC)
    token, _ = link_for(workspace, survey["id"])
    refused = await put_answer(client, token, "nps", blank)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "answers.nps"
    # Clearing what was never given, or blank text, stores nothing either.
    assert (await put_answer(client, token, "nps", None)).status_code == 200
    assert (await put_answer(client, token, "why_low", blank)).status_code == 200
    whole = await client.post(f"/v1/public/surveys/{token}/responses", json={"answers": {"nps": blank}})
    assert whole.status_code == 422 and whole.json()["errors"][0]["field"] == "answers.nps"
    # Not started: no response, so the invitation's reminders still go out.
    assert await responses_of(client, auth, survey["id"]) == []
    assert (await client.get(f"/v1/public/surveys/{token}")).json()["started"] is False


async def test_drop_off_counts_where_partial_responses_stopped(client, auth, workspace):
    survey = await create_survey(client, auth, NPS_LOGIC)
    for score in (2, 3):
        token, _ = link_for(workspace, survey["id"])
        await put_answer(client, token, "nps", score)
    token, _ = link_for(workspace, survey["id"])
    await put_answer(client, token, "nps", 1)
    await put_answer(client, token, "why_low", "meh")
    dropoff = (await client.get(f"/v1/surveys/{survey['id']}/dropoff", headers=auth)).json()
    by_q = {q["question_id"]: q for q in dropoff["questions"]}
    assert dropoff["started"] == 3 and dropoff["completed"] == 0 and dropoff["completion_rate"] == 0
    assert (by_q["nps"]["answered"], by_q["nps"]["last_answered"]) == (3, 2)
    assert (by_q["why_low"]["answered"], by_q["why_low"]["last_answered"]) == (1, 1)
    assert "agent" not in by_q


async def test_answers_saved_one_by_one_keep_one_response_until_it_is_completed(
    client, broker, auth, workspace
):
    """The answers API's hot path (one statement per answer): the first answer starts the response and
    publishes ResponseStarted, later ones change or clear answers of that same response, the page picks
    up where they left off, and nothing is saved once the response is completed."""
    survey = await create_survey(client, auth, NPS_LOGIC)
    token, link = link_for(workspace, survey["id"])
    assert (await put_answer(client, token, "why_low", None)).status_code == 200  # nothing to clear yet
    assert await responses_of(client, auth, survey["id"]) == []
    async with TopicReader(broker.bootstrap_servers, RESPONSES) as reader:
        first = await put_answer(client, token, "nps", 3)
        [started] = await reader.wait_for(
            lambda v: (
                v["type"] == "closeloop.ResponseStarted.v1"
                and v["data"]["invitation_id"] == link.invitation_id
            )
        )
    assert first.json()["progress"] == {"done": 1, "total": 3}
    assert first.json()["next_questions"] == ["why_low", "consent"]
    saved = await put_answer(client, token, "why_low", "Too slow")
    assert saved.status_code == 200 and saved.json()["progress"] == {"done": 2, "total": 3}
    assert (await put_answer(client, token, "nps", 2)).json()["value"] == 2
    [partial] = await responses_of(client, auth, survey["id"], status="partial")
    assert partial["id"] == started["data"]["response_id"]
    assert {a["question_id"]: a["value"] for a in partial["answers"]} == {"nps": 2, "why_low": "Too slow"}
    cleared = await put_answer(client, token, "why_low", None)
    assert cleared.json()["value"] is None
    [partial] = await responses_of(client, auth, survey["id"], status="partial")
    assert [a["question_id"] for a in partial["answers"]] == ["nps"]
    # Both questions were passed (why_low left blank now): the page shows the consent question.
    assert shown_ids((await client.get(f"/s/{token}")).text) == ["consent"]
    done = await client.post(f"/v1/public/surveys/{token}/responses", json={"answers": {"consent": False}})
    assert done.status_code == 201 and done.json()["id"] == partial["id"]
    late = await put_answer(client, token, "nps", 10)
    assert late.status_code == 409
    [completed] = await responses_of(client, auth, survey["id"])
    assert {a["question_id"]: a["value"] for a in completed["answers"]} == {"nps": 2, "consent": False}


async def test_two_simultaneous_first_answers_start_one_response(client, auth, workspace):
    survey = await create_survey(client, auth, NPS_LOGIC)
    token, _ = link_for(workspace, survey["id"])
    results = await asyncio.gather(*(put_answer(client, token, "nps", n) for n in range(5)))
    assert [r.status_code for r in results] == [200] * 5
    assert len(await responses_of(client, auth, survey["id"])) == 1


async def test_oversized_answers_are_refused_with_a_clear_message(client, auth, workspace):
    survey = await create_survey(client, auth, NPS_LOGIC)
    token, _ = link_for(workspace, survey["id"])
    too_long = await put_answer(client, token, "why_low", "x" * 301)
    assert too_long.status_code == 422
    assert too_long.json()["errors"] == [
        {
            "field": "answers.why_low",
            "message": "Your answer is longer than 300 characters; please shorten it.",
        }
    ]
    huge = await client.post(f"/s/{token}", data={"nps": "1", "why_low": "x" * 300_000})
    assert huge.status_code == 413 and "larger than" in huge.json()["detail"]
    assert await responses_of(client, auth, survey["id"]) == []


# --- languages -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "locale, lang, question, ui",
    [
        ("nl-BE", "nl", "Hoe waarschijnlijk is het dat u ons aanbeveelt?", "Vraag 1 van 4"),
        ("nl", "nl", "Hoe waarschijnlijk is het dat u ons aanbeveelt?", "(verplicht)"),
        ("de", "en", "How likely are you to recommend us?", "Question 1 of 4"),
        ("en-GB", "en", "How likely are you to recommend us?", "Not at all likely"),
    ],
)
async def test_texts_follow_the_contacts_locale_with_a_fallback(
    client, auth, workspace, locale, lang, question, ui
):
    survey = await create_survey(client, auth, NPS_LOGIC)
    token, _ = link_for(workspace, survey["id"], locale=locale)
    page = await client.get(f"/s/{token}")
    assert f'<html lang="{lang}" dir="ltr">' in page.text and question in page.text and ui in page.text
    assert (await client.get(f"/v1/public/surveys/{token}")).json()["questions"][0]["text"] == question


async def test_right_to_left_languages_get_dir_rtl(client, auth, workspace):
    body = {
        "name": "ar",
        "default_locale": "ar",
        "questions": [{"id": "nps", "type": "nps", "text": {"ar": "ما مدى احتمال أن توصي بنا؟"}}],
    }
    survey = await create_survey(client, auth, body)
    token, _ = link_for(workspace, survey["id"], locale="ar")
    assert '<html lang="ar" dir="rtl">' in (await client.get(f"/s/{token}")).text


# --- closed and broken links ---------------------------------------------------------------


async def test_a_closed_survey_shows_a_friendly_page_and_can_be_reopened(client, auth, workspace):
    survey = await create_survey(client, auth, NPS_LOGIC)
    token, _ = link_for(workspace, survey["id"], locale="nl")
    assert (await client.post(f"/v1/surveys/{survey['id']}/close", headers=auth)).json()["closed"] is True
    page = await client.get(f"/s/{token}")
    assert (
        page.status_code == 410 and "Deze enquête is gesloten" not in page.text
    )  # no locale known yet: English
    assert "This survey is closed" in page.text
    dutch = await client.get(f"/s/{token}", headers={"accept-language": "nl-NL,nl;q=0.9"})
    assert "Deze enquête is gesloten" in dutch.text
    api = await put_answer(client, token, "nps", 3)
    assert api.status_code == 410 and api.json()["type"].endswith("survey-closed")
    await client.post(f"/v1/surveys/{survey['id']}/reopen", headers=auth)
    assert (await client.get(f"/s/{token}")).status_code == 200


# --- thank-you per outcome, rewards, branding ------------------------------------------------


async def test_thank_you_per_outcome_and_one_reward_code_per_completed_response(client, auth, workspace):
    pool = (await client.post("/v1/reward-pools", json={"name": "Coffee"}, headers=auth)).json()
    added = await client.post(
        f"/v1/reward-pools/{pool['id']}/codes", json={"codes": ["C-1", "C-2", "C-1"]}, headers=auth
    )
    assert added.json()["total"] == 2 and added.json()["remaining"] == 2
    body = {
        **NPS_LOGIC,
        "reward_pool_id": pool["id"],
        "outcomes": [
            {
                "when": [{"question": "nps", "min": 9}],
                "text": {"en": "Share it in a review?", "nl": "Een review?"},
                "link_url": "https://example.com/review",
                "link_text": "Write a review",
            },
        ],
    }
    survey = await create_survey(client, auth, body)
    tokens = [link_for(workspace, survey["id"])[0] for _ in range(3)]
    results = await asyncio.gather(
        *(client.post(f"/v1/public/surveys/{t}/responses", json={"answers": {"nps": 10}}) for t in tokens)
    )
    codes = [r.json()["reward_code"] for r in results]
    assert sorted(c for c in codes if c) == ["C-1", "C-2"] and codes.count(None) == 1  # never given twice
    thanks = await client.get(f"/s/{tokens[codes.index('C-1')]}/thanks")
    assert "Share it in a review?" in thanks.text and 'href="https://example.com/review"' in thanks.text
    assert '<p class="code">C-1</p>' in thanks.text
    low, _ = link_for(workspace, survey["id"])
    await client.post(f"/v1/public/surveys/{low}/responses", json={"answers": {"nps": 2}})
    assert ">Thanks!<" in (await client.get(f"/s/{low}/thanks")).text
    assert (await client.get(f"/v1/reward-pools/{pool['id']}", headers=auth)).json()["remaining"] == 0
    unknown = {**NPS_LOGIC, "reward_pool_id": "00000000-0000-0000-0000-000000000000"}
    assert (await client.post("/v1/surveys", json=unknown, headers=auth)).status_code == 422


async def test_the_workspaces_reward_pools_are_listed_newest_first_with_their_counts(client, auth, workspace):
    other = {"Authorization": f"Bearer {issue_api_key(SECRET_KEY, workspace + '-other')}"}
    assert (
        await client.post("/v1/reward-pools", json={"name": "Not ours"}, headers=other)
    ).status_code == 201
    first = (await client.post("/v1/reward-pools", json={"name": "Tea"}, headers=auth)).json()
    second = (await client.post("/v1/reward-pools", json={"name": "Coffee"}, headers=auth)).json()
    await client.post(f"/v1/reward-pools/{second['id']}/codes", json={"codes": ["A", "B"]}, headers=auth)
    listed = await client.get("/v1/reward-pools", headers=auth)
    assert listed.status_code == 200, listed.text
    assert [(p["id"], p["total"], p["remaining"]) for p in listed.json()] == [
        (second["id"], 2, 2),
        (first["id"], 0, 0),
    ]


LOGO = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 64).decode()


async def test_branding_per_workspace_and_survey(client, auth, workspace):
    unreadable = await client.put(
        "/v1/branding", json={"text_color": "#777777", "background_color": "#888888"}, headers=auth
    )
    assert unreadable.status_code == 422 and unreadable.json()["errors"][0]["field"] == "text_color"
    external = await client.put(
        "/v1/branding", json={"logo": "https://cdn.example.com/logo.png"}, headers=auth
    )
    assert external.status_code == 422 and external.json()["errors"][0]["field"] == "logo"
    ok = await client.put(
        "/v1/branding",
        json={"primary_color": "#0b6e4f", "font": "serif", "tone": "formal", "logo": LOGO},
        headers=auth,
    )
    assert ok.status_code == 200, ok.text
    survey = await create_survey(
        client, auth, {**NPS_LOGIC, "thank_you_text": None, "branding": {"primary_color": "#7a1fa2"}}
    )
    token, _ = link_for(workspace, survey["id"])
    page = (await client.get(f"/s/{token}")).text
    assert "--p:#7a1fa2" in page and "--on:#ffffff" in page and "Georgia" in page and f'src="{LOGO}"' in page
    await client.post(f"/v1/public/surveys/{token}/responses", json={"answers": {"nps": 7}})
    assert (
        "Thank you for taking the time to answer our questions."
        in (await client.get(f"/s/{token}/thanks")).text
    )


EMAIL_BRANDING = {
    "name": "Acme",
    "logo_url": "https://acme.example/logo.png",
    "footer": "Acme B.V.\nKeizersgracht 1, 1015 CJ Amsterdam",
}


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "Acme\r\nBcc: everyone@example.com"}, "name"),
        ({"name": ""}, "name"),
        ({"logo_url": "http://acme.example/logo.png"}, "logo_url"),
        ({"logo_url": "https://acme.example/a logo.png"}, "logo_url"),
        ({"logo_url": "javascript:alert(1)"}, "logo_url"),
        ({"footer": "Acme\rBcc: x"}, "footer"),
        ({"footer": "x" * 501}, "footer"),
        ({"name": "Acme", "colour": "red"}, "colour"),
    ],
    ids=[
        "crlf-name",
        "empty-name",
        "http-logo",
        "space-in-logo",
        "script-logo",
        "cr-footer",
        "long-footer",
        "extra",
    ],
)
async def test_the_email_branding_is_checked_naming_the_field(client, auth, body, field):
    response = await client.put("/v1/branding", json=body, headers=auth)
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in response.json()["errors"]]
    stored = (await client.get("/v1/branding", headers=auth)).json()
    assert stored and all(v is None for v in stored.values())  # nothing stored


async def test_the_workspace_branding_holds_what_emails_need_and_a_survey_overrides_only_its_pages(
    client, auth, workspace
):
    saved = await client.put(
        "/v1/branding", json={**EMAIL_BRANDING, "primary_color": "#0b6e4f"}, headers=auth
    )
    assert saved.status_code == 200, saved.text
    assert (await client.get("/v1/branding", headers=auth)).json() == {
        **EMAIL_BRANDING,
        "primary_color": "#0b6e4f",
        "logo": None,
        "background_color": None,
        "text_color": None,
        "font": None,
        "tone": None,
    }
    per_survey = await client.post(
        "/v1/surveys", json={**NPS_LOGIC, "branding": {"name": "Other"}}, headers=auth
    )
    assert per_survey.status_code == 422 and per_survey.json()["errors"][0]["field"] == "branding.name"


# --- kiosk and QR -----------------------------------------------------------------------------


async def test_kiosk_links_give_anonymous_responses_qr_codes_and_are_rate_limited(
    client, broker, auth, workspace
):
    survey = await create_survey(client, auth, NPS_LOGIC)
    created = await client.post(
        f"/v1/surveys/{survey['id']}/kiosks", json={"location_id": "store-ams", "name": "Door"}, headers=auth
    )
    assert created.status_code == 201, created.text
    kiosk = created.json()
    key = kiosk["url"].rsplit("/", 1)[1]
    svg = await client.get(f"/v1/kiosks/{kiosk['id']}/qr.svg", headers=auth)
    assert svg.headers["content-type"] == "image/svg+xml" and b"<svg" in svg.content
    png = await client.get(f"/v1/kiosks/{kiosk['id']}/qr.png", headers=auth)
    assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")
    assert (await client.get(f"/v1/kiosks/{kiosk['id']}/qr.png")).status_code == 401

    start = await client.get(f"/k/{key}")
    assert start.status_code == 303
    session_page = start.headers["location"]
    token = session_page.rsplit("/", 1)[1]
    async with TopicReader(broker.bootstrap_servers, RESPONSES) as reader:
        await client.post(session_page, data={"_shown": "nps", "nps": "10"})
        done = await client.post(session_page, data={"_shown": "why_high", "why_high": "Nice staff"})
        assert done.headers["location"].endswith("/thanks")
        [event] = await reader.wait_for(
            lambda v: v["type"] == "closeloop.ResponseCompleted.v1" and v["data"]["survey_id"] == survey["id"]
        )
    data = event["data"]
    assert (data["contact_id"], data["channel"], data["kind"], data["invitation_id"], data["request_id"]) == (
        "kiosk:store-ams",
        "link",
        "relationship",
        None,
        None,
    )
    assert data["hidden_fields"] == {"location": "store-ams"}
    thanks = await client.get(f"{session_page}/thanks")
    assert f'content="8;url=http://testserver/k/{key}"' in thanks.text  # resets for the next person
    [stored] = await responses_of(client, auth, survey["id"])
    assert stored["kiosk_id"] == kiosk["id"] and stored["contact_id"] == "kiosk:store-ams"
    # The next person gets a fresh response, not the last one.
    second = (await client.get(f"/k/{key}")).headers["location"]
    assert second != session_page and " checked" not in (await client.get(second)).text

    limited = [await client.get(f"/k/{key}") for _ in range(KIOSK_BURST)]
    assert limited[-1].status_code == 429 and int(limited[-1].headers["retry-after"]) >= 1
    assert "try again in a minute" in limited[-1].text

    assert (await client.delete(f"/v1/kiosks/{kiosk['id']}", headers=auth)).json()["active"] is False
    assert (await client.get(f"/k/{key}")).status_code == 404
    assert (await client.get(f"/s/{token}")).status_code == 404
    assert (await client.get("/k/not-a-key!")).status_code == 404
    # A switched-off kiosk's QR code is gone like its page: nobody prints a dead link.
    for fmt in ("svg", "png"):
        gone = await client.get(f"/v1/kiosks/{kiosk['id']}/qr.{fmt}", headers=auth)
        assert gone.status_code == 410 and gone.headers["content-type"] == "application/problem+json"
        assert gone.json()["errors"][0]["field"] == "kiosk_id"


async def test_nobody_is_asked_for_consent_who_cannot_be_reached(client, broker, auth, workspace):
    survey = await create_survey(client, auth, NPS_LOGIC)
    kiosk = (
        await client.post(f"/v1/surveys/{survey['id']}/kiosks", json={"location_id": "door"}, headers=auth)
    ).json()
    kiosk_page = (await client.get(f"/k/{kiosk['url'].rsplit('/', 1)[1]}")).headers["location"]
    kiosk_token = kiosk_page.rsplit("/", 1)[1]
    no_address, _ = link_for(workspace, survey["id"], respondent={"name": "Ada Lovelace"})
    with_email, emailed = link_for(
        workspace, survey["id"], respondent={"name": "Ada Lovelace", "email": "ada@example.com"}
    )
    for token in (kiosk_token, no_address, with_email):
        low = await client.post(f"/s/{token}", data={"_shown": "nps", "nps": "2"})
        assert low.status_code == 303, low.text
    # A detractor at a kiosk, or behind a link without an address, is not asked "may we contact you?".
    for token in (kiosk_token, no_address):
        assert shown_ids((await client.get(f"/s/{token}")).text) == ["why_low"]
        shown = (await client.get(f"/v1/public/surveys/{token}")).json()
        assert "consent" not in [q["id"] for q in shown["questions"]]
        refused = await put_answer(client, token, "consent", True)
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "answers.consent"
    assert shown_ids((await client.get(f"/s/{with_email}")).text) == ["why_low", "consent"]

    async with TopicReader(broker.bootstrap_servers, RESPONSES) as reader:
        for token in (kiosk_token, no_address, with_email):
            # Even a "yes" posted by hand is no consent where nobody can act on it.
            done = await client.post(
                f"/s/{token}", data={"_shown": "why_low,consent", "why_low": "slow", "consent": "yes"}
            )
            assert done.headers["location"].endswith("/thanks"), done.text
        events = await reader.wait_for(
            lambda v: (
                v["type"] == "closeloop.ResponseCompleted.v1" and v["data"]["survey_id"] == survey["id"]
            ),
            count=3,
        )
    by_contact = {e["data"]["contact_id"]: e["data"] for e in events}
    kiosk_event = by_contact.pop("kiosk:door")
    emailed_event = by_contact.pop(emailed.contact_id)
    [no_address_event] = by_contact.values()
    assert (kiosk_event["consent_to_contact"], kiosk_event["respondent"]) == (False, None)
    assert [a["question_id"] for a in kiosk_event["answers"]] == ["nps", "why_low"]
    assert no_address_event["consent_to_contact"] is False
    assert no_address_event["respondent"]["name"] == "Ada Lovelace"
    assert emailed_event["consent_to_contact"] is True
    assert emailed_event["respondent"] == {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "phone": None,
        "locale": None,
        "timezone": None,
        "company": None,
    }


# --- the checklist -------------------------------------------------------------------------------


async def test_saving_a_survey_returns_checklist_warnings_explained_in_english_and_dutch(client, auth):
    assert (
        await client.put(
            "/v1/glossary", json={"terms": [{"term": "L2 queue", "hint": "Say 'specialists'."}]}, headers=auth
        )
    ).status_code == 200
    body = {
        "name": "Wordy",
        "questions": [
            {
                "id": "nps",
                "type": "nps",
                "text": "How likely are you to recommend us to a friend or colleague?",
            },
            {
                "id": "agent",
                "type": "csat",
                "text": {
                    "en": "Was the agent friendly and polite?",
                    "nl": "Was de medewerker vriendelijk en beleefd?",
                },
            },
            {"id": "great", "type": "rating", "points": 4, "text": "How great was your visit?"},
            {"id": "l2", "type": "ces", "text": "The L2 queue handled my issue easily."},
            {"id": "why", "type": "open", "required": True, "text": "Why?"},
        ]
        + [{"id": f"extra{i}", "type": "open", "text": "More?"} for i in range(4)],
    }
    survey = await create_survey(client, auth, body)
    codes = {(w["code"], w["question_id"], w["locale"]) for w in survey["warnings"]}
    assert ("double_barrelled", "agent", "en") in codes and ("double_barrelled", "agent", "nl") in codes
    assert ("leading", "great", "en") in codes and ("no_neutral", "great", None) in codes
    assert ("internal_term", "l2", "en") in codes and ("required_open", "why", None) in codes
    assert ("too_long", None, None) in codes
    assert not any(w["question_id"] == "nps" for w in survey["warnings"])  # the standard NPS wording is fine
    dutch = (await client.get(f"/v1/surveys/{survey['id']}/lint", params={"lang": "nl"}, headers=auth)).json()
    assert dutch["estimated_seconds"] > dutch["max_seconds"] == 120
    assert any("sturend" in w["message"] for w in dutch["warnings"])
    dry = await client.post("/v1/surveys/lint", json=body, headers=auth)
    assert dry.status_code == 200 and len(dry.json()["warnings"]) == len(survey["warnings"])
    assert (await client.get("/v1/glossary", headers=auth)).json()["terms"][0]["term"] == "L2 queue"


# --- the page itself -----------------------------------------------------------------------------


async def test_the_page_is_small_self_contained_and_locked_down(client, auth, workspace):
    survey = await create_survey(client, auth, EVERY_TYPE)
    token, _ = link_for(workspace, survey["id"])
    page = await client.get(f"/s/{token}")
    html = page.text
    assert len(page.content) < 50_000
    assert not re.search(r'(src|href)="(https?:)?//', html) and "<link" not in html and "@import" not in html
    csp = page.headers["content-security-policy"]
    assert (
        "default-src 'none'" in csp
        and "script-src 'sha256-" in csp
        and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    )
    assert page.headers["referrer-policy"] == "no-referrer" and page.headers["cache-control"] == "no-store"
    assert html.count("<label") >= html.count('type="radio"')  # every choice is labelled
