"""The dry run: which rules match an event and contact, and what each would do and why; writes nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.trigger.caches import Caches
from services.trigger.domain.conditions import Facts
from services.trigger.domain.decisions import decide
from services.trigger.domain.model import RuleView, Sent, survey_state
from services.trigger.handlers.contacts import contact_facts, contact_view
from services.trigger.handlers.history import load_enrollments, load_history
from services.trigger.handlers.rules import load_workspace, rule_columns, rule_view
from services.trigger.handlers.surveys import require_survey
from services.trigger.models import CONTACT_COLUMNS, Rule, contacts_table
from services.trigger.schemas.rules import DryRunRequest, DryRunResult, DryRunRule, RuleCreate
from shared.errors import InvalidInput
from shared.vocabulary import CONTACT_FIELDS


def draft_rule(index: int, body: RuleCreate) -> RuleView:
    """Return the dry run's ``index``-th draft rule as the rules see it (errors name its place)."""
    columns = rule_columns(body.model_dump(mode="json"), field_prefix=f"rules.{index}.")
    rule = Rule(id=f"draft-{index}", workspace_id="", version=0, **columns)
    rule.deleted_at = None
    return rule_view(rule)


async def dry_run(
    session: AsyncSession, caches: Caches, *, workspace_id: str, body: DryRunRequest, now: datetime
) -> DryRunResult:
    """Return which rules match this event and contact, and what each would do and why; writes nothing."""
    workspace = await load_workspace(session, caches, workspace_id=workspace_id)
    rules = (
        [draft_rule(i, r) for i, r in enumerate(body.rules)]
        if body.rules is not None
        else list(workspace.rules)
    )
    for i, draft in enumerate(body.rules or ()):
        # A draft is refused as the rule would be; the workspace's own rules show their survey's state.
        await require_survey(
            session, workspace_id=workspace_id, survey_id=draft.survey_id, field=f"rules.{i}.survey_id"
        )
    stored: dict[str, Any] | None = None
    given = body.contact.model_dump(exclude_none=True, exclude={"opted_out", "opted_out_channels"})
    if body.contact.external_id:
        row = (
            (
                await session.execute(
                    select(*CONTACT_COLUMNS).where(
                        contacts_table.c.workspace_id == workspace_id,
                        contacts_table.c.external_id == body.contact.external_id,
                    )
                )
            )
            .mappings()
            .first()
        )
        stored = dict(row) if row else None
    contact: dict[str, Any] = {
        "id": stored["id"] if stored else "dry-run",
        **{f: None for f in ("external_id", *CONTACT_FIELDS)},
        "attributes": {},
        "opted_out": False,
        "opted_out_channels": [],
        "created_at": None,
        **(stored or {}),
    }
    contact.update({k: v for k, v in given.items() if k != "attributes"})
    contact["attributes"] = {**(contact["attributes"] or {}), **given.get("attributes", {})}
    contact["opted_out"] = contact["opted_out"] or body.contact.opted_out
    contact["opted_out_channels"] = sorted(
        {*(contact["opted_out_channels"] or []), *body.contact.opted_out_channels}
    )
    window = max([workspace.cap_window_days, *(r.survey_cap.days for r in rules if r.survey_cap)])
    history = (
        (await load_history(session, contact_ids=[stored["id"]], window_days=window, now=now))[stored["id"]]
        if stored
        else []
    )
    enrolled = (
        (await load_enrollments(session, contact_ids=[stored["id"]]))[stored["id"]] if stored else set()
    )
    occurred_at = body.occurred_at or now
    if occurred_at.tzinfo is None:
        raise InvalidInput("occurred_at needs a timezone, e.g. 2026-11-23T10:00:00Z", field="occurred_at")
    facts = Facts(body.event_type, body.source, occurred_at, body.properties, contact_facts(contact))
    view = contact_view(contact)
    results = []
    for rule in rules:
        if not rule.matches(body.source, body.event_type):
            results.append(
                DryRunRule(
                    rule_id=rule.id if not rule.id.startswith("draft-") else None,
                    rule_name=rule.name,
                    matched=False,
                    conditions=[],
                    outcome=None,
                    reason=f"listens to {rule.event_type!r}"
                    + (f" from {rule.source!r}" if rule.source else "")
                    + ("" if rule.enabled else " (disabled)"),
                )
            )
            continue
        trace: list[dict[str, Any]] = []
        verdict = decide(
            rule,
            view,
            occurred_at=occurred_at,
            now=now,
            policy=workspace.policy,
            history=history,
            facts=facts,
            enrolled=rule.id in enrolled,
            trace=trace,
            survey=survey_state(workspace.surveys, rule.survey_id),
        )
        if verdict.outcome == "sent":
            history = [*history, Sent(rule.survey_id, now, rule.id)]
        results.append(
            DryRunRule(
                rule_id=rule.id if not rule.id.startswith("draft-") else None,
                rule_name=rule.name,
                matched=True,
                conditions=trace,
                outcome=verdict.outcome,
                reason=verdict.reason,
                send_at=verdict.send_at,
                channel=verdict.channel,
                fallback_channels=list(verdict.fallback_channels),
            )
        )
    return DryRunResult(contact_known=stored is not None, history=len(history), rules=results)
