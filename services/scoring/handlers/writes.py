"""The statements ``ingest.flush`` writes a batch with: one per table, every row of the batch as one
array per column (``INSERT … SELECT FROM unnest(…)``), so that neither SQLAlchemy nor the driver
handles rows one by one, and PostgreSQL gets one message per table.

Upserts get each key once (PostgreSQL refuses to update a row twice in one statement): the rollups
are summed per row before, and an invitation answered twice in a batch keeps its last answer, as
successive statements would.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from pydantic_core import to_json
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import Executable

from services.scoring import domain
from services.scoring.models import (
    DIMENSION_COLUMNS,
    HISTOGRAM,
    LOYALTY_COLUMNS,
    Answer,
    Comment,
    DailyHistogram,
    DailyLoyalty,
    Invitation,
    ScoredResponse,
    table_of,
)
from shared.db import unnest_insert, unnest_params
from shared.events import new_id

if TYPE_CHECKING:
    from services.scoring.handlers.ingest import Arrival

RESPONSE_COLUMNS = (
    "id",
    "workspace_id",
    "response_id",
    "request_id",
    "invitation_id",
    "contact_id",
    "survey_id",
    "survey_version",
    "kind",
    "channel",
    "locale",
    "dimensions",
    "consent_to_contact",
    "completed_at",
    "metric",
    "score",
    "classification",
    "negative",
    "loyalty",
)
ANSWER_COLUMNS = (
    "response_key",
    "question_id",
    "survey_key",
    "metric",
    "day",
    "score",
    "kind",
    "paired",
    *DIMENSION_COLUMNS,
    "attributes",
)
HISTOGRAM_KEY = ("survey_key", "question_id", "metric", "kind", "day")
LOYALTY_KEY = ("survey_key", "kind", "day")
COMMENT_COLUMNS = (
    "response_key",
    "question_id",
    "workspace_id",
    "survey_key",
    "day",
    "kind",
    "text",
    "language",
    "confidence",
    "sentiment",
    "label",
    "lemmas",
    "nps",
)
RESPONDED_KEY = ("workspace_id", "invitation_id")
RESPONDED_COLUMNS = (*RESPONDED_KEY, "survey_key", "kind", "channel", "language", "day", "responded_at")


@functools.cache
def _statements() -> dict[str, Executable]:
    """Built once: a statement's SQL is then found in the compiled cache without building it again."""
    histogram = unnest_insert(table_of(DailyHistogram), (*HISTOGRAM_KEY, *HISTOGRAM))
    loyalty = unnest_insert(table_of(DailyLoyalty), (*LOYALTY_KEY, *LOYALTY_COLUMNS))
    responded = unnest_insert(table_of(Invitation), RESPONDED_COLUMNS)
    return {
        "responses": unnest_insert(table_of(ScoredResponse), RESPONSE_COLUMNS, json_text=("dimensions",))
        .on_conflict_do_nothing(index_elements=["workspace_id", "response_id"])
        .returning(ScoredResponse.workspace_id, ScoredResponse.response_id, ScoredResponse.key),
        "answers": unnest_insert(table_of(Answer), ANSWER_COLUMNS, json_text=("attributes",)),
        "histograms": histogram.on_conflict_do_update(
            index_elements=list(HISTOGRAM_KEY),
            set_={c: getattr(DailyHistogram, c) + getattr(histogram.excluded, c) for c in HISTOGRAM},
        ),
        "loyalty": loyalty.on_conflict_do_update(
            index_elements=list(LOYALTY_KEY),
            set_={c: getattr(DailyLoyalty, c) + getattr(loyalty.excluded, c) for c in LOYALTY_COLUMNS},
        ),
        "comments": unnest_insert(table_of(Comment), COMMENT_COLUMNS).on_conflict_do_nothing(),
        "responded": responded.on_conflict_do_update(
            index_elements=list(RESPONDED_KEY), set_={"responded_at": responded.excluded.responded_at}
        ),
    }


async def insert_responses(session: AsyncSession, arrivals: list[Arrival]) -> list[tuple[Arrival, int]]:
    """Insert the responses not seen before; return them (first arrival of each) with their keys."""
    result = await session.execute(
        _statements()["responses"], unnest_params(RESPONSE_COLUMNS, map(_response_row, arrivals))
    )
    inserted = {(ws, rid): key for ws, rid, key in result}
    new = []
    for a in arrivals:
        key = inserted.pop((a.event.workspace_id, a.event.response_id), None)
        if key is not None:
            new.append((a, key))
    return new


def _response_row(a: Arrival) -> tuple[Any, ...]:
    e = a.event
    first = a.scored[0] if a.scored else None
    return (
        new_id(),
        e.workspace_id,
        e.response_id,
        e.request_id,
        e.invitation_id,
        e.contact_id if a.named else None,
        e.survey_id,
        e.survey_version,
        e.kind,
        e.channel,
        e.locale,
        to_json(a.dimensions).decode(),
        e.consent_to_contact,
        e.completed_at,
        first.metric if first else None,
        first.score if first else None,
        first.classification if first else None,
        any(s.negative for s in a.scored),
        a.cell,
    )


@dataclass
class Writes:
    """Rows for the fact tables and rollup increments, summed per rollup row."""

    answers: list[tuple[Any, ...]] = field(default_factory=list)
    histograms: dict[tuple[Any, ...], list[int]] = field(default_factory=dict)
    loyalty: dict[tuple[Any, ...], dict[str, int]] = field(default_factory=dict)
    comments: list[tuple[Any, ...]] = field(default_factory=list)
    responded: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)

    def add(self, a: Arrival, *, response_key: int, survey_key: int, day: date) -> None:
        e = a.event
        pair = a.pair
        dims = a.dimensions
        columns = tuple(dims.get(c) for c in DIMENSION_COLUMNS)
        attributes = {k: v for k, v in dims.items() if k not in domain.DECLARED}
        attributes_json = to_json(attributes).decode() if attributes else None
        for s in a.scored:
            paired = pair[1].score if pair and s is pair[0] else None
            self.answers.append(
                (response_key, s.question_id, survey_key, s.metric, day, s.score, e.kind, paired)
                + columns
                + (attributes_json,)
            )
            self.histograms.setdefault((survey_key, s.question_id, s.metric, e.kind, day), [0] * 11)[
                s.score
            ] += 1
        if pair is not None:
            cells = self.loyalty.setdefault((survey_key, e.kind, day), {})
            for scale in ("standard", "european"):
                nps = domain.classify("nps", pair[0].score, nps_scale=scale)
                nls = domain.classify("nls", pair[1].score, nps_scale=scale)
                column = f"{scale}_{domain.loyalty_cell(nps, nls)}"
                cells[column] = cells.get(column, 0) + 1
        nps_score = next((s.score for s in a.scored if s.metric == "nps"), None)
        for question_id, text, found in a.comments:
            self.comments.append(
                (
                    response_key,
                    question_id,
                    e.workspace_id,
                    survey_key,
                    day,
                    e.kind,
                    text,
                    found.language,
                    found.confidence,
                    found.sentiment,
                    found.label,
                    found.lemma_text,
                    nps_score,
                )
            )
        if e.invitation_id:
            self.responded[(e.workspace_id, e.invitation_id)] = (
                e.workspace_id,
                e.invitation_id,
                survey_key,
                e.kind,
                e.channel,
                dims.get("language"),
                day,
                e.completed_at,
            )

    async def write(self, session: AsyncSession) -> None:
        statements = _statements()
        if self.answers:
            await session.execute(statements["answers"], unnest_params(ANSWER_COLUMNS, self.answers))
        if self.histograms:
            # In key order, as every consumer does: concurrent batches lock the rollup rows in one order.
            rows = (
                (*key, *counts) for key, counts in sorted(self.histograms.items(), key=lambda kv: str(kv[0]))
            )
            await session.execute(statements["histograms"], unnest_params((*HISTOGRAM_KEY, *HISTOGRAM), rows))
        if self.loyalty:
            cells = sorted(self.loyalty.items(), key=lambda kv: str(kv[0]))
            rows = ((*key, *(counts.get(c, 0) for c in LOYALTY_COLUMNS)) for key, counts in cells)
            await session.execute(
                statements["loyalty"], unnest_params((*LOYALTY_KEY, *LOYALTY_COLUMNS), rows)
            )
        if self.comments:
            await session.execute(statements["comments"], unnest_params(COMMENT_COLUMNS, self.comments))
        if self.responded:
            await session.execute(
                statements["responded"], unnest_params(RESPONDED_COLUMNS, self.responded.values())
            )
