"""Reward code pools: each completed response of a survey using one gets one code, never twice."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.responses.models import RewardCode, RewardPool
from shared.errors import NotFound
from shared.events import is_uuid, new_id, utcnow


async def find_pool(session: AsyncSession, *, workspace_id: str, pool_id: str) -> RewardPool | None:
    """Return the workspace's reward pool, or None."""
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
    pool = await find_pool(session, workspace_id=workspace_id, pool_id=pool_id)
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


async def list_pools(session: AsyncSession, *, workspace_id: str) -> list[tuple[RewardPool, int, int]]:
    """Return the workspace's pools, newest first, each with its total and remaining code counts."""
    rows = await session.execute(
        select(
            RewardPool,
            func.count(RewardCode.id),
            func.count(RewardCode.id).filter(RewardCode.response_id.is_(None)),
        )
        .outerjoin(RewardCode, RewardCode.pool_id == RewardPool.id)
        .where(RewardPool.workspace_id == workspace_id)
        .group_by(RewardPool.id)
        .order_by(RewardPool.created_at.desc())
        .limit(500)
    )
    return [(pool, total, remaining) for pool, total, remaining in rows.all()]


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


async def claim_reward(session: AsyncSession, *, pool_id: str, response_id: str) -> str | None:
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
