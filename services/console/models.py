"""The console's tables (schema ``console``): people, workspaces, memberships, sessions and the ids of
API keys. No feedback data, and no secret in a form that could be used: passwords as argon2id hashes,
session, reset and invitation tokens as SHA-256 hashes, API keys not at all (only their ids)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String, Text, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import service_metadata
from shared.events import new_id
from shared.inbox import inbox_table
from shared.outbox import outbox_table
from shared.revocation import revoked_keys_table

SCHEMA = "console"


class Base(DeclarativeBase):
    metadata = service_metadata(SCHEMA)


outbox = outbox_table(Base.metadata)
inbox = inbox_table(Base.metadata)
revoked_keys = revoked_keys_table(Base.metadata)


class User(Base):
    """A person; they belong to workspaces through memberships."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    """Lower-cased; the sign-in name."""
    name: Mapped[str] = mapped_column(String(200))
    locale: Mapped[str] = mapped_column(String(35), default="en")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    password_hash: Mapped[str | None] = mapped_column(String(200))
    """argon2id; None for a person who signs in with single sign-on only (or has not set one yet)."""
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Workspace(Base):
    """A workspace the console knows (its feedback data lives in the five services)."""

    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Membership(Base):
    """A person's role in a workspace."""

    __tablename__ = "memberships"
    __table_args__ = (Index("ix_memberships_user", "user_id"),)

    workspace_id: Mapped[str] = mapped_column(ForeignKey(f"{SCHEMA}.workspaces.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey(f"{SCHEMA}.users.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Invitation(Base):
    """An emailed invitation to join a workspace with a role; works once, until it expires."""

    __tablename__ = "invitations"
    __table_args__ = (Index("ix_invitations_workspace", "workspace_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey(f"{SCHEMA}.workspaces.id"))
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(20))
    invited_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PasswordToken(Base):
    """A link that sets a person's password once: "forgot password", or the CLI's sign-in link."""

    __tablename__ = "password_tokens"
    __table_args__ = (Index("ix_password_tokens_user", "user_id"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey(f"{SCHEMA}.users.id"))
    purpose: Mapped[str] = mapped_column(String(20))
    """reset (forgot password) or setup (a new person's first password)."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Session(Base):
    """A signed-in browser. The cookie holds a random token; this row holds its hash."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_user", "user_id"),)

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey(f"{SCHEMA}.users.id"))
    workspace_id: Mapped[str] = mapped_column(String(63))
    """The workspace the person works in now (they may belong to several)."""
    csrf_token: Mapped[str] = mapped_column(String(64))
    """The synchronizer token every form of this session carries."""
    method: Mapped[str] = mapped_column(String(20))
    """password or sso."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    """The absolute end (sign-in plus the absolute timeout)."""


class SignInFailure(Base):
    """A failed sign-in, counted per account and per client address for throttling."""

    __tablename__ = "sign_in_failures"
    __table_args__ = (Index("ix_sign_in_failures_key", "key", "failed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(100))
    """``account:<sha256 of the email>`` or ``address:<client address>``."""
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApiKey(Base):
    """An API key's id and description; its secret was shown once and is kept nowhere."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_workspace", "workspace_id", "created_at"),)

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey(f"{SCHEMA}.workspaces.id"))
    prefix: Mapped[str] = mapped_column(String(120))
    """``clk_<workspace>.<key id>``: what identifies the key in lists and logs."""
    role: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(100))
    """``user:<id>``, ``key:<id>`` or ``operator`` (the CLI)."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """To the minute (``KeyUsed`` from the services)."""
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[str | None] = mapped_column(String(100))


class SsoProvider(Base):
    """A workspace's OpenID Connect provider: who may sign in with it, and with which role."""

    __tablename__ = "sso_providers"

    workspace_id: Mapped[str] = mapped_column(ForeignKey(f"{SCHEMA}.workspaces.id"), primary_key=True)
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(500))
    client_secret: Mapped[str | None] = mapped_column(Text)
    allowed_domains: Mapped[list[str]] = mapped_column(ARRAY(String(253)))
    """Email domains whose verified addresses join the workspace on first sign-in."""
    default_role: Mapped[str] = mapped_column(String(20))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SsoIdentity(Base):
    """A person's account at an identity provider (issuer, subject), once they signed in with it."""

    __tablename__ = "sso_identities"

    issuer: Mapped[str] = mapped_column(String(500), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey(f"{SCHEMA}.users.id"), index=True)


class SsoState(Base):
    """A single sign-on in flight: the state, nonce and PKCE verifier of one authorization request."""

    __tablename__ = "sso_states"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(63))
    nonce: Mapped[str] = mapped_column(String(64))
    code_verifier: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
