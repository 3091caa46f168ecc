"""What an invitation says and records, as pure rules: the embedded question, the message's language and
words, the link's lifetime, template warnings, the funnel's inferred steps, redaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.dispatch import domain, embeds, providers, redaction, template_checks, templates, wording

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CSAT = {
    "id": "sat",
    "type": "csat",
    "texts": {"en": "How satisfied are you?", "nl": "Hoe tevreden bent u?"},
    "labels": {
        "en": ["Very dissatisfied", "Dissatisfied", "Neutral", "Satisfied", "Very satisfied"],
        "nl": ["Zeer ontevreden", "Ontevreden", "Neutraal", "Tevreden", "Zeer tevreden"],
    },
}


@pytest.mark.parametrize(
    "question, scores, labelled",
    [
        (embeds.SAMPLE_NPS, list(range(11)), False),
        ({**embeds.SAMPLE_NPS, "type": "nls"}, list(range(11)), False),
        (CSAT, [1, 2, 3, 4, 5], True),
        ({"id": "c", "type": "csat", "scale": [1, 10], "texts": {"en": "Q"}}, list(range(1, 11)), False),
        ({"id": "e", "type": "ces", "texts": {"en": "Q"}}, list(range(1, 8)), False),
        (
            {"id": "r", "type": "rating", "scale": [1, 3], "texts": {"en": "Q"}, "labels": {"en": ["★"] * 3}},
            [1, 2, 3],
            True,
        ),
    ],
)
def test_a_scale_question_is_embedded_in_its_own_scale_lowest_first(question, scores, labelled):
    embedded = embeds.embedded_question(question, language="en")
    assert embedded is not None
    assert [p.score for p in embedded.points] == scores and embedded.labelled is labelled


@pytest.mark.parametrize("kind", ["open", "consent", "single_choice", "multiple_choice"])
def test_what_one_click_cannot_answer_is_not_embedded(kind):
    assert embeds.embedded_question({"id": "q", "type": kind, "texts": {"en": "Q"}}, language="en") is None
    assert embeds.embedded_question(None, language="en") is None
    assert embeds.embedded_question({"id": "q", "type": "nps", "texts": {}}, language="en") is None, "no text"


def test_the_question_speaks_the_contacts_language_else_the_surveys_first():
    dutch = embeds.embedded_question(CSAT, language="nl", languages=("en", "nl"))
    assert (
        dutch is not None
        and dutch.text == "Hoe tevreden bent u?"
        and dutch.points[0].label == "Zeer ontevreden"
    )
    german = embeds.embedded_question(CSAT, language="de", languages=("en", "nl"))
    assert german is not None and german.text == "How satisfied are you?"
    wrong_count = embeds.embedded_question({**CSAT, "labels": {"en": ["a", "b"]}}, language="en")
    assert wrong_count is not None and [p.label for p in wrong_count.points] == [""] * 5
    nps = embeds.embedded_question(embeds.SAMPLE_NPS, language="en")
    assert nps is not None and nps.anchors() == ["0 = Not at all likely", "10 = Extremely likely"]


@pytest.mark.parametrize(
    "locale, offered, expected",
    [
        ("nl-BE", ("en", "nl"), "nl"),
        ("de", ("en", "nl"), "en"),
        ("de", (), "de"),
        (None, ("nl",), "nl"),
        (None, (), "en"),
    ],
)
def test_the_message_language(locale, offered, expected):
    assert wording.message_language(locale, offered) == expected


def test_built_in_words_exist_in_every_language_of_the_survey_pages():
    for language in wording.LANGUAGES:
        assert set(wording.WORDS[language]) == set(wording.WORDS["en"]), language
    assert domain.greeting("Anke de Vries", "nl") == "Hallo Anke," and domain.greeting(None, "nl") == "Hallo,"
    assert domain.subject("retention", "Anke", language="nl") == "Anke, hebben we het voor u opgelost?"
    assert wording.words("fr") == wording.WORDS["en"]
    assert wording.validity("nl", 1) == "Deze link is persoonlijk en werkt 1 dag."


def test_the_days_a_link_works_are_counted_not_written_in():
    expires = NOW + timedelta(days=30)
    assert domain.days_left(expires, NOW + timedelta(seconds=3), default_days=30) == 30
    assert domain.days_left(expires, NOW + timedelta(days=2, seconds=3), default_days=30) == 28
    assert domain.days_left(NOW + timedelta(hours=2), NOW, default_days=30) == 1
    assert domain.days_left(None, NOW, default_days=14) == 14


def fields(channel: str = "email", question: dict | None = CSAT) -> dict:
    return templates.fields_for(
        channel=channel,
        kind="transactional",
        name="Ada",
        context={},
        brand=templates.Branding(name="Acme"),
        survey_url="https://go.test/l/abc",
        short_url="https://go.test/l/abc",
        unsubscribe_url="https://go.test/u/t",
        ttl_days=30,
        locale="en",
        embed=embeds.embedded_question(question, language="en") if question else None,
    )


def test_the_embed_merge_field_is_html_in_html_and_text_in_text():
    spec = templates.TemplateSpec(None, None, "{{ embed }}", "<div>{{ embed }}</div>")
    rendered = templates.render("email", fields(), spec)
    assert rendered.html is not None and '<table role="presentation"' in rendered.html
    assert 'href="https://go.test/l/abc?score=1"' in rendered.html and "&lt;table" not in rendered.html
    assert "{'" not in rendered.html + rendered.text
    assert rendered.text.startswith(
        "How satisfied are you?\n  1 (Very dissatisfied): https://go.test/l/abc?score=1"
    )
    nothing = templates.render(
        "email", fields(), templates.TemplateSpec(None, None, "{{ embed }}x", None, embed=False)
    )
    assert "score=" not in nothing.text + (nothing.html or "")


def test_unknown_and_misplaced_merge_fields_warn():
    warnings = template_checks.validate(
        "email", subject="{{ embed }} {{ first_nam }}", text="{{ greeting }}", html=None
    )
    assert [(w.field, w.message.split(" ")[1]) for w in warnings] == [
        ("subject", "first_nam"),
        ("subject", "embed"),
    ]
    sms = template_checks.validate("sms", subject=None, text="{{ score_links }}{{ short_url }}", html=None)
    assert [w.field for w in sms] == ["text"] and "sms message" in sms[0].message
    assert (
        template_checks.validate(
            "email", subject=None, text="{% for i in range(2) %}{{ i }}{% endfor %}", html=None
        )
        == []
    )
    with pytest.raises(templates.TemplateProblem) as refused:
        template_checks.validate("email", subject="Hi\r\nBcc: x@y.test", text="x", html=None)
    assert refused.value.field == "subject"


def test_a_step_nobody_reported_is_inferred():
    steps = domain.funnel_steps({"invited": NOW, "clicked": NOW})
    assert [(s, steps[s].reached, steps[s].inferred) for s in domain.FUNNEL_STAGES] == [
        ("invited", True, False),
        ("delivered", True, True),
        ("opened", True, True),
        ("clicked", True, False),
        ("started", False, False),
        ("completed", False, False),
    ]
    assert steps["delivered"].at is None and steps["clicked"].at == NOW


def test_identifiers_are_redacted_as_whole_words():
    found = redaction.identifiers(
        emails=["eve@x.test"], names=["Eve  Adams", "E"], phones=["+1 415-555-0101"]
    )
    assert found == ["+1 415-555-0101", "+14155550101", "eve@x.test", "Eve Adams"]
    pattern = redaction.redaction(found)
    assert pattern is not None
    text = "EVE ADAMS (eve@x.test, +14155550101) — not Steve Adams, nor steve@x.test."
    assert redaction.redact({"t": [text]}, pattern) == {
        "t": ["[erased] ([erased], [erased]) — not Steve Adams, nor steve@x.test."]
    }
    assert redaction.redaction([]) is None
    assert redaction.redact_addresses("550 5.1.1 <ada@x.test>: unknown") == "550 5.1.1 <[address]>: unknown"


def test_a_provider_error_is_recorded_in_our_words_only():
    code = providers.twilio_error_code(
        b'{"code": 21211, "message": "The \'To\' number +14155550101 is not valid."}'
    )
    assert code == "21211"
    message, permanent = providers.twilio_error(400, code)
    assert (
        message
        == "provider replied 400 Bad Request (code 21211: the 'To' number is not a valid phone number)"
    )
    assert permanent and "+1415" not in message
    assert providers.twilio_error_code(b"<html>oops</html>") is None
    assert providers.twilio_error_code(b'{"code": "1; DROP TABLE"}') is None
    assert providers.twilio_error(503, None) == ("provider replied 503 Service Unavailable", False)


def test_header_text_is_one_line():
    assert templates.header_text("Ada,\r\nBcc: x@y\x07 hi\u2028there") == "Ada, Bcc: x@y hi there"
