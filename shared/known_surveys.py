"""Which surveys exist and are open, as a service that does not own them learns it: from responses'
events on the ``surveys`` topic (``SurveyPublished``, ``SurveyClosed``, ``SurveyReopened``).

A service that lets a workspace name a survey (trigger's rules, followup's retention survey) keeps a
table of this shape and records each event with ``record_survey_event``. Events of one survey arrive in
order (they share a partition key), but a redelivered or replayed one may come late: each carries the
time responses opened or closed the survey, and an event older than the state already kept changes
nothing (nor does an older version's name).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    case,
    func,
)
from sqlalchemy.dialects.postgresql import Insert, insert

from shared.events import SurveyClosed, SurveyPublished, SurveyReopened

SurveyEvent = SurveyPublished | SurveyClosed | SurveyReopened


def known_surveys_table(metadata: MetaData, *, survey_id_length: int = 64) -> Table:
    """Return the ``surveys`` table: one row per survey of a workspace that responses told about."""
    return Table(
        "surveys",
        metadata,
        Column("workspace_id", String(63), primary_key=True),
        Column("survey_id", String(survey_id_length), primary_key=True),
        Column("version", Integer, nullable=False, server_default="0"),
        Column("name", String(200)),
        Column("open", Boolean, nullable=False),
        Column("state_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def survey_upsert(table: Table, event: SurveyEvent) -> Insert:
    """Return the statement that records ``event`` in ``table`` (the newer state and the newest version
    win; a close or reopen seen before the survey itself records it with version 0)."""
    if isinstance(event, SurveyPublished):
        version, name, open_, at = event.survey_version, event.name, event.open, event.published_at
    elif isinstance(event, SurveyClosed):
        version, name, open_, at = 0, None, False, event.closed_at
    else:
        version, name, open_, at = 0, None, True, event.reopened_at
    return _upsert(
        table,
        workspace_id=event.workspace_id,
        survey_id=event.survey_id,
        version=version,
        name=name,
        open_=open_,
        at=at,
    )


def _upsert(
    table: Table,
    *,
    workspace_id: str,
    survey_id: str,
    version: int,
    name: str | None,
    open_: bool,
    at: datetime,
) -> Insert:
    stmt = insert(table).values(
        workspace_id=workspace_id,
        survey_id=survey_id,
        version=version,
        name=name[:200] if name is not None else None,
        open=open_,
        state_at=at,
    )
    kept, new = table.c, stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[kept.workspace_id, kept.survey_id],
        set_={
            "version": func.greatest(kept.version, new.version),
            "name": case((new.name.is_not(None) & (new.version >= kept.version), new.name), else_=kept.name),
            "open": case((new.state_at >= kept.state_at, new.open), else_=kept.open),
            "state_at": func.greatest(kept.state_at, new.state_at),
            "updated_at": func.now(),
        },
    )
