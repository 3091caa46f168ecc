"""the retention policy: how long answers stay identifiable, and the daily runs it made

Create Date: 2026-11-30 20:38:00
"""

import sqlalchemy as sa
from alembic import op

from shared.migration_ops import updated_at, workspace_id

revision = "372e09cf6f3d"
down_revision = "c5d2e7f4a8b1"

SCHEMA = "trigger"


def upgrade() -> None:
    op.create_table(
        "retention_policies",
        workspace_id(),
        sa.Column("anonymise_after_days", sa.Integer(), nullable=False),
        updated_at(),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_retention_policies")),
        schema=SCHEMA,
    )
    op.create_table(
        "anonymisation_runs",
        workspace_id(),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("cutoff", sa.DateTime(timezone=True), nullable=False),
        sa.Column("anonymise_after_days", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("ran_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "day", name=op.f("pk_anonymisation_runs")),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("anonymisation_runs", schema=SCHEMA)
    op.drop_table("retention_policies", schema=SCHEMA)
