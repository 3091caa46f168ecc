"""export keyset index: a workspace's scored responses in arrival order (exports read them in batches)

Create Date: 2026-12-01 22:00:00
"""

from alembic import op

revision = "b7e2c41f9a13"
down_revision = "de57209f6044"


def upgrade() -> None:
    op.create_index(
        "ix_scored_responses_workspace_key", "scored_responses", ["workspace_id", "key"], schema="scoring"
    )


def downgrade() -> None:
    op.drop_index("ix_scored_responses_workspace_key", table_name="scored_responses", schema="scoring")
