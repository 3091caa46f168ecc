"""evaluate after acknowledging: received events wait for the evaluator

Create Date: 2026-11-23 04:30:00
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.migration_ops import add_columns, drop_columns

revision = "5e2a1c7d9b40"
down_revision = "9cbf6823bd0b"


def _received_event_columns() -> list[sa.Column[Any]]:
    """What this revision adds to ``received_events``: their order, the contact, and how evaluating went."""
    return [
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("contact", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("evaluation_error", sa.Text(), nullable=True),
    ]


def upgrade() -> None:
    add_columns("received_events", _received_event_columns(), schema="trigger")
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
    drop_columns("received_events", _received_event_columns(), schema="trigger")
