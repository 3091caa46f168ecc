"""received events keep the trace of the webhook that brought them

The evaluator decides stored events later, in another process: the W3C traceparent of the webhook
request (its own, or a new trace) is kept with each event so that what the evaluator publishes for it
(``CustomerEventReceived``, ``SurveyRequested``) continues that trace. Nullable: events stored before,
and by the previous release during a rolling upgrade, have none.

Create Date: 2026-12-01 22:00:00
"""

from alembic import op

from shared.migration_ops import traceparent

revision = "e1a7c3b9d5f2"
down_revision = "345682fba083"


def upgrade() -> None:
    op.add_column("received_events", traceparent(), schema="trigger")


def downgrade() -> None:
    op.drop_column("received_events", "traceparent", schema="trigger")
