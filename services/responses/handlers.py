"""What happens when a survey is defined or edited, a survey link is opened or answered, a kiosk
starts a respondent, or a contact is erased."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, get_args

from sqlalchemy import delete, func, null, select, text, update
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.responses.domain.answers import (
    Problem,
    answer_scale,
    check_answers,
    check_value,
    clean_context,
    completed_answers,
    consent_given,
)
from services.responses.domain.branding import check_branding
from services.responses.domain.checklist import GlossaryTerm, LintWarning, estimated_seconds, lint
from services.responses.domain.definition import (
    FieldError,
    LocalText,
    Outcome,
    Question,
    check_survey,
    outcome_from_dict,
    question_from_dict,
)
from services.responses.domain.languages import (
    LOCALE,
    fill,
    locale_chain,
    localize,
    page_locale,
    survey_locales,
)
from services.responses.domain.logic import Progress, next_step, progress
from services.responses.models import (
    Kiosk,
    Response,
    ResponseAnswer,
    RewardCode,
    RewardPool,
    Survey,
    SurveyVersion,
    WorkspaceSettings,
)
from services.responses.schemas import BrandingIn, GlossaryIn, KioskCreate, SurveyCreate
from shared.errors import Conflict, Gone, InvalidInput, NotFound
from shared.events import (
    Answer,
    Channel,
    ContactErased,
    ResponseCompleted,
    ResponseStarted,
    SurveyKind,
    is_uuid,
    new_id,
    utcnow,
)
from shared.outbox import Outbox
from shared.security import ExpiredToken, InvalidToken
from shared.survey_links import SurveyLink, issue_link_token, read_link_token

# verify_token compares strings with hmac.compare_digest, which refuses non-ASCII text with a
# TypeError; only well-formed tokens reach it.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,4000}\.[A-Za-z0-9_-]{1,100}$")
INVALID_LINK = (
    "This survey link is not valid. Please open the link from your invitation exactly as it was sent."
)
KIOSK = "kiosk:"


class SurveyClosed(Gone):
    code, title = "survey-closed", "Survey closed"


class LinkExpired(Gone):
    code, title = "link-expired", "Link expired"


# --- survey definitions ------------------------------------------------------------------


@dataclass(frozen=True)
class Definition:
    """One version of a survey, parsed."""

    version: int
    raw: dict[str, Any]
    questions: list[Question]
    outcomes: list[Outcome]
    default_locale: str

    @classmethod
    def of(cls, version: int, raw: dict[str, Any]) -> Definition:
        return cls(
            version,
            raw,
            [question_from_dict(q) for q in raw.get("questions", [])],
            [outcome_from_dict(o) for o in raw.get("outcomes") or ()],
            raw.get("default_locale") or "en",
        )


def _invalid(message: str, errors: Sequence[FieldError]) -> InvalidInput:
    return InvalidInput(
        message + ": " + ", ".join(e.field for e in errors),
        errors=[{"field": e.field, "message": e.message} for e in errors],
    )


async def _check_definition(
    session: AsyncSession, *, workspace_id: str, body: SurveyCreate, max_logo_bytes: int
) -> dict[str, Any]:
    """Return the definition to store, or raise ``InvalidInput`` naming each field at fault."""
    raw = body.model_dump(mode="json", exclude_none=True)
    definition = Definition.of(0, raw)
    errors = check_survey(
        definition.questions, default_locale=definition.default_locale, outcomes=definition.outcomes
    )
    if body.branding:
        errors += check_branding(
            body.branding.model_dump(exclude_none=True), max_logo_bytes=max_logo_bytes, at="branding."
        )
    if body.reward_pool_id is not None and await _pool(session, workspace_id, body.reward_pool_id) is None:
        errors.append(FieldError("reward_pool_id", f"no reward pool {body.reward_pool_id!r} here"))
    if errors:
        raise _invalid("The survey definition is not valid", errors)
    return raw


async def create_survey(
    session: AsyncSession, *, workspace_id: str, body: SurveyCreate, max_logo_bytes: int
) -> tuple[Survey, SurveyVersion]:
    """Return the new survey and its version 1, or raise ``InvalidInput`` having stored nothing."""
    raw = await _check_definition(
        session, workspace_id=workspace_id, body=body, max_logo_bytes=max_logo_bytes
    )
    now = utcnow()
    survey = Survey(
        id=new_id(), workspace_id=workspace_id, name=body.name, version=1, created_at=now, updated_at=now
    )
    session.add(survey)
    await session.flush()
    version = SurveyVersion(
        survey_id=survey.id, version=1, workspace_id=workspace_id, definition=raw, created_at=now
    )
    session.add(version)
    await session.flush()
    return survey, version


async def update_survey(
    session: AsyncSession, *, workspace_id: str, survey_id: str, body: SurveyCreate, max_logo_bytes: int
) -> tuple[Survey, SurveyVersion]:
    """Return the survey with its new current version; responses keep the version they answered."""
    survey = await get_survey(session, workspace_id=workspace_id, survey_id=survey_id, lock=True)
    raw = await _check_definition(
        session, workspace_id=workspace_id, body=body, max_logo_bytes=max_logo_bytes
    )
    now = utcnow()
    survey.version += 1
    survey.name = body.name
    survey.updated_at = now
    version = SurveyVersion(
        survey_id=survey.id, version=survey.version, workspace_id=workspace_id, definition=raw, created_at=now
    )
    session.add(version)
    await session.flush()
    return survey, version


async def get_survey(
    session: AsyncSession, *, workspace_id: str, survey_id: str, lock: bool = False
) -> Survey:
    """Return the workspace's survey or raise ``NotFound``."""
    query = select(Survey).where(Survey.workspace_id == workspace_id, Survey.id == survey_id)
    survey = await session.scalar(query.with_for_update() if lock else query) if is_uuid(survey_id) else None
    if survey is None:
        raise NotFound(f"No survey {survey_id!r} in this workspace.", field="survey_id")
    return survey


async def get_version(session: AsyncSession, *, survey: Survey, version: int | None = None) -> SurveyVersion:
    """Return one version of the survey (default: the current one) or raise ``NotFound``."""
    row = await session.get(SurveyVersion, (survey.id, version or survey.version))
    if row is None:
        raise NotFound(f"Survey {survey.id!r} has no version {version}.", field="version")
    return row


async def list_versions(session: AsyncSession, *, survey: Survey) -> list[SurveyVersion]:
    """Return every version of the survey, oldest first."""
    rows = await session.scalars(
        select(SurveyVersion).where(SurveyVersion.survey_id == survey.id).order_by(SurveyVersion.version)
    )
    return list(rows)


async def list_surveys(session: AsyncSession, *, workspace_id: str) -> list[tuple[Survey, SurveyVersion]]:
    """Return the workspace's surveys with their current versions, oldest first."""
    rows = await session.execute(
        select(Survey, SurveyVersion)
        .join(
            SurveyVersion, (SurveyVersion.survey_id == Survey.id) & (SurveyVersion.version == Survey.version)
        )
        .where(Survey.workspace_id == workspace_id)
        .order_by(Survey.created_at, Survey.id)
    )
    return [(s, v) for s, v in rows.all()]


async def set_closed(session: AsyncSession, *, workspace_id: str, survey_id: str, closed: bool) -> Survey:
    """Return the survey, closed to new answers or open again."""
    survey = await get_survey(session, workspace_id=workspace_id, survey_id=survey_id, lock=True)
    survey.closed_at = (survey.closed_at or utcnow()) if closed else None
    await session.flush()
    return survey


async def glossary_of(session: AsyncSession, workspace_id: str) -> list[GlossaryTerm]:
    """Return the workspace's glossary of internal terms."""
    row = await session.get(WorkspaceSettings, workspace_id)
    return [GlossaryTerm(t["term"], t.get("hint")) for t in (row.glossary if row else [])]


async def lint_definition(
    session: AsyncSession, *, workspace_id: str, raw: Mapping[str, Any], max_seconds: int, lang: str = "en"
) -> tuple[int, list[LintWarning]]:
    """Return the estimated seconds and the checklist's warnings for a definition."""
    definition = Definition.of(0, dict(raw))
    glossary = await glossary_of(session, workspace_id)
    warnings = lint(
        definition.questions,
        default_locale=definition.default_locale,
        glossary=glossary,
        max_seconds=max_seconds,
        lang=lang,
    )
    return estimated_seconds(definition.questions), warnings


async def _settings_row(session: AsyncSession, workspace_id: str) -> WorkspaceSettings:
    await session.execute(
        insert(WorkspaceSettings).values(workspace_id=workspace_id).on_conflict_do_nothing()
    )
    row = await session.scalar(
        select(WorkspaceSettings).where(WorkspaceSettings.workspace_id == workspace_id).with_for_update()
    )
    assert row is not None
    return row


async def put_glossary(session: AsyncSession, *, workspace_id: str, body: GlossaryIn) -> list[dict[str, Any]]:
    """Return the workspace's glossary, replaced by ``body``."""
    row = await _settings_row(session, workspace_id)
    row.glossary = [t.model_dump(exclude_none=True) for t in body.terms]
    row.updated_at = utcnow()
    await session.flush()
    return row.glossary


async def branding_of(session: AsyncSession, workspace_id: str) -> dict[str, Any]:
    """Return the workspace's own branding settings (without defaults)."""
    row = await session.get(WorkspaceSettings, workspace_id)
    return dict(row.branding) if row else {}


async def put_branding(
    session: AsyncSession, *, workspace_id: str, body: BrandingIn, max_logo_bytes: int
) -> dict[str, Any]:
    """Return the workspace's branding, replaced by ``body``; raise ``InvalidInput`` when unreadable."""
    values = body.model_dump(exclude_none=True)
    errors = check_branding(values, max_logo_bytes=max_logo_bytes)
    if errors:
        raise _invalid("The branding is not valid", errors)
    row = await _settings_row(session, workspace_id)
    row.branding = values
    row.updated_at = utcnow()
    await session.flush()
    return row.branding


# --- links and the respondent's visit ----------------------------------------------------


def read_link(secret: str, token: str) -> SurveyLink:
    """Return the survey link in ``token``; raise ``NotFound`` when it is forged or malformed, ``Gone`` when expired."""
    if not _TOKEN.match(token):
        raise NotFound(INVALID_LINK, field="token")
    try:
        link = read_link_token(secret, token)
    except ExpiredToken as exc:
        raise LinkExpired(
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
    return link.locale if isinstance(link.locale, str) and LOCALE.match(link.locale) else None


def is_kiosk(link: SurveyLink) -> bool:
    return link.invitation_id.startswith(KIOSK)


@dataclass
class Visit:
    """A respondent at a survey link: the link, the survey version they answer, and their response."""

    link: SurveyLink
    survey: Survey
    definition: Definition
    fields: dict[str, str]
    response: Response | None = None
    answers: dict[str, Any] = field(default_factory=dict)
    kiosk: Kiosk | None = None

    @property
    def questions(self) -> list[Question]:
        return self.definition.questions

    @property
    def passed(self) -> set[str]:
        return set(self.response.passed) if self.response else set()

    @property
    def completed(self) -> bool:
        return self.response is not None and self.response.completed_at is not None

    @property
    def chain(self) -> tuple[str, ...]:
        locale = link_locale(self.link) or (self.kiosk.locale if self.kiosk else None)
        return locale_chain(locale, self.definition.default_locale)

    @property
    def locale(self) -> str:
        """The locale the survey is shown in."""
        available = survey_locales(self.questions, self.definition.default_locale)
        return page_locale(self.chain, available)

    def text(self, value: LocalText | None) -> str:
        return fill(localize(value, self.chain), self.fields)

    def next_step(self) -> list[Question]:
        return next_step(self.questions, self.answers, self.fields, self.passed)

    def progress(self) -> Progress:
        return progress(self.questions, self.answers, self.fields, self.passed)


async def open_link(session: AsyncSession, *, secret: str, token: str, lock: bool = False) -> Visit:
    """Return the visit behind ``token``; raise ``NotFound``, ``Gone`` or ``SurveyClosed``.

    With ``lock`` the response row is locked until the transaction ends, so two submissions for
    one invitation take turns.
    """
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
    kiosk = None
    if is_kiosk(link):
        kiosk_id = link.request_id.removeprefix(KIOSK)
        kiosk = await session.get(Kiosk, kiosk_id) if is_uuid(kiosk_id) else None
        if kiosk is None or not kiosk.active or kiosk.workspace_id != link.workspace_id:
            raise NotFound("This survey is no longer available.", field="token")
    response = await _find_response(session, link, lock=lock)
    version = await session.get(
        SurveyVersion, (survey.id, response.survey_version if response else survey.version)
    )
    if version is None:  # pragma: no cover - versions are never deleted
        raise NotFound("This survey is no longer available.", field="survey_id")
    visit = Visit(
        link, survey, Definition.of(version.version, version.definition), clean_context(link.context)
    )
    visit.kiosk = kiosk
    if response is not None:
        visit.response = response
        rows = await session.scalars(select(ResponseAnswer).where(ResponseAnswer.response_id == response.id))
        visit.answers = {a.question_id: a.value for a in rows if a.value is not None}
    if survey.closed_at is not None and not visit.completed:
        raise SurveyClosed("This survey is closed and no longer takes responses.", field="survey_id")
    return visit


async def _find_response(session: AsyncSession, link: SurveyLink, *, lock: bool) -> Response | None:
    query = select(Response).where(
        Response.workspace_id == link.workspace_id, Response.link_key == link.invitation_id
    )
    return await session.scalar(query.with_for_update() if lock else query)


async def find_response(session: AsyncSession, *, link: SurveyLink) -> Response | None:
    """Return the response already started through this link's invitation, if any."""
    return await _find_response(session, link, lock=False)


def already_answered() -> Conflict:
    return Conflict("This invitation has already been answered; one response per invitation.", field="token")


def _answer_problems(problems: Mapping[str, Problem]) -> InvalidInput:
    return InvalidInput(
        "Some answers are not valid: " + ", ".join(f"answers.{q}" for q in problems),
        errors=[{"field": f"answers.{q}", "message": p.text()} for q, p in problems.items()],
    )


async def _start(session: AsyncSession, outbox: Outbox, visit: Visit) -> Response:
    link = visit.link
    now = utcnow()
    kiosk = is_kiosk(link)
    # Two first answers racing for one invitation meet at the unique (workspace, link key) index:
    # the second waits for the first to commit and then locks the row the first created.
    response = (
        await session.execute(
            insert(Response)
            .values(
                id=new_id(),
                workspace_id=link.workspace_id,
                survey_id=visit.survey.id,
                survey_version=visit.definition.version,
                link_key=link.invitation_id,
                invitation_id=None if kiosk else link.invitation_id,
                request_id=None if kiosk else link.request_id,
                kiosk_id=visit.kiosk.id if visit.kiosk else None,
                contact_id=link.contact_id,
                kind=link.kind,
                channel=link.channel,
                locale=visit.locale,
                hidden_fields=visit.fields,
                passed=[],
                consent_to_contact=False,
                started_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["workspace_id", "link_key"])
            .returning(Response)
        )
    ).scalar_one_or_none()
    if response is None:
        existing = await _find_response(session, link, lock=True)
        assert existing is not None
        if existing.completed_at is not None:
            raise already_answered()
        return existing
    await outbox.add(
        session,
        ResponseStarted(
            workspace_id=link.workspace_id,
            response_id=response.id,
            invitation_id=response.invitation_id,
            request_id=response.request_id,
            contact_id=link.contact_id,
            survey_id=visit.survey.id,
            survey_version=visit.definition.version,
            kind=link.kind,  # type: ignore[arg-type]
            channel=link.channel,  # type: ignore[arg-type]
            started_at=now,
            hidden_fields=visit.fields,
        ),
    )
    return response


async def save_answers(
    session: AsyncSession,
    outbox: Outbox,
    *,
    visit: Visit,
    answers: Mapping[str, Any],
    passed: Iterable[str],
) -> Response:
    """Return the response with ``answers`` saved (None clears one) and ``passed`` questions marked.

    The first saved answer starts the response and publishes ``ResponseStarted``. The visit must
    have been opened with ``lock=True``; a completed response raises ``Conflict``.
    """
    if visit.completed:
        raise already_answered()
    response = visit.response or await _start(session, outbox, visit)
    visit.response = response
    positions = {q.id: i for i, q in enumerate(visit.questions)}
    types = {q.id: q.type for q in visit.questions}
    now = utcnow()
    cleared = [qid for qid, v in answers.items() if v is None]
    if cleared:
        await session.execute(
            delete(ResponseAnswer).where(
                ResponseAnswer.response_id == response.id, ResponseAnswer.question_id.in_(cleared)
            )
        )
    rows = [
        {
            "response_id": response.id,
            "question_id": qid,
            "workspace_id": response.workspace_id,
            "position": positions[qid],
            "type": types[qid],
            "value": v,
            "answered_at": now,
        }
        for qid, v in answers.items()
        if v is not None
    ]
    if rows:
        stmt = insert(ResponseAnswer).values(rows)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["response_id", "question_id"],
                set_={"value": stmt.excluded.value, "answered_at": stmt.excluded.answered_at},
            )
        )
    for qid, v in answers.items():
        if v is None:
            visit.answers.pop(qid, None)
        else:
            visit.answers[qid] = v
    response.passed = sorted(set(response.passed) | set(passed), key=lambda q: positions.get(q, 0))
    response.updated_at = now
    await session.flush()
    return response


async def complete(session: AsyncSession, outbox: Outbox, *, visit: Visit) -> Response:
    """Return the completed response and publish ``ResponseCompleted``; raise ``InvalidInput`` when a
    required question the respondent sees has no answer (nothing is stored then)."""
    if visit.completed:
        raise already_answered()
    kept, missing = completed_answers(visit.questions, visit.answers, visit.fields)
    if missing:
        raise _answer_problems(missing)
    response = visit.response or await _start(session, outbox, visit)
    visit.response = response
    # Answers to questions that logic no longer shows (an earlier answer changed) are not part of it.
    await session.execute(
        delete(ResponseAnswer).where(
            ResponseAnswer.response_id == response.id,
            ResponseAnswer.question_id.not_in([a.question_id for a in kept]),
        )
    )
    now = utcnow()
    consent = consent_given(kept)
    response.completed_at = now
    response.updated_at = now
    response.consent_to_contact = consent
    pool_id = visit.definition.raw.get("reward_pool_id")
    if pool_id and not is_kiosk(visit.link):
        response.reward_code = await _claim_reward(session, pool_id=pool_id, response_id=response.id)
    by_id = {q.id: q for q in visit.questions}
    await outbox.add(
        session,
        ResponseCompleted(
            workspace_id=response.workspace_id,
            response_id=response.id,
            invitation_id=response.invitation_id,
            request_id=response.request_id,
            contact_id=response.contact_id,
            survey_id=response.survey_id,
            survey_version=response.survey_version,
            kind=response.kind,  # type: ignore[arg-type]
            channel=response.channel,  # type: ignore[arg-type]
            locale=response.locale,
            answers=tuple(_event_answer(by_id[a.question_id], a.value) for a in kept),
            consent_to_contact=consent,
            completed_at=now,
            hidden_fields=response.hidden_fields,
        ),
    )
    await session.flush()
    return response


def _event_answer(q: Question, value: Any) -> Answer:
    if isinstance(value, list):
        return Answer(question_id=q.id, type=q.type, value=",".join(value), choices=tuple(value))  # type: ignore[arg-type]
    return Answer(question_id=q.id, type=q.type, value=value, scale=answer_scale(q))  # type: ignore[arg-type]


async def answer_all(
    session: AsyncSession, outbox: Outbox, *, visit: Visit, answers: Mapping[str, object], max_chars: int
) -> Response:
    """Return the completed response for a whole set of answers (merged with those saved before)."""
    if visit.completed:
        raise already_answered()
    accepted, problems = check_answers(visit.questions, answers, max_chars=max_chars)
    merged = {**visit.answers, **accepted}
    _, missing = completed_answers(visit.questions, merged, visit.fields)
    problems = {**missing, **problems}
    if problems:
        raise _answer_problems(problems)
    await save_answers(session, outbox, visit=visit, answers=accepted, passed=[q.id for q in visit.questions])
    return await complete(session, outbox, visit=visit)


async def answer_one(
    session: AsyncSession, outbox: Outbox, *, visit: Visit, question_id: str, value: object, max_chars: int
) -> Response:
    """Return the response with one answer saved (null clears it); raise ``InvalidInput`` or ``Conflict``."""
    if visit.completed:
        raise already_answered()
    question = next((q for q in visit.questions if q.id == question_id), None)
    if question is None:
        raise InvalidInput(f"There is no question {question_id!r} in this survey.", field="question_id")
    typed: Any = None
    if value is not None and value != "" and value != []:
        typed, problem = check_value(question, value, max_chars=max_chars)
        if problem:
            raise _answer_problems({question_id: problem})
    return await save_answers(
        session, outbox, visit=visit, answers={question_id: typed}, passed=[question_id]
    )


async def _claim_reward(session: AsyncSession, *, pool_id: str, response_id: str) -> str | None:
    """Return a code of the pool given to this response only; None when the pool is empty."""
    claimed = await session.execute(
        text(
            "UPDATE responses.reward_codes SET response_id = :rid, claimed_at = now() WHERE id = ("
            " SELECT id FROM responses.reward_codes WHERE pool_id = :pool AND response_id IS NULL"
            " ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING code"
        ),
        {"rid": response_id, "pool": pool_id},
    )
    return claimed.scalar_one_or_none()


# --- kiosks --------------------------------------------------------------------------------


async def create_kiosk(
    session: AsyncSession, *, workspace_id: str, survey_id: str, body: KioskCreate
) -> Kiosk:
    """Return a new public kiosk link for the survey at one location."""
    survey = await get_survey(session, workspace_id=workspace_id, survey_id=survey_id)
    kiosk = Kiosk(
        id=new_id(),
        workspace_id=workspace_id,
        survey_id=survey.id,
        key=secrets.token_urlsafe(12),
        location_id=body.location_id,
        name=body.name,
        locale=body.locale,
        active=True,
        created_at=utcnow(),
    )
    session.add(kiosk)
    await session.flush()
    return kiosk


async def get_kiosk(session: AsyncSession, *, workspace_id: str, kiosk_id: str) -> Kiosk:
    """Return the workspace's kiosk or raise ``NotFound``."""
    kiosk = await session.get(Kiosk, kiosk_id) if is_uuid(kiosk_id) else None
    if kiosk is None or kiosk.workspace_id != workspace_id:
        raise NotFound(f"No kiosk {kiosk_id!r} in this workspace.", field="kiosk_id")
    return kiosk


async def list_kiosks(session: AsyncSession, *, workspace_id: str) -> list[Kiosk]:
    """Return the workspace's kiosks, oldest first."""
    rows = await session.scalars(
        select(Kiosk).where(Kiosk.workspace_id == workspace_id).order_by(Kiosk.created_at, Kiosk.id)
    )
    return list(rows)


async def kiosk_by_key(session: AsyncSession, *, key: str) -> Kiosk:
    """Return the active kiosk behind a public key or raise ``NotFound``."""
    kiosk = (
        await session.scalar(select(Kiosk).where(Kiosk.key == key))
        if re.fullmatch(r"[A-Za-z0-9_-]{8,64}", key)
        else None
    )
    if kiosk is None or not kiosk.active:
        raise NotFound("This survey is no longer available.", field="key")
    survey = await session.get(Survey, kiosk.survey_id)
    if survey is not None and survey.closed_at is not None:
        raise SurveyClosed("This survey is closed and no longer takes responses.", field="survey_id")
    return kiosk


def kiosk_session_token(kiosk: Kiosk, *, secret: str, ttl_s: int) -> str:
    """Return a fresh link for one anonymous kiosk respondent."""
    link = SurveyLink(
        workspace_id=kiosk.workspace_id,
        invitation_id=KIOSK + new_id(),
        request_id=KIOSK + kiosk.id,
        survey_id=kiosk.survey_id,
        contact_id=KIOSK + kiosk.location_id,
        kind="relationship",
        channel="link",
        locale=kiosk.locale,
        context={"location": kiosk.location_id},
    )
    return issue_link_token(secret, link, ttl_s=ttl_s)


# --- rewards -------------------------------------------------------------------------------


async def _pool(session: AsyncSession, workspace_id: str, pool_id: str) -> RewardPool | None:
    pool = await session.get(RewardPool, pool_id) if is_uuid(pool_id) else None
    return pool if pool is not None and pool.workspace_id == workspace_id else None


async def create_pool(session: AsyncSession, *, workspace_id: str, name: str) -> RewardPool:
    """Return a new, empty reward pool."""
    pool = RewardPool(id=new_id(), workspace_id=workspace_id, name=name, created_at=utcnow())
    session.add(pool)
    await session.flush()
    return pool


async def get_pool(session: AsyncSession, *, workspace_id: str, pool_id: str) -> tuple[RewardPool, int, int]:
    """Return the pool with its total and remaining code counts, or raise ``NotFound``."""
    pool = await _pool(session, workspace_id, pool_id)
    if pool is None:
        raise NotFound(f"No reward pool {pool_id!r} in this workspace.", field="pool_id")
    total, remaining = (
        await session.execute(
            select(func.count(), func.count().filter(RewardCode.response_id.is_(None))).where(
                RewardCode.pool_id == pool.id
            )
        )
    ).one()
    return pool, total, remaining


async def add_codes(session: AsyncSession, *, workspace_id: str, pool_id: str, codes: Sequence[str]) -> int:
    """Return how many of ``codes`` were new to the pool (duplicates are skipped)."""
    pool, _, _ = await get_pool(session, workspace_id=workspace_id, pool_id=pool_id)
    unique = list(dict.fromkeys(codes))
    result = await session.execute(
        insert(RewardCode)
        .values([{"pool_id": pool.id, "workspace_id": workspace_id, "code": c} for c in unique])
        .on_conflict_do_nothing(index_elements=["pool_id", "code"])
        .returning(RewardCode.id)
    )
    return len(result.all())


# --- reading responses ---------------------------------------------------------------------


async def list_responses(
    session: AsyncSession, *, workspace_id: str, survey_id: str, limit: int, status: str | None = None
) -> list[tuple[Response, list[ResponseAnswer]]]:
    """Return the survey's newest responses (completed, partial or both) with their answers in order."""
    query = select(Response).where(Response.workspace_id == workspace_id, Response.survey_id == survey_id)
    if status == "completed":
        query = query.where(Response.completed_at.is_not(None))
    elif status == "partial":
        query = query.where(Response.completed_at.is_(None))
    responses = (
        await session.scalars(query.order_by(Response.updated_at.desc(), Response.id).limit(limit))
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


async def drop_off(session: AsyncSession, *, survey: Survey) -> dict[str, Any]:
    """Return started and completed counts and, per question of the current version, how many
    responses answered it and how many partial responses stopped right after it."""
    started, completed = (
        await session.execute(
            select(func.count(), func.count(Response.completed_at)).where(Response.survey_id == survey.id)
        )
    ).one()
    answered = dict(
        (
            await session.execute(
                select(ResponseAnswer.question_id, func.count())
                .join(Response, Response.id == ResponseAnswer.response_id)
                .where(Response.survey_id == survey.id)
                .group_by(ResponseAnswer.question_id)
            )
        ).all()
    )
    last = (
        select(ResponseAnswer.question_id)
        .join(Response, Response.id == ResponseAnswer.response_id)
        .where(Response.survey_id == survey.id, Response.completed_at.is_(None))
        .ext(distinct_on(ResponseAnswer.response_id))
        .order_by(
            ResponseAnswer.response_id, ResponseAnswer.answered_at.desc(), ResponseAnswer.position.desc()
        )
        .subquery()
    )
    stopped: dict[str, int] = dict(
        (await session.execute(select(last.c.question_id, func.count()).group_by(last.c.question_id))).all()
    )
    version = await get_version(session, survey=survey)
    questions = [q for q in Definition.of(version.version, version.definition).questions if q.asked]
    return {
        "survey_id": survey.id,
        "started": started,
        "completed": completed,
        "completion_rate": round(completed / started, 4) if started else None,
        "questions": [
            {
                "question_id": q.id,
                "type": q.type,
                "answered": answered.get(q.id, 0),
                "last_answered": stopped.get(q.id, 0),
            }
            for q in questions
        ],
    }


async def on_contact_erased(session: AsyncSession, event: ContactErased) -> None:
    """Blank the free-text answers and hidden fields of the erased contact's responses."""
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
        .values(erased_at=event.erased_at, hidden_fields={})
    )
