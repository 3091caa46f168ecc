"""Routes for reading a survey's responses and its drop-off per question."""

from __future__ import annotations

from typing import Annotated, Literal

import fastapi
from fastapi import APIRouter, Path, Query, Request

from services.responses import queries
from services.responses.handlers import surveys
from services.responses.models import Response, ResponseAnswer
from services.responses.schemas import AnswerOut, DropOffOut, ResponseOut
from shared.access import Permission
from shared.errors import NotFound
from shared.guard import GuardedRoute, requires
from shared.paging import PAGED, Cursor, link_next
from shared.rows import from_row
from shared.service import SessionDep, WorkspaceDep

router = APIRouter(route_class=GuardedRoute, tags=["responses"])


@router.get(
    "/v1/surveys/{survey_id}/responses",
    summary="The survey's responses (completed and partial) with their answers, newest first, a page at a time",
    description=PAGED,
    dependencies=[requires(Permission.RESPONSES_READ)],
)
async def list_responses(
    request: Request,
    response: fastapi.Response,
    survey_id: str,
    workspace: WorkspaceDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size, at most 1000")] = 100,
    status_: Annotated[Literal["completed", "partial"] | None, Query(alias="status")] = None,
    cursor: Cursor = None,
) -> list[ResponseOut]:
    survey = await surveys.get_survey(session, workspace_id=workspace, survey_id=survey_id)
    rows, next_cursor = await queries.list_responses(
        session, workspace_id=workspace, survey_id=survey.id, limit=limit, status=status_, cursor=cursor
    )
    link_next(request, response, next_cursor)
    return [_response_out(r, answers) for r, answers in rows]


@router.get(
    "/v1/responses/{response_id}",
    summary="One response with its answers (completed or partial)",
    dependencies=[requires(Permission.RESPONSES_READ)],
)
async def get_response(
    response_id: Annotated[str, Path(min_length=1, max_length=64)],
    workspace: WorkspaceDep,
    session: SessionDep,
) -> ResponseOut:
    found = await queries.get_response(session, workspace_id=workspace, response_id=response_id)
    if found is None:
        raise NotFound(f"No response {response_id!r} in this workspace.", field="response_id")
    return _response_out(*found)


@router.get(
    "/v1/surveys/{survey_id}/dropoff",
    summary="Drop-off per question: started, completed, and where partial responses stopped",
    dependencies=[requires(Permission.METRICS_READ)],
)
async def drop_off(survey_id: str, workspace: WorkspaceDep, session: SessionDep) -> DropOffOut:
    survey = await surveys.get_survey(session, workspace_id=workspace, survey_id=survey_id)
    return DropOffOut(**await queries.drop_off(session, survey=survey))


def _response_out(r: Response, answers: list[ResponseAnswer]) -> ResponseOut:
    return from_row(
        ResponseOut,
        r,
        status="completed" if r.completed_at else "partial",
        erased=r.erased_at is not None,
        answers=[from_row(AnswerOut, a) for a in answers],
    )
