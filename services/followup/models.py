"""The follow-up service's tables (schema ``followup``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import service_metadata
from shared.events import new_id
from shared.inbox import inbox_table
from shared.outbox import outbox_table

SCHEMA = "followup"


class Base(DeclarativeBase):
    metadata = service_metadata(SCHEMA)


outbox = outbox_table(Base.metadata)
inbox = inbox_table(Base.metadata)


class Task(Base):
    """One follow-up task per negative response whose customer agreed to be contacted."""

    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("workspace_id", "response_id", name="uq_tasks_response"),
        UniqueConstraint("workspace_id", "retention_request_id", name="uq_tasks_retention_request"),
        Index("ix_tasks_workspace_status", "workspace_id", "status", "created_at"),
        Index("ix_tasks_contact", "workspace_id", "contact_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(20))
    response_id: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    survey_id: Mapped[str] = mapped_column(String(64))
    contact_id: Mapped[str] = mapped_column(String(64))
    metric: Mapped[str] = mapped_column(String(10))
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    """Blanked when the contact is erased."""
    assignee: Mapped[str | None] = mapped_column(String(200))
    resolution_note: Mapped[str | None] = mapped_column(Text)
    retention_request_id: Mapped[str | None] = mapped_column(String(36))
    won_back: Mapped[bool | None] = mapped_column(Boolean)
    retention_score: Mapped[int | None] = mapped_column(Integer)
    feedback_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TaskEntry(Base):
    """The history of a task: opened, assigned, resolved (with the note), outcome."""

    __tablename__ = "task_history"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(63))
    task_id: Mapped[str] = mapped_column(ForeignKey(f"{SCHEMA}.tasks.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WorkspaceSettings(Base):
    """How a workspace closes the loop: which survey asks whether a customer was won back."""

    __tablename__ = "workspace_settings"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    retention_survey_id: Mapped[str | None] = mapped_column(String(64))
    retention_channel: Mapped[str] = mapped_column(String(20), default="email")
    retention_delay_seconds: Mapped[int] = mapped_column(Integer, default=0)
    notify_email: Mapped[str | None] = mapped_column(String(320))
    """Staff address told about every new task (through dispatch); None tells nobody."""
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
