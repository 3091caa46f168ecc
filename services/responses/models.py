"""The responses service's tables (schema ``responses``)."""

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

SCHEMA = "responses"


class Base(DeclarativeBase):
    metadata = service_metadata(SCHEMA)


outbox = outbox_table(Base.metadata)
inbox = inbox_table(Base.metadata)


class Survey(Base):
    """A survey definition; ``questions`` is a list of {id, type, text, required}."""

    __tablename__ = "surveys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(63), index=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer, default=1)
    questions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    thank_you_text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Response(Base):
    """One completed response; at most one per invitation."""

    __tablename__ = "responses"
    __table_args__ = (
        UniqueConstraint("workspace_id", "invitation_id", name="uq_responses_workspace_id_invitation_id"),
        Index("ix_responses_workspace_id_contact_id", "workspace_id", "contact_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(63))
    survey_id: Mapped[str] = mapped_column(ForeignKey(f"{SCHEMA}.surveys.id"), index=True)
    survey_version: Mapped[int] = mapped_column(Integer)
    invitation_id: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    contact_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(20))
    locale: Mapped[str | None] = mapped_column(String(20))
    consent_to_contact: Mapped[bool] = mapped_column(Boolean)
    completed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ResponseAnswer(Base):
    """One answer of a response; free text is blanked (NULL) when the contact is erased."""

    __tablename__ = "answers"

    response_id: Mapped[str] = mapped_column(
        ForeignKey(f"{SCHEMA}.responses.id", ondelete="CASCADE"), primary_key=True
    )
    question_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(63))
    position: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(20))
    value: Mapped[Any] = mapped_column(JSONB(none_as_null=True), nullable=True)
