"""The console's reads for lists and pages."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.console.models import Membership, User
from services.console.schemas import MemberOut
from shared.access import Role


async def members(session: AsyncSession, *, workspace_id: str) -> list[MemberOut]:
    """Return the workspace's people with their roles, by name."""
    rows = await session.execute(
        select(User, Membership)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.workspace_id == workspace_id)
        .order_by(User.name, User.email)
    )
    return [
        MemberOut(user_id=u.id, email=u.email, name=u.name, role=Role(m.role), joined_at=m.created_at)
        for u, m in rows
    ]
