"""Pure rules of the dispatch service and the email they produce."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.dispatch import domain
from services.dispatch.emails import compose_invitation
from shared.events import Recipient

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "kind, name, expected",
    [
        ("transactional", "Ada Lovelace", "Ada, how was your experience with us?"),
        ("transactional", None, "How was your experience with us?"),
        ("transactional", "   ", "How was your experience with us?"),
        ("retention", "Ada", "Ada, did we solve it for you?"),
        ("retention", "", "Did we solve it for you?"),
        ("relationship", "Grace\nHopper", "Grace, how are we doing?"),
    ],
)
def test_subject_addresses_the_contact_by_first_name_or_not_at_all(kind, name, expected):
    assert domain.subject(kind, name) == expected


@pytest.mark.parametrize("name, expected", [("Ada Lovelace", "Hi Ada,"), (None, "Hi,"), (" \t", "Hi,")])
def test_greeting_falls_back_without_a_name(name, expected):
    assert domain.greeting(name) == expected


def test_retry_delay_doubles_from_the_base_and_is_capped():
    assert [domain.retry_delay_s(n, base_s=30) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert domain.retry_delay_s(20, base_s=30) == domain.MAX_RETRY_DELAY_S


def test_a_failed_send_gives_up_on_the_last_attempt_or_a_permanent_error():
    assert not domain.gives_up(4, max_attempts=5)
    assert domain.gives_up(5, max_attempts=5)
    assert domain.gives_up(1, max_attempts=5, permanent=True)
    assert domain.is_permanent_smtp_code(550) and not domain.is_permanent_smtp_code(451)
    assert not domain.is_permanent_smtp_code(None)


def test_recipient_is_the_requested_one_else_the_previous_one():
    requested, previous = Recipient(email="new@example.com"), Recipient(email="old@example.com", name="Ada")
    assert domain.choose_recipient(requested, previous) == requested
    assert domain.choose_recipient(None, previous) == previous
    assert domain.choose_recipient(None, None) is None


def test_undeliverable_reason_names_what_is_missing():
    assert domain.undeliverable_reason("email", Recipient(email="ada@example.com")) is None
    assert domain.undeliverable_reason("link", None) is None
    assert "no email address" in (domain.undeliverable_reason("email", None) or "")
    assert "no email address" in (domain.undeliverable_reason("email", Recipient(name="Ada")) or "")
    assert (
        domain.undeliverable_reason("sms", Recipient(phone="+4912345678")) == "channel sms not configured yet"
    )


def test_link_lives_from_the_send_time_and_due_defaults_to_now():
    assert domain.link_ttl_s(30, send_at=NOW, now=NOW) == 30 * 86400
    assert domain.link_ttl_s(30, send_at=NOW + timedelta(days=2), now=NOW) == 32 * 86400
    assert domain.due_at(None, NOW) == NOW
    assert domain.due_at(NOW + timedelta(hours=1), NOW) == NOW + timedelta(hours=1)


def test_message_id_and_survey_url():
    assert domain.message_id("abc", "closeloop <surveys@acme.test>") == "<invitation.abc@acme.test>"
    assert domain.message_id("abc", "not an address") == "<invitation.abc@closeloop.localhost>"
    assert domain.survey_url("https://s.acme.test/", "tok.sig") == "https://s.acme.test/s/tok.sig"


def test_email_has_text_and_html_with_one_link_and_an_escaped_name():
    message = compose_invitation(
        to_email="ada@example.com",
        to_name="<b>Ada</b> & co",
        kind="transactional",
        survey_url="https://s.acme.test/s/tok.sig",
        message_id="<invitation.1@acme.test>",
        mail_from="Acme <surveys@acme.test>",
        ttl_days=30,
    )
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert message.get_content_type() == "multipart/alternative"
    assert message["Subject"] == "<b>Ada</b>, how was your experience with us?"
    assert message["Message-ID"] == "<invitation.1@acme.test>"
    assert message["List-Unsubscribe"] == "<mailto:surveys@acme.test?subject=unsubscribe>"
    assert text.startswith("Hi <b>Ada</b>,") and "https://s.acme.test/s/tok.sig" in text
    assert "Hi &lt;b&gt;Ada&lt;/b&gt;," in html and "<b>Ada</b>" not in html
    assert html.count('href="https://s.acme.test/s/tok.sig"') == 2  # the button and its fallback
    assert "http" not in html.replace("https://s.acme.test/s/tok.sig", "")  # nothing loaded from elsewhere


def test_email_without_a_name_has_no_dangling_comma():
    message = compose_invitation(
        to_email="ada@example.com",
        to_name=None,
        kind="retention",
        survey_url="https://s/s/t",
        message_id="<m@x>",
        mail_from="surveys@x.test",
        ttl_days=30,
    )
    assert message["Subject"] == "Did we solve it for you?"
    assert message["To"] == "ada@example.com"
    assert message.get_body(("plain",)).get_content().startswith("Hi,\n")
