"""revoked keys: the API keys the console revoked (KeyRevoked), which this service refuses

Create Date: 2026-11-30 20:30:00
"""

from shared.migration_ops import create_revoked_keys_table, drop_revoked_keys_table

revision = "345682fba083"
down_revision = "372e09cf6f3d"


def upgrade() -> None:
    create_revoked_keys_table("trigger")


def downgrade() -> None:
    drop_revoked_keys_table("trigger")
