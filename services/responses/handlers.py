"""What happens when a survey is defined, a survey link is opened or answered, or a contact is erased."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import get_args

from sqlalchemy import null, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.responses import domain
from services.responses.models import Response, ResponseAnswer, Survey
from services.responses.schemas import SurveyCreate
from shared.errors import Conflict, Gone, InvalidInput, NotFound
from shared.events import (
    Answer,
    Channel,
    ContactErased,
    ResponseCompleted,
    SurveyKind,
    is_uuid,
    new_id,
    utcnow,
)
from shared.outbox import Outbox
from shared.security import ExpiredToken, InvalidToken
from shared.survey_links import SurveyLink, read_link_token

# verify_token compares strings with hmac.compare_digest, which refuses non-ASCII text with a
# TypeError; only well-formed tokens reach it.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,4000}\.[A-Za-z0-9_-]{1,100}$")
_LOCALE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
INVALID_LINK = (
    "This survey link is not valid. Please open the link from your invitation exactly as it was sent."
)


def questions_of(survey: Survey) -> list[domain.Question]:
    """Return the survey's questions as domain values."""
    return [
        domain.Question(q["id"], q["type"], q["text"], q.get("required", False)) for q in survey.questions
    ]


async def create_survey(session: AsyncSession, *, workspace_id: str, body: SurveyCreate) -> Survey:
    """Return the new survey (version 1), or raise ``InvalidInput`` naming each field at fault."""
    questions = [domain.Question(q.id, q.type, q.text, q.required) for q in body.questions]
    errors = domain.check_survey(questions)
    if errors:
        raise InvalidInput(
            "The survey definition is not valid: " + ", ".join(e.field for e in errors),
            errors=[{"field": e.field, "message": e.message} for e in errors],
        )
    survey = Survey(
        id=new_id(),
        workspace_id=workspace_id,
        name=body.name,
        version=1,
        questions=[q.model_dump() for q in body.questions],
        thank_you_text=body.thank_you_text,
    )
    session.add(survey)
    await session.flush()
    return survey


async def get_survey(session: AsyncSession, *, workspace_id: str, survey_id: str) -> Survey:
    """Return the workspace's survey or raise ``NotFound``."""
    survey = (
        await session.scalar(
            select(Survey).where(Survey.workspace_id == workspace_id, Survey.id == survey_id)
        )
        if is_uuid(survey_id)
        else None
    )
    if survey is None:
        raise NotFound(f"No survey {survey_id!r} in this workspace.", field="survey_id")
    return survey


def read_link(secret: str, token: str) -> SurveyLink:
    """Return the survey link in ``token``; raise ``NotFound`` when it is forged or malformed, ``Gone`` when expired."""
    if not _TOKEN.match(token):
        raise NotFound(INVALID_LINK, field="token")
    try:
        link = read_link_token(secret, token)
    except ExpiredToken as exc:
        raise Gone(
            "This survey link has expired. Thank you for wanting to answer; the survey is closed now.",
            field="token",
        ) from exc
    except InvalidToken as exc:
        raise NotFound(INVALID_LINK, field="token") from exc
    ids = (link.workspace_id, link.invitation_id, link.request_id, link.survey_id, link.contact_id)
    if (
        not all(isinstance(i, str) and 0 < len(i) <= 64 for i in ids)
        or link.kind not in get_args(SurveyKind)
        or link.channel not in get_args(Channel)
    ):
        raise NotFound(INVALID_LINK, field="token")
    return link


def link_locale(link: SurveyLink) -> str | None:
    """Return the link's locale when it looks like a language tag."""
    return link.locale if isinstance(link.locale, str) and _LOCALE.match(link.locale) else None


async def open_link(session: AsyncSession, *, secret: str, token: str) -> tuple[SurveyLink, Survey]:
    """Return the link in ``token`` and its survey; raise ``NotFound`` or ``Gone``."""
    link = read_link(secret, token)
    survey = (
        await session.scalar(
            select(Survey).where(Survey.workspace_id == link.workspace_id, Survey.id == link.survey_id)
        )
        if is_uuid(link.survey_id)
        else None
    )
    if survey is None:
        raise NotFound("This survey is no longer available.", field="survey_id")
    return link, survey


async def find_response(session: AsyncSession, *, link: SurveyLink) -> Response | None:
    """Return the response already given through this link's invitation, if any."""
    return await session.scalar(
        select(Response).where(
            Response.workspace_id == link.workspace_id, Response.invitation_id == link.invitation_id
        )
    )


def _already_answered() -> Conflict:
    return Conflict("This invitation has already been answered; one response per invitation.", field="token")


async def submit_response(
    session: AsyncSession,
    outbox: Outbox,
    *,
    link: SurveyLink,
    survey: Survey,
    answers: Mapping[str, object],
    max_chars: int,
) -> Response:
    """Return the stored response; raise ``InvalidInput`` or ``Conflict`` having stored nothing."""
    if await find_response(session, link=link):
        raise _already_answered()
    accepted, errors = domain.validate_answers(questions_of(survey), answers, max_chars=max_chars)
    if errors:
        raise InvalidInput(
            "Some answers are not valid: " + ", ".join(f"answers.{q}" for q in errors),
            errors=[{"field": f"answers.{q}", "message": m} for q, m in errors.items()],
        )
    now = utcnow()
    consent = domain.consent_given(accepted)
    # Two submissions racing past the check above meet at the unique (workspace, invitation)
    # index: the second waits for the first to commit, inserts nothing and gets a 409.
    response = (
        await session.execute(
            insert(Response)
            .values(
                id=new_id(),
                workspace_id=link.workspace_id,
                survey_id=survey.id,
                survey_version=survey.version,
                invitation_id=link.invitation_id,
                request_id=link.request_id,
                contact_id=link.contact_id,
                kind=link.kind,
                channel=link.channel,
                locale=link_locale(link),
                consent_to_contact=consent,
                completed_at=now,
            )
            .on_conflict_do_nothing(index_elements=["workspace_id", "invitation_id"])
            .returning(Response)
        )
    ).scalar_one_or_none()
    if response is None:
        raise _already_answered()
    session.add_all(
        [
            ResponseAnswer(
                response_id=response.id,
                question_id=a.question_id,
                workspace_id=link.workspace_id,
                position=i,
                type=a.type,
                value=a.value,
            )
            for i, a in enumerate(accepted)
        ]
    )
    await outbox.add(
        session,
        ResponseCompleted(
            workspace_id=link.workspace_id,
            response_id=response.id,
            invitation_id=link.invitation_id,
            request_id=link.request_id,
            contact_id=link.contact_id,
            survey_id=survey.id,
            survey_version=survey.version,
            kind=link.kind,
            channel=link.channel,
            locale=response.locale,  # type: ignore[arg-type]
            answers=tuple(Answer(question_id=a.question_id, type=a.type, value=a.value) for a in accepted),  # type: ignore[arg-type]
            consent_to_contact=consent,
            completed_at=now,
        ),
    )
    await session.flush()
    return response


async def list_responses(
    session: AsyncSession, *, workspace_id: str, survey_id: str, limit: int
) -> list[tuple[Response, list[ResponseAnswer]]]:
    """Return the survey's newest responses with their answers in question order."""
    responses = (
        await session.scalars(
            select(Response)
            .where(Response.workspace_id == workspace_id, Response.survey_id == survey_id)
            .order_by(Response.completed_at.desc(), Response.id)
            .limit(limit)
        )
    ).all()
    answers = (
        await session.scalars(
            select(ResponseAnswer)
            .where(
                ResponseAnswer.workspace_id == workspace_id,
                ResponseAnswer.response_id.in_([r.id for r in responses]),
            )
            .order_by(ResponseAnswer.position)
        )
    ).all()
    by_response: dict[str, list[ResponseAnswer]] = {r.id: [] for r in responses}
    for a in answers:
        by_response[a.response_id].append(a)
    return [(r, by_response[r.id]) for r in responses]


async def on_contact_erased(session: AsyncSession, event: ContactErased) -> None:
    """Blank the free-text answers of the erased contact's responses."""
    of_contact = select(Response.id).where(
        Response.workspace_id == event.workspace_id, Response.contact_id == event.contact_id
    )
    await session.execute(
        update(ResponseAnswer)
        .where(
            ResponseAnswer.workspace_id == event.workspace_id,
            ResponseAnswer.response_id.in_(of_contact),
            ResponseAnswer.type == "open",
        )
        .values(value=null())
    )
    await session.execute(
        update(Response)
        .where(Response.workspace_id == event.workspace_id, Response.contact_id == event.contact_id)
        .values(erased_at=event.erased_at)
    )
