"""The scoring service's tables (schema ``scoring``).

Raw facts: ``scored_responses`` (one row per response, with every dimension as JSONB) and
``answers`` (one narrow row per scored answer, with the declared dimensions as columns and a
covering index, so that a segment of one survey is an index-only scan). Rollups, updated in the
consumer's transaction: ``daily_histograms`` (how many answers gave each score, per survey,
question, metric, kind and day) and ``daily_loyalty`` (the NPS × NLS cells per day on both NPS
scales), so that unsegmented figures over years read a few thousand rows.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.scoring.domain.dimensions import DECLARED
from shared.db import service_metadata
from shared.erasure import erased_contacts_table
from shared.events import new_id
from shared.inbox import inbox_table
from shared.outbox import outbox_table
from shared.revocation import revoked_keys_table
from shared.vocabulary import NpsScale, ScoreMetric, TargetStatus

Direction = Literal["at_least", "at_most"]
StaffChannel = Literal["email", "chat", "webhook"]

SCHEMA = "scoring"
HISTOGRAM = tuple(f"n{i}" for i in range(11))
"""The histogram columns: n<score> answers gave that score (0–10; CSAT, CES and stars use 1–7)."""
LOYALTY_COLUMNS = tuple(
    f"{scale}_{cell}"
    for scale in ("standard", "european")
    for cell in ("pure", "false", "trapped", "disloyal", "undecided")
)


class Base(DeclarativeBase):
    metadata = service_metadata(SCHEMA)


outbox = outbox_table(Base.metadata)
inbox = inbox_table(Base.metadata)
erased_contacts = erased_contacts_table(Base.metadata)
"""Contacts erased (``shared.erasure``): a response of one that arrives later is kept without naming them."""
revoked_keys = revoked_keys_table(Base.metadata)
"""API keys the console revoked (``KeyRevoked``): this service refuses them (``shared.revocation``)."""


class Survey(Base):
    """A survey scoring knows of: from ``SurveyPublished`` or from its first scored response."""

    __tablename__ = "surveys"
    __table_args__ = (UniqueConstraint("workspace_id", "survey_id"),)

    key: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    """A short id for the fact tables (every survey of every workspace has its own)."""
    workspace_id: Mapped[str] = mapped_column(String(63))
    survey_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[int | None] = mapped_column(Integer)
    open: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    published: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    """A ``SurveyPublished`` was seen."""
    answered: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    """It has scored responses (surveys answered before the lifecycle events existed are known so)."""
    questions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    languages: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ScoredResponse(Base):
    """One row per completed response, scored or not; the unique key makes redeliveries no-ops."""

    __tablename__ = "scored_responses"
    __table_args__ = (
        UniqueConstraint("workspace_id", "response_id"),
        Index("ix_scored_responses_contact", "workspace_id", "contact_id"),
        Index("ix_scored_responses_survey", "workspace_id", "survey_id", "completed_at"),
        Index("ix_scored_responses_workspace_key", "workspace_id", "key"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    key: Mapped[int] = mapped_column(BigInteger, Identity(), unique=True)
    """What the answers and comments of this response refer to."""
    workspace_id: Mapped[str] = mapped_column(String(63))
    response_id: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    invitation_id: Mapped[str | None] = mapped_column(String(64))
    contact_id: Mapped[str | None] = mapped_column(String(64))
    """Set to NULL when the contact is erased; the score itself is not personal data."""
    survey_id: Mapped[str] = mapped_column(String(64))
    survey_version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(20))
    locale: Mapped[str | None] = mapped_column(String(35))
    dimensions: Mapped[dict[str, str]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    """Every dimension of the response (declared ones too), as at answer time."""
    metric: Mapped[str | None] = mapped_column(String(10))
    """The first scored answer (every one is in ``answers``); None: no score answer, counted nowhere."""
    score: Mapped[int | None] = mapped_column(Integer)
    classification: Mapped[str | None] = mapped_column(String(20))
    negative: Mapped[bool] = mapped_column(Boolean, default=False)
    """Whether any answer is negative feedback."""
    loyalty: Mapped[str | None] = mapped_column(String(10))
    consent_to_contact: Mapped[bool] = mapped_column(Boolean, default=False)
    completed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    scored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


DIMENSION_COLUMNS = tuple(d for d in DECLARED if d != "kind")
"""The declared dimensions with a column in ``answers`` (``kind`` has one too)."""


class Answer(Base):
    """One scored answer: the fact every segmented figure is counted from."""

    __tablename__ = "answers"
    __table_args__ = (
        Index(
            "ix_answers_survey_metric_day",
            "survey_key",
            "metric",
            "day",
            postgresql_include=["score", "question_id", "kind", *DIMENSION_COLUMNS, "paired", "attributes"],
        ),
    )

    response_key: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    question_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    survey_key: Mapped[int] = mapped_column(Integer)
    metric: Mapped[str] = mapped_column(String(8))
    day: Mapped[date] = mapped_column(Date)
    """The UTC day the response was completed."""
    score: Mapped[int] = mapped_column(SmallInteger)
    kind: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str | None] = mapped_column(String(20))
    language: Mapped[str | None] = mapped_column(String(16))
    country: Mapped[str | None] = mapped_column(String(100))
    team: Mapped[str | None] = mapped_column(String(100))
    agent: Mapped[str | None] = mapped_column(String(100))
    product: Mapped[str | None] = mapped_column(String(100))
    journey_stage: Mapped[str | None] = mapped_column(String(100))
    plan: Mapped[str | None] = mapped_column(String(100))
    role: Mapped[str | None] = mapped_column(String(100))
    paired: Mapped[int | None] = mapped_column(SmallInteger)
    """On the response's first NPS answer: its first NLS score (the loyalty matrix's other half)."""
    attributes: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    """The response's other (ad-hoc) dimensions; None when it has none. In the covering index too, so
    a filter on a custom attribute is an index-only scan as well."""


class AnswerGeneration(Base):
    """How many times a workspace's answers were updated or deleted (a trigger on ``answers`` bumps it in
    the same transaction): the API's in-memory columns load them again when it changed."""

    __tablename__ = "answer_generations"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger)


class DailyHistogram(Base):
    """How many answers gave each score, per survey, question, metric, kind and UTC day.

    The raw score (not its class) is kept, so the NPS scale is chosen at query time; one row holds
    the whole histogram, so two years of a workspace's unsegmented figures are a few thousand rows.
    """

    __tablename__ = "daily_histograms"

    survey_key: Mapped[int] = mapped_column(Integer, primary_key=True)
    question_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    metric: Mapped[str] = mapped_column(String(8), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    n0: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    n1: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    n2: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    n3: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    n4: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    n5: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    n6: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    n7: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    n8: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    n9: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    n10: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class DailyLoyalty(Base):
    """The NPS × NLS matrix per survey, kind and UTC day, counted on both NPS scales."""

    __tablename__ = "daily_loyalty"

    survey_key: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    standard_pure: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    standard_false: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    standard_trapped: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    standard_disloyal: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    standard_undecided: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    european_pure: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    european_false: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    european_trapped: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    european_disloyal: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    european_undecided: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class CaseOutcome(Base):
    """A follow-up case opened from a response, as followup's ``FollowUp*`` events tell it, for exports.

    No personal data: the case's id, the response it came from, its status, root cause and whether the
    customer was won back (followup keeps the notes and who worked it)."""

    __tablename__ = "case_outcomes"
    __table_args__ = (Index("ix_case_outcomes_response", "workspace_id", "response_id"),)

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    response_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(40))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    root_cause_category: Mapped[str | None] = mapped_column(String(200))
    root_cause: Mapped[str | None] = mapped_column(String(200))
    won_back: Mapped[bool | None] = mapped_column(Boolean)
    """The retention survey's verdict; None until it came back."""
    retention_score: Mapped[int | None] = mapped_column(SmallInteger)


class Invitation(Base):
    """One invitation's funnel, from dispatch's ``Invitation*`` events and the response to it."""

    __tablename__ = "invitations"
    __table_args__ = (Index("ix_invitations_survey_day", "survey_key", "day"),)

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    invitation_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    survey_key: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str | None] = mapped_column(String(20))
    channel: Mapped[str | None] = mapped_column(String(20))
    language: Mapped[str | None] = mapped_column(String(16))
    day: Mapped[date | None] = mapped_column(Date)
    """The UTC day it was sent (created, until it is sent)."""
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    clicked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    bounced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    responded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Comment(Base):
    """An open answer and what was read from it on arrival (removed with the contact's erasure)."""

    __tablename__ = "comments"
    __table_args__ = (Index("ix_comments_survey_day", "survey_key", "day"),)

    response_key: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    question_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(63))
    survey_key: Mapped[int] = mapped_column(Integer)
    day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(16))
    confidence: Mapped[str] = mapped_column(String(10))
    """high | low: how sure the language (and so the sentiment) is; unscored: no lexicon for it."""
    sentiment: Mapped[float | None] = mapped_column(Float)
    """−1 … 1; None when the language has no lexicon."""
    label: Mapped[str | None] = mapped_column(String(10))
    lemmas: Mapped[str] = mapped_column(Text)
    """The words' lemmas in order, space-separated and padded with spaces (for theme rules)."""
    nps: Mapped[int | None] = mapped_column(SmallInteger)
    """The respondent's NPS answer, for the NPS of those who mention a theme."""


class ThemeRule(Base):
    """A theme of a workspace and the keywords or phrases (per language) that mark it."""

    __tablename__ = "theme_rules"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    theme: Mapped[str] = mapped_column(String(60), primary_key=True)
    keywords: Mapped[dict[str, list[str]]] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WorkspaceSettings(Base):
    """A workspace's own reporting settings (defaults apply without a row)."""

    __tablename__ = "workspace_settings"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    min_n: Mapped[int] = mapped_column(Integer)
    negative: Mapped[dict[str, int]] = mapped_column(JSONB)
    """The highest score per metric that is negative feedback."""
    themes_configured: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    """The workspace edited its themes (until then the built-in list applies)."""
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Target(Base):
    """An experience target and its last evaluated status."""

    __tablename__ = "targets"
    __table_args__ = (
        Index("ix_targets_workspace", "workspace_id"),
        Index("ix_targets_due", "next_evaluation_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(200))
    metric: Mapped[ScoreMetric] = mapped_column(String(8))
    question_id: Mapped[str | None] = mapped_column(String(64))
    survey_id: Mapped[str | None] = mapped_column(String(64))
    filters: Mapped[list[str]] = mapped_column(JSONB)
    direction: Mapped[Direction] = mapped_column(String(10))
    threshold: Mapped[float] = mapped_column(Float)
    window_days: Mapped[int] = mapped_column(Integer)
    owner: Mapped[str | None] = mapped_column(String(320))
    notify: Mapped[dict[str, Any]] = mapped_column(JSONB)
    """{"email": bool (the owner), "chat": channel or URL or null, "webhook": bool}"""
    status: Mapped[TargetStatus | None] = mapped_column(String(20))
    value: Mapped[float | None] = mapped_column(Float)
    n: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    low: Mapped[float | None] = mapped_column(Float)
    high: Mapped[float | None] = mapped_column(Float)
    evaluated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_evaluation_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class NotificationRule(Base):
    """Tell a team channel about every answer at or below a score in a segment, consent or not."""

    __tablename__ = "notification_rules"
    __table_args__ = (Index("ix_notification_rules_workspace", "workspace_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(200))
    metric: Mapped[ScoreMetric] = mapped_column(String(8))
    max_score: Mapped[int | None] = mapped_column(Integer)
    """None: the workspace's negative-feedback threshold of the metric."""
    filters: Mapped[list[str]] = mapped_column(JSONB)
    channel: Mapped[StaffChannel] = mapped_column(String(10))
    to: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SurveyScoring(Base):
    """How one survey's answers are classified (the NPS scale)."""

    __tablename__ = "survey_scoring"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    survey_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    nps_scale: Mapped[NpsScale] = mapped_column(String(20))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


def table_of(model: type[Base]) -> Table:
    """Return a model's table, for Core statements that write many rows at once."""
    return cast(Table, model.__table__)
