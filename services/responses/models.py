"""The responses service's tables (schema ``responses``)."""

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
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.responses.domain.definition import SurveyQuestionType
from shared.db import service_metadata
from shared.erasure import erased_contacts_table
from shared.events import new_id
from shared.inbox import inbox_table
from shared.outbox import outbox_table
from shared.revocation import revoked_keys_table
from shared.vocabulary import Channel, SurveyKind

SCHEMA = "responses"


class Base(DeclarativeBase):
    metadata = service_metadata(SCHEMA)


outbox = outbox_table(Base.metadata)
inbox = inbox_table(Base.metadata)
revoked_keys = revoked_keys_table(Base.metadata)
"""API keys the console revoked (``KeyRevoked``): this service refuses them (``shared.revocation``)."""


class Survey(Base):
    """A survey: its name, its current version and whether it still takes responses."""

    __tablename__ = "surveys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(63), index=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SurveyVersion(Base):
    """One immutable version of a survey's definition (questions, logic, texts, branding)."""

    __tablename__ = "survey_versions"

    survey_id: Mapped[str] = mapped_column(ForeignKey(f"{SCHEMA}.surveys.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(63))
    definition: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Response(Base):
    """One response, partial until ``completed_at``; at most one per invitation (``link_key``)."""

    __tablename__ = "responses"
    __table_args__ = (
        UniqueConstraint("workspace_id", "invitation_id", name="uq_responses_workspace_id_invitation_id"),
        UniqueConstraint("workspace_id", "link_key", name="uq_responses_workspace_id_link_key"),
        Index("ix_responses_workspace_id_contact_id", "workspace_id", "contact_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(63))
    survey_id: Mapped[str] = mapped_column(ForeignKey(f"{SCHEMA}.surveys.id"), index=True)
    survey_version: Mapped[int] = mapped_column(Integer)
    link_key: Mapped[str] = mapped_column(String(80))
    """The invitation id, or ``kiosk:<session>`` for an anonymous kiosk response."""
    invitation_id: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    kiosk_id: Mapped[str | None] = mapped_column(String(36))
    contact_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[SurveyKind] = mapped_column(String(20))
    channel: Mapped[Channel] = mapped_column(String(20))
    locale: Mapped[str | None] = mapped_column(String(20))
    hidden_fields: Mapped[dict[str, str]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    passed: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    """Question ids the respondent has moved past (answered or left blank)."""
    consent_to_contact: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    reward_code: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    anonymised_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When the retention policy anonymised it (``AnonymisationDue``): no contact, free text or hidden fields."""


class ResponseAnswer(Base):
    """One answer of a response; free text is blanked (NULL) when the contact is erased."""

    __tablename__ = "answers"

    response_id: Mapped[str] = mapped_column(
        ForeignKey(f"{SCHEMA}.responses.id", ondelete="CASCADE"), primary_key=True
    )
    question_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(63))
    position: Mapped[int] = mapped_column(Integer)
    type: Mapped[SurveyQuestionType] = mapped_column(String(20))
    value: Mapped[Any] = mapped_column(JSONB(none_as_null=True), nullable=True)
    answered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


erased_contacts = erased_contacts_table(Base.metadata)
"""Contacts erased from a workspace, by a hash of their id alone (``shared.erasure``): their survey links
no longer open."""


class Kiosk(Base):
    """A public, per-location link to a survey for tablets and QR posters (anonymous responses)."""

    __tablename__ = "kiosks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(63), index=True)
    survey_id: Mapped[str] = mapped_column(ForeignKey(f"{SCHEMA}.surveys.id"))
    key: Mapped[str] = mapped_column(String(64), unique=True)
    """The unguessable part of the public URL ``/k/<key>``."""
    location_id: Mapped[str] = mapped_column(String(50))
    name: Mapped[str | None] = mapped_column(String(200))
    locale: Mapped[str | None] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WorkspaceSettings(Base):
    """A workspace's branding of its survey pages and its glossary of internal terms."""

    __tablename__ = "workspace_settings"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    branding: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    glossary: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RewardPool(Base):
    """A pool of reward codes; each completed response of a survey using it gets one."""

    __tablename__ = "reward_pools"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(63), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RewardCode(Base):
    """One code of a pool; ``response_id`` is set once, when it is given out (never twice)."""

    __tablename__ = "reward_codes"
    __table_args__ = (
        UniqueConstraint("pool_id", "code", name="uq_reward_codes_pool_id_code"),
        UniqueConstraint("response_id", name="uq_reward_codes_response_id"),
        Index("ix_reward_codes_unclaimed", "pool_id", "id", postgresql_where=text("response_id IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    pool_id: Mapped[str] = mapped_column(ForeignKey(f"{SCHEMA}.reward_pools.id"))
    workspace_id: Mapped[str] = mapped_column(String(63))
    code: Mapped[str] = mapped_column(String(200))
    response_id: Mapped[str | None] = mapped_column(String(36))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
