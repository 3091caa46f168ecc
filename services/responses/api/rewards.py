"""Routes for reward code pools."""

from __future__ import annotations

from fastapi import APIRouter, status

from services.responses.handlers import rewards
from services.responses.models import RewardPool
from services.responses.schemas import RewardCodesAdd, RewardPoolCreate, RewardPoolOut
from shared.access import Permission
from shared.guard import GuardedRoute, requires
from shared.service import SessionDep, WorkspaceDep

router = APIRouter(route_class=GuardedRoute, tags=["rewards"])


def _pool_out(pool: RewardPool, total: int, remaining: int) -> RewardPoolOut:
    return RewardPoolOut(
        id=pool.id, name=pool.name, total=total, remaining=remaining, created_at=pool.created_at
    )


@router.post(
    "/v1/reward-pools",
    status_code=status.HTTP_201_CREATED,
    summary="Create a pool of reward codes",
    dependencies=[requires(Permission.SURVEYS_WRITE)],
)
async def create_pool(body: RewardPoolCreate, workspace: WorkspaceDep, session: SessionDep) -> RewardPoolOut:
    pool = await rewards.create_pool(session, workspace_id=workspace, name=body.name)
    return _pool_out(pool, total=0, remaining=0)


@router.get(
    "/v1/reward-pools",
    summary="The workspace's reward pools with their remaining codes, newest first",
    dependencies=[requires(Permission.SURVEYS_READ)],
)
async def list_pools(workspace: WorkspaceDep, session: SessionDep) -> list[RewardPoolOut]:
    return [_pool_out(*row) for row in await rewards.list_pools(session, workspace_id=workspace)]


@router.get(
    "/v1/reward-pools/{pool_id}",
    summary="A pool with its remaining codes",
    dependencies=[requires(Permission.SURVEYS_READ)],
)
async def get_pool(pool_id: str, workspace: WorkspaceDep, session: SessionDep) -> RewardPoolOut:
    return _pool_out(*await rewards.get_pool(session, workspace_id=workspace, pool_id=pool_id))


@router.post(
    "/v1/reward-pools/{pool_id}/codes",
    summary="Add codes to a pool (codes already in it are skipped); each is given out once",
    dependencies=[requires(Permission.SURVEYS_WRITE)],
)
async def add_codes(
    pool_id: str, body: RewardCodesAdd, workspace: WorkspaceDep, session: SessionDep
) -> RewardPoolOut:
    await rewards.add_codes(session, workspace_id=workspace, pool_id=pool_id, codes=body.codes)
    return _pool_out(*await rewards.get_pool(session, workspace_id=workspace, pool_id=pool_id))
