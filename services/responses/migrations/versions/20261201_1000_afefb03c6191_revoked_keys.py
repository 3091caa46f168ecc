"""revoked keys: the API keys the console revoked (KeyRevoked), which this service refuses

Create Date: 2026-11-30 20:32:00
"""

from shared.migration_ops import create_revoked_keys_table, drop_revoked_keys_table

revision = "afefb03c6191"
down_revision = "4aac1fd5e722"


def upgrade() -> None:
    create_revoked_keys_table("responses")


def downgrade() -> None:
    drop_revoked_keys_table("responses")
