"""The scoring service's tables (schema ``scoring``)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, Index, Integer, String, UniqueConstraint, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import service_metadata
from shared.events import new_id
from shared.inbox import inbox_table
from shared.outbox import outbox_table

SCHEMA = "scoring"


class Base(DeclarativeBase):
    metadata = service_metadata(SCHEMA)


outbox = outbox_table(Base.metadata)
inbox = inbox_table(Base.metadata)


class ScoredResponse(Base):
    """One row per completed response, scored or not; the unique key makes redeliveries no-ops."""

    __tablename__ = "scored_responses"
    __table_args__ = (
        UniqueConstraint("workspace_id", "response_id"),
        Index("ix_scored_responses_contact", "workspace_id", "contact_id"),
        Index("ix_scored_responses_survey", "workspace_id", "survey_id", "completed_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(63))
    response_id: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    contact_id: Mapped[str | None] = mapped_column(String(64))
    """Set to NULL when the contact is erased; the score itself is not personal data."""
    survey_id: Mapped[str] = mapped_column(String(64))
    survey_version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(20))
    metric: Mapped[str | None] = mapped_column(String(10))
    """None: the response had no score answer; it is recorded but counts nowhere."""
    score: Mapped[int | None] = mapped_column(Integer)
    classification: Mapped[str | None] = mapped_column(String(20))
    negative: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_to_contact: Mapped[bool] = mapped_column(Boolean, default=False)
    completed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    scored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DailyScore(Base):
    """The rollup: how many responses gave each score, per survey, metric and UTC day.

    Keeping the raw score (not its class) lets the NPS scale be chosen at query time, and the
    rows of a survey are few (≤ 11 per metric and day), so totals and trends are cheap sums.
    """

    __tablename__ = "daily_scores"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    survey_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    metric: Mapped[str] = mapped_column(String(10), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    score: Mapped[int] = mapped_column(Integer, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class SurveyScoring(Base):
    """How one survey's answers are classified (the NPS scale)."""

    __tablename__ = "survey_scoring"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    survey_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    nps_scale: Mapped[str] = mapped_column(String(20))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
