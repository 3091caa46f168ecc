"""The workspace settings: the contact-frequency cap, quiet hours and default time zone (audited).

Quiet hours are this service's to keep (it decides when to send); a change is published as
``QuietHoursChanged`` through the outbox, so that dispatch applies them to what it schedules itself
(reminders)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from services.trigger.caches import Caches
from services.trigger.handlers.audit import audit_settings
from services.trigger.handlers.tx import outbox_row, write_outbox
from services.trigger.models import WorkspaceSettings
from services.trigger.schemas.settings import WorkspaceSettings as SettingsBody
from shared.errors import InvalidInput
from shared.events import QuietHoursChanged
from shared.outbox import Outbox
from shared.vocabulary import SEND_CHANNELS


def settings_out(row: WorkspaceSettings | None) -> SettingsBody:
    """Return the settings as the API shows them (the defaults when the workspace has none)."""
    if row is None:
        return SettingsBody()
    return SettingsBody.model_validate(
        {
            "frequency_cap": {"max_surveys": row.cap_max_surveys, "days": row.cap_days}
            if row.cap_max_surveys
            else None,
            "quiet_hours": {
                "start": row.quiet_start,
                "end": row.quiet_end,
                "channels": list(row.quiet_channels or SEND_CHANNELS),
                "default_timezone": row.default_timezone,
            }
            if row.quiet_start
            else None,
            "default_timezone": row.default_timezone,
        }
    )


def _timezone(body: SettingsBody) -> str:
    """Return the default time zone ``body`` sets, given at the top, in ``quiet_hours`` or both alike."""
    top = body.default_timezone if "default_timezone" in body.model_fields_set else None
    quiet = body.quiet_hours.default_timezone if body.quiet_hours else None
    if top is not None and quiet is not None and top != quiet:
        raise InvalidInput(
            f"default_timezone is {top!r} but quiet_hours.default_timezone is {quiet!r}: they are one "
            "setting; give it once, or twice alike",
            field="quiet_hours.default_timezone",
        )
    return quiet or top or "UTC"


async def put_settings(
    session: AsyncSession,
    caches: Caches,
    outbox: Outbox,
    *,
    workspace_id: str,
    body: SettingsBody,
    actor: str,
    now: datetime,
) -> SettingsBody:
    """Return the workspace settings after replacing them; the change is audited, and a change of the
    quiet hours (or the time zone they are kept in) publishes ``QuietHoursChanged``."""
    timezone = _timezone(body)
    row = await session.get(WorkspaceSettings, workspace_id, with_for_update=True)
    before = settings_out(row)
    audited_before = before.model_dump(mode="json") if row is not None else None
    if row is None:
        row = WorkspaceSettings(workspace_id=workspace_id)
        session.add(row)
    quiet = body.quiet_hours
    row.cap_max_surveys = body.frequency_cap.max_surveys if body.frequency_cap else None
    row.cap_days = body.frequency_cap.days if body.frequency_cap else None
    row.quiet_start = quiet.start if quiet else None
    row.quiet_end = quiet.end if quiet else None
    row.quiet_channels = list(quiet.channels) if quiet else []
    row.default_timezone = timezone
    row.updated_at = func.now()
    after = settings_out(row)
    audit_settings(
        session,
        workspace_id=workspace_id,
        actor=actor,
        before=audited_before,
        after=after.model_dump(mode="json"),
    )
    if (before.quiet_hours, before.default_timezone) != (after.quiet_hours, after.default_timezone):
        changed = QuietHoursChanged(
            workspace_id=workspace_id,
            start=after.quiet_hours.start if after.quiet_hours else None,
            end=after.quiet_hours.end if after.quiet_hours else None,
            channels=tuple(after.quiet_hours.channels) if after.quiet_hours else (),
            default_timezone=after.default_timezone,
            changed_at=now,
        )
        await write_outbox(session, outbox, [outbox_row(outbox, changed)])
    await session.flush()
    caches.workspaces.invalidate(workspace_id)
    return after
