"""erasure and retention: erased contacts by a hash of their id; notifications and deliveries name whom
they quote; invitations remember when the retention policy anonymised them

- ``erased_contacts`` keeps the SHA-256 of each erased contact id (``shared.erasure``, the shape every
  service shares) instead of the id; the ids kept so far are hashed in place;
- ``notifications.contact_id`` and ``webhook_deliveries.contact_id``: the contact a staff notification
  or a webhook delivery quotes (``NotificationRequested.contact_id``), whose erasure replaces its body;
- ``invitations.anonymised_at``: when the workspace's retention policy anonymised it.

Create Date: 2026-11-30 20:35:00
"""

import sqlalchemy as sa
from alembic import op

revision = "59c6caae87d3"
down_revision = "5e1f0c2a9b7d"

SCHEMA = "dispatch"


def upgrade() -> None:
    op.add_column(
        "invitations", sa.Column("anonymised_at", sa.DateTime(timezone=True), nullable=True), schema=SCHEMA
    )
    op.add_column("erased_contacts", sa.Column("contact_hash", sa.String(length=64)), schema=SCHEMA)
    op.execute(
        f"UPDATE {SCHEMA}.erased_contacts SET contact_hash = encode(sha256(convert_to(contact_id, 'UTF8')), 'hex')"
    )
    op.drop_constraint("pk_erased_contacts", "erased_contacts", schema=SCHEMA, type_="primary")
    op.drop_column("erased_contacts", "contact_id", schema=SCHEMA)
    op.alter_column("erased_contacts", "contact_hash", nullable=False, schema=SCHEMA)
    op.create_primary_key(
        "pk_erased_contacts", "erased_contacts", ["workspace_id", "contact_hash"], schema=SCHEMA
    )
    for table in ("notifications", "webhook_deliveries"):
        op.add_column(table, sa.Column("contact_id", sa.String(length=64), nullable=True), schema=SCHEMA)
        op.create_index(
            op.f(f"ix_{table}_contact"), table, ["workspace_id", "contact_id"], unique=False, schema=SCHEMA
        )


def downgrade() -> None:
    op.drop_column("invitations", "anonymised_at", schema=SCHEMA)
    for table in ("notifications", "webhook_deliveries"):
        op.drop_index(op.f(f"ix_{table}_contact"), table_name=table, schema=SCHEMA)
        op.drop_column(table, "contact_id", schema=SCHEMA)
    # A hash cannot become an id again: the rows keep it in contact_id, which no survey request matches
    # (the contacts stay erased everywhere else; a late request would create an invitation here).
    op.alter_column("erased_contacts", "contact_hash", new_column_name="contact_id", schema=SCHEMA)
    op.alter_column("erased_contacts", "contact_id", type_=sa.String(length=200), schema=SCHEMA)
