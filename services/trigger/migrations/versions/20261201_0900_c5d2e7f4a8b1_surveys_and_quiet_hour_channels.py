"""surveys trigger knows (from responses' events) and the channels that keep quiet hours

Rules may only name a survey of their workspace that responses has published, and a closed survey
is recorded as the decision instead of being sent: ``surveys`` keeps what the survey events said.
Quiet hours name the channels they apply to (empty: every channel that sends a message).

Revision ID: c5d2e7f4a8b1
Revises: b7c9abce74f6
Create Date: 2026-12-01 09:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "c5d2e7f4a8b1"
down_revision = "b7c9abce74f6"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "surveys",
        sa.Column("workspace_id", sa.String(length=63), nullable=False),
        sa.Column("survey_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("open", sa.Boolean(), nullable=False),
        sa.Column("state_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "survey_id", name=op.f("pk_surveys")),
        schema="trigger",
    )
    op.add_column(
        "workspace_settings",
        sa.Column(
            "quiet_channels",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        schema="trigger",
    )


def downgrade() -> None:
    op.drop_column("workspace_settings", "quiet_channels", schema="trigger")
    op.drop_table("surveys", schema="trigger")
