"""Routes for invitations, their reminders and the funnel report."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from services.dispatch import domain, queries
from services.dispatch.deps import DispatchRuntime, RuntimeDep
from services.dispatch.handlers.links import short_url
from services.dispatch.schemas import FunnelOut, FunnelStep, InvitationOut, InvitationStatus, ReminderOut
from shared.access import Permission
from shared.errors import InvalidInput
from shared.guard import GuardedRoute, requires
from shared.paging import Cursor, link_next
from shared.service import SessionDep, WorkspaceDep

router = APIRouter(route_class=GuardedRoute)


def _invitation_out(runtime: DispatchRuntime, row: Any) -> InvitationOut:
    out = InvitationOut.model_validate(row)
    out.short_url = short_url(runtime.settings, row)
    steps = domain.funnel_steps(
        {stage: getattr(row, column) for stage, column in domain.STAGE_COLUMNS.items()}
    )
    out.funnel = {
        stage: FunnelStep(reached=step.reached, at=step.at, inferred=step.inferred)
        for stage, step in steps.items()
    }
    return out


@router.get(
    "/v1/invitations",
    tags=["invitations"],
    summary="List invitations, newest first, a page at a time",
    description="The body is the page (a JSON array, as it always was); when there is a next page the "
    '`Link: <…>; rel="next"` header holds its URL and `X-Next-Cursor` its cursor. Pass `cursor` to read on.',
    dependencies=[requires(Permission.CONTACTS_READ)],
)
async def list_invitations(
    request: Request,
    response: Response,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
    contact_id: Annotated[str | None, Query(max_length=200)] = None,
    survey_id: Annotated[str | None, Query(max_length=64)] = None,
    request_id: Annotated[str | None, Query(max_length=64, description="the survey request's id")] = None,
    channel: Annotated[str | None, Query(max_length=20)] = None,
    status: InvitationStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Page size, at most 200")] = 50,
    cursor: Cursor = None,
) -> list[InvitationOut]:
    rows, next_cursor = await queries.list_invitations(
        session,
        workspace_id=workspace,
        contact_id=contact_id,
        survey_id=survey_id,
        status=status,
        limit=limit,
        request_id=request_id,
        channel=channel,
        cursor=cursor,
    )
    link_next(request, response, next_cursor)
    return [_invitation_out(runtime, row) for row in rows]


@router.get(
    "/v1/invitations/{invitation_id}",
    tags=["invitations"],
    summary="Read an invitation: its status, recipient, survey link, funnel steps and last error",
    dependencies=[requires(Permission.CONTACTS_READ)],
)
async def get_invitation(
    invitation_id: Annotated[uuid.UUID, Path()],
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> InvitationOut:
    invitation = await queries.get_invitation(
        session, workspace_id=workspace, invitation_id=str(invitation_id)
    )
    return _invitation_out(runtime, invitation)


@router.get(
    "/v1/invitations/{invitation_id}/reminders",
    tags=["invitations"],
    summary="List an invitation's reminders: scheduled, sent, cancelled or failed",
    dependencies=[requires(Permission.CONTACTS_READ)],
)
async def list_reminders(
    invitation_id: Annotated[uuid.UUID, Path()], workspace: WorkspaceDep, session: SessionDep
) -> list[ReminderOut]:
    await queries.get_invitation(session, workspace_id=workspace, invitation_id=str(invitation_id))
    rows = await queries.reminders_of(session, invitation_id=str(invitation_id))
    return [ReminderOut.model_validate(r) for r in rows]


@router.get(
    "/v1/funnel",
    tags=["invitations"],
    summary="The funnel invited → delivered → opened → clicked → started → completed",
    description="Counts invitations by how far they got; a later step implies the earlier ones "
    "(opens are reported unreliably, a started survey was certainly clicked). `observed` says how many "
    "of each step were seen (a provider callback, the short link or open pixel, a response), `inferred` "
    "how many are counted only because a later step was. Filter by survey, channel, template and "
    "creation time; `group_by` returns one funnel per value.",
    dependencies=[requires(Permission.METRICS_READ)],
)
async def get_funnel(
    workspace: WorkspaceDep,
    session: SessionDep,
    survey_id: Annotated[str | None, Query(max_length=64)] = None,
    channel: Annotated[str | None, Query(max_length=20)] = None,
    template_id: Annotated[str | None, Query(max_length=36)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    group_by: Literal["survey_id", "channel", "template_id"] | None = None,
) -> list[FunnelOut]:
    if since and until and since >= until:
        raise InvalidInput("since must be before until", field="since")
    rows = await queries.funnel(
        session,
        workspace_id=workspace,
        survey_id=survey_id,
        channel=channel,
        template_id=template_id,
        since=since,
        until=until,
        group_by=group_by,
    )
    out = []
    for row in rows:
        counts = {stage: row[stage] for stage in domain.FUNNEL_STAGES}
        observed = {stage: row[f"observed_{stage}"] for stage in domain.FUNNEL_STAGES}
        out.append(
            FunnelOut(
                group=row.get("group"),
                counts=counts,
                observed=observed,
                inferred={stage: counts[stage] - observed[stage] for stage in domain.FUNNEL_STAGES},
                rates=domain.funnel_rates(counts),
                bounced=row["bounced"],
                complained=row["complained"],
                failed=row["failed"],
                pending=row["pending"],
            )
        )
    return out
