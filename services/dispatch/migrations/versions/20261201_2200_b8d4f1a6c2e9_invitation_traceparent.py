"""invitations keep the trace of the survey request that made them

The sender worker sends an invitation later, in another process: the W3C traceparent of the
``SurveyRequested`` it came from is kept with it, so that the email (a ``traceparent`` header) and
``InvitationSent`` continue that trace. Nullable: invitations made before, and by the previous release
during a rolling upgrade, have none.

Create Date: 2026-12-01 22:00:00
"""

from alembic import op

from shared.migration_ops import traceparent

revision = "b8d4f1a6c2e9"
down_revision = "2887e9914269"


def upgrade() -> None:
    op.add_column("invitations", traceparent(), schema="dispatch")


def downgrade() -> None:
    op.drop_column("invitations", "traceparent", schema="dispatch")
