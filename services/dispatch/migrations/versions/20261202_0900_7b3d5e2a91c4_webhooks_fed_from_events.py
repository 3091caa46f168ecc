"""webhooks fed from events: subscription filters by survey and metric, who hears of a disabled one;
per-contact delivery order

Create Date: 2026-12-02 09:00:00
"""

import sqlalchemy as sa
from alembic import op

from shared.migration_ops import jsonb_array

revision = "7b3d5e2a91c4"
down_revision = "b8d4f1a6c2e9"


def upgrade() -> None:
    for column in ("survey_ids", "metrics"):
        op.add_column(
            "webhook_subscriptions",
            jsonb_array(column),
            schema="dispatch",
        )
    op.add_column(
        "webhook_subscriptions",
        sa.Column("notify_email", sa.String(length=254), nullable=True),
        schema="dispatch",
    )
    op.add_column(
        "webhook_deliveries", sa.Column("order_key", sa.String(length=200), nullable=True), schema="dispatch"
    )
    op.add_column(
        "webhook_deliveries",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        schema="dispatch",
    )
    op.create_index(
        "ix_webhook_deliveries_pending_order",
        "webhook_deliveries",
        ["subscription_id", "order_key", "seq"],
        unique=False,
        schema="dispatch",
        postgresql_where=sa.text("status IN ('scheduled', 'sending')"),
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_pending_order", table_name="webhook_deliveries", schema="dispatch")
    op.drop_column("webhook_deliveries", "seq", schema="dispatch")
    op.drop_column("webhook_deliveries", "order_key", schema="dispatch")
    op.drop_column("webhook_subscriptions", "notify_email", schema="dispatch")
    op.drop_column("webhook_subscriptions", "metrics", schema="dispatch")
    op.drop_column("webhook_subscriptions", "survey_ids", schema="dispatch")
