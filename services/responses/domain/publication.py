"""What other services learn about a survey when it is published: its questions in every language of
the survey, with the words of each scale point exactly as the survey page shows them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from services.responses.domain.answers import answer_scale
from services.responses.domain.definition import Definition
from services.responses.domain.languages import locale_chain, localize, survey_locales
from services.responses.domain.scales import point_labels
from services.responses.i18n import ui_language
from shared.events import SurveyPublished, SurveyQuestion
from shared.vocabulary import QUESTION_TYPES, QuestionType


def survey_languages(definition: Definition) -> tuple[str, ...]:
    """Return the survey's languages: its default first, then every other its questions are written in."""
    default = definition.default_locale.replace("_", "-").lower()
    others = survey_locales(definition.questions, definition.default_locale) - {default}
    return (default, *sorted(others))


def _asked_type(value: str) -> QuestionType:
    """Return the type of an asked question (every type but ``hidden`` is a ``QuestionType``)."""
    for known in QUESTION_TYPES:
        if known == value:
            return known
    raise ValueError(f"{value!r} is not a question respondents answer")


def published_questions(definition: Definition) -> tuple[SurveyQuestion, ...]:
    """Return the questions respondents are asked (hidden fields left out), in order, each with its
    text per language and, for scales, each point's label per language, lowest first.

    Texts are the page's sources: a ``{field|fallback}`` placeholder is left for the reader to fill from
    the invitation's context, as the page does.
    """
    languages = survey_languages(definition)
    default = languages[0]
    return tuple(
        SurveyQuestion(
            id=q.id,
            type=_asked_type(q.type),
            scale=answer_scale(q),
            text=localize(q.text, locale_chain(default, default)),
            texts={lang: localize(q.text, locale_chain(lang, default)) for lang in languages},
            labels={lang: point_labels(q, ui_language(lang)) for lang in languages} if q.scale else {},
            required=q.required,
        )
        for q in definition.questions
        if q.asked
    )


def survey_published(
    *,
    workspace_id: str,
    survey_id: str,
    name: str,
    open_: bool,
    version: int,
    definition: Mapping[str, Any],
    published_at: datetime,
) -> SurveyPublished:
    """Return the event that tells other services about one version of a survey."""
    parsed = Definition.of(version, dict(definition))
    return SurveyPublished(
        workspace_id=workspace_id,
        survey_id=survey_id,
        survey_version=version,
        name=name,
        open=open_,
        questions=published_questions(parsed),
        languages=survey_languages(parsed),
        published_at=published_at,
    )
