"""The newest comments of a scope (what the console's overview and responses list show)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from services.scoring.api.params import ReportDep
from services.scoring.deps import RuntimeDep
from services.scoring.queries import reports
from services.scoring.queries.comments import newest_comments
from services.scoring.schemas import NewCommentsOut
from shared.access import Permission
from shared.guard import GuardedRoute, requires
from shared.service import SessionDep

router = APIRouter(route_class=GuardedRoute, tags=["themes"])


@router.get(
    "/v1/comments",
    summary="The scope's comments, newest first, with sentiment and themes; `q` keeps those containing a phrase",
    dependencies=[requires(Permission.RESPONSES_READ)],
)
async def comments(
    request: ReportDep,
    session: SessionDep,
    runtime: RuntimeDep,
    q: Annotated[
        str | None, Query(max_length=200, description="A phrase the comment contains (any case)")
    ] = None,
    label: Annotated[
        Literal["positive", "neutral", "negative"] | None, Query(description="Only this sentiment")
    ] = None,
    response_id: Annotated[
        str | None, Query(max_length=64, description="Only this response's comments")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> NewCommentsOut:
    scope = await reports.scope_for(session, request, default_scale=runtime.settings.default_nps_scale)
    rows = await newest_comments(
        session,
        scope,
        workspace_id=request.workspace_id,
        contains=q.strip() if q else None,
        label=label,
        response_id=response_id,
        limit=limit,
        offset=offset,
    )
    return NewCommentsOut(comments=rows)
