"""The invitation funnel, from dispatch's ``Invitation*`` events: what response rates are counted from.

``invitation_event`` folds each event into its invitation's row of the unit of work (no I/O);
``flush``, which the consumer calls before it commits, upserts a batch's rows with one
``INSERT … SELECT FROM unnest(…)`` (two when some rows move their cohort day). The row a batch
writes is what its events one by one would have left: the first time of each step counts, whichever
order the steps arrive in, the latest kind and channel, the first language known, and the day of the
latest first send (``InvitationSent`` with ``reminder == 0``), else the day the invitation was first
seen. An event seen again (the inbox drops it; a handler run twice would too) changes nothing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import get_args

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import Executable

from services.scoring.domain.dimensions import language_of
from services.scoring.handlers import surveys
from services.scoring.handlers.ingest import gathered, utc_day
from services.scoring.models import Invitation, table_of
from shared.db import unnest_insert, unnest_params
from shared.events import (
    InvitationBounced,
    InvitationClicked,
    InvitationCreated,
    InvitationDelivered,
    InvitationFailed,
    InvitationOpened,
    InvitationSent,
)

FunnelEvent = (
    InvitationCreated
    | InvitationSent
    | InvitationDelivered
    | InvitationOpened
    | InvitationClicked
    | InvitationBounced
    | InvitationFailed
)
FUNNEL_EVENTS: tuple[type, ...] = get_args(FunnelEvent)
_STEP = {
    InvitationSent: "sent_at",
    InvitationDelivered: "delivered_at",
    InvitationOpened: "opened_at",
    InvitationClicked: "clicked_at",
    InvitationBounced: "bounced_at",
    InvitationFailed: "failed_at",
}
STEPS = tuple(_STEP.values())
KEY = ("workspace_id", "invitation_id")
COLUMNS = (*KEY, "survey_key", "kind", "channel", "language", "day", *STEPS)
PENDING = "scoring.funnel"


@dataclass
class Row:
    """What a batch's events say about one invitation, merged in their order."""

    survey_id: str
    kind: str
    channel: str
    language: str | None
    first_day: date
    """The day of the first event: the row's day when it is new and no first send moves it."""
    sent_day: date | None = None
    """The day of the latest first send (``reminder == 0``), which becomes the row's day."""
    steps: dict[str, datetime] = field(default_factory=dict)
    """The first time of each step."""


@dataclass
class Gathered:
    rows: dict[tuple[str, str], Row] = field(default_factory=dict)
    """By (workspace, invitation)."""
    surveys: set[tuple[str, str]] = field(default_factory=set)
    """Every (workspace, survey) an event named: scoring knows each from then on."""


async def invitation_event(session: AsyncSession, *, event: FunnelEvent) -> None:
    """Gather one step of an invitation's funnel (``flush`` writes the batch's; order-free)."""
    funnel = gathered(session, PENDING, Gathered)
    funnel.surveys.add((event.workspace_id, event.survey_id))
    language = language_of(event.locale)
    row = funnel.rows.get((event.workspace_id, event.invitation_id))
    if row is None:
        row = funnel.rows[(event.workspace_id, event.invitation_id)] = Row(
            event.survey_id, event.kind, event.channel, language, utc_day(event.occurred_at)
        )
    else:
        row.kind, row.channel = event.kind, event.channel
        if row.language is None:
            row.language = language
    step = _STEP.get(type(event))
    if step is not None:
        row.steps.setdefault(step, event.occurred_at)
    if isinstance(event, InvitationSent) and event.reminder == 0:
        # The cohort is the day it was sent (a reminder does not move it).
        row.sent_day = utc_day(event.occurred_at)


async def flush(session: AsyncSession) -> None:
    """Upsert the invitations the unit of work's events gathered (the consumer calls this before it commits)."""
    funnel: Gathered | None = session.info.pop(PENDING, None)
    if funnel is None or not funnel.rows:
        return
    keys = await surveys.unanswered_keys(session, funnel.surveys)
    sent: list[tuple[object, ...]] = []
    other: list[tuple[object, ...]] = []
    # In key order, as every consumer writes them: concurrent batches lock the rows in one order.
    for (ws, invitation_id), row in sorted(funnel.rows.items()):
        values = (
            ws,
            invitation_id,
            keys[(ws, row.survey_id)],
            row.kind,
            row.channel,
            row.language,
            row.sent_day or row.first_day,
            *(row.steps.get(step) for step in STEPS),
        )
        (other if row.sent_day is None else sent).append(values)
    for moves_day, batch in ((False, other), (True, sent)):
        if batch:
            await session.execute(_upsert(moves_day), unnest_params(COLUMNS, batch))


@functools.cache
def _upsert(moves_day: bool) -> Executable:
    """Built once: a new row as gathered; a known one takes the kind and channel, keeps its language
    and the times it has, and its day unless ``moves_day``."""
    statement = unnest_insert(table_of(Invitation), COLUMNS)
    excluded = statement.excluded
    updates = {
        "kind": excluded.kind,
        "channel": excluded.channel,
        "language": func.coalesce(Invitation.language, excluded.language),
        **{step: func.coalesce(getattr(Invitation, step), getattr(excluded, step)) for step in STEPS},
    }
    if moves_day:
        updates["day"] = excluded.day
    return statement.on_conflict_do_update(index_elements=list(KEY), set_=updates)
