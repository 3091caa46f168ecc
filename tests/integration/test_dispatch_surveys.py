"""What an invitation says: the survey's own first question in its own scale and words, in the
contact's language; templates' merge fields; the branding and quiet hours their owners send; the
funnel's inferred steps; retention requests from followup.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from aiokafka import AIOKafkaProducer

from closeloop.mailcatcher import MailCatcher, body_of, recipient
from shared.events import (
    BrandingChanged,
    QuietHoursChanged,
    Recipient,
    SurveyRequested,
    new_id,
)
from tests.support.dispatch import Dispatch, published, running_dispatch
from tests.support.stack import wait_until

pytestmark = pytest.mark.integration

SCORE = re.compile(r"https://go\.test/l/[A-Za-z0-9_-]+\?score=(\d+)")
CSAT = {
    "id": "satisfaction",
    "type": "csat",
    "texts": {"en": "How satisfied are you with our support?", "nl": "Hoe tevreden bent u over onze hulp?"},
    "labels": {
        "en": ["Very dissatisfied", "Dissatisfied", "Neutral", "Satisfied", "Very satisfied"],
        "nl": ["Zeer ontevreden", "Ontevreden", "Neutraal", "Tevreden", "Zeer tevreden"],
    },
}
CES = {
    "id": "effort",
    "type": "ces",
    "texts": {"en": "It was easy to get my issue handled."},
    "labels": {"en": ["Strongly disagree", "", "", "", "", "", "Strongly agree"]},
}
STARS = {
    "id": "stars",
    "type": "rating",
    "scale": [1, 5],
    "texts": {"en": "Rate us"},
    "labels": {"en": ["★"] * 5},
}
NLS = {
    "id": "again",
    "type": "nls",
    "texts": {"en": "How likely are you to come back?"},
    "labels": {"en": ["Not at all likely", *[""] * 9, "Extremely likely"]},
}
OPEN = {"id": "why", "type": "open", "texts": {"en": "What could we do better?"}}


@pytest.fixture(scope="module")
async def dispatch(stack_env: dict[str, str], producer: AIOKafkaProducer) -> AsyncIterator[Dispatch]:
    async with running_dispatch(stack_env, producer) as app:
        yield app


@pytest.fixture(autouse=True)
def reset_clock(dispatch: Dispatch) -> Any:
    yield
    dispatch.clock.reset()


def request(workspace: str, survey_id: str, *, locale: str = "en", **fields: Any) -> SurveyRequested:
    who = {k: fields.pop(k) for k in ("name", "email", "phone", "timezone") if k in fields}
    who.setdefault("email", f"{secrets.token_hex(4)}@{workspace}.test")
    return SurveyRequested(
        workspace_id=workspace,
        request_id=new_id(),
        contact_id=fields.pop("contact_id", f"con-{secrets.token_hex(3)}"),
        survey_id=survey_id,
        recipient=Recipient(locale=locale, **who),
        **fields,
    )


async def email_for(dispatch: Dispatch, smtp: MailCatcher, req: SurveyRequested) -> tuple[str, str]:
    assert req.recipient is not None
    address = req.recipient.email
    message = await smtp.wait_for(lambda m: recipient(m) == address)
    return body_of(message, "plain").replace("\r\n", "\n"), body_of(message, "html")


async def survey(
    dispatch: Dispatch, workspace: str, survey_id: str, *questions: dict[str, Any], version: int = 1
) -> None:
    await dispatch.publish(published(workspace, survey_id, *questions, version=version))
    await dispatch.knows_survey(workspace, survey_id, version)


async def test_the_email_embeds_the_surveys_own_first_question_lowest_first(dispatch, workspace, smtp):
    for survey_id, question in (("csat", CSAT), ("ces", CES), ("stars", STARS), ("nls", NLS), ("open", OPEN)):
        await survey(dispatch, workspace, survey_id, question)
    requests = {s: request(workspace, s) for s in ("csat", "ces", "stars", "nls", "open", "unknown")}
    for req in requests.values():
        await dispatch.publish(req)
    emails = {s: await email_for(dispatch, smtp, req) for s, req in requests.items()}

    text, html = emails["csat"]
    assert [int(n) for n in SCORE.findall(html)] == [1, 2, 3, 4, 5], "CSAT 1–5, lowest first, left to right"
    assert [int(n) for n in SCORE.findall(text)] == [1, 2, 3, 4, 5]
    assert (
        "How satisfied are you with our support?" in text
        and "How satisfied are you with our support?" in html
    )
    buttons = re.findall(r'\?score=\d+" title="[^"]*" style="[^"]*">([^<]+)</a>', html)
    assert buttons == CSAT["labels"]["en"], "the page's own labels, in the page's order"  # type: ignore[index]
    assert "1 (Very dissatisfied): https://go.test/l/" in text

    text, html = emails["ces"]
    assert [int(n) for n in SCORE.findall(html)] == list(range(1, 8))
    assert "1 = Strongly disagree · 7 = Strongly agree" in html and "7 (Strongly agree):" in text
    _, html = emails["stars"]
    assert [int(n) for n in SCORE.findall(html)] == [1, 2, 3, 4, 5] and html.count(">★</a>") == 5
    text, html = emails["nls"]
    assert [int(n) for n in SCORE.findall(html)] == list(
        range(11)
    ) and "How likely are you to come back?" in text
    for survey_id in ("open", "unknown"):  # nothing one click can answer: the email only links
        text, html = emails[survey_id]
        assert "?score=" not in text + html and "https://go.test/l/" in text


async def test_a_dutch_contact_gets_dutch_words_and_a_newer_version_wins(dispatch, workspace, smtp):
    await survey(dispatch, workspace, "svy", OPEN)
    await survey(dispatch, workspace, "svy", CSAT, version=2)
    req = request(workspace, "svy", locale="nl-BE", name="Anke de Vries")
    await dispatch.publish(req)
    text, html = await email_for(dispatch, smtp, req)
    assert text.startswith("Hallo Anke,\n") and "Hallo Anke," in html and "Hi " not in text
    assert "Hoe tevreden bent u over onze hulp?" in text
    assert "1 (Zeer ontevreden):" in text and ">Zeer tevreden</a>" in html
    assert "Geef feedback" in html and "Deze link is persoonlijk en werkt 30 dagen." in text
    assert "Afmelden: https://go.test/u/" in text and ">Afmelden</a>" in html
    assert "Unsubscribe" not in text + html and '<html lang="nl">' in html


async def test_the_validity_sentence_is_the_links_lifetime(dispatch, workspace, auth, smtp):
    """A 30-day link says 30 days (not 29), a 14-day one 14 — the lifetime counted, never written in."""
    thirty = request(workspace, "any")
    await dispatch.publish(thirty)
    text, _ = await email_for(dispatch, smtp, thirty)
    assert "This link is personal and works for 30 days." in text
    assert (
        await dispatch.client.put("/v1/settings", json={"link_ttl_days": 14}, headers=auth)
    ).status_code == 200
    fourteen = request(workspace, "any")
    await dispatch.publish(fourteen)
    text, html = await email_for(dispatch, smtp, fourteen)
    assert "works for 14 days." in text and "works for 14 days." in html


async def test_the_embed_merge_field_is_html_and_odd_merge_fields_warn(dispatch, workspace, auth, smtp):
    await survey(dispatch, workspace, "svy-t", CSAT)
    template = {
        "name": "Own words",
        "channel": "email",
        "survey_id": "svy-t",
        "text": "{{ greeting }}\n{{ embed }}\n{{ survey_url }}\n",
        "html": "<p>{{ greeting }}</p>{{ embed }}<p>{{ validity }}</p>",
    }
    created = await dispatch.client.post("/v1/templates", json=template, headers=auth)
    assert created.status_code == 201 and created.json()["warnings"] == [], created.text
    req = request(workspace, "svy-t", name="Ada")
    await dispatch.publish(req)
    text, html = await email_for(dispatch, smtp, req)
    assert "{'" not in html and "&#39;question&#39;" not in html and "{'" not in text
    buttons = re.findall(r'<a href="https://go\.test/l/[A-Za-z0-9_-]+\?score=(\d+)" title=', html)
    assert buttons == ["1", "2", "3", "4", "5"], (
        "the embed merge field is the question's HTML, buttons and all"
    )
    assert "How satisfied are you with our support?\n  1 (Very dissatisfied): https://go.test/l/" in text

    odd = {
        "name": "Typos",
        "channel": "email",
        "subject": "{{ frist_name }}, {{ score_links }}",
        "text": "{{ greeting }} {{ survey_link }}",
    }
    saved = await dispatch.client.post("/v1/templates", json=odd, headers=auth)
    assert saved.status_code == 201, saved.text
    warnings = {
        (w["field"], re.search(r"\{\{ (\w+) \}\}", w["message"])[1]) for w in saved.json()["warnings"]
    }  # type: ignore[index]
    assert warnings == {("subject", "frist_name"), ("subject", "score_links"), ("text", "survey_link")}
    sms = {"name": "SMS", "channel": "sms", "text": "{{ greeting }} {{ embed }} {{ short_url }}"}
    assert [
        w["field"]
        for w in (await dispatch.client.post("/v1/templates", json=sms, headers=auth)).json()["warnings"]
    ] == ["text"]
    read = await dispatch.client.get(f"/v1/templates/{saved.json()['id']}", headers=auth)
    assert len(read.json()["warnings"]) == 3
    own_scale = dict(template, survey_id="other", embed={"low": 0, "high": 10})
    refused = await dispatch.client.post("/v1/templates", json=own_scale, headers=auth)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "embed"


async def test_branding_and_quiet_hours_from_their_owners_win(dispatch, workspace, auth, smtp):
    client = dispatch.client
    own = {"branding": {"name": "Own Name", "colour": "#111111"}, "quiet_hours": None}
    answer = await client.put("/v1/settings", json=own, headers=auth)
    assert answer.headers["deprecation"] == "true" and 'rel="successor-version"' in answer.headers["link"]
    assert "/v1/branding>" in answer.headers["link"] and "/v1/settings>" in answer.headers["link"]
    now = datetime.now(UTC)
    await dispatch.publish(
        BrandingChanged(
            workspace_id=workspace,
            name="Owner Co",
            primary_color="#0f766e",
            logo_url="https://cdn.owner.example/logo.png",
            footer="Owner Co Ltd, 1 Main Street",
            changed_at=now,
        )
    )
    stale = BrandingChanged(workspace_id=workspace, name="Stale Co", changed_at=now - timedelta(hours=1))
    await dispatch.publish(stale)
    tz = "Asia/Tokyo"
    local = now.astimezone(ZoneInfo(tz))
    window = {
        "start": (local - timedelta(hours=1)).strftime("%H:%M"),
        "end": (local + timedelta(hours=2)).strftime("%H:%M"),
    }
    await dispatch.publish(
        QuietHoursChanged(workspace_id=workspace, **window, default_timezone=tz, changed_at=now)
    )

    async def applied() -> dict[str, Any] | None:
        settings = (await client.get("/v1/settings", headers=auth)).json()
        return settings if settings["branding"]["name"] == "Owner Co" and settings["quiet_hours"] else None

    settings = await wait_until(applied, message="the owners' settings applied")
    assert settings["quiet_hours"]["start"] == window["start"] and settings["branding"]["colour"] == "#0f766e"

    held = request(workspace, "any", name="Ada")  # no time zone: the owner's default, Tokyo, in quiet hours
    await dispatch.publish(held)
    await dispatch.invitation(auth, held.request_id, status="scheduled")
    await dispatch.publish(QuietHoursChanged(workspace_id=workspace, changed_at=now + timedelta(seconds=1)))
    dispatch.clock.advance(timedelta(seconds=2))  # the owner says: no quiet hours any more
    dispatch.wake()

    async def released() -> bool:
        dispatch.wake()
        return (await dispatch.invitation(auth, held.request_id))["status"] == "sent"

    await wait_until(released, message="sent once the owner lifted quiet hours")
    text, html = await email_for(dispatch, smtp, held)
    assert 'src="https://cdn.owner.example/logo.png"' in html and 'alt="Owner Co"' in html
    assert "#0f766e" in html and "#111111" not in html and "Own Name" not in html
    assert "Owner Co Ltd, 1 Main Street" in text and "Stale Co" not in html


async def test_reminders_keep_the_owners_quiet_hours(dispatch, workspace, auth, smtp):
    assert (
        await dispatch.client.put(
            "/v1/settings", json={"reminders": {"count": 1, "interval_days": 1}}, headers=auth
        )
    ).status_code == 200
    req = request(workspace, "any", timezone="Asia/Tokyo")
    await dispatch.publish(req)
    invitation = await dispatch.invitation(auth, req.request_id, status="sent")
    local = datetime.now(UTC).astimezone(ZoneInfo("Asia/Tokyo"))
    start, end = local - timedelta(hours=1), local + timedelta(hours=2)
    await dispatch.publish(
        QuietHoursChanged(
            workspace_id=workspace,
            start=start.strftime("%H:%M"),
            end=end.strftime("%H:%M"),
            changed_at=datetime.now(UTC),
        )
    )

    async def quiet_known() -> bool:
        return bool((await dispatch.client.get("/v1/settings", headers=auth)).json()["quiet_hours"])

    await wait_until(quiet_known, message="trigger's quiet hours applied")
    dispatch.clock.advance(timedelta(days=1, minutes=1))  # the reminder is due, inside tomorrow's quiet hours

    async def held() -> Any:
        dispatch.wake()
        rows = (
            await dispatch.client.get(f"/v1/invitations/{invitation['id']}/reminders", headers=auth)
        ).json()
        return (
            rows
            if rows and datetime.fromisoformat(rows[0]["next_attempt_at"]) > dispatch.clock.now()
            else None
        )

    [reminder] = await wait_until(held, message="the reminder waits for the quiet hours to end")
    assert reminder["status"] == "scheduled" and reminder["sent_at"] is None
    assert datetime.fromisoformat(reminder["next_attempt_at"]).astimezone(ZoneInfo("Asia/Tokyo")).strftime(
        "%H:%M"
    ) == end.strftime("%H:%M")


async def test_steps_nobody_reported_are_shown_as_inferred(dispatch, workspace, auth, smtp):
    req = request(workspace, "svy-f")
    await dispatch.publish(req)
    invitation = await dispatch.invitation(auth, req.request_id, status="sent")
    clicked = await dispatch.client.get(urlsplit(invitation["short_url"]).path)
    assert clicked.status_code == 302
    shown = (await dispatch.client.get(f"/v1/invitations/{invitation['id']}", headers=auth)).json()["funnel"]
    assert shown["invited"] == {"reached": True, "at": shown["invited"]["at"], "inferred": False}
    assert shown["delivered"] == {"reached": True, "at": None, "inferred": True}, "no provider reported it"
    assert shown["opened"]["inferred"] and not shown["clicked"]["inferred"] and shown["clicked"]["at"]
    assert shown["started"] == {"reached": False, "at": None, "inferred": False}
    [row] = (await dispatch.client.get("/v1/funnel", params={"survey_id": "svy-f"}, headers=auth)).json()
    assert (
        row["counts"]["delivered"] == 1
        and row["observed"]["delivered"] == 0
        and row["inferred"]["delivered"] == 1
    )
    assert row["observed"]["clicked"] == 1 and row["inferred"]["clicked"] == 0


async def test_retention_requests_bring_their_own_recipient_fallbacks_and_locale(dispatch, workspace, auth):
    number = "+1415555" + str(secrets.randbelow(10_000)).zfill(4)
    retention = SurveyRequested(
        workspace_id=workspace,
        request_id=new_id(),
        contact_id="con-r",
        survey_id="svy-retention",
        kind="retention",
        reason="followup:case-1",
        recipient=Recipient(name="Anke", phone=number),
        fallback_channels=("sms",),
        locale="nl",
    )
    await dispatch.publish(retention)
    invitation = await dispatch.invitation(auth, retention.request_id, status="sent", channel="sms")
    assert invitation["locale"] == "nl"
    [sms] = dispatch.provider.sent_to(number)
    assert sms.body.startswith("Hallo Anke, hebben we het voor u opgelost? https://go.test/l/")

    unreachable = SurveyRequested(
        workspace_id=workspace,
        request_id=new_id(),
        contact_id="con-never",
        survey_id="svy-retention",
        kind="retention",
    )
    await dispatch.publish(unreachable)
    failed = await dispatch.invitation(auth, unreachable.request_id, status="failed")
    [event] = await dispatch.events(failed["id"], "InvitationFailed")
    assert event["kind"] == "retention" and "no email address" in event["error"]
    assert dispatch.runtime.deps.cache.cached(workspace) is not None, "the consumer reads through the cache"
