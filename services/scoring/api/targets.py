"""Experience targets and notification rules."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, status
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring import domain
from services.scoring.deps import RuntimeDep, ScoringRuntime
from services.scoring.handlers import notify
from services.scoring.handlers import targets as handlers
from services.scoring.models import NotificationRule, Target
from services.scoring.queries.reports import r2
from services.scoring.schemas import NotificationRuleIn, NotificationRuleOut, TargetIn, TargetOut
from shared.access import Permission
from shared.guard import GuardedRoute, requires
from shared.service import SessionDep, WorkspaceDep

router = APIRouter(route_class=GuardedRoute, tags=["targets"])

TargetId = Annotated[str, Path(min_length=1, max_length=36, description="The target's id")]
RuleId = Annotated[str, Path(min_length=1, max_length=36, description="The rule's id")]


def _filters(body: TargetIn) -> list[str]:
    filters = list(body.filters)
    if body.team:
        filters.append(f"team={body.team}")
    return list(domain.parse_filters(filters, field_name="filters").as_filters())


def target_out(t: Target) -> TargetOut:
    """Return the target as the API shows it: its figure and interval to two decimals."""
    out = TargetOut.model_validate(t)
    return out.model_copy(update={"value": r2(out.value), "low": r2(out.low), "high": r2(out.high)})


def _values(body: TargetIn) -> dict[str, Any]:
    """Return the target's column values (``team`` is kept as one of its filters)."""
    return body.model_dump(exclude={"team"}) | {"filters": _filters(body)}


async def _save(
    session: AsyncSession,
    runtime: ScoringRuntime,
    workspace: str,
    body: TargetIn,
    target_id: str | None = None,
) -> TargetOut:
    """Store the target (a new one without ``target_id``); the evaluator wakes after the commit."""
    target = await handlers.save_target(
        session, workspace_id=workspace, now=runtime.deps.clock.now(), target_id=target_id, **_values(body)
    )
    runtime.deps.evaluator.wake_after_commit(session)
    return target_out(target)


@router.post(
    "/v1/targets",
    status_code=status.HTTP_201_CREATED,
    summary="Set an experience target: a metric in a scope, a threshold, a rolling window and an owner",
    description="Evaluated at once and then every `CLOSELOOP_SCORING_TARGET_INTERVAL_S`. Breached only when the "
    "whole 95% interval is on the wrong side of the threshold; at risk when the estimate is on the wrong side "
    "but the interval reaches it. Each change publishes `TargetStatusChanged` and notifications.",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def create_target(
    body: TargetIn, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> TargetOut:
    return await _save(session, runtime, workspace, body)


@router.get(
    "/v1/targets",
    summary="Every target with its status, value, n and interval",
    dependencies=[requires(Permission.METRICS_READ)],
)
async def list_targets(workspace: WorkspaceDep, session: SessionDep) -> list[TargetOut]:
    return [target_out(t) for t in await handlers.list_targets(session, workspace_id=workspace)]


@router.get(
    "/v1/targets/{target_id}",
    summary="A target with its status, value, n and interval",
    dependencies=[requires(Permission.METRICS_READ)],
)
async def get_target(target_id: TargetId, workspace: WorkspaceDep, session: SessionDep) -> TargetOut:
    return target_out(await handlers.get_target(session, workspace_id=workspace, target_id=target_id))


@router.put(
    "/v1/targets/{target_id}",
    summary="Change a target (re-evaluated at once)",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def put_target(
    target_id: TargetId, body: TargetIn, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> TargetOut:
    return await _save(session, runtime, workspace, body, target_id=target_id)


@router.delete(
    "/v1/targets/{target_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a target",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def delete_target(target_id: TargetId, workspace: WorkspaceDep, session: SessionDep) -> None:
    await handlers.delete_target(session, workspace_id=workspace, target_id=target_id)


def rule_out(r: NotificationRule) -> NotificationRuleOut:
    return NotificationRuleOut.model_validate(r)


@router.post(
    "/v1/notification-rules",
    status_code=status.HTTP_201_CREATED,
    summary="Tell a team channel about every low answer in a segment, whether or not the customer consented",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def create_rule(
    body: NotificationRuleIn, workspace: WorkspaceDep, session: SessionDep
) -> NotificationRuleOut:
    filters = list(domain.parse_filters(body.filters, field_name="filters").as_filters())
    rule = await notify.add_rule(
        session, workspace_id=workspace, **(body.model_dump() | {"filters": filters})
    )
    return rule_out(rule)


@router.get(
    "/v1/notification-rules",
    summary="The workspace's notification rules",
    dependencies=[requires(Permission.SETTINGS_READ)],
)
async def list_rules(workspace: WorkspaceDep, session: SessionDep) -> list[NotificationRuleOut]:
    return [rule_out(r) for r in await notify.list_rules(session, workspace_id=workspace)]


@router.delete(
    "/v1/notification-rules/{rule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a rule",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def delete_rule(rule_id: RuleId, workspace: WorkspaceDep, session: SessionDep) -> None:
    await notify.delete_rule(session, workspace_id=workspace, rule_id=rule_id)
