"""surveys it knows (the retention survey must be an open one), erased contacts, anonymised cases

Revision ID: 1e0bd2c9a75e
Revises: f08dd92570e4
Create Date: 2026-11-30 20:25:00
"""

import sqlalchemy as sa
from alembic import op

revision = "1e0bd2c9a75e"
down_revision = "f08dd92570e4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "cases", sa.Column("anonymised_at", sa.DateTime(timezone=True), nullable=True), schema="followup"
    )
    op.create_table(
        "surveys",
        sa.Column("workspace_id", sa.String(length=63), nullable=False),
        sa.Column("survey_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("open", sa.Boolean(), nullable=False),
        sa.Column("state_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "survey_id", name=op.f("pk_surveys")),
        schema="followup",
    )
    op.create_table(
        "erased_contacts",
        sa.Column("workspace_id", sa.String(length=63), nullable=False),
        sa.Column("contact_hash", sa.String(length=64), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "contact_hash", name=op.f("pk_erased_contacts")),
        schema="followup",
    )


def downgrade() -> None:
    op.drop_column("cases", "anonymised_at", schema="followup")
    op.drop_table("erased_contacts", schema="followup")
    op.drop_table("surveys", schema="followup")
