"""Routes for rules: create, list, read, replace, change, delete, dry-run, and the audit log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from services.trigger import queries
from services.trigger.deps import ActorDep, RuntimeDep, TriggerRuntime
from services.trigger.handlers import dryrun, rules
from services.trigger.models import Rule
from services.trigger.schemas.rules import AuditEntry as AuditOut
from services.trigger.schemas.rules import DryRunRequest, DryRunResult, RuleCreate, RuleOut, RulePatch
from shared.access import Permission
from shared.guard import GuardedRoute, requires
from shared.paging import PAGED, Cursor, link_next
from shared.service import SessionDep, WorkspaceDep

router = APIRouter(route_class=GuardedRoute, tags=["rules"])


def _rule_out(r: Rule) -> RuleOut:
    """Return the rule as the API shows it."""
    return RuleOut.model_validate(
        {
            **rules.rule_snapshot(r),
            "id": r.id,
            "version": r.version,
            "created_at": r.created_at,
            "updated_at": r.updated_at,
        }
    )


@router.post(
    "/v1/rules",
    status_code=status.HTTP_201_CREATED,
    summary="Create a trigger rule: which event, conditions, survey, channel, timing, sampling, caps",
    dependencies=[requires(Permission.RULES_WRITE)],
)
async def create_rule(
    body: RuleCreate, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep, actor: ActorDep
) -> RuleOut:
    return _rule_out(
        await rules.create_rule(session, runtime.deps.caches, workspace_id=workspace, body=body, actor=actor)
    )


@router.get(
    "/v1/rules",
    summary="List the workspace's rules",
    dependencies=[requires(Permission.RULES_READ)],
)
async def list_rules(workspace: WorkspaceDep, session: SessionDep) -> list[RuleOut]:
    return [_rule_out(r) for r in await queries.list_rules(session, workspace_id=workspace)]


@router.post(
    "/v1/rules/dry-run",
    summary="For this event and contact: which rules match, what would happen, and why (writes nothing)",
    dependencies=[requires(Permission.RULES_READ)],
)
async def dry_run(
    body: DryRunRequest, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> DryRunResult:
    return await dryrun.dry_run(
        session, runtime.deps.caches, workspace_id=workspace, body=body, now=runtime.deps.clock.now()
    )


@router.get(
    "/v1/rules/{rule_id}",
    summary="Read a rule",
    dependencies=[requires(Permission.RULES_READ)],
)
async def get_rule(rule_id: str, workspace: WorkspaceDep, session: SessionDep) -> RuleOut:
    return _rule_out(await rules.find_rule(session, workspace_id=workspace, rule_id=rule_id))


async def _change_rule(
    session: AsyncSession,
    runtime: TriggerRuntime,
    workspace: str,
    rule_id: str,
    changes: dict[str, Any],
    actor: str,
    *,
    replace: bool,
) -> RuleOut:
    """Change the workspace's rule (all its fields when ``replace``, else only those in ``changes``)."""
    caches = runtime.deps.caches
    rule = await rules.change_rule(
        session,
        caches,
        workspace_id=workspace,
        rule_id=rule_id,
        changes=changes,
        actor=actor,
        replace=replace,
    )
    return _rule_out(rule)


@router.put(
    "/v1/rules/{rule_id}",
    summary="Replace a rule (audited; the version goes up)",
    dependencies=[requires(Permission.RULES_WRITE)],
)
async def replace_rule(
    rule_id: str,
    body: RuleCreate,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: ActorDep,
) -> RuleOut:
    return await _change_rule(
        session, runtime, workspace, rule_id, body.model_dump(mode="json"), actor, replace=True
    )


@router.patch(
    "/v1/rules/{rule_id}",
    summary="Change some fields of a rule, e.g. enable or disable it (audited)",
    dependencies=[requires(Permission.RULES_WRITE)],
)
async def patch_rule(
    rule_id: str,
    body: RulePatch,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: ActorDep,
) -> RuleOut:
    changes = rules.rule_patch_changes(body)
    return await _change_rule(session, runtime, workspace, rule_id, changes, actor, replace=False)


@router.delete(
    "/v1/rules/{rule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a rule (audited; its past decisions stay)",
    dependencies=[requires(Permission.RULES_WRITE)],
)
async def delete_rule(
    rule_id: str, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep, actor: ActorDep
) -> Response:
    await rules.delete_rule(
        session, runtime.deps.caches, workspace_id=workspace, rule_id=rule_id, actor=actor
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/v1/rules/{rule_id}/history",
    summary="Who changed a rule, when, and what",
    dependencies=[requires(Permission.RULES_READ)],
)
async def rule_history(rule_id: str, workspace: WorkspaceDep, session: SessionDep) -> list[AuditOut]:
    rows = await queries.rule_history(session, workspace_id=workspace, rule_id=rule_id)
    return [AuditOut.model_validate(a) for a in rows]


@router.get(
    "/v1/audit",
    summary="The workspace's audit log: rules, settings, integrations; newest first, a page at a time",
    description=PAGED,
    dependencies=[requires(Permission.SETTINGS_READ)],
)
async def audit_log(
    request: Request,
    response: Response,
    workspace: WorkspaceDep,
    session: SessionDep,
    entity: Annotated[str | None, Query(pattern="^(rule|settings|integration)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size, at most 500")] = 100,
    cursor: Cursor = None,
) -> list[AuditOut]:
    rows, next_cursor = await queries.audit_log(
        session, workspace_id=workspace, entity=entity, limit=limit, cursor=cursor
    )
    link_next(request, response, next_cursor)
    return [AuditOut.model_validate(a) for a in rows]
