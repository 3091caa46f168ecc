"""Routes of the dispatch service: parse, call a handler, return."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query

from services.dispatch import handlers
from services.dispatch.schemas import InvitationOut, InvitationStatus
from shared.service import SessionDep, WorkspaceDep

router = APIRouter()


@router.get("/v1/invitations", tags=["invitations"], summary="List invitations, newest first")
async def list_invitations(
    workspace: WorkspaceDep,
    session: SessionDep,
    contact_id: Annotated[str | None, Query(max_length=200)] = None,
    survey_id: Annotated[str | None, Query(max_length=64)] = None,
    status: InvitationStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[InvitationOut]:
    rows = await handlers.list_invitations(
        session,
        workspace_id=workspace,
        contact_id=contact_id,
        survey_id=survey_id,
        status=status,
        limit=limit,
    )
    return [InvitationOut.model_validate(row) for row in rows]


@router.get(
    "/v1/invitations/{invitation_id}",
    tags=["invitations"],
    summary="Read an invitation: its status, recipient, survey link and last error",
)
async def get_invitation(
    invitation_id: Annotated[uuid.UUID, Path()], workspace: WorkspaceDep, session: SessionDep
) -> InvitationOut:
    invitation = await handlers.get_invitation(
        session, workspace_id=workspace, invitation_id=str(invitation_id)
    )
    return InvitationOut.model_validate(invitation)
