"""A respondent at a survey link: reading the signed link, and opening the visit behind it (the
survey version they answer, their response so far, the kiosk they stand at)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy import and_, exists, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.responses.domain.answers import clean_context
from services.responses.domain.definition import Definition, LocalText, Question, for_respondent
from services.responses.domain.languages import (
    LOCALE,
    fill,
    locale_chain,
    localize,
    page_locale,
    survey_locales,
)
from services.responses.domain.logic import Progress, next_step, progress
from services.responses.handlers.erasure import is_erased
from services.responses.handlers.errors import INVALID_LINK, LinkExpired, SurveyClosed
from services.responses.models import (
    Kiosk,
    Response,
    ResponseAnswer,
    Survey,
    SurveyVersion,
    WorkspaceSettings,
    erased_contacts,
)
from shared.erasure import contact_hash
from shared.errors import NotFound
from shared.events import Recipient, is_uuid
from shared.security import ExpiredToken, InvalidToken
from shared.survey_links import SurveyLink, read_link_token
from shared.vocabulary import CHANNELS, SEND_CHANNELS, SURVEY_KINDS

# verify_token compares strings with hmac.compare_digest, which refuses non-ASCII text with a
# TypeError; only well-formed tokens reach it.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,6000}(\.[A-Za-z0-9_-]{1,100})?$")  # opaque, or the first format
KIOSK = "kiosk:"
"""A kiosk respondent's link has no invitation: its invitation, request and contact ids start with this."""


def read_link(*, secret: str, token: str, previous: str | None = None) -> SurveyLink:
    """Return the survey link in ``token``; raise ``NotFound`` when it is forged or malformed, ``Gone`` when expired.

    ``previous`` (``CLOSELOOP_SECRET_KEY_PREVIOUS``) opens links made before a rotation of the secret."""
    if not _TOKEN.match(token):
        raise NotFound(INVALID_LINK, field="token")
    try:
        link = read_link_token(secret, token, previous=previous)
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
        or link.kind not in SURVEY_KINDS
        or link.channel not in CHANNELS
    ):
        raise NotFound(INVALID_LINK, field="token")
    return link


def link_locale(link: SurveyLink) -> str | None:
    """Return the link's locale when it looks like a language tag."""
    return link.locale if isinstance(link.locale, str) and LOCALE.match(link.locale) else None


def is_kiosk(link: SurveyLink) -> bool:
    """Return whether the link is an anonymous kiosk respondent's (no invitation behind it)."""
    return link.invitation_id.startswith(KIOSK)


def respondent(link: SurveyLink) -> Recipient | None:
    """Return who was invited, as the link carries them; None for anonymous (kiosk) links."""
    if is_kiosk(link) or not isinstance(link.respondent, dict):
        return None
    known = Recipient.model_fields
    return Recipient(**{k: v for k, v in link.respondent.items() if k in known and isinstance(v, str)})


def can_reach(link: SurveyLink) -> bool:
    """Return whether a person could contact whoever answers through ``link`` (only then is consent asked).

    A kiosk respondent is anonymous, and a respondent with neither an email address nor a phone number
    cannot be reached. A link without its respondent was issued before links carried one (first-format
    tokens, valid until they expire): it was sent to an address, unless its channel sends nothing.
    """
    if is_kiosk(link):
        return False
    if link.respondent is not None:
        who = respondent(link)
        return who is not None and who.reachable
    return link.channel in SEND_CHANNELS


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
    workspace_branding: dict[str, Any] | None = None
    """The workspace's own branding when it came with the visit (None: not read yet)."""

    @cached_property
    def reachable(self) -> bool:
        """Whether someone could contact this respondent about their answer."""
        return can_reach(self.link)

    @cached_property
    def questions(self) -> list[Question]:
        """The survey's questions as this respondent is asked them (no consent when unreachable)."""
        return for_respondent(self.definition.questions, reachable=self.reachable)

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


async def open_link(
    session: AsyncSession, *, secret: str, token: str, lock: bool = False, previous: str | None = None
) -> Visit:
    """Return the visit behind ``token``; raise ``NotFound``, ``Gone`` or ``SurveyClosed``.

    With ``lock`` the response row is locked until the transaction ends, so two submissions for
    one invitation take turns. Without it (a page shown), the survey, its version, the response, the
    workspace's branding and whether the contact was erased come in one statement.
    """
    link = read_link(secret=secret, token=token, previous=previous)
    loaded = await _load(session, link, with_response=not lock)
    if loaded is None or loaded.erased:
        if (
            loaded is None
            and not is_kiosk(link)
            and await is_erased(session, workspace_id=link.workspace_id, contact_id=link.contact_id)
        ):
            raise NotFound("This survey is no longer available.", field="token")
        raise NotFound("This survey is no longer available.", field="token" if loaded else "survey_id")
    survey = loaded.survey
    kiosk = None
    if is_kiosk(link):
        kiosk_id = link.request_id.removeprefix(KIOSK)
        kiosk = await session.get(Kiosk, kiosk_id) if is_uuid(kiosk_id) else None
        if kiosk is None or not kiosk.active or kiosk.workspace_id != link.workspace_id:
            raise NotFound("This survey is no longer available.", field="token")
    response = await find_response(session, link=link, lock=True) if lock else loaded.response
    version = loaded.version
    if version is None or (response is not None and response.survey_version != version.version):
        version = await session.get(
            SurveyVersion, (survey.id, response.survey_version if response else survey.version)
        )
    if version is None:  # pragma: no cover - versions are never deleted
        raise NotFound("This survey is no longer available.", field="survey_id")
    visit = Visit(
        link, survey, Definition.of(version.version, version.definition), clean_context(link.context)
    )
    visit.kiosk = kiosk
    visit.workspace_branding = loaded.branding
    if response is not None:
        visit.response = response
        rows = await session.scalars(select(ResponseAnswer).where(ResponseAnswer.response_id == response.id))
        visit.answers = {a.question_id: a.value for a in rows if a.value is not None}
    if survey.closed_at is not None and not visit.completed:
        raise SurveyClosed("This survey is closed and no longer takes responses.", field="survey_id")
    return visit


@dataclass
class _Loaded:
    survey: Survey
    version: SurveyVersion | None
    response: Response | None
    branding: dict[str, Any]
    erased: bool


async def _load(session: AsyncSession, link: SurveyLink, *, with_response: bool) -> _Loaded | None:
    """Return the link's survey with the version to answer, the workspace's own branding, whether the
    contact was erased and (``with_response``) the response started through the link; None when the
    survey does not exist. One statement: the survey page's whole read."""
    if not is_uuid(link.survey_id):
        return None
    ws = link.workspace_id
    erased = (
        literal(False)
        if is_kiosk(link)
        else exists().where(
            erased_contacts.c.workspace_id == ws,
            erased_contacts.c.contact_hash == contact_hash(link.contact_id),
        )
    )
    query = select(Survey, WorkspaceSettings.branding, erased.label("erased")).select_from(Survey)
    answering = SurveyVersion.version == Survey.version
    if with_response:
        query = query.add_columns(Response).outerjoin(
            Response, and_(Response.workspace_id == ws, Response.link_key == link.invitation_id)
        )
        answering = SurveyVersion.version == func.coalesce(Response.survey_version, Survey.version)
    query = (
        query.add_columns(SurveyVersion)
        .outerjoin(SurveyVersion, and_(SurveyVersion.survey_id == Survey.id, answering))
        .outerjoin(WorkspaceSettings, WorkspaceSettings.workspace_id == Survey.workspace_id)
        .where(Survey.workspace_id == ws, Survey.id == link.survey_id)
    )
    row = (await session.execute(query)).first()
    if row is None:
        return None
    return _Loaded(
        survey=row.Survey,
        version=row.SurveyVersion,
        response=row.Response if with_response else None,
        branding=dict(row.branding or {}),
        erased=bool(row.erased),
    )


async def find_response(session: AsyncSession, *, link: SurveyLink, lock: bool = False) -> Response | None:
    """Return the response already started through this link's invitation (locked with ``lock``), if any."""
    query = select(Response).where(
        Response.workspace_id == link.workspace_id, Response.link_key == link.invitation_id
    )
    return await session.scalar(query.with_for_update() if lock else query)
