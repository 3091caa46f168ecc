"""Editing in the console's pages, in headless Chromium at a phone's width and a desktop's, against real
responses and dispatch servers (the fixtures of ``test_console_browser``): an owner edits a saved survey
(a question reworded, one added) and responses stores and serves the next version, with the checklist's
warnings beside each question; an edit that makes the survey invalid gets the field's error beside it and
changes nothing. An admin sets the SMS provider (a local Twilio-style server) and an invitation by SMS
then goes through it; the auth token never appears in a page; a viewer sees no channel settings.
Screenshots go to ``.artifacts/screenshots/`` like the other console tests'."""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from services.responses.schemas import NPS_SURVEY_EXAMPLE
from shared.events import Recipient, SurveyRequested, new_id
from tests.integration import test_console_browser as browser
from tests.integration.test_console_browser import (
    WIDTHS,
    as_owner,
    fits,
    make_workspace,
    signed_in,
    type_question,
)
from tests.support.console import PASSWORD, invite_member
from tests.support.dispatch import FakeProvider
from tests.support.responses import create_survey
from tests.support.stack import publish, wait_until

pytestmark = pytest.mark.integration
apps, gallery = browser.apps, browser.gallery  # the fixtures shared with it (chromium: conftest)

PAID_BY = {
    "id": "paid_by",
    "type": "single_choice",
    "text": {"en": "How did you pay?", "nl": "Hoe betaalde u?"},
    "options": [{"id": "card", "text": {"en": "Card"}}, {"id": "cash", "text": {"en": "Cash"}}],
}
SAVED = NPS_SURVEY_EXAMPLE | {
    "name": "Checkout",
    "title": {"en": "Your visit", "nl": "Uw bezoek"},
    "questions": [*NPS_SURVEY_EXAMPLE["questions"], PAID_BY],
}
"""Responses' example (logic, two languages, a hidden field, thank-you pages per outcome) and a choice
question: much that the editor does not show, all of it to be kept by an edit."""
ADDED = 7
"""The editor's row of the question the owner adds (the first empty one)."""


async def saved_survey(responses: str, auth: dict[str, str]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=responses, timeout=20) as http:
        made = await create_survey(http, auth, SAVED)
        kiosk = await http.post(
            f"/v1/surveys/{made['id']}/kiosks",
            json={"location_id": "till", "name": "Till"},
            headers=auth,
        )
        assert kiosk.status_code == 201, kiosk.text
    return made | {"kiosk_url": kiosk.json()["url"]}


async def current(responses: str, auth: dict[str, str], survey_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=responses, timeout=20) as http:
        found = await http.get(f"/v1/surveys/{survey_id}", headers=auth)
        assert found.status_code == 200, found.text
        return dict(found.json())


@pytest.mark.parametrize("size", list(WIDTHS))
async def test_an_owner_edits_a_saved_survey_and_responses_serves_the_next_version(
    apps, chromium, workspace, auth, gallery, size
):
    made = await make_workspace(apps.console, workspace, "Eddie Editor")
    async with as_owner(chromium, apps.console, made, size) as (page, problems):
        survey = await saved_survey(apps.responses, auth)
        await page.goto(f"{apps.console}/surveys/{survey['id']}")
        await page.click("a:has-text('Edit')")
        await page.wait_for_url(f"{apps.console}/surveys/{survey['id']}/edit")
        assert await page.input_value("#name") == "Checkout"
        assert await page.input_value("#second-locale") == "nl"
        assert await page.input_value("#q2-text") == "What should we do better?"
        assert await page.input_value("#q2-text2") == "Wat kunnen we beter doen?"
        assert await page.input_value("#q2-show-q") == "nps" and await page.input_value("#q2-show-max") == "6"
        assert await page.input_value("#q6-type") == "single_choice"
        assert await page.input_value(f"#q{ADDED}-id") == ""  # a blank row to add a question
        assert "version 2" in await page.inner_text("h1")
        await page.fill("#q2-text", "How fast and friendly was the checkout?")
        await type_question(page, ADDED, "ease", "How easy was it to pay?", kind="ces")
        await page.fill(f"#q{ADDED}-text2", "Hoe makkelijk was betalen?")
        await page.click("button[value=check]")
        await page.wait_for_load_state()
        assert "two things at once" in await page.inner_text("#q2-warnings [data-code=double_barrelled]")
        assert await page.input_value(f"#q{ADDED}-id") == "ease"
        assert await fits(page)
        await page.screenshot(path=gallery / f"survey-edit-{size}.png", full_page=True)
        await page.click("button[value=save]")
        await page.wait_for_url(re.compile(r".*/surveys/[^/?]+\?done=.*"))
        assert "Saved as version 2 (was 1)." in await page.inner_text("[role=status]")
        assert "version 2" in await page.inner_text("h1")
        assert "two things at once" in await page.inner_text("[data-question=why_low]")
        assert "How easy was it to pay?" in await page.inner_text("[data-question=ease]")
        assert await fits(page)
        await page.screenshot(path=gallery / f"survey-edited-{size}.png", full_page=True)
        # The survey page responses serves (the kiosk's) asks the new version: four questions, the new wording.
        await page.goto(apps.responses + urlsplit(survey["kiosk_url"]).path)
        assert "Your visit" in await page.inner_text("body")
        await page.get_by_text("3", exact=True).click()  # a tap on a score answers and moves on
        why = page.locator(".q[data-id=why_low]")
        await why.wait_for()
        assert "How fast and friendly was the checkout?" in await why.inner_text()
        assert "How easy was it to pay?" in await page.content()  # the new question, further on
        # An edit that makes the survey invalid: the field's error beside it, nothing stored.
        await page.goto(f"{apps.console}/surveys/{survey['id']}/edit")
        assert "version 3" in await page.inner_text("h1")
        await page.fill(f"#q{ADDED}-id", "Ease of paying")
        answer_status: list[int] = []
        page.on("response", lambda r: answer_status.append(r.status) if r.request.method == "POST" else None)
        await page.click("button[value=save]")
        await page.wait_for_selector(f"#q{ADDED}-id-error")
        assert answer_status[-1] == 422
        assert "not a slug" in await page.inner_text(f"#q{ADDED}-id-error")
        assert await page.get_attribute(f"#q{ADDED}-id", "aria-invalid") == "true"
        assert await page.input_value(f"#q{ADDED}-id") == "Ease of paying"
        assert "Nothing was saved" in await page.inner_text("[role=alert]")
        assert await fits(page)
        await page.screenshot(path=gallery / f"survey-edit-refused-{size}.png", full_page=True)
        # Chromium logs the refused edit's 422 and nothing else.
        assert [p for p in problems if "422" not in p] == [] and len(problems) == 1, problems
        problems.clear()
    stored = await current(apps.responses, auth, survey["id"])
    assert stored["version"] == 2
    questions = {q["id"]: q for q in stored["questions"]}
    assert list(questions) == ["nps", "why_low", "why_high", "consent", "agent", "paid_by", "ease"]
    assert questions["why_low"]["text"] == {
        "en": "How fast and friendly was the checkout?",
        "nl": "Wat kunnen we beter doen?",
    }
    assert questions["ease"]["type"] == "ces" and questions["agent"]["type"] == "hidden"
    # What the editor does not show was kept: options, the title, thank-you texts and outcomes.
    assert questions["paid_by"]["options"] == PAID_BY["options"]
    for key in ("title", "thank_you_text"):
        assert stored[key] == SAVED[key], key
    assert stored["outcomes"][0]["link_url"] == SAVED["outcomes"][0]["link_url"]
    assert [(c["question"], c["max"]) for c in questions["why_low"]["show_if"]] == [("nps", 6)]


async def save_sms(page: Any) -> str:
    """Press the SMS form's save button; return the page it leads to (back to the form)."""
    async with page.expect_navigation(url="**/settings?done=*#sms-channel"):
        await page.click("text=Save SMS settings")
    return str(await page.content())


def phone() -> str:
    return "+1415" + str(secrets.randbelow(10_000_000)).zfill(7)


@pytest.mark.parametrize("size", list(WIDTHS))
async def test_an_admin_sets_the_sms_provider_in_settings_and_an_invitation_goes_through_it(
    apps, chromium, workspace, auth, broker, producer, gallery, size
):
    made = await make_workspace(apps.console, workspace, "Olga Owner")
    admin, viewer = f"ada-{workspace}@example.com", f"vic-{workspace}@example.com"
    for email, role, name in ((admin, "admin", "Ada Admin"), (viewer, "viewer", "Vic Viewer")):
        await invite_member(apps.console, broker.bootstrap_servers, made, email=email, role=role, name=name)
    async with FakeProvider() as provider:
        async with signed_in(chromium, apps.console, admin, PASSWORD, size) as (page, _):
            pages: list[str] = []
            await page.goto(f"{apps.console}/settings")
            assert "Not set." in await page.inner_text("#sms-channel")
            await page.fill("#sms-base_url", provider.url)
            await page.fill("#sms-account_sid", provider.account_sid)
            await page.fill("#sms-auth_token", provider.auth_token)
            await page.fill("#sms-from", "12")
            pages.append(await save_sms(page))
            assert "E.164" in await page.inner_text("#sms-from-error")
            assert await page.get_attribute("#sms-from", "aria-invalid") == "true"
            # What was typed is back in the form, but the auth token never is.
            assert await page.input_value("#sms-account_sid") == provider.account_sid
            assert await page.input_value("#sms-from") == "12"
            assert await page.input_value("#sms-auth_token") == ""
            await page.screenshot(path=gallery / f"settings-sms-refused-{size}.png", full_page=True)
            await page.fill("#sms-auth_token", provider.auth_token)
            await page.fill("#sms-from", "+15005550006")
            pages.append(await save_sms(page))
            assert "SMS settings saved." in await page.inner_text("[role=status]")
            assert "Set; never shown" in await page.inner_text("#sms-auth_token-state")
            assert await page.input_value("#sms-auth_token") == ""
            assert await page.input_value("#sms-account_sid") == provider.account_sid
            assert await fits(page)
            await page.locator("#sms-channel").scroll_into_view_if_needed()
            await page.screenshot(path=gallery / f"settings-sms-{size}.png", full_page=True)
            # Changing the channel without its secret would drop it: the page asks for it again.
            await page.fill("#sms-rate_per_minute", "30")
            pages.append(await save_sms(page))
            assert "Type the auth token again" in await page.inner_text("#sms-auth_token-error")
            assert await page.input_value("#sms-rate_per_minute") == "30"

            number = phone()
            request = SurveyRequested(
                workspace_id=workspace,
                request_id=new_id(),
                contact_id="con-sms",
                survey_id="svy-sms",
                recipient=Recipient(locale="en", name="Ada", phone=number),
                channel="sms",
            )
            await publish(producer, request)
            [sms] = await wait_until(lambda: provider.sent_to(number), message="the SMS reached the provider")
            assert sms.account_sid == provider.account_sid and sms.form["From"] == "+15005550006"
            assert "/l/" in sms.body
            async with httpx.AsyncClient(base_url=apps.dispatch, timeout=20) as dispatch:
                [channel] = [
                    c
                    for c in (await dispatch.get("/v1/channels", headers=auth)).json()
                    if c["channel"] == "sms"
                ]
            assert channel["config"].get("rate_per_minute") is None  # the refused change changed nothing

            async with page.expect_navigation(url="**/settings?done=*#sms-channel"):
                await page.click("button[aria-label='Remove the SMS settings']")
            pages.append(await page.content())
            assert "SMS uses the deployment's settings again." in await page.inner_text("[role=status]")
            assert await page.locator("button[aria-label='Remove the SMS settings']").count() == 0
            for path in ("/", "/surveys", "/automation"):
                await page.goto(f"{apps.console}{path}")
                pages.append(await page.content())
            assert pages and all(provider.auth_token not in html for html in pages)
        assert provider.violations == []
    async with httpx.AsyncClient(base_url=apps.dispatch, timeout=20) as dispatch:
        channels = (await dispatch.get("/v1/channels", headers=auth)).json()
    assert next(c for c in channels if c["channel"] == "sms")["config"] == {}
    async with signed_in(chromium, apps.console, viewer, PASSWORD, size) as (page, problems):
        answer = await page.goto(f"{apps.console}/settings")
        assert answer is not None and answer.status == 403
        problems.clear()  # Chromium logs the refused page's 403
        assert await page.locator("#sms-channel").count() == 0
        refused = await page.request.post(
            f"{apps.console}/settings/channels/sms", form={"from": "+15005550006"}, max_redirects=0
        )
        assert refused.status == 403 and "channels:write" in await refused.text()
