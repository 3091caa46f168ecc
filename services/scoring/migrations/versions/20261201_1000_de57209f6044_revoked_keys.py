"""revoked keys: the API keys the console revoked (KeyRevoked), which this service refuses

Revision ID: de57209f6044
Revises: 4c2c5bdc3d64
Create Date: 2026-11-30 20:33:00
"""

import sqlalchemy as sa
from alembic import op

revision = "de57209f6044"
down_revision = "4c2c5bdc3d64"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "revoked_keys",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("workspace_id", sa.String(length=63), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_revoked_keys")),
        schema="scoring",
    )
    op.create_index(
        op.f("ix_scoring_revoked_keys_recorded_at"),
        "revoked_keys",
        ["recorded_at"],
        unique=False,
        schema="scoring",
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_scoring_revoked_keys_recorded_at"), table_name="revoked_keys", schema="scoring")
    op.drop_table("revoked_keys", schema="scoring")
