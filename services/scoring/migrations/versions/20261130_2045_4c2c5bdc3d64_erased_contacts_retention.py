"""erased contacts (a response of one that arrives later is kept without naming them)

Revision ID: 4c2c5bdc3d64
Revises: a24bd1474695
Create Date: 2026-11-30 20:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "4c2c5bdc3d64"
down_revision = "a24bd1474695"
branch_labels = None
depends_on = None

SCHEMA = "scoring"


def upgrade() -> None:
    op.create_table(
        "erased_contacts",
        sa.Column("workspace_id", sa.String(length=63), nullable=False),
        sa.Column("contact_hash", sa.String(length=64), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "contact_hash", name=op.f("pk_erased_contacts")),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("erased_contacts", schema=SCHEMA)
