"""case outcomes: followup's cases as FollowUp* events tell them (status, root cause, won back), for exports

Create Date: 2026-12-01 22:30:00
"""

import sqlalchemy as sa
from alembic import op

from shared.migration_ops import workspace_id

revision = "c81d5e0a7b24"
down_revision = "b7e2c41f9a13"


def upgrade() -> None:
    op.create_table(
        "case_outcomes",
        workspace_id(),
        sa.Column("case_id", sa.String(length=64), nullable=False),
        sa.Column("response_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("root_cause_category", sa.String(length=200), nullable=True),
        sa.Column("root_cause", sa.String(length=200), nullable=True),
        sa.Column("won_back", sa.Boolean(), nullable=True),
        sa.Column("retention_score", sa.SmallInteger(), nullable=True),
        sa.PrimaryKeyConstraint("workspace_id", "case_id", name=op.f("pk_case_outcomes")),
        schema="scoring",
    )
    op.create_index(
        "ix_case_outcomes_response", "case_outcomes", ["workspace_id", "response_id"], schema="scoring"
    )


def downgrade() -> None:
    op.drop_index("ix_case_outcomes_response", table_name="case_outcomes", schema="scoring")
    op.drop_table("case_outcomes", schema="scoring")
