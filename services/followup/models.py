"""The follow-up service's tables (schema ``followup``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import service_metadata
from shared.erasure import erased_contacts_table
from shared.events import new_id
from shared.inbox import inbox_table
from shared.known_surveys import known_surveys_table
from shared.outbox import outbox_table
from shared.revocation import revoked_keys_table

SCHEMA = "followup"
Moment = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = service_metadata(SCHEMA)


outbox = outbox_table(Base.metadata)
inbox = inbox_table(Base.metadata)
surveys = known_surveys_table(Base.metadata)
"""The workspace's surveys, open or closed, from responses' events: the retention survey must be one."""
erased_contacts = erased_contacts_table(Base.metadata)
"""Contacts erased (``shared.erasure``): a score about one that arrives later opens no case."""
revoked_keys = revoked_keys_table(Base.metadata)
"""API keys the console revoked (``KeyRevoked``): this service refuses them (``shared.revocation``)."""


class Case(Base):
    """One case per response that called for a follow-up; who to call is copied in at opening time."""

    __tablename__ = "cases"
    __table_args__ = (
        UniqueConstraint("workspace_id", "response_id", name="uq_cases_response"),
        UniqueConstraint("workspace_id", "retention_request_id", name="uq_cases_retention_request"),
        Index("ix_cases_workspace_status", "workspace_id", "status", "created_at"),
        Index("ix_cases_workspace_created", "workspace_id", "created_at", "id"),
        Index("ix_cases_assignee", "workspace_id", "assignee", "status", "created_at"),
        Index("ix_cases_team", "workspace_id", "team_id", "status"),
        Index("ix_cases_contact", "workspace_id", "contact_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(40))
    priority: Mapped[str] = mapped_column(String(10), default="normal")
    opened_because: Mapped[str] = mapped_column(String(20), default="negative")
    response_id: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    survey_id: Mapped[str] = mapped_column(String(64))
    contact_id: Mapped[str | None] = mapped_column(String(64))
    """None once the contact is erased."""
    kind: Mapped[str] = mapped_column(String(20), default="transactional")
    channel: Mapped[str | None] = mapped_column(String(20))
    """The channel the customer answered on."""
    metric: Mapped[str] = mapped_column(String(10))
    score: Mapped[int] = mapped_column(Integer)
    """The first negative (or triggering) answer."""
    scores: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    loyalty: Mapped[str | None] = mapped_column(String(10))
    dimensions: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    comment: Mapped[str | None] = mapped_column(Text)
    # Who to call, as the events said when the case opened; blanked by erasure.
    contact_known: Mapped[bool] = mapped_column(Boolean, default=False)
    contact_name: Mapped[str | None] = mapped_column(String(200))
    contact_email: Mapped[str | None] = mapped_column(String(320))
    contact_phone: Mapped[str | None] = mapped_column(String(40))
    contact_locale: Mapped[str | None] = mapped_column(String(20))
    contact_timezone: Mapped[str | None] = mapped_column(String(64))
    contact_company: Mapped[str | None] = mapped_column(String(200))
    erased_at: Mapped[datetime | None] = mapped_column(Moment)
    anonymised_at: Mapped[datetime | None] = mapped_column(Moment)
    """When the retention policy anonymised it (``AnonymisationDue``): as erased, its contact gone."""
    team_id: Mapped[str | None] = mapped_column(String(36))
    assignee: Mapped[str | None] = mapped_column(String(200))
    """An agent id (opaque)."""
    routing_rule_id: Mapped[str | None] = mapped_column(String(36))
    sla_policy_id: Mapped[str | None] = mapped_column(String(36))
    first_contact_due_at: Mapped[datetime | None] = mapped_column(Moment)
    first_contact_due_business_at: Mapped[datetime | None] = mapped_column(Moment)
    resolution_due_at: Mapped[datetime | None] = mapped_column(Moment)
    resolution_due_business_at: Mapped[datetime | None] = mapped_column(Moment)
    paused_at: Mapped[datetime | None] = mapped_column(Moment)
    first_contacted_at: Mapped[datetime | None] = mapped_column(Moment)
    root_cause_category: Mapped[str | None] = mapped_column(String(80))
    root_cause: Mapped[str | None] = mapped_column(String(80))
    action_taken: Mapped[str | None] = mapped_column(Text)
    resolution_note: Mapped[str | None] = mapped_column(Text)
    retention_status: Mapped[str | None] = mapped_column(String(20))
    retention_request_id: Mapped[str | None] = mapped_column(String(36))
    retention_channel: Mapped[str | None] = mapped_column(String(20))
    won_back: Mapped[bool | None] = mapped_column(Boolean)
    retention_score: Mapped[int | None] = mapped_column(Integer)
    climbed_at: Mapped[datetime | None] = mapped_column(Moment)
    climbed_score: Mapped[int | None] = mapped_column(Integer)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    feedback_at: Mapped[datetime] = mapped_column(Moment)
    created_at: Mapped[datetime] = mapped_column(Moment, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(Moment, server_default=func.now())
    resolved_at: Mapped[datetime | None] = mapped_column(Moment)
    closed_at: Mapped[datetime | None] = mapped_column(Moment)


class CaseEntry(Base):
    """The history of a case: every change, with who made it."""

    __tablename__ = "case_history"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(63))
    case_id: Mapped[str] = mapped_column(ForeignKey(f"{SCHEMA}.cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    actor: Mapped[str] = mapped_column(String(200), default="system")
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(Moment)


class CaseNote(Base):
    """Notes are appended, never edited; erasing the contact blanks the text and the links."""

    __tablename__ = "case_notes"
    __table_args__ = (Index("ix_case_notes_case", "case_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(63))
    case_id: Mapped[str] = mapped_column(ForeignKey(f"{SCHEMA}.cases.id"))
    author: Mapped[str] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text)
    attachments: Mapped[list[dict[str, str]]] = mapped_column(JSONB, default=list)
    erased: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(Moment)


class Agent(Base):
    """A person who works cases; the id is the caller's (opaque: the console adds logins later)."""

    __tablename__ = "agents"
    __table_args__ = (PrimaryKeyConstraint("workspace_id", "id"),)

    workspace_id: Mapped[str] = mapped_column(String(63))
    id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(Moment, server_default=func.now())


class Team(Base):
    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("workspace_id", "name", name="uq_teams_name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    weekdays: Mapped[list[int]] = mapped_column(JSONB, default=lambda: [0, 1, 2, 3, 4])
    day_start: Mapped[str] = mapped_column(String(5), default="09:00")
    day_end: Mapped[str] = mapped_column(String(5), default="17:00")
    holiday_country: Mapped[str | None] = mapped_column(String(8))
    holiday_subdivision: Mapped[str | None] = mapped_column(String(16))
    days_off: Mapped[list[str]] = mapped_column(JSONB, default=list)
    lead_agent_id: Mapped[str | None] = mapped_column(String(200))
    strategy: Mapped[str] = mapped_column(String(20), default="round_robin")
    notify_channel: Mapped[str | None] = mapped_column(String(10))
    notify_to: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(Moment, server_default=func.now())


class TeamMember(Base):
    __tablename__ = "team_members"
    __table_args__ = (PrimaryKeyConstraint("team_id", "agent_id"),)

    team_id: Mapped[str] = mapped_column(ForeignKey(f"{SCHEMA}.teams.id", ondelete="CASCADE"))
    agent_id: Mapped[str] = mapped_column(String(200))
    workspace_id: Mapped[str] = mapped_column(String(63))
    last_assigned_at: Mapped[datetime | None] = mapped_column(Moment)
    """Round robin gives the next case to whoever got one longest ago."""


class RoutingRule(Base):
    __tablename__ = "routing_rules"
    __table_args__ = (Index("ix_routing_rules_workspace", "workspace_id", "position"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(63))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    conditions: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    team_id: Mapped[str | None] = mapped_column(String(36))
    agent_id: Mapped[str | None] = mapped_column(String(200))
    priority: Mapped[str | None] = mapped_column(String(10))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(Moment, server_default=func.now())


class SlaPolicy(Base):
    __tablename__ = "sla_policies"
    __table_args__ = (Index("ix_sla_policies_workspace", "workspace_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(200))
    team_id: Mapped[str | None] = mapped_column(String(36))
    priority: Mapped[str | None] = mapped_column(String(10))
    first_contact_minutes: Mapped[int | None] = mapped_column(Integer)
    resolution_minutes: Mapped[int | None] = mapped_column(Integer)
    first_contact_business_minutes: Mapped[int | None] = mapped_column(Integer)
    resolution_business_minutes: Mapped[int | None] = mapped_column(Integer)
    pause_while_waiting: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(Moment, server_default=func.now())


class EscalationStep(Base):
    __tablename__ = "escalation_steps"
    __table_args__ = (Index("ix_escalation_steps_workspace", "workspace_id", "position"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(63))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    trigger: Mapped[str] = mapped_column(String(30))
    after_minutes: Mapped[int] = mapped_column(Integer)
    clock: Mapped[str] = mapped_column(String(10), default="business")
    action: Mapped[str] = mapped_column(String(20))
    team_id: Mapped[str | None] = mapped_column(String(36))
    reassign_team_id: Mapped[str | None] = mapped_column(String(36))
    reassign_agent_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(Moment)


class EscalationSchedule(Base):
    """When the scheduler next looks at a case: a row per case with a ladder step still to come.

    Kept apart from ``cases`` so that rescheduling rewrites a narrow row with one index, not a wide
    row with eight (a pass after a ladder change reschedules every open case)."""

    __tablename__ = "escalation_schedule"
    __table_args__ = (Index("ix_escalation_schedule_next", "next_at"),)

    case_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(63))
    next_at: Mapped[datetime] = mapped_column(Moment)


class Escalation(Base):
    """A ladder step applied to a case: the primary key is the once-per-case guarantee."""

    __tablename__ = "escalations"
    __table_args__ = (PrimaryKeyConstraint("case_id", "step_id"),)

    case_id: Mapped[str] = mapped_column(ForeignKey(f"{SCHEMA}.cases.id"))
    step_id: Mapped[str] = mapped_column(String(36))
    workspace_id: Mapped[str] = mapped_column(String(63))
    action: Mapped[str] = mapped_column(String(20))
    applied_at: Mapped[datetime] = mapped_column(Moment)


class Decision(Base):
    """Why a response opened a case or not, and where a case was routed."""

    __tablename__ = "decisions"
    __table_args__ = (
        Index("ix_decisions_workspace", "workspace_id", "id"),
        Index("ix_decisions_response", "workspace_id", "response_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(63))
    response_id: Mapped[str] = mapped_column(String(64))
    contact_id: Mapped[str | None] = mapped_column(String(64))
    case_id: Mapped[str | None] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(10))
    """opening | routing"""
    outcome: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    rule_id: Mapped[str | None] = mapped_column(String(36))
    team_id: Mapped[str | None] = mapped_column(String(36))
    assignee: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(Moment)


class SeenResponse(Base):
    """Every scored response, reduced to what the recovery funnel and "climbed" count."""

    __tablename__ = "seen_responses"
    __table_args__ = (
        PrimaryKeyConstraint("workspace_id", "response_id"),
        Index("ix_seen_responses_scored", "workspace_id", "scored_at"),
    )

    workspace_id: Mapped[str] = mapped_column(String(63))
    response_id: Mapped[str] = mapped_column(String(64))
    contact_id: Mapped[str | None] = mapped_column(String(64))
    survey_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))
    negative: Mapped[bool] = mapped_column(Boolean)
    consented: Mapped[bool] = mapped_column(Boolean)
    promoter: Mapped[bool] = mapped_column(Boolean)
    dimensions: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    scored_at: Mapped[datetime] = mapped_column(Moment)


class WorkspaceSettings(Base):
    """How a workspace works its cases and closes the loop."""

    __tablename__ = "workspace_settings"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    retention_survey_id: Mapped[str | None] = mapped_column(String(64))
    retention_channel: Mapped[str] = mapped_column(String(20), default="email")
    retention_delay_seconds: Mapped[int] = mapped_column(Integer, default=0)
    notify_email: Mapped[str | None] = mapped_column(String(320))
    """Staff address told about every new case (through dispatch); None tells nobody."""
    custom_statuses: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    allow_backward: Mapped[bool] = mapped_column(Boolean, default=False)
    note_on_status_change: Mapped[bool] = mapped_column(Boolean, default=False)
    note_on_reassign: Mapped[bool] = mapped_column(Boolean, default=False)
    open_on_loyalty: Mapped[list[str]] = mapped_column(JSONB, default=list)
    open_below: Mapped[dict[str, int]] = mapped_column(JSONB, default=dict)
    root_causes: Mapped[dict[str, list[str]] | None] = mapped_column(JSONB)
    """None: the default taxonomy."""
    default_team_id: Mapped[str | None] = mapped_column(String(36))
    updated_at: Mapped[datetime] = mapped_column(Moment, server_default=func.now(), onupdate=func.now())
