"""the retention policy: responses remember when they were anonymised

Create Date: 2026-11-30 20:38:00
"""

import sqlalchemy as sa
from alembic import op

revision = "4aac1fd5e722"
down_revision = "3f6c1e9a2b7d"


def upgrade() -> None:
    op.add_column(
        "responses", sa.Column("anonymised_at", sa.DateTime(timezone=True), nullable=True), schema="responses"
    )


def downgrade() -> None:
    op.drop_column("responses", "anonymised_at", schema="responses")
