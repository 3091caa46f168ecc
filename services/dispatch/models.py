"""The dispatch service's tables (schema ``dispatch``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String, Text, UniqueConstraint, func, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import service_metadata
from shared.inbox import inbox_table
from shared.outbox import outbox_table

SCHEMA = "dispatch"


class Base(DeclarativeBase):
    metadata = service_metadata(SCHEMA)


outbox = outbox_table(Base.metadata)
inbox = inbox_table(Base.metadata)


class Invitation(Base):
    """One per survey request: whom to ask, over which channel, and how far sending got.

    Status: ``scheduled`` → ``sending`` (claimed by a sender) → ``sent``; or ``failed`` with
    ``last_error``. A failed attempt goes back to ``scheduled`` with a later ``next_attempt_at``.
    """

    __tablename__ = "invitations"
    __table_args__ = (
        UniqueConstraint("workspace_id", "request_id"),
        Index("ix_invitations_workspace_contact", "workspace_id", "contact_id", "created_at"),
        Index("ix_invitations_workspace_created", "workspace_id", "created_at"),
        Index(
            "ix_invitations_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('scheduled', 'sending')"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(63))
    request_id: Mapped[str] = mapped_column(String(64))
    contact_id: Mapped[str] = mapped_column(String(200))
    survey_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(20))
    locale: Mapped[str | None] = mapped_column(String(20))
    recipient_email: Mapped[str | None] = mapped_column(Text)
    recipient_name: Mapped[str | None] = mapped_column(Text)
    recipient_phone: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    survey_url: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(300))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    send_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
