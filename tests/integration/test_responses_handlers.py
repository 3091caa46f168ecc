"""The responses service's handlers against a real PostgreSQL session rolled back after each test (the
``uow`` fixture): what each change writes to the outbox, and what erasure leaves behind."""

from __future__ import annotations

import pytest

from services.responses.handlers import surveys
from services.responses.models import outbox as outbox_table
from services.responses.schemas import SurveyCreate
from shared.events import SurveyClosed, SurveyPublished, SurveyQuestion, SurveyReopened
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
