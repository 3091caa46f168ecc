"""slim outbox: the primary key is its only index; unused columns dropped

Published rows are deleted, so published_at was always null and its partial index duplicated the
primary key; attempts and last_error were never written; the event id (a random UUID) needs no
unique index. See shared.migrations.slim_outbox.

Create Date: 2026-11-23 09:00:00
"""

from shared.migrations import slim_outbox, unslim_outbox

revision = "b7c9abce74f6"
down_revision = "b4f1e8a2c3d7"


def upgrade() -> None:
    slim_outbox("trigger")


def downgrade() -> None:
    unslim_outbox("trigger")
