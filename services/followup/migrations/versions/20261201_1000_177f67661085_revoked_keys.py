"""revoked keys: the API keys the console revoked (KeyRevoked), which this service refuses

Create Date: 2026-11-30 20:34:00
"""

from shared.migration_ops import create_revoked_keys_table, drop_revoked_keys_table

revision = "177f67661085"
down_revision = "1e0bd2c9a75e"


def upgrade() -> None:
    create_revoked_keys_table("followup")


def downgrade() -> None:
    drop_revoked_keys_table("followup")
