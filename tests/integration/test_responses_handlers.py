"""The responses service's handlers against a real PostgreSQL session rolled back after each test (the
``uow`` fixture): what each change writes to the outbox, and what erasure leaves behind."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import select, text

from services.responses.handlers import surveys
from services.responses.models import Response
from services.responses.models import outbox as outbox_table
from services.responses.schemas import SurveyCreate
from shared.events import (
    BrandingChanged,
    ContactErased,
    ResponseCompleted,
    SurveyClosed,
    SurveyPublished,
    SurveyQuestion,
    SurveyReopened,
    utcnow,
)
from shared.outbox import Outbox
from tests.support.db import outbox_events

pytestmark = pytest.mark.integration

OUTBOX = Outbox(outbox_table, source="responses")
MAX_LOGO = 16_384

CSAT_FIRST = SurveyCreate.model_validate(
    {
        "name": "Delivery CSAT",
        "default_locale": "en",
        "questions": [
            {
                "id": "csat",
                "type": "csat",
                "required": True,
                "text": {
                    "en": "How satisfied are you with {product|your order}?",
                    "nl": "Hoe tevreden bent u?",
                },
            },
            {"id": "effort", "type": "ces", "text": "It was easy to get my order."},
            {"id": "faces", "type": "csat", "style": "emoji", "text": "And the driver?"},
            {"id": "stars", "type": "rating", "points": 4, "text": "Stars?"},
            {"id": "nps", "type": "nps", "text": {"en": "Recommend us?", "nl": "Aanbevelen?"}},
            {"id": "why", "type": "open", "text": "Why?"},
            {"id": "product", "type": "hidden"},
        ],
    }
)


async def test_creating_a_survey_publishes_it_with_every_languages_texts_and_the_pages_labels(uow, workspace):
    survey, _ = await surveys.create_survey(
        uow, OUTBOX, workspace_id=workspace, body=CSAT_FIRST, max_logo_bytes=MAX_LOGO
    )
    [event] = await outbox_events(uow, outbox_table)
    assert isinstance(event, SurveyPublished)
    assert (event.workspace_id, event.survey_id, event.survey_version, event.name, event.open) == (
        workspace,
        survey.id,
        1,
        "Delivery CSAT",
        True,
    )
    assert event.partition_key() == f"{workspace}:{survey.id}"
    assert event.languages == ("en", "nl")
    # Hidden fields are no questions; every asked one is listed in order.
    assert [q.id for q in event.questions] == ["csat", "effort", "faces", "stars", "nps", "why"]
    csat, effort, faces, stars, nps, why = event.questions
    assert csat == SurveyQuestion(
        id="csat",
        type="csat",
        text="How satisfied are you with {product|your order}?",
        texts={"en": "How satisfied are you with {product|your order}?", "nl": "Hoe tevreden bent u?"},
        labels={
            "en": ("Very dissatisfied", "Dissatisfied", "Neutral", "Satisfied", "Very satisfied"),
            "nl": ("Zeer ontevreden", "Ontevreden", "Neutraal", "Tevreden", "Zeer tevreden"),
        },
        required=True,
    )
    # A text in one language is every language's; numeric scales carry their end anchors.
    assert effort.texts == {"en": "It was easy to get my order.", "nl": "It was easy to get my order."}
    assert effort.labels["nl"] == ("Helemaal oneens", "", "", "", "", "", "Helemaal eens")
    assert faces.labels["en"] == ("😠", "🙁", "😐", "🙂", "😄")
    assert (stars.scale, stars.labels["en"]) == ((1, 4), ("★",) * 4)
    assert nps.labels["en"] == ("Not at all likely", *[""] * 9, "Extremely likely")
    assert nps.texts["nl"] == "Aanbevelen?" and nps.scale is None
    assert why.labels == {} and why.scale is None


async def test_the_published_labels_are_the_words_the_page_shows_in_the_same_order(uow, workspace):
    from services.responses import pages
    from services.responses.domain.definition import Definition

    _, version = await surveys.create_survey(
        uow, OUTBOX, workspace_id=workspace, body=CSAT_FIRST, max_logo_bytes=MAX_LOGO
    )
    [event] = await outbox_events(uow, outbox_table)
    definition = Definition.of(1, version.definition)
    for published, q in zip(event.questions, [q for q in definition.questions if q.asked], strict=True):
        for lang in ("en", "nl"):
            view = pages.question_view(q, text="", options=[], value=None, error=None, lang=lang)
            if view.hints:  # numbers on the buttons, the anchor words under both ends
                assert view.hints == (
                    f"{q.scale[0]} = {published.labels[lang][0]}",
                    f"{q.scale[1]} = {published.labels[lang][-1]}",
                )
            elif q.scale:
                assert tuple(c.label for c in view.choices) == published.labels[lang]
            assert [c.value for c in view.choices] == sorted(
                (c.value for c in view.choices), key=lambda v: int(v) if v.isdigit() else v
            )


async def test_every_new_version_is_published_and_closing_and_reopening_each_publish_once(uow, workspace):
    survey, _ = await surveys.create_survey(
        uow, OUTBOX, workspace_id=workspace, body=CSAT_FIRST, max_logo_bytes=MAX_LOGO
    )
    edited = CSAT_FIRST.model_copy(
        update={"name": "Delivery CSAT (short)", "questions": CSAT_FIRST.questions[:1]}
    )
    await surveys.update_survey(
        uow, OUTBOX, workspace_id=workspace, survey_id=survey.id, body=edited, max_logo_bytes=MAX_LOGO
    )
    await surveys.set_closed(uow, OUTBOX, workspace_id=workspace, survey_id=survey.id, closed=True)
    await surveys.set_closed(uow, OUTBOX, workspace_id=workspace, survey_id=survey.id, closed=True)
    # A closed survey edited is published closed.
    await surveys.update_survey(
        uow, OUTBOX, workspace_id=workspace, survey_id=survey.id, body=edited, max_logo_bytes=MAX_LOGO
    )
    await surveys.set_closed(uow, OUTBOX, workspace_id=workspace, survey_id=survey.id, closed=False)
    await surveys.set_closed(uow, OUTBOX, workspace_id=workspace, survey_id=survey.id, closed=False)

    events = await outbox_events(uow, outbox_table)
    assert [type(e) for e in events] == [
        SurveyPublished,
        SurveyPublished,
        SurveyClosed,
        SurveyPublished,
        SurveyReopened,
    ]
    first, second, closed, third, reopened = events
    assert [(e.survey_version, e.open, e.name) for e in (first, second, third)] == [
        (1, True, "Delivery CSAT"),
        (2, True, "Delivery CSAT (short)"),
        (3, False, "Delivery CSAT (short)"),
    ]
    assert [q.id for q in second.questions] == ["csat"]
    assert {e.survey_id for e in events} == {survey.id}
    assert {e.partition_key() for e in events} == {f"{workspace}:{survey.id}"}
    assert isinstance(closed, SurveyClosed) and isinstance(reopened, SurveyReopened)


async def test_a_refused_definition_publishes_nothing(uow, workspace):
    from shared.errors import InvalidInput

    bad = CSAT_FIRST.model_copy(update={"questions": CSAT_FIRST.questions[5:6]})  # no scored question
    with pytest.raises(InvalidInput):
        await surveys.create_survey(uow, OUTBOX, workspace_id=workspace, body=bad, max_logo_bytes=MAX_LOGO)
    assert await outbox_events(uow, outbox_table) == []


# --- erasure ---------------------------------------------------------------------------------

ERASURE_SURVEY = SurveyCreate.model_validate(
    {
        "name": "Support NPS",
        "questions": [
            {"id": "nps", "type": "nps", "required": True, "text": "Recommend us?"},
            {"id": "why", "type": "open", "text": "Why?"},
            {"id": "consent", "type": "consent", "text": "May we contact you?"},
            {"id": "address", "type": "hidden"},
        ],
    }
)


async def _text_columns(session) -> list[tuple[str, str]]:
    rows = await session.execute(
        text(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'responses' "
            "AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'ARRAY')"
        )
    )
    return [(t, c) for t, c in rows.all()]


async def _where_found(session, needle: str) -> list[str]:
    """Return every responses table.column whose value holds ``needle``."""
    found = []
    for table, column in await _text_columns(session):
        hits = await session.scalar(
            text(f'SELECT count(*) FROM responses."{table}" WHERE "{column}"::text ILIKE :needle'),
            {"needle": f"%{needle}%"},
        )
        if hits:
            found.append(f"{table}.{column}")
    return found


async def test_erasure_reaches_every_copy_and_closes_the_contacts_links(uow, workspace):
    from services.responses.handlers import erasure, responses, rewards, visits
    from shared.errors import NotFound
    from tests.conftest import SECRET_KEY
    from tests.support.responses import link_for

    tag = secrets.token_hex(4)
    email, name, phone = f"ada.{tag}@example.com", f"Ada Lovelace {tag}", f"+3161{int(tag, 16) % 10**7:07d}"
    address = f"Flat {tag}, 221B Baker Street"
    pool = await rewards.create_pool(uow, workspace_id=workspace, name="Vouchers")
    await rewards.add_codes(uow, workspace_id=workspace, pool_id=pool.id, codes=[f"CODE-{tag}", "CODE-OTHER"])
    body = ERASURE_SURVEY.model_copy(update={"reward_pool_id": pool.id})
    survey, _ = await surveys.create_survey(
        uow, OUTBOX, workspace_id=workspace, body=body, max_logo_bytes=MAX_LOGO
    )
    who = {"name": name, "email": email, "phone": phone}
    context = {"address": address, "contact_email": email}
    completed_token, link = link_for(workspace, survey.id, respondent=who, context=context)
    partial_token, _ = link_for(
        workspace, survey.id, respondent=who, context=context, contact_id=link.contact_id
    )
    other_token, other = link_for(workspace, survey.id, respondent={"email": f"grace.{tag}@example.com"})

    visit = await visits.open_link(uow, secret=SECRET_KEY, token=completed_token, lock=True)
    done = await responses.answer_all(
        uow,
        OUTBOX,
        visit=visit,
        answers={"nps": 3, "why": f"Call {name} on {phone} or come to {address}", "consent": True},
        max_chars=500,
    )
    assert done.reward_code == f"CODE-{tag}"
    visit = await visits.open_link(uow, secret=SECRET_KEY, token=partial_token, lock=True)
    await responses.answer_one(
        uow, OUTBOX, visit=visit, question_id="why", value=f"Write to {email}", max_chars=500
    )
    visit = await visits.open_link(uow, secret=SECRET_KEY, token=other_token, lock=True)
    await responses.answer_all(
        uow, OUTBOX, visit=visit, answers={"nps": 9, "why": "Grace's words"}, max_chars=500
    )
    for needle in (email, name, phone, address, f"CODE-{tag}"):
        assert await _where_found(uow, needle), f"the test data holds {needle!r} before the erasure"

    erased = ContactErased(workspace_id=workspace, contact_id=link.contact_id, erased_at=utcnow())
    await erasure.on_contact_erased(uow, erased)
    await erasure.on_contact_erased(uow, erased)  # redelivered: no harm

    for needle in (email, name, phone, address):
        assert await _where_found(uow, needle) == [], needle
    # The code handed out stays in its pool, claimed, but says to whom no longer.
    assert await _where_found(uow, f"CODE-{tag}") == ["reward_codes.code"]
    assert "reward_codes.response_id" not in await _where_found(uow, done.id)
    # The scores and the other contact's answers stay; the code is still claimed (never given twice).
    kept = {
        (r.contact_id, r.erased_at is not None)
        for r in (await uow.scalars(select(Response).where(Response.workspace_id == workspace))).all()
    }
    assert kept == {(link.contact_id, True), (other.contact_id, False)}
    assert sorted(await _where_found(uow, "Grace's words")) == ["answers.value", "outbox.payload"]
    assert (await rewards.get_pool(uow, workspace_id=workspace, pool_id=pool.id))[1:] == (2, 0)
    events = await outbox_events(uow, outbox_table)
    [completed] = [e for e in events if isinstance(e, ResponseCompleted) and e.contact_id == link.contact_id]
    assert completed.respondent is None and completed.hidden_fields == {}
    assert [(a.question_id, a.value) for a in completed.answers] == [
        ("nps", 3),
        ("why", None),
        ("consent", True),
    ]
    # The erased person's links no longer open; anyone else's do.
    for token in (completed_token, partial_token):
        with pytest.raises(NotFound, match="no longer available"):
            await visits.open_link(uow, secret=SECRET_KEY, token=token)
    assert (await visits.open_link(uow, secret=SECRET_KEY, token=other_token)).completed


# --- branding --------------------------------------------------------------------------------


async def test_a_branding_change_publishes_what_emails_need_and_an_unchanged_one_nothing(uow, workspace):
    from services.responses.handlers import workspace_settings
    from services.responses.schemas import WorkspaceBrandingIn

    async def put(**values: object) -> None:
        await workspace_settings.put_branding(
            uow,
            OUTBOX,
            workspace_id=workspace,
            body=WorkspaceBrandingIn.model_validate(values),
            max_logo_bytes=MAX_LOGO,
        )

    await put(name="Acme", logo_url="https://acme.example/logo.png", footer="Acme B.V., Amsterdam")
    await put(name="Acme", logo_url="https://acme.example/logo.png", footer="Acme B.V., Amsterdam")
    # Only the page's background: nothing an email shows changed.
    await put(
        name="Acme",
        logo_url="https://acme.example/logo.png",
        footer="Acme B.V., Amsterdam",
        background_color="#ffffff",
    )
    await put(name="Acme", primary_color="#0b6e4f", tone="formal")
    first, second = await outbox_events(uow, outbox_table)
    assert isinstance(first, BrandingChanged) and isinstance(second, BrandingChanged)
    assert first.partition_key() == workspace and first.topic == "workspaces"
    assert (first.name, first.logo_url, first.footer, first.primary_color, first.font, first.tone) == (
        "Acme",
        "https://acme.example/logo.png",
        "Acme B.V., Amsterdam",
        "#1f4fd1",  # the pages' default colour: emails look like the pages
        "system",
        "friendly",
    )
    assert (second.name, second.logo_url, second.footer, second.primary_color, second.tone) == (
        "Acme",
        None,
        None,
        "#0b6e4f",
        "formal",
    )


async def test_an_unreadable_branding_publishes_nothing(uow, workspace):
    from services.responses.handlers import workspace_settings
    from services.responses.schemas import WorkspaceBrandingIn
    from shared.errors import InvalidInput

    body = WorkspaceBrandingIn(name="Acme", text_color="#777777", background_color="#888888")
    with pytest.raises(InvalidInput):
        await workspace_settings.put_branding(
            uow, OUTBOX, workspace_id=workspace, body=body, max_logo_bytes=MAX_LOGO
        )
    assert await outbox_events(uow, outbox_table) == []
