"""slim outbox: the primary key is its only index; unused columns dropped

Published rows are deleted, so published_at was always null and its partial index duplicated the
primary key; attempts and last_error were never written; the event id (a random UUID) needs no
unique index. See shared.migrations.slim_outbox.

Create Date: 2026-11-23 09:00:00
"""

from shared.migrations import slim_outbox, unslim_outbox

revision = "b3673acd9d78"
down_revision = "6d81f76f16d0"


def upgrade() -> None:
    slim_outbox("followup")


def downgrade() -> None:
    unslim_outbox("followup")
