"""Pure rules of the dispatch service and the email they produce."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import re
from datetime import UTC, datetime, time, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest

from services.dispatch import domain, embeds, template_checks, templates
from services.dispatch.emails import InvitationEmail, compose_invitation, invitation_bytes
from shared.events import Recipient
from shared.timezones import zone

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
    assert domain.undeliverable_reason("sms", Recipient(phone="+4915112345678")) is None
    assert "not valid" in (domain.undeliverable_reason("sms", Recipient(phone="12")) or "")
    assert (
        domain.undeliverable_reason("sms", Recipient(phone="+4915112345678"), configured=("email",))
        == "channel sms is not configured for this workspace"
    )
    assert "marked invalid" in (
        domain.undeliverable_reason("email", Recipient(email="Ada@Example.com"), invalid={"ada@example.com"})
        or ""
    )


def test_channel_choice_walks_the_fallbacks_in_order():
    both = Recipient(email="ada@example.com", phone="+4915112345678")
    phone_only = Recipient(phone="0049 151 1234-5678")
    assert domain.choose_channel("email", ("sms",), both) == domain.ChannelChoice("email", ("sms",), None)
    assert domain.choose_channel("email", ("sms", "link"), phone_only) == domain.ChannelChoice(
        "sms", ("link",), None
    )
    assert domain.choose_channel("email", ("sms",), both, invalid={"ada@example.com"}).channel == "sms"
    nothing = domain.choose_channel("email", ("whatsapp",), Recipient(name="Ada"))
    assert nothing.channel == "email" and nothing.fallbacks == ()
    assert "email: no email address" in (nothing.problem or "") and "whatsapp: no phone number" in (
        nothing.problem or ""
    )


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("+49 151 1234 5678", "+4915112345678"),
        ("0049-151-12345678", "+4915112345678"),
        ("(415) 555-0100", None),
        ("+1 (415) 555-0100", "+14155550100"),
        ("", None),
        ("+0123456789", None),
    ],
)
def test_phone_numbers_are_normalised_to_e164(raw, expected):
    assert domain.normalise_phone(raw) == expected


def test_opt_outs_cover_their_channel_or_everything():
    assert domain.is_opted_out({""}, "sms") and domain.is_opted_out({"sms"}, "sms")
    assert not domain.is_opted_out({"email"}, "sms") and not domain.is_opted_out(set(), "email")


@pytest.mark.parametrize(
    "kind, name, context, expected",
    [
        ("transactional", "Ada Lovelace", {"agent": "Grace Hopper"}, "Ada, how did Grace do?"),
        ("transactional", "Ada", {"product": "Acme Cloud"}, "Ada, how was your experience with Acme Cloud?"),
        ("transactional", None, {"agent": " "}, "How was your experience with us?"),
        ("retention", "Ada", {"agent": "Grace"}, "Ada, did we solve it for you?"),
    ],
)
def test_subject_uses_the_agent_or_product_when_known(kind, name, context, expected):
    fields = domain.merge_fields(name=name, context=context, brand_name=None)
    assert domain.subject(kind, name, product=str(fields["product"]), agent=str(fields["agent"])) == expected


@pytest.mark.parametrize(
    "raw, tidied",
    [
        ("Hi ,", "Hi,"),
        ("Hi  Ada !", "Hi Ada!"),
        (", how was it?", "How was it?"),
        ("Thanks ( ) for waiting .", "Thanks for waiting."),
        ("line one\n, and two", "line one\nAnd two"),
        ("https://x.test/a?b=1, ok", "https://x.test/a?b=1, ok"),
    ],
)
def test_tidy_repairs_what_empty_merge_fields_leave(raw, tidied):
    assert domain.tidy(raw) == tidied


def test_score_links_record_the_score_and_keep_the_token():
    assert embeds.score_url("https://go.test/l/abc", 7) == "https://go.test/l/abc?score=7"
    assert embeds.score_url("https://s.test/s/t?x=1", 0) == "https://s.test/s/t?x=1&score=0"


TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.mark.parametrize(
    "utc_time, start, end, expected_local_end",
    [
        ("2026-11-23T13:30", "21:00", "08:00", "2026-11-24T08:00"),  # 22:30 in Tokyo: until 08:00 next day
        ("2026-11-23T16:00", "21:00", "08:00", "2026-11-24T08:00"),  # 01:00 in Tokyo: same morning
        ("2026-11-23T03:00", "21:00", "08:00", None),  # noon in Tokyo
        ("2026-11-23T03:00", "12:00", "14:00", "2026-11-23T14:00"),  # a lunch-time window
        ("2026-11-23T03:00", "09:00", "09:00", None),  # start == end: no quiet hours
    ],
)
def test_quiet_hours_end_in_the_contacts_own_time(utc_time, start, end, expected_local_end):
    at = datetime.fromisoformat(utc_time).replace(tzinfo=UTC)
    until = domain.quiet_until(at, tz=TOKYO, start=domain.parse_hhmm(start), end=domain.parse_hhmm(end))
    if expected_local_end is None:
        assert until is None
    else:
        assert until == datetime.fromisoformat(expected_local_end).replace(tzinfo=TOKYO)


def test_quiet_hours_across_a_daylight_saving_change():
    amsterdam = ZoneInfo("Europe/Amsterdam")
    at = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # 01:30 CET, the night clocks jump 02:00 → 03:00
    until = domain.quiet_until(at, tz=amsterdam, start=time(1, 0), end=time(2, 30))
    assert (
        until is not None and until > at and until.astimezone(UTC) <= datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    )


def test_unknown_timezones_fall_back_and_times_are_checked():
    assert zone("Mars/Olympus", "Europe/Amsterdam") == ZoneInfo("Europe/Amsterdam")
    assert zone(None) == ZoneInfo("UTC")
    for bad in ("25:00", "7:00", "07:60", ""):
        with pytest.raises(ValueError):
            domain.parse_hhmm(bad)


def test_reminders_are_spaced_capped_and_never_after_the_link_expires():
    sent = NOW
    assert domain.next_reminder(
        sent_at=sent, reminders_sent=0, max_reminders=2, interval_days=3, expires_at=None
    ) == (1, NOW + timedelta(days=3))
    assert domain.next_reminder(
        sent_at=sent, reminders_sent=1, max_reminders=2, interval_days=3, expires_at=None
    ) == (2, NOW + timedelta(days=6))
    assert (
        domain.next_reminder(
            sent_at=sent, reminders_sent=2, max_reminders=2, interval_days=3, expires_at=None
        )
        is None
    )
    assert (
        domain.next_reminder(
            sent_at=sent, reminders_sent=0, max_reminders=0, interval_days=3, expires_at=None
        )
        is None
    )
    assert (
        domain.next_reminder(
            sent_at=sent,
            reminders_sent=0,
            max_reminders=1,
            interval_days=3,
            expires_at=NOW + timedelta(days=3),
        )
        is None
    )


def test_rate_limits_parse_and_allow():
    assert domain.parse_rate_limits("sms=60, whatsapp=30") == {"sms": 60, "whatsapp": 30}
    assert domain.parse_rate_limits("") == {}
    for bad in ("sms", "pigeon=3", "sms=0", "sms=x"):
        with pytest.raises(ValueError):
            domain.parse_rate_limits(bad)
    assert domain.rate_allowance(None, 10) is None
    assert domain.rate_allowance(5, 3) == 2 and domain.rate_allowance(5, 9) == 0


def test_backoff_with_jitter_stays_within_half_and_one_and_a_half():
    assert domain.jittered_delay_s(3, base_s=10, jitter=0.0) == 20
    assert domain.jittered_delay_s(3, base_s=10, jitter=0.999) == pytest.approx(59.96)


def test_funnel_is_monotone_and_rates_follow_the_previous_stage():
    assert (
        domain.funnel_stage(
            sent=True, delivered=False, opened=False, clicked=True, started=False, completed=False
        )
        == 4
    )
    assert (
        domain.funnel_stage(
            sent=False, delivered=False, opened=False, clicked=False, started=False, completed=False
        )
        == 0
    )
    counts = {"invited": 10, "delivered": 8, "opened": 4, "clicked": 2, "started": 2, "completed": 0}
    assert domain.funnel_rates(counts) == {
        "delivered": 0.8,
        "opened": 0.5,
        "clicked": 0.5,
        "started": 1.0,
        "completed": 0.0,
    }
    assert domain.funnel_rates({"invited": 0})["delivered"] is None


def test_link_lives_from_the_send_time_and_due_defaults_to_now():
    assert domain.link_ttl_s(30, send_at=NOW, now=NOW) == 30 * 86400
    assert domain.link_ttl_s(30, send_at=NOW + timedelta(days=2), now=NOW) == 32 * 86400
    assert domain.due_at(None, NOW) == NOW
    assert domain.due_at(NOW + timedelta(hours=1), NOW) == NOW + timedelta(hours=1)


def test_message_id_and_survey_url():
    assert domain.message_id("abc", "closeloop <surveys@acme.test>") == "<invitation.abc@acme.test>"
    assert domain.message_id("abc", "not an address") == "<invitation.abc@closeloop.localhost>"
    assert domain.message_id("abc", "s@acme.test", reminder=2) == "<invitation.abc.r2@acme.test>"
    assert domain.bare_message_id(" <invitation.abc@acme.test> ") == "invitation.abc@acme.test"
    assert domain.survey_url("https://s.acme.test/", "tok.sig") == "https://s.acme.test/s/tok.sig"


CSAT = {
    "id": "solved",
    "type": "csat",
    "texts": {"en": "How satisfied are you with the solution?"},
    "labels": {"en": ["Very dissatisfied", "Dissatisfied", "Neutral", "Satisfied", "Very satisfied"]},
}


def render_email(
    name: str | None, kind: str = "transactional", question: dict | None = embeds.SAMPLE_NPS, **kwargs: object
) -> EmailMessage:
    brand = templates.Branding(name="Acme", colour="#0f766e", footer="Acme Ltd, Springfield")
    fields = templates.fields_for(
        channel="email",
        kind=kind,
        name=name,
        context={},
        brand=brand,
        survey_url="https://s.acme.test/s/tok.sig",
        short_url=None,
        unsubscribe_url="https://go.acme.test/u/unsub",
        ttl_days=30,
        locale="en",
        embed=embeds.embedded_question(question, language="en"),
    )
    rendered = templates.render("email", fields, None, **kwargs)  # type: ignore[arg-type]
    return compose_invitation(
        InvitationEmail(
            to_email="ada@example.com",
            to_name=name,
            rendered=rendered,
            message_id="<invitation.1@acme.test>",
            mail_from="Acme <surveys@acme.test>",
            unsubscribe_url="https://go.acme.test/u/unsub",
        )
    )


def test_email_has_text_and_html_with_one_call_to_action_and_an_escaped_name():
    message = render_email("<b>Ada</b> & co")
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert message.get_content_type() == "multipart/alternative"
    assert message["Subject"] == "<b>Ada</b>, how was your experience with us?"
    assert message["Message-ID"] == "<invitation.1@acme.test>"
    assert (
        message["List-Unsubscribe"]
        == "<https://go.acme.test/u/unsub>, <mailto:surveys@acme.test?subject=unsubscribe>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert text.startswith("Hi <b>Ada</b>,") and "https://s.acme.test/s/tok.sig" in text
    assert "Hi &lt;b&gt;Ada&lt;/b&gt;," in html and "<b>Ada</b>" not in html
    assert html.count('href="https://s.acme.test/s/tok.sig"') == 2  # the button and its fallback
    assert [f'href="https://s.acme.test/s/tok.sig?score={n}"' in html for n in range(11)] == [True] * 11
    assert "Unsubscribe: https://go.acme.test/u/unsub" in text and "Acme Ltd, Springfield" in text
    loaded = re.findall(r'src="([^"]+)"', html)
    assert loaded == [], "nothing loaded from elsewhere without a logo or open tracking"


def test_email_with_open_tracking_and_a_retention_scale():
    message = render_email(
        "Ada", kind="retention", question=CSAT, open_pixel_url="https://go.acme.test/o/abc.gif"
    )
    html = message.get_body(("html",)).get_content()
    assert message["Subject"] == "Ada, did we solve it for you?"
    assert re.findall(r'src="([^"]+)"', html) == ["https://go.acme.test/o/abc.gif"]
    assert re.findall(r"\?score=(\d+)", html) == ["1", "2", "3", "4", "5"]
    assert "?score=" not in render_email("Ada", question=None).get_body(("html",)).get_content()


def test_email_without_a_name_has_no_dangling_comma():
    message = render_email(None, kind="retention")
    assert message["Subject"] == "Did we solve it for you?"
    assert message["To"] == "ada@example.com"
    assert message.get_body(("plain",)).get_content().startswith("Hi,\n")


def test_workspace_templates_are_sandboxed_and_validated():
    spec = templates.TemplateSpec(
        None, None, "{{ greeting }} {{ ''.__class__.__mro__ }}{{ missing.deeper }}!", None
    )
    fields = templates.fields_for(
        channel="sms",
        kind="transactional",
        name=None,
        context={},
        brand=templates.Branding(),
        survey_url="https://s/s/t",
        short_url="https://go/l/x",
        unsubscribe_url=None,
        ttl_days=30,
        locale=None,
        embed=None,
    )
    assert templates.render("sms", fields, spec).text == "Hi,!"
    with pytest.raises(templates.TemplateProblem) as problem:
        template_checks.validate("email", subject="{{ first_name", text="x", html=None)
    assert problem.value.field == "subject"
    assert (
        template_checks.validate("sms", subject=None, text="{{ greeting }} {{ short_url }}", html=None) == []
    )


def _email_html(question: dict) -> str:
    from services.dispatch import embeds, templates

    embed = embeds.embedded_question(question, language="en", languages=["en"])
    fields = templates.fields_for(
        channel="email",
        kind="transactional",
        name="Ada Lovelace",
        context={},
        brand=templates.Branding(name="Acme"),
        survey_url="https://s.example/l/abc",
        short_url=None,
        unsubscribe_url=None,
        ttl_days=30,
        locale="en",
        language="en",
        embed=embed,
    )
    html = templates.render("email", fields, None).html
    assert html is not None
    return html


def test_the_email_fits_a_phone_worded_options_are_a_column_and_numbers_a_row():
    nps = {"id": "nps", "type": "nps", "texts": {"en": "Recommend us?"}}
    words = ["Very dissatisfied", "Dissatisfied", "Neutral", "Satisfied", "Very satisfied"]
    csat = {"id": "csat", "type": "csat", "texts": {"en": "Satisfied?"}, "labels": {"en": words}}
    nps_html, csat_html = _email_html(nps), _email_html(csat)
    # No fixed-width layout: the card and the option row take the phone's width.
    assert 'width="560"' not in nps_html and "max-width:560px" in nps_html
    nps_row = re.search(r"<tr>\s*(<td width=.*?)</tr>", nps_html, re.S)
    assert nps_row and nps_row.group(1).count("<td") == 11  # 0..10 in one row, lowest first
    assert [int(n) for n in re.findall(r">(\d+)</a>", nps_row.group(1))] == list(range(11))
    rows = re.findall(r"<tr><td[^>]*><a [^>]*>([^<]+)</a></td></tr>", csat_html)
    assert rows == words  # one option a row, lowest first, words whole


@pytest.mark.parametrize(
    "name, subject",
    [
        ("Ada Lovelace", "Ada, how was your experience with us?"),
        ("Jürgen Groß", "Jürgen, hoe was uw ervaring met ons? " + "lang " * 20),  # encoded, folded
        ('Dr. "Who" <admin@evil.test>, Bob', "A subject with a comma, and <brackets>"),
        (None, "x" * 300),  # one long ASCII line
    ],
)
def test_invitation_bytes_read_back_as_the_message_they_were_built_from(name, subject):
    rendered = templates.Rendered(
        subject, "Hallo Jürgen,\n\n.a line with a dot\nhttps://s.test/" + "a" * 120, "<p>é</p>"
    )
    raw = invitation_bytes(
        InvitationEmail(
            to_email="ada@example.com",
            to_name=name,
            rendered=rendered,
            message_id="<invitation.1@acme.test>",
            mail_from="Acme Surveys <surveys@acme.test>",
            unsubscribe_url="https://go.acme.test/u/" + "t" * 90,
            reply_to="Help Desk <help@acme.test>",
            traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
    )
    assert raw.isascii() and b"\n" not in raw.replace(b"\r\n", b"")  # 7-bit clean, CRLF lines only
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert [part.defects for part in message.walk()] == [[], [], []]
    assert message["Subject"] == subject
    to = message["To"].addresses
    assert len(to) == 1 and to[0].addr_spec == "ada@example.com"
    assert to[0].display_name == domain.clean_name(name) or (name is None and to[0].display_name == "")
    assert message["From"].addresses[0].addr_spec == "surveys@acme.test"
    assert message["Reply-To"].addresses[0].addr_spec == "help@acme.test"
    assert message["Message-ID"] == "<invitation.1@acme.test>"
    assert message["traceparent"] == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert message["List-Unsubscribe"].startswith("<https://go.acme.test/u/tttt")
    assert message.get_body(("plain",)).get_content() == rendered.text + "\n"
    assert message.get_body(("html",)).get_content() == rendered.html + "\n"


@pytest.mark.parametrize("field", ["to_email", "mail_from", "unsubscribe_url"])
def test_invitation_bytes_refuse_a_line_break_in_a_header(field):
    values = {
        "to_email": "ada@example.com",
        "to_name": "Ada",
        "rendered": templates.Rendered("Subject", "text", None),
        "message_id": "<invitation.1@acme.test>",
        "mail_from": "surveys@acme.test",
        "unsubscribe_url": "https://go.acme.test/u/x",
    }
    values[field] = str(values[field]) + "\r\nBcc: victim@example.com"
    with pytest.raises(ValueError):
        invitation_bytes(InvitationEmail(**values))  # type: ignore[arg-type]


def test_an_address_that_is_not_ascii_goes_out_as_a_message_for_smtputf8():
    from services.dispatch.emails import build_invitation

    mail = InvitationEmail(
        to_email="juergen@bäckerei.example",
        to_name="Jürgen",
        rendered=templates.Rendered("Hoe was het?", "Hallo Jürgen", "<p>Hallo</p>"),
        message_id="<invitation.2@acme.test>",
        mail_from="Acme <surveys@acme.test>",
        unsubscribe_url=None,
        reply_to="help@acme.test",
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )
    built = build_invitation(mail)
    assert not isinstance(built, bytes)  # the SMTP client sends a message with SMTPUTF8
    assert built["To"].addresses[0].addr_spec == "juergen@bäckerei.example"
    assert built["Message-ID"] == "<invitation.2@acme.test>"
    assert built["Reply-To"] == "help@acme.test"
    assert built["List-Unsubscribe"] == "<mailto:surveys@acme.test?subject=unsubscribe>"
    assert built["traceparent"] == mail.traceparent
    assert built.get_body(("html",)).get_content() == "<p>Hallo</p>\n"
    # The same email to an ASCII address takes the bytes path.
    assert isinstance(build_invitation(dataclasses.replace(mail, to_email="juergen@example.com")), bytes)
