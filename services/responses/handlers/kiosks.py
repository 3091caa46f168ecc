"""Kiosks: public per-location links (a tablet, a QR poster) that start a fresh anonymous response
for each person."""

from __future__ import annotations

import re
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.responses.handlers.errors import KioskSwitchedOff, SurveyClosed
from services.responses.handlers.surveys import get_survey
from services.responses.handlers.visits import KIOSK
from services.responses.models import Kiosk, Survey
from services.responses.schemas import KioskCreate
from shared.errors import NotFound
from shared.events import is_uuid, new_id, utcnow
from shared.survey_links import SurveyLink, issue_link_token


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


async def active_kiosk(session: AsyncSession, *, workspace_id: str, kiosk_id: str) -> Kiosk:
    """Return the workspace's kiosk while it is switched on; raise ``KioskSwitchedOff`` (410) after, like
    its page, so that its QR code is no longer handed out for printing."""
    kiosk = await get_kiosk(session, workspace_id=workspace_id, kiosk_id=kiosk_id)
    if not kiosk.active:
        raise KioskSwitchedOff(
            f"Kiosk {kiosk_id!r} is switched off; its link and QR code no longer work.", field="kiosk_id"
        )
    return kiosk


async def deactivate_kiosk(session: AsyncSession, *, workspace_id: str, kiosk_id: str) -> Kiosk:
    """Return the workspace's kiosk, switched off: its URL shows 'no longer available'; its responses stay."""
    kiosk = await get_kiosk(session, workspace_id=workspace_id, kiosk_id=kiosk_id)
    kiosk.active = False
    await session.flush()
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
