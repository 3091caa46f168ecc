"""erased contacts; publish the surveys and branding that exist already

A table of erased contacts (a hash of the contact id per workspace): their survey links no longer open.

Since this release responses publishes SurveyPublished (trigger, dispatch and scoring learn which
surveys exist and are open) and BrandingChanged (dispatch's emails). Surveys and branding stored before
it are published once here, through the outbox, so that the consumers know them too: each survey's
current version (closed surveys as closed), and each workspace's branding. The events are built by the
service's own pure functions (``domain.publication``, ``domain.branding``) as they are at this release.

Create Date: 2026-11-30 10:00:00
"""

import json

import sqlalchemy as sa
from alembic import op

from shared.migration_ops import create_erased_contacts_table

revision = "3f6c1e9a2b7d"
down_revision = "75b9b18d1311"


def upgrade() -> None:
    create_erased_contacts_table("responses")
    _publish_what_exists()


def _publish_what_exists() -> None:
    from services.responses.domain.branding import branding_changed
    from services.responses.domain.publication import survey_published
    from shared.events import CloudEvent, EventData, utcnow

    bind = op.get_bind()
    events: list[EventData] = []
    surveys = bind.execute(
        sa.text(
            "SELECT s.workspace_id, s.id, s.name, s.closed_at, v.version, v.definition, v.created_at "
            "FROM responses.surveys s JOIN responses.survey_versions v "
            "ON v.survey_id = s.id AND v.version = s.version ORDER BY s.created_at, s.id"
        )
    )
    for ws, survey_id, name, closed_at, version, definition, created_at in surveys:
        events.append(
            survey_published(
                workspace_id=ws,
                survey_id=survey_id,
                name=name,
                open_=closed_at is None,
                version=version,
                definition=definition,
                published_at=created_at,
            )
        )
    settings = bind.execute(
        sa.text(
            "SELECT workspace_id, branding FROM responses.workspace_settings WHERE branding <> '{}'::jsonb"
        )
    )
    now = utcnow()
    for ws, branding in settings:
        events.append(branding_changed(ws, branding, changed_at=now))
    insert = sa.text(
        "INSERT INTO responses.outbox (event_id, topic, key, payload) "
        "VALUES (:event_id, :topic, :key, CAST(:payload AS jsonb))"
    )
    for event in events:
        envelope = CloudEvent.wrap_json(event, source="responses")
        bind.execute(
            insert,
            {
                "event_id": envelope["id"],
                "topic": event.topic,
                "key": event.partition_key(),
                "payload": json.dumps(envelope),
            },
        )


def downgrade() -> None:
    op.drop_table("erased_contacts", schema="responses")
