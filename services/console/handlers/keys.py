"""API keys: made with a role, a label and an optional expiry (the secret is shown once and kept
nowhere), listed, revoked (``KeyRevoked`` through the outbox: every service refuses the key within
seconds), and their last use recorded from ``KeyUsed``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.console.models import ApiKey
from shared.access import (
    KEY_ROLES,
    Keyring,
    Principal,
    Role,
    issue_api_key,
    key_prefix,
    may_grant,
    new_key_id,
)
from shared.errors import Forbidden, InvalidInput, NotFound
from shared.events import KeyRevoked, KeyUsed
from shared.outbox import Outbox


@dataclass(frozen=True)
class CreatedKey:
    secret: str
    """The whole key: shown once, stored nowhere."""
    row: ApiKey


def check_grant(granter: Role, role: Role, *, field: str = "role") -> None:
    """Refuse a role the granter could not act as themselves (403), and owner for keys (422)."""
    if role not in KEY_ROLES:
        raise InvalidInput(
            f"An API key's role is one of {', '.join(KEY_ROLES)}: owners are people.", field=field
        )
    if not may_grant(granter, role):
        raise Forbidden(
            f"A key with the role '{role}' could do more than your role '{granter}' may; choose a role "
            "with fewer permissions.",
            field=field,
        )


async def create_key(
    session: AsyncSession,
    keyring: Keyring,
    *,
    workspace_id: str,
    role: Role,
    label: str,
    expires_at: datetime | None,
    created_by: str,
    now: datetime,
) -> CreatedKey:
    """Return a new key of ``workspace_id`` (its secret and the row describing it)."""
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("The expiry must be in the future.", field="expires_at")
    key_id = new_key_id()
    secret = issue_api_key(
        keyring,
        workspace_id,
        role=role,
        key_id=key_id,
        expires_at=int(expires_at.timestamp()) if expires_at else None,
    )
    row = ApiKey(
        key_id=key_id,
        workspace_id=workspace_id,
        prefix=key_prefix(secret),
        role=role.value,
        label=label.strip() or "API key",
        created_by=created_by,
        created_at=now,
        expires_at=expires_at.replace(microsecond=0) if expires_at else None,
    )
    session.add(row)
    return CreatedKey(secret, row)


async def list_keys(
    session: AsyncSession, *, workspace_id: str, include_revoked: bool = False
) -> list[ApiKey]:
    """Return the workspace's keys, newest first."""
    query = select(ApiKey).where(ApiKey.workspace_id == workspace_id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return list((await session.scalars(query.order_by(ApiKey.created_at.desc(), ApiKey.key_id))).all())


async def revoke_key(
    session: AsyncSession,
    outbox: Outbox,
    *,
    workspace_id: str,
    key_id: str,
    by: Principal | str,
    now: datetime,
) -> ApiKey:
    """Revoke the key and publish ``KeyRevoked``; revoking twice changes nothing."""
    row = await session.get(ApiKey, key_id, with_for_update=True)
    if row is None or row.workspace_id != workspace_id:
        raise NotFound(f"This workspace has no API key {key_id!r}.", field="key_id")
    if row.revoked_at is not None:
        return row
    actor = by.actor if isinstance(by, Principal) else by
    row.revoked_at, row.revoked_by = now, actor
    await outbox.add(
        session,
        KeyRevoked(
            workspace_id=workspace_id,
            key_id=key_id,
            revoked_at=now,
            expires_at=row.expires_at,
            revoked_by=actor,
        ),
    )
    return row


async def record_usage(session: AsyncSession, *, event: KeyUsed) -> None:
    """Move the key's "last used" forward to ``event.used_at`` (never back: events may arrive late)."""
    await session.execute(
        update(ApiKey)
        .where(ApiKey.key_id == event.key_id, ApiKey.workspace_id == event.workspace_id)
        .values(last_used_at=func.greatest(func.coalesce(ApiKey.last_used_at, event.used_at), event.used_at))
    )
