"""The survey page in a real browser: headless Chromium on a phone-sized viewport, against the
responses service on a real HTTP server (real PostgreSQL and broker behind it).

Needs Chromium at /usr/bin/chromium (``make`` installs it) and the ``playwright`` package; the
browser build playwright would download is never used. When the browser cannot start, these
tests fail: they do not skip.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.responses.app import create_app
from services.responses.settings import ResponsesSettings
from tests.support.browser import PHONE
from tests.support.responses import link_for, serve
from tests.support.stack import settings_from, wait_until

pytestmark = pytest.mark.integration

SIMPLE = {
    "name": "Support NPS",
    "questions": [
        {"id": "nps", "type": "nps", "required": True, "text": "How likely are you to recommend us?"},
        {"id": "why", "type": "open", "text": "What is the main reason for your score?"},
        {"id": "consent", "type": "consent", "text": "May we contact you about your answer?"},
    ],
}
LOGIC = {
    "name": "Support NPS",
    "questions": [
        {"id": "nps", "type": "nps", "required": True, "text": "How likely are you to recommend us?"},
        {
            "id": "why_low",
            "type": "open",
            "text": "What should we do better?",
            "show_if": [{"question": "nps", "max": 6}],
        },
        {
            "id": "why_high",
            "type": "open",
            "text": "What did you like most?",
            "show_if": [{"question": "nps", "min": 7}],
        },
        {
            "id": "consent",
            "type": "consent",
            "text": "May we contact you about your answer?",
            "show_if": [{"question": "nps", "max": 6}],
        },
    ],
}


@pytest.fixture(scope="module")
async def base_url(stack_env: dict[str, str]) -> AsyncIterator[str]:
    settings = settings_from(ResponsesSettings, stack_env, kiosk_reset_s=1)
    async with serve(create_app(settings)) as url:
        yield url


@pytest.fixture
async def page(chromium: Any) -> AsyncIterator[Any]:
    context = await chromium.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, java_script_enabled=True
    )
    page = await context.new_page()
    page.set_default_timeout(10_000)
    yield page
    await context.close()


@pytest.fixture
async def http(base_url: str, auth: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, headers=auth, timeout=10) as client:
        yield client


async def survey_link(http: httpx.AsyncClient, workspace: str, body: dict, **fields: Any) -> tuple[str, str]:
    created = await http.post("/v1/surveys", json=body)
    assert created.status_code == 201, created.text
    survey_id = created.json()["id"]
    token, _ = link_for(workspace, survey_id, **fields)
    return survey_id, token


async def stored(http: httpx.AsyncClient, survey_id: str) -> list[dict]:
    response = await http.get(f"/v1/surveys/{survey_id}/responses")
    return response.json()


async def visible_question(page: Any) -> str:
    return await page.locator(".q:visible").get_attribute("data-id")


async def test_a_respondent_completes_the_survey_on_a_phone(page, http, base_url, workspace):
    survey_id, token = await survey_link(http, workspace, SIMPLE)
    await page.goto(f"{base_url}/s/{token}")
    assert (
        await visible_question(page) == "nps"
        and await page.locator("#count").inner_text() == "Question 1 of 3"
    )
    # One question at a time: a tap on a score answers and moves on.
    await page.get_by_text("9", exact=True).click()
    await page.get_by_label("What is the main reason for your score?").wait_for()
    assert (
        await visible_question(page) == "why"
        and await page.locator("#count").inner_text() == "Question 2 of 3"
    )
    await page.get_by_label("What is the main reason for your score?").fill("Quick <b>help</b>")
    await page.get_by_role("button", name="Next").click()
    assert await visible_question(page) == "consent"
    await page.get_by_text("Yes", exact=True).click()
    await page.get_by_role("button", name="Send").click()
    await page.wait_for_url("**/thanks")
    assert "Thank you" in await page.locator("h1").inner_text()
    await page.screenshot(path="/tmp/closeloop-responses-thanks.png")
    [response] = await stored(http, survey_id)
    assert response["status"] == "completed"
    assert [a["value"] for a in response["answers"]] == [9, "Quick <b>help</b>", True]


async def test_the_conditional_question_appears_only_after_a_low_score(page, http, base_url, workspace):
    survey_id, token = await survey_link(http, workspace, LOGIC)
    await page.goto(f"{base_url}/s/{token}")
    await page.screenshot(path="/tmp/closeloop-responses-survey.png", full_page=True)
    assert await page.get_by_text("May we contact you").count() == 0
    await page.get_by_text("3", exact=True).click()
    await page.get_by_label("What should we do better?").wait_for()  # the next page, after the score
    await page.get_by_label("What should we do better?").fill("Faster replies")
    await page.get_by_role("button", name="Next").click()
    await page.get_by_text("May we contact you about your answer?").wait_for()
    await page.get_by_text("Yes", exact=True).click()
    await page.get_by_role("button", name="Send").click()
    await page.wait_for_url("**/thanks")

    promoter, _ = link_for(workspace, survey_id)
    await page.goto(f"{base_url}/s/{promoter}")
    await page.get_by_text("10", exact=True).click()
    await page.get_by_label("What did you like most?").wait_for()
    assert await page.get_by_text("May we contact you").count() == 0
    assert await page.get_by_role("button", name="Send").is_visible()  # nothing after this question
    responses = await stored(http, survey_id)
    by_status = sorted(r["status"] for r in responses)
    assert by_status == ["completed", "partial"]


async def test_a_reload_resumes_where_the_respondent_left(page, http, base_url, workspace):
    survey_id, token = await survey_link(http, workspace, SIMPLE)
    await page.goto(f"{base_url}/s/{token}")
    async with page.expect_response(lambda r: "/answers/nps" in r.url and r.request.method == "PUT") as saved:
        await page.get_by_text("7", exact=True).click()
    assert (await saved.value).status == 200
    await page.reload()
    assert (
        await visible_question(page) == "why"
        and await page.locator("#count").inner_text() == "Question 2 of 3"
    )
    [partial] = await stored(http, survey_id)
    assert partial["status"] == "partial" and partial["answers"][0]["value"] == 7
    # Back to the score: it is still chosen and can be changed.
    await page.get_by_role("link", name="Back").click()
    await page.wait_for_url("**?q=nps")
    assert await page.locator('input[name="nps"][value="7"]').is_checked()


async def test_the_kiosk_starts_over_for_the_next_person(page, http, base_url, workspace):
    survey_id, _ = await survey_link(http, workspace, SIMPLE)
    kiosk = (await http.post(f"/v1/surveys/{survey_id}/kiosks", json={"location_id": "lobby"})).json()
    key = kiosk["url"].rsplit("/", 1)[1]
    await page.goto(f"{base_url}/k/{key}")
    first_url = page.url
    await page.get_by_text("8", exact=True).click()
    await page.get_by_label("What is the main reason for your score?").wait_for()
    # An anonymous respondent is not asked "may we contact you?": the open question is the last.
    assert await page.get_by_text("May we contact you").count() == 0
    await page.get_by_role("button", name="Send").click()
    await page.wait_for_url("**/thanks")
    # After a moment the thank-you page gives the tablet to the next person: a fresh, empty survey.
    await page.wait_for_url(
        lambda url: "/s/" in url and not url.endswith("/thanks") and url != first_url, timeout=10_000
    )
    assert await page.locator("input:checked").count() == 0
    assert await page.locator("#count").inner_text() == "Question 1 of 2"
    responses = await wait_until(lambda: stored(http, survey_id), message="the kiosk response is stored")
    assert [r["contact_id"] for r in responses] == ["kiosk:lobby"]


async def test_the_survey_can_be_completed_with_the_keyboard_only(page, http, base_url, workspace):
    survey_id, token = await survey_link(http, workspace, SIMPLE)
    await page.goto(f"{base_url}/s/{token}")
    await page.keyboard.press("Tab")  # the first score
    focused = await page.evaluate("document.activeElement.name + '=' + document.activeElement.value")
    assert focused == "nps=0"
    for _ in range(6):
        await page.keyboard.press("ArrowRight")
    assert await page.locator('input[name="nps"][value="6"]').is_checked()
    assert await visible_question(page) == "nps"  # arrows choose; they do not move on by themselves
    await page.keyboard.press("Enter")
    assert await visible_question(page) == "why"
    assert await page.evaluate("document.activeElement.name") == "why"  # focus follows the question
    await page.keyboard.type("Line one")
    await page.keyboard.press("Tab")  # Back
    await page.keyboard.press("Tab")  # Next
    await page.keyboard.press("Enter")
    assert await visible_question(page) == "consent"
    await page.keyboard.press("Space")  # the focused 'Yes'
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/thanks")
    [response] = await stored(http, survey_id)
    assert [a["value"] for a in response["answers"]] == [6, "Line one", True]


async def test_without_javascript_the_whole_page_is_one_form(chromium, http, base_url, workspace):
    survey_id, token = await survey_link(http, workspace, SIMPLE)
    context = await chromium.new_context(viewport=PHONE, java_script_enabled=False)
    try:
        page = await context.new_page()
        await page.goto(f"{base_url}/s/{token}")
        assert await page.locator(".q:visible").count() == 3
        await page.get_by_text("10", exact=True).click()
        await page.get_by_role("button", name="Send").click()
        await page.wait_for_url("**/thanks")
    finally:
        await context.close()
    [response] = await stored(http, survey_id)
    assert response["status"] == "completed" and response["answers"][0]["value"] == 10
