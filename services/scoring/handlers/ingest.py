"""What happens when a response is completed: every scored answer counted, the rollups updated, the
comments read, and what it means published — all in the consumer's transaction (inbox + outbox).

``score_response`` scores and reads a response (pure work, and the lookups it needs, once per
transaction); ``flush``, which the consumer calls before it commits, writes what a whole batch of
responses gathered with a few statements: the responses (a response seen before is skipped, whatever
the event id), their answers and comments, the rollup increments summed per row, the invitations they
answer, and their events and notifications in order.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, TypeVar, cast

from sqlalchemy import event as orm_events
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring import domain
from services.scoring.handlers import erasure, notify, surveys
from services.scoring.handlers import writes as writes_
from services.scoring.text import Analysis, analyse
from shared import tracing
from shared.errors import PoisonMessage
from shared.events import (
    EventData,
    NegativeFeedbackDetected,
    ResponseCompleted,
    ResponseScored,
    ScoredAnswer,
    utcnow,
)
from shared.outbox import Outbox
from shared.vocabulary import NpsScale

PENDING = "scoring.pending"
T = TypeVar("T")
DEFAULT_RULES = domain.NegativeRules()


def utc_day(moment: datetime) -> date:
    """Return the UTC calendar day of ``moment`` (a naive time is taken as UTC)."""
    return (moment.astimezone(UTC) if moment.tzinfo else moment).date()


@dataclass(frozen=True)
class Arrival:
    """One completed response, scored and read, waiting for ``flush``."""

    event: ResponseCompleted
    outbox: Outbox
    default_scale: NpsScale
    dimensions: dict[str, str]
    comments: tuple[tuple[str, str, Analysis], ...]
    """(question id, text, what was read from it) of each non-blank open answer."""
    scored: tuple[domain.Scored, ...] = ()
    """On the default scale with the default thresholds; ``flush`` scores again on the survey's NPS
    scale with the workspace's thresholds where those differ."""
    negative_rules: domain.NegativeRules = field(default_factory=domain.NegativeRules)
    named: bool = True
    traceparent: str | None = field(default_factory=tracing.current)
    """The trace of the consumed response: the events ``flush`` writes for it continue it."""
    """False when the contact was erased before the response arrived: it is kept without naming them."""

    @functools.cached_property
    def views(self) -> list[domain.AnswerView]:
        return [domain.AnswerView(a.type, a.value, a.scale, a.question_id) for a in self.event.answers]

    @functools.cached_property
    def pair(self) -> tuple[domain.Scored, domain.Scored] | None:
        return domain.loyalty_pair(self.scored)

    @functools.cached_property
    def cell(self) -> str | None:
        pair = self.pair
        return domain.loyalty_cell(pair[0].classification, pair[1].classification) if pair else None


@dataclass
class Pending:
    arrivals: list[Arrival] = field(default_factory=list)


def gathered(session: AsyncSession, name: str, make: Callable[[], T]) -> T:
    """Return what the unit of work gathered under ``name`` for its flush (``make()`` at first); a commit
    without the flush, which pops it from ``session.info``, fails rather than lose it."""
    found = session.info.get(name)
    if found is None:
        found = session.info[name] = make()

        def unflushed(sync_session: Any) -> None:
            if sync_session.info.get(name) is not None:
                raise RuntimeError(f"what scoring gathered ({name}) was not flushed before the commit")

        orm_events.listen(session.sync_session, "before_commit", unflushed, once=True)
    return cast(T, found)


def pending(session: AsyncSession) -> Pending:
    """Return the unit of work's pending responses."""
    return gathered(session, PENDING, Pending)


async def score_response(
    session: AsyncSession, outbox: Outbox, *, event: ResponseCompleted, default_scale: NpsScale
) -> tuple[domain.Scored, ...]:
    """Check the response's answers and read its comments; return its scored answers on the default
    scale. ``flush`` scores them on the survey's own scale, writes and publishes them, once per response.

    An answer off its scale makes the response a ``PoisonMessage`` (whatever the scale, it stays off).
    """
    views = [domain.AnswerView(a.type, a.value, a.scale, a.question_id) for a in event.answers]
    try:
        scored = domain.score_all(views, nps_scale=default_scale)
    except domain.ScoreOutOfRange as exc:
        raise PoisonMessage(f"response {event.response_id}: {exc}") from exc
    dims = domain.dimensions_of(
        channel=event.channel, kind=event.kind, locale=event.locale, hidden_fields=event.hidden_fields
    )
    comments = tuple(
        (a.question_id, a.value.strip(), analyse(a.value.strip(), hint=dims.get("language")))
        for a in event.answers
        if a.type == "open" and isinstance(a.value, str) and a.value.strip()
    )
    pending(session).arrivals.append(Arrival(event, outbox, default_scale, dims, comments, scored))
    return scored


async def flush(session: AsyncSession) -> None:
    """Write what the unit of work's responses gathered (the consumer calls this before it commits)."""
    found: Pending | None = session.info.pop(PENDING, None)
    if found is None or not found.arrivals:
        return
    arrivals = await erasure.without_erased(session, await _scored(session, found.arrivals))
    answered: dict[tuple[str, str], bool] = {}
    for a in arrivals:
        survey = (a.event.workspace_id, a.event.survey_id)
        answered[survey] = answered.get(survey, False) or bool(a.scored)
    keys = await surveys.survey_keys(session, answered)
    new = await writes_.insert_responses(session, arrivals)
    writes = writes_.Writes()
    events: dict[int, list[EventData]] = {}
    traces: dict[int, list[str | None]] = {}
    for a, response_key in new:
        e = a.event
        survey_key = keys[(e.workspace_id, e.survey_id)]
        day = utc_day(e.completed_at)
        writes.add(a, response_key=response_key, survey_key=survey_key, day=day)
        if a.scored:
            rules = await notify.list_rules(session, workspace_id=e.workspace_id)
            events.setdefault(id(a.outbox), []).extend(_events(a))
            events[id(a.outbox)].extend(
                notify.notifications_for(
                    rules, event=e, scored=a.scored, dimensions=a.dimensions, negative=a.negative_rules
                )
            )
            gathered = traces.setdefault(id(a.outbox), [])
            gathered.extend([a.traceparent] * (len(events[id(a.outbox)]) - len(gathered)))
    await writes.write(session)
    outboxes = {id(a.outbox): a.outbox for a in arrivals}
    for outbox_id, datas in events.items():
        await outboxes[outbox_id].add_all(session, datas, traceparents=traces[outbox_id])


async def _scored(session: AsyncSession, arrivals: list[Arrival]) -> list[Arrival]:
    """Return the arrivals scored on their surveys' scales with their workspaces' thresholds."""
    scales = await surveys.nps_scales(session, {(a.event.workspace_id, a.event.survey_id) for a in arrivals})
    out = []
    for a in arrivals:
        e = a.event
        settings = await surveys.workspace_settings(session, workspace_id=e.workspace_id)
        scale = scales.get((e.workspace_id, e.survey_id)) or a.default_scale
        if scale == a.default_scale and settings.negative == DEFAULT_RULES:
            out.append(a)  # scored as it arrived
            continue
        scored = domain.score_all(a.views, nps_scale=scale, negative=settings.negative)
        out.append(replace(a, scored=scored, negative_rules=settings.negative))
    return out


def _events(a: Arrival) -> list[EventData]:
    """Return ``ResponseScored`` and, for negative feedback, ``NegativeFeedbackDetected`` (one each)."""
    e = a.event
    now = utcnow()
    negative = any(s.negative for s in a.scored)
    scores = tuple(ScoredAnswer.model_validate(s, from_attributes=True) for s in a.scored)
    about: dict[str, Any] = {
        "workspace_id": e.workspace_id,
        "response_id": e.response_id,
        "request_id": e.request_id,
        "contact_id": e.contact_id,
        "survey_id": e.survey_id,
        "kind": e.kind,
        "channel": e.channel,
        "scores": scores,
        "loyalty": a.cell,
        "dimensions": a.dimensions,
        "consent_to_contact": e.consent_to_contact,
        "respondent": e.respondent,
        "comment": a.comments[0][1] if a.comments else None,
    }
    out: list[EventData] = [ResponseScored(**about, negative=negative, scored_at=now)]
    if negative:
        negatives = tuple(answer for answer in scores if answer.negative)
        out.append(NegativeFeedbackDetected(**about, negatives=negatives, detected_at=now))
    return out
