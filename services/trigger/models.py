"""The trigger service's tables (schema ``trigger``), and the Core handles of those that the
handlers read and write in bulk (``contacts_table``, ``CONTACT_COLUMNS``, …)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import service_metadata
from shared.events import new_id
from shared.inbox import inbox_table
from shared.outbox import outbox_table
from shared.revocation import revoked_keys_table
from shared.vocabulary import CONTACT_FIELDS, Channel, SendChannel, SurveyKind

SCHEMA = "trigger"


class Base(DeclarativeBase):
    metadata = service_metadata(SCHEMA)


outbox = outbox_table(Base.metadata)
inbox = inbox_table(Base.metadata)
revoked_keys = revoked_keys_table(Base.metadata)
"""API keys the console revoked (``KeyRevoked``): this service refuses them (``shared.revocation``)."""


class Integration(Base):
    """An inbound source of one workspace: its kind, secret, mapping and whether it is enabled."""

    __tablename__ = "integrations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(63), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(40), server_default="standard-webhooks")
    name: Mapped[str] = mapped_column(String(200))
    secret: Mapped[str] = mapped_column(Text)
    config: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("workspace_id", "external_id"),
        Index("ix_contacts_workspace_email", "workspace_id", text("lower(email)")),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(63))
    external_id: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40))
    locale: Mapped[str | None] = mapped_column(String(20))
    timezone: Mapped[str | None] = mapped_column(String(64))
    country: Mapped[str | None] = mapped_column(String(64))
    company: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(100))
    plan: Mapped[str | None] = mapped_column(String(100))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    opted_out_channels: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    opted_out_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class ReceivedEvent(Base):
    """Every inbound event, once: the source's own id makes redeliveries no-ops.

    A webhook is acknowledged once its events are stored here; the evaluator then applies the
    rules to each pending event (``evaluated_at`` null), in arrival order (``seq``).
    """

    __tablename__ = "received_events"
    __table_args__ = (
        UniqueConstraint("workspace_id", "source", "source_event_id"),
        # By contact alone (its ids are unique across workspaces), and only once known: an index that
        # led with workspace_id was what a planner without statistics chose for any lookup by
        # workspace, scanning every event of it instead of probing the unique key.
        Index("ix_received_events_contact_id", "contact_id", postgresql_where=text("contact_id IS NOT NULL")),
        Index("ix_received_events_pending", "seq", postgresql_where=text("evaluated_at IS NULL")),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(63))
    # Ids without foreign keys here and in decisions: integrations, events and rules are never
    # deleted (rules are marked deleted), so a key would only lock the referenced row for every
    # webhook and every decision, and every writer of one integration or rule would queue on it.
    integration_id: Mapped[str | None] = mapped_column(String(36))
    source: Mapped[str] = mapped_column(String(40))
    source_event_id: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(200))
    contact_id: Mapped[str | None] = mapped_column(String(36))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    seq: Mapped[int] = mapped_column(BigInteger, Identity())
    contact: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    """The contact as the source named it, until the evaluator has upserted it (then cleared)."""
    evaluated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    evaluation_error: Mapped[str | None] = mapped_column(Text)
    traceparent: Mapped[str | None] = mapped_column(String(55))
    """The W3C trace of the request that brought the event: what the evaluator publishes continues it."""


class ReceivedBatch(Base):
    """A webhook request of many events, stored whole when it is acknowledged; the evaluator moves
    its events into ``received_events`` (dropping the ones already there) before deciding them."""

    __tablename__ = "received_batches"

    seq: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(63))
    integration_id: Mapped[str | None] = mapped_column(String(36))
    source: Mapped[str] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    count: Mapped[int] = mapped_column(Integer)
    events: Mapped[str] = mapped_column(Text)
    """The events as a JSON array (``store.batch_json``): text, so storing it parses nothing."""
    error: Mapped[str | None] = mapped_column(Text)
    """Why its events could not be stored one by one; such a batch is set aside."""


class Rule(Base):
    __tablename__ = "rules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(63), index=True)
    name: Mapped[str] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(200))
    conditions: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    survey_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[SurveyKind] = mapped_column(String(20), server_default="transactional")
    channel: Mapped[Channel] = mapped_column(String(20))
    fallback_channels: Mapped[list[Channel]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    locale: Mapped[str | None] = mapped_column(String(20))
    delay_seconds: Mapped[int] = mapped_column(Integer, default=0)
    recurrence_days: Mapped[int | None] = mapped_column(Integer)
    sample_percent: Mapped[float] = mapped_column(Float, server_default="100")
    survey_cap_max: Mapped[int | None] = mapped_column(Integer)
    survey_cap_days: Mapped[int | None] = mapped_column(Integer)
    exempt_from_caps: Mapped[bool] = mapped_column(Boolean, server_default="false")
    respect_quiet_hours: Mapped[bool] = mapped_column(Boolean, server_default="true")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Decision(Base):
    """Why a rule did or did not ask a contact for feedback."""

    __tablename__ = "decisions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(), unique=True)
    """Decisions in the order they were made (several share one transaction's timestamp)."""
    workspace_id: Mapped[str] = mapped_column(String(63))
    received_event_id: Mapped[str | None] = mapped_column(String(36), index=True)
    rule_id: Mapped[str] = mapped_column(String(36))
    rule_version: Mapped[int | None] = mapped_column(Integer)
    contact_id: Mapped[str] = mapped_column(String(36), index=True)
    outcome: Mapped[str] = mapped_column(String(30))
    reason: Mapped[str] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(36))
    send_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    channel: Mapped[str | None] = mapped_column(String(20))
    schedule_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ContactSurvey(Base):
    """The contact-frequency history: every survey this service requested for a contact."""

    __tablename__ = "contact_surveys"
    __table_args__ = (Index("ix_contact_surveys_contact_sent", "contact_id", "sent_at"),)

    request_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(63))
    contact_id: Mapped[str] = mapped_column(String(36))
    survey_id: Mapped[str] = mapped_column(String(36))
    rule_id: Mapped[str | None] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(20))
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Schedule(Base):
    """A send that is not due yet: a delay, quiet hours, a journey step or a recurring survey."""

    __tablename__ = "schedules"
    __table_args__ = (
        Index("ix_schedules_due", "due_at", postgresql_where=text("status = 'pending'")),
        Index(
            "uq_schedules_enrollment",
            "rule_id",
            "contact_id",
            unique=True,
            postgresql_where=text("status = 'pending' AND recurrence_days IS NOT NULL"),
        ),
        Index("ix_schedules_contact", "contact_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(63))
    rule_id: Mapped[str] = mapped_column(ForeignKey(f"{SCHEMA}.rules.id"))
    contact_id: Mapped[str] = mapped_column(String(36))
    received_event_id: Mapped[str | None] = mapped_column(String(36))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recurrence_days: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), server_default="pending")
    source: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(200))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    properties: Mapped[dict[str, Any]] = mapped_column(JSONB)
    runs: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WorkspaceSettings(Base):
    """Contact-frequency cap and quiet hours of a workspace."""

    __tablename__ = "workspace_settings"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    cap_max_surveys: Mapped[int | None] = mapped_column(Integer)
    cap_days: Mapped[int | None] = mapped_column(Integer)
    quiet_start: Mapped[str | None] = mapped_column(String(5))
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    quiet_channels: Mapped[list[SendChannel]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    """The channels that keep quiet hours; empty: every channel that sends a message."""
    default_timezone: Mapped[str] = mapped_column(String(64), server_default="UTC")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RetentionPolicy(Base):
    """How long a workspace keeps answers identifiable (``PUT /v1/retention``); no row: keep them."""

    __tablename__ = "retention_policies"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    anonymise_after_days: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AnonymisationRun(Base):
    """A day's ``AnonymisationDue`` of a workspace, published once: the primary key is the once-a-day
    guarantee across replicas."""

    __tablename__ = "anonymisation_runs"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    cutoff: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    anonymise_after_days: Mapped[int] = mapped_column(Integer)
    event_id: Mapped[str] = mapped_column(String(64))
    ran_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Survey(Base):
    """A survey as trigger knows it from responses' events (``SurveyPublished``, ``SurveyClosed``,
    ``SurveyReopened``): a rule may only name a known survey of its workspace, and a closed one is
    recorded as the decision instead of being sent."""

    __tablename__ = "surveys"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    survey_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, server_default="0")
    """The latest version published (0: only a close or reopen has been seen so far)."""
    name: Mapped[str | None] = mapped_column(String(200))
    open: Mapped[bool] = mapped_column(Boolean)
    state_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    """When responses last opened or closed it: an older event, redelivered late, changes nothing."""
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AuditEntry(Base):
    """Who changed a rule, the settings or an integration, when, and from what to what."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity", "workspace_id", "entity", "entity_id", "at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(63))
    entity: Mapped[str] = mapped_column(String(30))
    entity_id: Mapped[str] = mapped_column(String(63))
    action: Mapped[str] = mapped_column(String(30))
    actor: Mapped[str] = mapped_column(String(300))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


# --- table handles -----------------------------------------------------------------------------
# Core handles for statements that read or write many rows at once; here, so that the handler
# modules share them without importing each other.

contacts_table = cast(Table, Contact.__table__)
received_events_table = cast(Table, ReceivedEvent.__table__)
contact_surveys_table = cast(Table, ContactSurvey.__table__)
schedules_table = cast(Table, Schedule.__table__)
surveys_table = cast(Table, Survey.__table__)
CONTACT_COLUMNS = (
    contacts_table.c.id,
    contacts_table.c.external_id,
    *(contacts_table.c[f] for f in CONTACT_FIELDS),
    contacts_table.c.attributes,
    contacts_table.c.opted_out,
    contacts_table.c.opted_out_channels,
    contacts_table.c.created_at,
    contacts_table.c.updated_at,
)
"""A contact as the handlers pass it around (a mapping of these)."""
