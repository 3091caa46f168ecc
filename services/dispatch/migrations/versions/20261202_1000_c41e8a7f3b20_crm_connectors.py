"""crm connectors: a workspace's CRM (HubSpot), the calls queued for it and the call log

Create Date: 2026-12-02 10:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.migration_ops import create_due_index, created_at, due_columns, uuid_id, workspace_id

revision = "c41e8a7f3b20"
down_revision = "7b3d5e2a91c4"

JSONB = postgresql.JSONB(astext_type=sa.Text())
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "crm_connectors",
        uuid_id(),
        workspace_id(),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("config", JSONB, nullable=False),
        sa.Column("sealed_credentials", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("prepared", sa.Boolean(), nullable=False),
        created_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_connectors")),
        schema="dispatch",
    )
    op.create_index(
        "ix_crm_connectors_workspace", "crm_connectors", ["workspace_id", "created_at"], schema="dispatch"
    )
    op.create_table(
        "crm_calls",
        uuid_id(),
        workspace_id(),
        sa.Column("connector_id", sa.String(length=36), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("contact_id", sa.String(length=64), nullable=True),
        sa.Column("request", JSONB, nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        *due_columns(),
        sa.Column("done_at", TS, nullable=True),
        created_at(),
        sa.ForeignKeyConstraint(
            ["connector_id"],
            ["dispatch.crm_connectors.id"],
            name=op.f("fk_crm_calls_connector_id_crm_connectors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_calls")),
        sa.UniqueConstraint("connector_id", "event_id", name=op.f("uq_crm_calls_connector_id")),
        schema="dispatch",
    )
    create_due_index("crm_calls", schema="dispatch")
    op.create_index("ix_crm_calls_connector", "crm_calls", ["connector_id", "created_at"], schema="dispatch")
    op.create_index("ix_crm_calls_contact", "crm_calls", ["workspace_id", "contact_id"], schema="dispatch")
    op.create_table(
        "crm_attempts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("call_id", sa.String(length=36), nullable=False),
        sa.Column("connector_id", sa.String(length=36), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("attempted_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["dispatch.crm_calls.id"],
            name=op.f("fk_crm_attempts_call_id_crm_calls"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_attempts")),
        schema="dispatch",
    )
    op.create_index("ix_crm_attempts_call", "crm_attempts", ["call_id", "id"], schema="dispatch")
    op.create_index(
        "ix_crm_attempts_budget", "crm_attempts", ["connector_id", "attempted_at"], schema="dispatch"
    )


def downgrade() -> None:
    op.drop_table("crm_attempts", schema="dispatch")
    op.drop_table("crm_calls", schema="dispatch")
    op.drop_table("crm_connectors", schema="dispatch")
