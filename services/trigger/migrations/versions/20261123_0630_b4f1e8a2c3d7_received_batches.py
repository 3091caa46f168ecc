"""received batches: a webhook request of many events is stored as one row when acknowledged;
received events are indexed by contact alone

Without statistics (a new or fast-growing table) the planner answered lookups by workspace and
source id through the (workspace_id, contact_id) index, reading every event of the workspace; with
that index on contact_id alone, the unique key is the only one that matches such a lookup.

Create Date: 2026-11-23 06:30:00
"""

import sqlalchemy as sa
from alembic import op

from shared.migration_ops import workspace_id

revision = "b4f1e8a2c3d7"
down_revision = "7c3d9e2f1a65"


def upgrade() -> None:
    op.create_table(
        "received_batches",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        workspace_id(),
        sa.Column("integration_id", sa.String(length=36), nullable=True),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("events", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_received_batches")),
        schema="trigger",
    )
    op.drop_index("ix_received_events_contact", table_name="received_events", schema="trigger")
    op.create_index(
        "ix_received_events_contact_id",
        "received_events",
        ["contact_id"],
        schema="trigger",
        postgresql_where=sa.text("contact_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_received_events_contact_id",
        table_name="received_events",
        schema="trigger",
        postgresql_where=sa.text("contact_id IS NOT NULL"),
    )
    op.create_index(
        "ix_received_events_contact", "received_events", ["workspace_id", "contact_id"], schema="trigger"
    )
    op.drop_table("received_batches", schema="trigger")
