"""Building blocks for the services' Alembic migrations: the tables every service keeps the same way
(inbox, outbox, revoked keys, erased contacts), the columns most tables start with, the column shapes
several tables share (empty JSONB defaults, a sender's due columns, a traceparent) and adding a list of
columns to a table (and dropping it again).

**Frozen.** A released migration calls these, and a database that upgrades (or downgrades) through it
years later must get exactly the schema it got the day it was written. So a block never changes
meaning: when a table or column should be made differently from now on, add a new block (a new name,
or a ``_v2``) for the new migration to call and leave the old one as it is. Each block creates what
its name says, in the schema it is given, with the names (``pk_``, ``uq_``, ``ix_``) Alembic's
autogenerate wrote for it; a migration calling one still reads as the list of what it creates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# --- columns -------------------------------------------------------------------------------------


def workspace_id() -> sa.Column[str]:
    """``workspace_id varchar(63) NOT NULL``: the tenant every row belongs to."""
    return sa.Column("workspace_id", sa.String(length=63), nullable=False)


def uuid_id() -> sa.Column[str]:
    """``id varchar(36) NOT NULL``: a UUID as text (the table names its primary key beside it)."""
    return sa.Column("id", sa.String(length=36), nullable=False)


def created_at() -> sa.Column[object]:
    """``created_at timestamptz NOT NULL DEFAULT now()``."""
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def updated_at() -> sa.Column[object]:
    """``updated_at timestamptz NOT NULL DEFAULT now()``."""
    return sa.Column(
        "updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def jsonb_array(name: str) -> sa.Column[object]:
    """``<name> jsonb NOT NULL DEFAULT '[]'::jsonb``: a list that starts empty."""
    return sa.Column(
        name, postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False
    )


def jsonb_object(name: str) -> sa.Column[object]:
    """``<name> jsonb NOT NULL DEFAULT '{}'::jsonb``: a mapping that starts empty."""
    return sa.Column(
        name, postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False
    )


def due_columns() -> list[sa.Column[object]]:
    """``next_attempt_at timestamptz NOT NULL, claimed_at timestamptz``: when a sender may try a row
    next and when one claimed it (the row's ``status`` and ``create_due_index`` go with them)."""
    return [
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
    ]


def traceparent() -> sa.Column[str]:
    """``traceparent varchar(55)``: the W3C trace context of the request that made the row, which a
    worker handling it later continues (null for rows made before it was kept)."""
    return sa.Column("traceparent", sa.String(length=55), nullable=True)


def add_columns(table: str, columns: Sequence[sa.Column[Any]], *, schema: str) -> None:
    """``ALTER TABLE <table> ADD COLUMN`` each of ``columns``, in order."""
    for column in columns:
        op.add_column(table, column, schema=schema)


def drop_columns(table: str, columns: Sequence[sa.Column[Any]], *, schema: str) -> None:
    """Undo ``add_columns``: drop each of ``columns`` (by name) from ``table``, the last added first."""
    for column in reversed(columns):
        op.drop_column(table, column.name, schema=schema)


# --- inbox ---------------------------------------------------------------------------------------


def create_inbox_table(schema: str) -> None:
    """The inbox (``shared.inbox``): one row per event a consumer has handled, keyed by both."""
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column(
            "processed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_inbox")),
        schema=schema,
    )


# --- outbox --------------------------------------------------------------------------------------


def create_first_outbox_table(schema: str) -> None:
    """The outbox as the first release made it: with ``published_at`` (and its partial index),
    ``attempts``, ``last_error`` and a unique event id, which ``shared.migrations.slim_outbox`` drops."""
    op.create_table(
        "outbox",
        *_slim_outbox_columns(),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
        schema=schema,
    )
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["seq"],
        unique=False,
        schema=schema,
        postgresql_where=sa.text("published_at IS NULL"),
    )


def drop_first_outbox_table(schema: str) -> None:
    """Undo ``create_first_outbox_table``."""
    op.drop_index(
        "ix_outbox_unpublished",
        table_name="outbox",
        schema=schema,
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.drop_table("outbox", schema=schema)


def create_slim_outbox_table(schema: str) -> None:
    """The outbox (``shared.outbox``) as it is after ``slim_outbox``: the relay deletes what it published."""
    op.create_table(
        "outbox",
        *_slim_outbox_columns(),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_outbox")),
        schema=schema,
    )


def _slim_outbox_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("seq", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        created_at(),
    ]


# --- revoked keys and erased contacts ------------------------------------------------------------


def create_revoked_keys_table(schema: str) -> None:
    """The API keys the console revoked (``KeyRevoked``, ``shared.revocation``), indexed by when
    they were recorded."""
    op.create_table(
        "revoked_keys",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        workspace_id(),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_revoked_keys")),
        schema=schema,
    )
    op.create_index(
        op.f(f"ix_{schema}_revoked_keys_recorded_at"),
        "revoked_keys",
        ["recorded_at"],
        unique=False,
        schema=schema,
    )


def drop_revoked_keys_table(schema: str) -> None:
    """Undo ``create_revoked_keys_table``."""
    op.drop_index(op.f(f"ix_{schema}_revoked_keys_recorded_at"), table_name="revoked_keys", schema=schema)
    op.drop_table("revoked_keys", schema=schema)


def create_erased_contacts_table(schema: str) -> None:
    """The contacts erased in a workspace (``shared.erasure``), by the hash of their id."""
    op.create_table(
        "erased_contacts",
        workspace_id(),
        sa.Column("contact_hash", sa.String(length=64), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "contact_hash", name=op.f("pk_erased_contacts")),
        schema=schema,
    )


def create_known_surveys_table(schema: str, *, survey_id_length: int) -> None:
    """``surveys``: the surveys a service knows from responses' events (``shared.known_surveys``)."""
    op.create_table(
        "surveys",
        workspace_id(),
        sa.Column("survey_id", sa.String(length=survey_id_length), nullable=False),
        sa.Column("version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("open", sa.Boolean(), nullable=False),
        sa.Column("state_at", sa.DateTime(timezone=True), nullable=False),
        updated_at(),
        sa.PrimaryKeyConstraint("workspace_id", "survey_id", name=op.f("pk_surveys")),
        schema=schema,
    )


# --- indexes -------------------------------------------------------------------------------------


def create_due_index(table: str, schema: str) -> None:
    """``ix_<table>_due``: the partial index a sender claims its due rows by (``next_attempt_at`` of
    the rows still ``scheduled`` or ``sending``)."""
    op.create_index(
        f"ix_{table}_due",
        table,
        ["next_attempt_at"],
        unique=False,
        schema=schema,
        postgresql_where=sa.text("status IN ('scheduled', 'sending')"),
    )


def drop_due_index(table: str, schema: str) -> None:
    """Undo ``create_due_index``."""
    op.drop_index(
        f"ix_{table}_due",
        table_name=table,
        schema=schema,
        postgresql_where=sa.text("status IN ('scheduled', 'sending')"),
    )
