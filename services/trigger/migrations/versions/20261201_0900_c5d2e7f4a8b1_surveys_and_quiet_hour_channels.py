"""surveys trigger knows (from responses' events) and the channels that keep quiet hours

Rules may only name a survey of their workspace that responses has published, and a closed survey
is recorded as the decision instead of being sent: ``surveys`` keeps what the survey events said.
Quiet hours name the channels they apply to (empty: every channel that sends a message).

Create Date: 2026-12-01 09:00:00
"""

from alembic import op

from shared.migration_ops import create_known_surveys_table, jsonb_array

revision = "c5d2e7f4a8b1"
down_revision = "b7c9abce74f6"


def upgrade() -> None:
    create_known_surveys_table("trigger", survey_id_length=36)
    op.add_column(
        "workspace_settings",
        jsonb_array("quiet_channels"),
        schema="trigger",
    )


def downgrade() -> None:
    op.drop_column("workspace_settings", "quiet_channels", schema="trigger")
    op.drop_table("surveys", schema="trigger")
