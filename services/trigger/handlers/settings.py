"""The workspace settings: the contact-frequency cap, quiet hours and default time zone (audited)."""

from __future__ import annotations

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from services.trigger.caches import Caches
from services.trigger.handlers.audit import audit
from services.trigger.models import WorkspaceSettings
from services.trigger.schemas.settings import WorkspaceSettings as SettingsBody


def settings_out(row: WorkspaceSettings | None) -> SettingsBody:
    """Return the settings as the API shows them (the defaults when the workspace has none)."""
    if row is None:
        return SettingsBody()
    return SettingsBody.model_validate(
        {
            "frequency_cap": {"max_surveys": row.cap_max_surveys, "days": row.cap_days}
            if row.cap_max_surveys
            else None,
            "quiet_hours": {"start": row.quiet_start, "end": row.quiet_end} if row.quiet_start else None,
            "default_timezone": row.default_timezone,
        }
    )


async def put_settings(
    session: AsyncSession, caches: Caches, *, workspace_id: str, body: SettingsBody, actor: str
) -> SettingsBody:
    """Return the workspace settings after replacing them; the change is audited."""
    row = await session.get(WorkspaceSettings, workspace_id, with_for_update=True)
    before = settings_out(row).model_dump(mode="json") if row else None
    if row is None:
        row = WorkspaceSettings(workspace_id=workspace_id)
        session.add(row)
    row.cap_max_surveys = body.frequency_cap.max_surveys if body.frequency_cap else None
    row.cap_days = body.frequency_cap.days if body.frequency_cap else None
    row.quiet_start = body.quiet_hours.start if body.quiet_hours else None
    row.quiet_end = body.quiet_hours.end if body.quiet_hours else None
    row.default_timezone = body.default_timezone
    row.updated_at = func.now()  # type: ignore[assignment]
    after = body.model_dump(mode="json")
    if before != after:
        audit(
            session,
            workspace_id=workspace_id,
            entity="settings",
            entity_id=workspace_id,
            action="updated",
            actor=actor,
            before=before,
            after=after,
        )
    await session.flush()
    caches.workspaces.invalidate(workspace_id)
    return body
