"""Experience targets: their definitions, their evaluation on a rolling window, and the events and
notifications of each status change (once per change, never per response)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring import domain
from services.scoring.handlers import surveys
from services.scoring.models import Target
from services.scoring.queries import metrics
from services.scoring.queries.scope import Scope, tallies
from shared.clock import Clock
from shared.db import Database
from shared.errors import NotFound
from shared.events import NotificationRequested, TargetStatusChanged, new_id
from shared.outbox import Outbox
from shared.rows import from_row
from shared.vocabulary import NpsScale
from shared.worker import Worker

log = logging.getLogger(__name__)

WEBHOOK_EVENT = "scoring.target_status_changed"
"""The webhook event type of target status changes (integrators subscribe to it in dispatch)."""


async def get_target(
    session: AsyncSession, *, workspace_id: str, target_id: str, lock: bool = False
) -> Target:
    query = select(Target).where(Target.workspace_id == workspace_id, Target.id == target_id)
    target = await session.scalar(query.with_for_update() if lock else query)
    if target is None:
        raise NotFound(f"No target {target_id!r} in this workspace.", field="target_id")
    return target


async def list_targets(session: AsyncSession, *, workspace_id: str) -> list[Target]:
    return list(
        (
            await session.scalars(
                select(Target)
                .where(Target.workspace_id == workspace_id)
                .order_by(Target.created_at, Target.id)
            )
        ).all()
    )


async def save_target(
    session: AsyncSession, *, workspace_id: str, now: datetime, target_id: str | None = None, **values: Any
) -> Target:
    """Create a target or replace its definition (its status is kept and re-evaluated at once)."""
    if values.get("survey_id") is not None:
        await surveys.known_survey(session, workspace_id=workspace_id, survey_id=values["survey_id"])
    if target_id is None:
        target = Target(id=new_id(), workspace_id=workspace_id, n=0, **values)
        session.add(target)
    else:
        target = await get_target(session, workspace_id=workspace_id, target_id=target_id, lock=True)
        for name, value in values.items():
            setattr(target, name, value)
    target.next_evaluation_at = now
    await session.flush()
    return target


async def delete_target(session: AsyncSession, *, workspace_id: str, target_id: str) -> None:
    await get_target(session, workspace_id=workspace_id, target_id=target_id)
    await session.execute(delete(Target).where(Target.workspace_id == workspace_id, Target.id == target_id))


async def measure(
    session: AsyncSession, target: Target, *, now: datetime, default_scale: NpsScale
) -> tuple[domain.Summary, int]:
    """Return the target's figure over its window ending ``now``, and the workspace's minimum n."""
    settings = await surveys.workspace_settings(session, workspace_id=target.workspace_id)
    known = await surveys.surveys(
        session, workspace_id=target.workspace_id, default_scale=default_scale, survey_id=target.survey_id
    )
    until = now.date()
    scope = Scope(
        known,
        kinds=None if target.survey_id else ("transactional", "relationship"),
        since=until - timedelta(days=target.window_days - 1),
        until=until,
        segment=domain.parse_filters(target.filters),
    )
    counts = tallies(
        await metrics.histograms(session, scope, metric=target.metric, question_id=target.question_id),
        target.metric,
        scope,
    )
    return domain.summarise(target.metric, counts.get((None, None), domain.Tally())), settings.min_n


async def evaluate(
    session: AsyncSession, outbox: Outbox, target: Target, *, now: datetime, default_scale: NpsScale
) -> bool:
    """Evaluate one target; on a status change publish ``TargetStatusChanged`` and its notifications.
    Return whether the status changed."""
    summary, min_n = await measure(session, target, now=now, default_scale=default_scale)
    status = domain.target_status(
        value=summary.score,
        low=summary.low,
        high=summary.high,
        n=summary.n,
        threshold=target.threshold,
        direction=target.direction,
        min_n=min_n,
    )
    previous = target.status
    target.value, target.n, target.low, target.high = summary.score, summary.n, summary.low, summary.high
    target.evaluated_at = now
    # A target that has never had enough answers has nothing to report yet.
    if status == previous or (previous is None and status == "too_few_answers"):
        target.status = status
        return False
    target.status, target.changed_at = status, now
    # The row now holds the new status and the measure behind it.
    event = from_row(TargetStatusChanged, target, target_id=target.id, previous_status=previous)
    await outbox.add(session, event)
    for channel, to in recipients(target):
        subject, body = notice(event)
        await outbox.add(
            session,
            NotificationRequested(
                workspace_id=target.workspace_id,
                notification_id=new_id(),
                channel=channel,
                to=to,
                subject=subject,
                body=body,
            ),
        )
    return True


def recipients(target: Target) -> list[tuple[str, str]]:
    """Return (channel, to) of every notification a change of ``target`` sends."""
    out = []
    notify = target.notify or {}
    if notify.get("email", True) and target.owner:
        out.append(("email", target.owner))
    if notify.get("chat"):
        out.append(("chat", str(notify["chat"])))
    if notify.get("webhook"):
        out.append(("webhook", WEBHOOK_EVENT))
    return out


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def notice(event: TargetStatusChanged) -> tuple[str, str]:
    """Return the subject and body of a target's status change."""
    words = {
        "met": "met",
        "at_risk": "at risk",
        "breached": "breached",
        "too_few_answers": "without enough answers",
    }
    sign = "≥" if event.direction == "at_least" else "≤"
    subject = f"Target {event.name!r} is {words[event.status]}"
    lines = [
        f"{event.metric.upper()} over the last {event.window_days} days: {_fmt(event.value)} "
        f"(95% interval {_fmt(event.low)} to {_fmt(event.high)}, n = {event.n}); target {sign} {event.threshold:g}.",
        f"Was: {words[event.previous_status] if event.previous_status else 'not evaluated yet'}.",
    ]
    if event.survey_id:
        lines.append(f"Survey: {event.survey_id}")
    if event.filters:
        lines.append(f"Segment: {', '.join(event.filters)}")
    return subject, "\n".join(lines)


class TargetEvaluator(Worker):
    """Evaluates due targets on their rolling windows; safe with several replicas (each pass claims
    its targets with ``FOR UPDATE SKIP LOCKED`` and commits the status and its events together)."""

    name = "targets"

    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        clock: Clock,
        *,
        every_s: float,
        default_scale: NpsScale,
        batch: int = 50,
    ) -> None:
        super().__init__(poll_interval_s=min(every_s, 60.0), batch=batch)
        self.db = db
        self.outbox = outbox
        self.clock = clock
        self.every = timedelta(seconds=every_s)
        self.default_scale = default_scale

    async def work_once(self) -> int:
        now = self.clock.now()
        async with self.db.unit_of_work() as session:
            due = (
                await session.scalars(
                    select(Target)
                    .where(Target.next_evaluation_at <= now)
                    .order_by(Target.next_evaluation_at)
                    .limit(self.batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for target in due:
                await evaluate(session, self.outbox, target, now=now, default_scale=self.default_scale)
                target.next_evaluation_at = now + self.every
        return len(due)
