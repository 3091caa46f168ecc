"""Settings another service owns and tells dispatch by event: branding belongs to responses
(``BrandingChanged``: its survey pages show it, dispatch puts it in every email), quiet hours to
trigger (``QuietHoursChanged``: it decides when to send; dispatch keeps them for what it schedules
itself — sends it delays, reminders).

Dispatch's own ``branding`` and ``quiet_hours`` settings (``PUT /v1/settings``) are deprecated and
still answer for one release. When both exist, **the owner's wins**: once a workspace's owner has
spoken, its latest value replaces dispatch's own for that concept — also when it says "no quiet
hours". An event older than the one already applied changes nothing (replays, late deliveries).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import domain, templates
from services.dispatch.models import Invitation, ReceivedSetting
from services.dispatch.schemas import Branding, QuietHours, WorkspaceConfig
from shared.events import BrandingChanged, QuietHoursChanged
from shared.vocabulary import SEND_CHANNELS

BRANDING = "branding"
QUIET_HOURS = "quiet_hours"


def branding_value(event: BrandingChanged) -> dict[str, Any]:
    """Return the branding an email can use from the owner's event: a one-line name, a #rrggbb colour
    (else the default), an https logo URL (an inline ``data:`` logo does not travel in email: the name
    shows instead) and the footer."""
    name = templates.header_text(event.name or "")[:100] or None
    colour = (
        event.primary_color if event.primary_color and domain.HEX_COLOUR.match(event.primary_color) else None
    )
    logo = event.logo_url if event.logo_url and event.logo_url.startswith("https://") else None
    footer = " ".join((event.footer or "").split())[:500] or None
    branding = Branding.model_validate(
        {"name": name, "logo_url": logo, "footer": footer, **({"colour": colour} if colour else {})}
    )
    return {BRANDING: branding.model_dump(mode="json")}


def quiet_hours_value(event: QuietHoursChanged) -> dict[str, Any]:
    """Return the owner's quiet hours (``None``: none) in dispatch's terms; raise ValueError when they
    are malformed (the event is then parked on the dead-letter topic, not half applied)."""
    if not event.start or not event.end:
        return {QUIET_HOURS: None}
    channels = [c for c in event.channels if c in SEND_CHANNELS] or list(SEND_CHANNELS)
    quiet = QuietHours.model_validate(
        {
            "start": event.start,
            "end": event.end,
            "channels": channels,
            "default_timezone": event.default_timezone or "UTC",
        }
    )
    return {QUIET_HOURS: quiet.model_dump(mode="json")}


async def receive(
    session: AsyncSession, *, event: BrandingChanged | QuietHoursChanged, concept: str, value: dict[str, Any]
) -> None:
    """Store the owner's value from ``event``, unless a newer one is already stored."""
    statement = insert(ReceivedSetting).values(
        workspace_id=event.workspace_id, concept=concept, value=value, changed_at=event.changed_at
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["workspace_id", "concept"],
            set_={"value": statement.excluded.value, "changed_at": statement.excluded.changed_at},
            where=ReceivedSetting.changed_at < statement.excluded.changed_at,
        )
    )


async def branding_changed(session: AsyncSession, *, event: BrandingChanged) -> None:
    """Apply responses' branding to the workspace's emails."""
    await receive(session, event=event, concept=BRANDING, value=branding_value(event))


async def quiet_hours_changed(session: AsyncSession, *, event: QuietHoursChanged, now: datetime) -> int:
    """Apply trigger's quiet hours to what dispatch schedules for the workspace; return how many held
    invitations were released to be judged again under the new hours (see ``release_held``)."""
    await receive(session, event=event, concept=QUIET_HOURS, value=quiet_hours_value(event))
    return await release_held(session, workspace_id=event.workspace_id, now=now)


async def release_held(session: AsyncSession, *, workspace_id: str, now: datetime) -> int:
    """Make the workspace's invitations that wait past their send time without having been tried (held
    back by quiet hours or a rate limit) due now, so the sender judges them again under the new quiet
    hours: shorter or lifted ones let them go at once, longer ones hold them again."""
    result = await session.execute(
        update(Invitation)
        .where(
            Invitation.workspace_id == workspace_id,
            Invitation.status == "scheduled",
            Invitation.attempts == 0,
            Invitation.next_attempt_at > func.greatest(Invitation.send_at, now),
        )
        .values(next_attempt_at=func.greatest(Invitation.send_at, now))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def received(
    session: AsyncSession, *, workspace_ids: Iterable[str]
) -> dict[str, dict[str, dict[str, Any]]]:
    """Return the owners' values per workspace and concept."""
    ids = set(workspace_ids)
    if not ids:
        return {}
    rows = (await session.scalars(select(ReceivedSetting).where(ReceivedSetting.workspace_id.in_(ids)))).all()
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(row.workspace_id, {})[row.concept] = row.value
    return out


def effective(own: WorkspaceConfig, owners: dict[str, dict[str, Any]]) -> WorkspaceConfig:
    """Return the workspace's settings with the owners' values in place of dispatch's own."""
    updates: dict[str, Any] = {}
    if BRANDING in owners:
        updates["branding"] = Branding.model_validate(owners[BRANDING][BRANDING])
    if QUIET_HOURS in owners:
        quiet = owners[QUIET_HOURS][QUIET_HOURS]
        updates["quiet_hours"] = QuietHours.model_validate(quiet) if quiet is not None else None
    return own.model_copy(update=updates) if updates else own
