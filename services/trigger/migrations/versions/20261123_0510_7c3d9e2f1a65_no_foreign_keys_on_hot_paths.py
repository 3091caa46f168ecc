"""no foreign keys on the hot paths: received_events.integration_id, decisions.received_event_id and
decisions.rule_id

Integrations, received events and rules are never deleted (rules are marked deleted), so these keys
protected nothing; each check locked the referenced row for every stored webhook and every decision,
so all writers of one integration or one rule queued on a single row.

Create Date: 2026-11-23 05:10:00
"""

from alembic import op

revision = "7c3d9e2f1a65"
down_revision = "5e2a1c7d9b40"

_KEYS = (
    ("received_events", "fk_received_events_integration_id_integrations", "integration_id", "integrations"),
    ("decisions", "fk_decisions_received_event_id_received_events", "received_event_id", "received_events"),
    ("decisions", "fk_decisions_rule_id_rules", "rule_id", "rules"),
)


def upgrade() -> None:
    for table, name, _, _ in _KEYS:
        op.drop_constraint(name, table, schema="trigger", type_="foreignkey")


def downgrade() -> None:
    for table, name, column, referred in _KEYS:
        op.create_foreign_key(
            name, table, referred, [column], ["id"], source_schema="trigger", referent_schema="trigger"
        )
