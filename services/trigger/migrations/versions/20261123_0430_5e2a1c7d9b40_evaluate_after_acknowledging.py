"""evaluate after acknowledging: received events wait for the evaluator

Create Date: 2026-11-23 04:30:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "5e2a1c7d9b40"
down_revision = "9cbf6823bd0b"


def upgrade() -> None:
    op.add_column(
        "received_events",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        schema="trigger",
    )
    op.add_column(
        "received_events",
        sa.Column("contact", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        schema="trigger",
    )
    op.add_column(
        "received_events",
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=True),
        schema="trigger",
    )
    op.add_column(
        "received_events", sa.Column("evaluation_error", sa.Text(), nullable=True), schema="trigger"
    )
    # Events received before this revision were evaluated when they arrived.
    op.execute("UPDATE trigger.received_events SET evaluated_at = received_at")
    op.create_index(
        "ix_received_events_pending",
        "received_events",
        ["seq"],
        unique=False,
        schema="trigger",
        postgresql_where=sa.text("evaluated_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_received_events_pending",
        table_name="received_events",
        schema="trigger",
        postgresql_where=sa.text("evaluated_at IS NULL"),
    )
    op.drop_column("received_events", "evaluation_error", schema="trigger")
    op.drop_column("received_events", "evaluated_at", schema="trigger")
    op.drop_column("received_events", "contact", schema="trigger")
    op.drop_column("received_events", "seq", schema="trigger")
