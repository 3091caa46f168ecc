"""The audit log: who changed a rule, the settings or an integration, when, and from what to what."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.trigger.models import AuditEntry
from shared.events import new_id


def audit(
    session: AsyncSession,
    *,
    workspace_id: str,
    entity: str,
    entity_id: str,
    action: str,
    actor: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Add an entry to the audit log, in the caller's transaction (the actor clipped to its column)."""
    session.add(
        AuditEntry(
            id=new_id(),
            workspace_id=workspace_id,
            entity=entity,
            entity_id=entity_id,
            action=action,
            actor=actor[:300],
            before=before,
            after=after,
        )
    )


def audit_settings(
    session: AsyncSession,
    *,
    workspace_id: str,
    actor: str,
    before: dict[str, Any] | None,
    after: dict[str, Any],
) -> None:
    """Add an entry to the audit log for a change of the workspace's settings (none when nothing changed)."""
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
