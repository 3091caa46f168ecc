"""The whole loop through public HTTP APIs only: five service processes, the real broker,
real PostgreSQL and a real SMTP server."""

from __future__ import annotations

import re
from email.message import EmailMessage

import httpx
import pytest

from closeloop.demo import AGENT, STAFF_EMAIL, DemoWorkspace, demo_event, send_signed
from closeloop.mailcatcher import MailCatcher, body_of, recipient
from tests.support.access import person_auth
from tests.support.stack import wait_until

pytestmark = pytest.mark.e2e

SHORT_LINK = re.compile(r"https?://[^\s\"'<>?]+/l/[A-Za-z0-9_\-]+")


async def survey_link(http: httpx.AsyncClient, message: EmailMessage) -> str:
    """Return the survey page an invitation leads to: its short link (the same in the text and the
    HTML part, and nothing about the customer in it) redirects there."""
    text_links = SHORT_LINK.findall(body_of(message, "plain"))
    html_links = SHORT_LINK.findall(body_of(message, "html"))
    assert text_links and text_links[0] in html_links, "the link is in both the text and the HTML part"
    redirect = await http.get(text_links[0], follow_redirects=False)
    assert redirect.status_code in (302, 303, 307), redirect.text
    return redirect.headers["location"]


async def json_of(client: httpx.AsyncClient, url: str, auth: dict[str, str]) -> object:
    response = await client.get(url, headers=auth)
    response.raise_for_status()
    return response.json()


async def known_json_of(client: httpx.AsyncClient, url: str, auth: dict[str, str]) -> object:
    """Return the JSON body, or None while the resource is not there yet (404)."""
    response = await client.get(url, headers=auth)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()


async def test_webhook_to_won_back_customer(demo: DemoWorkspace, urls: dict[str, str], smtp: MailCatcher):
    email = f"ada.{demo.workspace_id}@example.com"
    event = demo_event(external_id="cus_ada", email=email, name="Ada Lovelace")

    # 1. The helpdesk posts a signed webhook — twice, as webhook senders do.
    with httpx.Client(timeout=10) as sync_http:
        first = send_signed(sync_http, demo, event, msg_id=f"msg_{demo.workspace_id}")
        again = send_signed(sync_http, demo, event, msg_id=f"msg_{demo.workspace_id}")
    assert first.status_code == 202 and first.json()["status"] == "accepted"
    assert again.status_code == 202 and again.json()["status"] == "duplicate"

    # 2. The invitation arrives by email, personalised, with a survey link.
    invitation = await smtp.wait_for(lambda m: recipient(m) == email)
    assert "Ada" in invitation["Subject"]
    async with httpx.AsyncClient(timeout=10) as http:
        link = await survey_link(http, invitation)
        # 3. The customer follows the link and answers 3, yes you may contact me.
        page = await http.get(link)
        assert page.status_code == 200 and "recommend" in page.text
        answered = await http.post(
            link,
            data={"nps": "3", "why": "It took a week to solve.", "consent": "yes"},
            follow_redirects=True,
        )
        assert answered.status_code == 200, answered.text

        # 4. The survey's NPS is −100 (one detractor), with n and a margin of error. Until its first
        # answer is scored (or responses publishes the survey) scoring does not know it: 404.
        nps_url = f"{urls['scoring']}/v1/surveys/{demo.survey_id}/nps"
        nps = await wait_until(
            lambda: _when(known_json_of(http, nps_url, demo.auth), lambda s: s is not None and s["n"] == 1),
            timeout_s=30,
            message="the response is scored",
        )
        assert nps["nps"] == -100 and nps["detractors"] == 1 and nps["margin_of_error"] is not None

        # 5. A follow-up case is open for the detractor who consented, routed to the demo's team.
        cases_url = f"{urls['followup']}/v1/cases"
        cases = await wait_until(
            lambda: _when(json_of(http, cases_url, demo.auth), lambda page: len(page["items"]) == 1),
            timeout_s=30,
            message="a follow-up case opens",
        )
        case = cases["items"][0]
        assert case["status"] == "open" and [a["score"] for a in case["answers"]] == [3]
        assert (case["assignee"], case["team_id"]) == (AGENT["id"], demo.team_id)
        assert case["comment"] == "It took a week to solve." and case["sla"]["first_contact_due_at"]
        # The workspace's staff and the agent hear about it by email (followup → NotificationRequested → dispatch).
        notice = await smtp.wait_for(
            lambda m: recipient(m) == STAFF_EMAIL and case["id"] in body_of(m, "plain")
        )
        assert "It took a week to solve." in body_of(notice, "plain")
        await smtp.wait_for(lambda m: recipient(m) == AGENT["email"] and case["id"] in body_of(m, "plain"))

        # 6. The agent calls the customer and resolves the case with a root cause; the retention
        # survey goes out to the same customer.
        case_url = f"{cases_url}/{case['id']}"
        # Grace works it through the console: a user token for her, role agent (her id is her agent id).
        agent = person_auth(demo.workspace_id, "agent", user_id=AGENT["id"], name=AGENT["name"])
        contacted = await http.post(f"{case_url}/status", json={"status": "in_progress"}, headers=agent)
        assert contacted.status_code == 200, contacted.text
        resolve = await http.post(
            f"{case_url}/resolve",
            json={
                "root_cause": {"category": "Service", "cause": "Slow"},
                "action_taken": "Called Ada and refunded the shipping.",
            },
            headers=agent,
        )
        assert resolve.status_code == 200, resolve.text
        assert resolve.json()["retention"]["status"] == "requested"
        retention = await smtp.wait_for(
            lambda m: recipient(m) == email and m["Message-ID"] != invitation["Message-ID"]
        )
        retention_link = await survey_link(http, retention)
        assert retention_link != link

        # 7. The customer answers the retention survey; the case shows they were won back.
        answered = await http.post(retention_link, data={"solved": "5"}, follow_redirects=True)
        assert answered.status_code == 200, answered.text
        closed = await wait_until(
            lambda: _when(json_of(http, case_url, demo.auth), lambda c: c["status"] == "closed"),
            timeout_s=30,
            message="the retention outcome is recorded",
        )
        assert closed["retention"]["won_back"] is True and closed["retention"]["score"] == 5
        resolved_by = [h["actor"] for h in closed["history"] if h["kind"] == "resolved"]
        assert resolved_by == [f"{AGENT['name']} (user:{AGENT['id']})"]
        report = await json_of(http, f"{urls['followup']}/v1/metrics", demo.auth)
        assert report["groups"][0]["won_back"] == 1 and report["groups"][0]["won_back_rate"] == 1.0

        # One invitation per survey request: the duplicate webhook created nothing.
        invitations = await json_of(http, f"{urls['dispatch']}/v1/invitations", demo.auth)
        assert sorted(i["kind"] for i in invitations) == ["retention", "transactional"]


async def _when(pending, accept):
    value = await pending
    return value if accept(value) else None
