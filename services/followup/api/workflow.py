"""How cases are worked: the statuses they move through, when a response opens one besides negative
feedback, and the root causes a resolution names."""

from __future__ import annotations

from fastapi import APIRouter

from services.followup.domain import taxonomy as causes
from services.followup.domain.taxonomy import DEFAULT_TAXONOMY
from services.followup.handlers import config
from services.followup.handlers.common import config_of
from services.followup.models import WorkspaceSettings
from services.followup.schemas.config import (
    OpeningRulesIn,
    RootCausesIn,
    RootCausesOut,
    WorkflowIn,
    WorkflowOut,
)
from shared.access import Permission
from shared.errors import InvalidInput
from shared.guard import GuardedRoute, requires
from shared.service import SessionDep, WorkspaceDep

router = APIRouter(route_class=GuardedRoute, tags=["settings"])


def _workflow_out(s: WorkspaceSettings | None) -> WorkflowOut:
    workflow = config_of(s).workflow
    return WorkflowOut(
        custom_statuses=[{"name": c.name, "waits_on_customer": c.waits_on_customer} for c in workflow.custom],
        allow_backward=workflow.allow_backward,
        note_on_status_change=workflow.note_on_status_change,
        note_on_reassign=workflow.note_on_reassign,
        statuses=list(workflow.order),
    )


@router.get(
    "/v1/workflow",
    summary="The statuses cases move through, and when a note is required",
    dependencies=[requires(Permission.CASES_READ)],
)
async def get_workflow(workspace: WorkspaceDep, session: SessionDep) -> WorkflowOut:
    return _workflow_out(await config.get_settings(session, workspace_id=workspace))


@router.put(
    "/v1/workflow",
    summary="Set the workspace's own statuses and note requirements",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def put_workflow(body: WorkflowIn, workspace: WorkspaceDep, session: SessionDep) -> WorkflowOut:
    values = body.model_dump()
    config.check_workflow(values["custom_statuses"])
    await config.check_statuses_in_use(
        session, workspace_id=workspace, keep=[s.name for s in body.custom_statuses]
    )
    return _workflow_out(await config.put_settings(session, workspace_id=workspace, values=values))


@router.get(
    "/v1/opening-rules",
    summary="When a response opens a case besides negative feedback",
    dependencies=[requires(Permission.SETTINGS_READ)],
)
async def get_opening_rules(workspace: WorkspaceDep, session: SessionDep) -> OpeningRulesIn:
    s = await config.get_settings(session, workspace_id=workspace)
    return OpeningRulesIn(loyalty_cells=s.open_on_loyalty if s else [], score_below=s.open_below if s else {})


@router.put(
    "/v1/opening-rules",
    summary="Open cases on at-risk loyalty cells or low scores too",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def put_opening_rules(
    body: OpeningRulesIn, workspace: WorkspaceDep, session: SessionDep
) -> OpeningRulesIn:
    await config.put_settings(
        session,
        workspace_id=workspace,
        values={"open_on_loyalty": body.loyalty_cells, "open_below": body.score_below},
    )
    return body


@router.get(
    "/v1/root-causes",
    summary="The root-cause taxonomy resolutions name",
    dependencies=[requires(Permission.CASES_READ)],
)
async def get_root_causes(workspace: WorkspaceDep, session: SessionDep) -> RootCausesOut:
    s = await config.get_settings(session, workspace_id=workspace)
    custom = s.root_causes if s else None
    return RootCausesOut(taxonomy=custom or DEFAULT_TAXONOMY, default=custom is None)


@router.put(
    "/v1/root-causes",
    summary="Replace the root-cause taxonomy (category › cause)",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def put_root_causes(body: RootCausesIn, workspace: WorkspaceDep, session: SessionDep) -> RootCausesOut:
    if body.taxonomy is not None:
        try:
            causes.check_taxonomy(body.taxonomy)
        except ValueError as exc:
            raise InvalidInput(f"{exc}.", field="taxonomy") from exc
    await config.put_settings(session, workspace_id=workspace, values={"root_causes": body.taxonomy})
    return RootCausesOut(taxonomy=body.taxonomy or DEFAULT_TAXONOMY, default=body.taxonomy is None)
