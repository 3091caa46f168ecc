"""Trigger rules: created, changed and deleted (audited), and the workspace's enabled rules and
policy as the evaluator and the scheduler read them (from the cache when fresh)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.trigger.caches import Caches, WorkspaceRules
from services.trigger.domain.conditions import ConditionError, parse_condition
from services.trigger.domain.model import Cap, Policy, QuietHours, RuleView
from services.trigger.handlers.audit import audit
from services.trigger.handlers.surveys import require_survey, workspace_surveys
from services.trigger.models import Rule, WorkspaceSettings
from services.trigger.schemas.rules import RuleCreate, RulePatch
from shared.errors import InvalidInput, NotFound
from shared.events import is_uuid, new_id
from shared.rows import from_row
from shared.vocabulary import SEND_CHANNELS


def rule_view(rule: Rule) -> RuleView:
    """Return the rule as the pure rules see it (a deleted rule is disabled)."""
    return from_row(
        RuleView,
        rule,
        enabled=rule.enabled and rule.deleted_at is None,
        conditions=parse_condition(rule.conditions) if rule.conditions else None,
        fallback_channels=tuple(rule.fallback_channels or ()),
        survey_cap=Cap(rule.survey_cap_max, rule.survey_cap_days)
        if rule.survey_cap_max and rule.survey_cap_days
        else None,
    )


def _hhmm(value: str) -> time:
    """Return ``"21:00"`` as a time."""
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def policy_of(row: WorkspaceSettings | None) -> Policy:
    """Return the workspace's cap, quiet hours and time zone (the defaults when it has no settings)."""
    if row is None:
        return Policy()
    return Policy(
        cap=Cap(row.cap_max_surveys, row.cap_days) if row.cap_max_surveys and row.cap_days else None,
        quiet_hours=QuietHours(
            _hhmm(row.quiet_start),
            _hhmm(row.quiet_end),
            frozenset(row.quiet_channels or SEND_CHANNELS),
        )
        if row.quiet_start and row.quiet_end
        else None,
        default_timezone=row.default_timezone or "UTC",
    )


async def load_workspace(session: AsyncSession, caches: Caches, *, workspace_id: str) -> WorkspaceRules:
    """Return the workspace's enabled rules, policy and known surveys, from the cache when fresh."""

    async def fetch() -> WorkspaceRules:
        rows = (
            await session.scalars(
                select(Rule)
                .where(Rule.workspace_id == workspace_id, Rule.enabled.is_(True), Rule.deleted_at.is_(None))
                .order_by(Rule.created_at, Rule.id)
            )
        ).all()
        rules = tuple(rule_view(r) for r in rows)
        policy = policy_of(await session.get(WorkspaceSettings, workspace_id))
        windows = [r.survey_cap.days for r in rules if r.survey_cap] + (
            [policy.cap.days] if policy.cap else []
        )
        surveys = await workspace_surveys(session, workspace_id=workspace_id)
        return WorkspaceRules(rules, policy, max(windows, default=0), surveys)

    loaded = await caches.workspaces.get_or_load(workspace_id, fetch)
    assert loaded is not None  # fetch always returns one
    return loaded


def rule_snapshot(rule: Rule) -> dict[str, Any]:
    """The rule as the API shows it: what the audit log keeps before and after a change."""
    return {
        "name": rule.name,
        "source": rule.source,
        "event_type": rule.event_type,
        "conditions": rule.conditions,
        "survey_id": rule.survey_id,
        "kind": rule.kind,
        "channel": rule.channel,
        "fallback_channels": list(rule.fallback_channels or []),
        "locale": rule.locale,
        "delay_seconds": rule.delay_seconds,
        "recurrence_days": rule.recurrence_days,
        "sample_percent": rule.sample_percent,
        "survey_cap": {"max_surveys": rule.survey_cap_max, "days": rule.survey_cap_days}
        if rule.survey_cap_max
        else None,
        "exempt_from_caps": rule.exempt_from_caps,
        "respect_quiet_hours": rule.respect_quiet_hours,
        "enabled": rule.enabled,
    }


def rule_columns(values: Mapping[str, Any], *, field_prefix: str = "") -> dict[str, Any]:
    """Return table columns from API fields, with the conditions checked."""
    columns = dict(values)
    if "conditions" in columns and columns["conditions"] is not None:
        try:
            parse_condition(columns["conditions"], path=f"{field_prefix}conditions")
        except ConditionError as exc:
            raise InvalidInput(f"{exc} (at {exc.path})", field=exc.path) from exc
    if "survey_cap" in columns:
        cap = columns.pop("survey_cap")
        columns["survey_cap_max"] = cap["max_surveys"] if cap else None
        columns["survey_cap_days"] = cap["days"] if cap else None
    if "fallback_channels" in columns:
        channels = columns["fallback_channels"] or []
        if len(set(channels)) != len(channels) or columns.get("channel") in channels:
            raise InvalidInput(
                "fallback_channels lists each channel once, and not the main channel",
                field=f"{field_prefix}fallback_channels",
            )
    return columns


async def create_rule(
    session: AsyncSession, caches: Caches, *, workspace_id: str, body: RuleCreate, actor: str
) -> Rule:
    """Return the new rule (its survey must be known in the workspace); its creation is audited."""
    columns = rule_columns(body.model_dump(mode="json"))
    await require_survey(session, workspace_id=workspace_id, survey_id=body.survey_id)
    rule = Rule(id=new_id(), workspace_id=workspace_id, version=1, **columns)
    session.add(rule)
    await session.flush()
    await session.refresh(rule)
    _audited(session, caches, rule, action="created", actor=actor, before=None, after=rule_snapshot(rule))
    return rule


async def find_rule(session: AsyncSession, *, workspace_id: str, rule_id: str, lock: bool = False) -> Rule:
    """Return the workspace's rule (not deleted; locked with ``lock``), or raise ``NotFound``."""
    rule = None
    if is_uuid(rule_id):
        stmt = select(Rule).where(
            Rule.id == rule_id, Rule.workspace_id == workspace_id, Rule.deleted_at.is_(None)
        )
        rule = await session.scalar(stmt.with_for_update() if lock else stmt)
    if rule is None:
        raise NotFound(f"No rule {rule_id!r} in this workspace.", field="rule_id")
    return rule


async def change_rule(
    session: AsyncSession,
    caches: Caches,
    *,
    workspace_id: str,
    rule_id: str,
    changes: dict[str, Any],
    actor: str,
    replace: bool,
) -> Rule:
    """Return the rule after ``changes`` (all fields when ``replace``); the change is audited.

    A survey the change names must be known in the workspace; a rule whose survey has become unknown
    can still be changed otherwise (disabled, for instance)."""
    rule = await find_rule(session, workspace_id=workspace_id, rule_id=rule_id, lock=True)
    before = rule_snapshot(rule)
    # The whole resulting rule is checked, so a patch cannot leave it inconsistent.
    columns = rule_columns(changes if replace else {**before, **changes})
    if changes.get("survey_id") is not None:
        await require_survey(session, workspace_id=workspace_id, survey_id=changes["survey_id"])
    for key, value in columns.items():
        setattr(rule, key, value)
    after = rule_snapshot(rule)
    if after == before:
        return rule
    rule.version += 1
    rule.updated_at = func.now()
    await session.flush()
    await session.refresh(rule)
    action = "updated"
    if set(k for k in after if after[k] != before[k]) == {"enabled"}:
        action = "enabled" if after["enabled"] else "disabled"
    _audited(session, caches, rule, action=action, actor=actor, before=before, after=after)
    return rule


async def delete_rule(
    session: AsyncSession, caches: Caches, *, workspace_id: str, rule_id: str, actor: str
) -> None:
    """Delete the rule (its decisions stay, so the history still explains itself); audited."""
    rule = await find_rule(session, workspace_id=workspace_id, rule_id=rule_id, lock=True)
    before = rule_snapshot(rule)
    rule.deleted_at = func.now()
    rule.enabled = False
    rule.version += 1
    _audited(session, caches, rule, action="deleted", actor=actor, before=before, after=None)


def _audited(
    session: AsyncSession,
    caches: Caches,
    rule: Rule,
    *,
    action: str,
    actor: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Audit the change of ``rule`` and drop its workspace's cached rules (the evaluator reloads them)."""
    audit(
        session,
        workspace_id=rule.workspace_id,
        entity="rule",
        entity_id=rule.id,
        action=action,
        actor=actor,
        before=before,
        after=after,
    )
    caches.workspaces.invalidate(rule.workspace_id)


def rule_patch_changes(body: RulePatch) -> dict[str, Any]:
    """Return the fields a PATCH sets; a required field or flag set to null is refused."""
    changes = body.model_dump(mode="json", exclude_unset=True)
    for required in ("name", "event_type", "survey_id", "kind", "channel", "sample_percent", "delay_seconds"):
        if required in changes and changes[required] is None:
            raise InvalidInput(f"{required} cannot be null", field=required)
    for flag in ("exempt_from_caps", "respect_quiet_hours", "enabled"):
        if flag in changes and changes[flag] is None:
            raise InvalidInput(f"{flag} cannot be null", field=flag)
    if changes.get("fallback_channels") is None and "fallback_channels" in changes:
        changes["fallback_channels"] = []
    return changes
