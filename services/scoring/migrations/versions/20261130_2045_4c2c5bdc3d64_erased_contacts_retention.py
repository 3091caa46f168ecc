"""erased contacts (a response of one that arrives later is kept without naming them)

Create Date: 2026-11-30 20:45:00
"""

from alembic import op

from shared.migration_ops import create_erased_contacts_table

revision = "4c2c5bdc3d64"
down_revision = "a24bd1474695"

SCHEMA = "scoring"


def upgrade() -> None:
    create_erased_contacts_table(SCHEMA)


def downgrade() -> None:
    op.drop_table("erased_contacts", schema=SCHEMA)
