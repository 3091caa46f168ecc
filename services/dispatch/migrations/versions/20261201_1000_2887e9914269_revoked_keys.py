"""revoked keys: the API keys the console revoked (KeyRevoked), which this service refuses

Create Date: 2026-11-30 20:31:00
"""

from shared.migration_ops import create_revoked_keys_table, drop_revoked_keys_table

revision = "2887e9914269"
down_revision = "59c6caae87d3"


def upgrade() -> None:
    create_revoked_keys_table("dispatch")


def downgrade() -> None:
    drop_revoked_keys_table("dispatch")
