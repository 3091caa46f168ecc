"""revoked keys: the API keys the console revoked (KeyRevoked), which this service refuses

Create Date: 2026-11-30 20:33:00
"""

from shared.migration_ops import create_revoked_keys_table, drop_revoked_keys_table

revision = "de57209f6044"
down_revision = "4c2c5bdc3d64"


def upgrade() -> None:
    create_revoked_keys_table("scoring")


def downgrade() -> None:
    drop_revoked_keys_table("scoring")
