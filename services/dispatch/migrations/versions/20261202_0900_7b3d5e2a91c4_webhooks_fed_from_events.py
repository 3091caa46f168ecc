"""webhooks fed from events: subscription filters by survey and metric, who hears of a disabled one;
per-contact delivery order

Create Date: 2026-12-02 09:00:00
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

from shared.migration_ops import add_columns, drop_columns, jsonb_array

revision = "7b3d5e2a91c4"
down_revision = "b8d4f1a6c2e9"


def _subscription_columns() -> list[sa.Column[Any]]:
    """What this revision adds to ``webhook_subscriptions``: survey and metric filters, whom to tell."""
    return [
        jsonb_array("survey_ids"),
        jsonb_array("metrics"),
        sa.Column("notify_email", sa.String(length=254), nullable=True),
    ]


def _delivery_columns() -> list[sa.Column[Any]]:
    """What this revision adds to ``webhook_deliveries``: the per-contact order."""
    return [
        sa.Column("order_key", sa.String(length=200), nullable=True),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
    ]


def upgrade() -> None:
    add_columns("webhook_subscriptions", _subscription_columns(), schema="dispatch")
    add_columns("webhook_deliveries", _delivery_columns(), schema="dispatch")
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
    drop_columns("webhook_deliveries", _delivery_columns(), schema="dispatch")
    drop_columns("webhook_subscriptions", _subscription_columns(), schema="dispatch")
