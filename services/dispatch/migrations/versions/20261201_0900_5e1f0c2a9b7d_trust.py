"""trust: survey versions for the embedded question, settings received from their owners, erased contacts

- ``surveys``: per published survey version, its languages and first question (``SurveyPublished``), so
  that an email embeds the survey's own first question in its own scale and words;
- ``received_settings``: branding (from responses) and quiet hours (from trigger), which win over the
  workspace's own deprecated values;
- ``erased_contacts`` and ``invitations.erased_at``: an erased contact's links stop working and a
  request arriving after the erasure stores nothing about them;
- ``invitations.recipient_company``: the survey link tells who was invited (``SurveyLink.respondent``),
  also when a fallback channel issues a new link.

Create Date: 2026-12-01 09:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.migration_ops import workspace_id

revision = "5e1f0c2a9b7d"
down_revision = "0228f60f5814"


def upgrade() -> None:
    op.create_table(
        "surveys",
        workspace_id(),
        sa.Column("survey_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("languages", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("first_question", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "survey_id", "version", name=op.f("pk_surveys")),
        schema="dispatch",
    )
    op.create_table(
        "received_settings",
        workspace_id(),
        sa.Column("concept", sa.String(length=20), nullable=False),
        sa.Column("value", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "concept", name=op.f("pk_received_settings")),
        schema="dispatch",
    )
    op.create_table(
        "erased_contacts",
        workspace_id(),
        sa.Column("contact_id", sa.String(length=200), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "contact_id", name=op.f("pk_erased_contacts")),
        schema="dispatch",
    )
    op.add_column("invitations", sa.Column("recipient_company", sa.Text(), nullable=True), schema="dispatch")
    op.add_column(
        "invitations", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True), schema="dispatch"
    )


def downgrade() -> None:
    op.drop_column("invitations", "erased_at", schema="dispatch")
    op.drop_column("invitations", "recipient_company", schema="dispatch")
    op.drop_table("erased_contacts", schema="dispatch")
    op.drop_table("received_settings", schema="dispatch")
    op.drop_table("surveys", schema="dispatch")
