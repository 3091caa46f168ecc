"""revoked keys: the API keys the console revoked (KeyRevoked), which this service refuses

Revision ID: 2887e9914269
Revises: 59c6caae87d3
Create Date: 2026-11-30 20:31:00
"""

import sqlalchemy as sa
from alembic import op

revision = "2887e9914269"
down_revision = "59c6caae87d3"
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
        schema="dispatch",
    )
    op.create_index(
        op.f("ix_dispatch_revoked_keys_recorded_at"),
        "revoked_keys",
        ["recorded_at"],
        unique=False,
        schema="dispatch",
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_dispatch_revoked_keys_recorded_at"), table_name="revoked_keys", schema="dispatch")
    op.drop_table("revoked_keys", schema="dispatch")
