"""surveys it knows (the retention survey must be an open one), erased contacts, anonymised cases

Create Date: 2026-11-30 20:25:00
"""

import sqlalchemy as sa
from alembic import op

from shared.migration_ops import create_erased_contacts_table, create_known_surveys_table

revision = "1e0bd2c9a75e"
down_revision = "f08dd92570e4"


def upgrade() -> None:
    op.add_column(
        "cases", sa.Column("anonymised_at", sa.DateTime(timezone=True), nullable=True), schema="followup"
    )
    create_known_surveys_table("followup", survey_id_length=64)
    create_erased_contacts_table("followup")


def downgrade() -> None:
    op.drop_column("cases", "anonymised_at", schema="followup")
    op.drop_table("erased_contacts", schema="followup")
    op.drop_table("surveys", schema="followup")
