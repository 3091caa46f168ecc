"""The migration building blocks are frozen: released migrations call them, so the SQL each one emits
is pinned here. A failure means a block changed meaning — add a new block instead (``shared/migration_ops.py``)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import op
from alembic.migration import MigrationContext
from alembic.operations import Operations

from shared import migration_ops as m


def emitted_sql(step: Callable[[], None]) -> str:
    """Return the SQL ``step`` emits in Alembic's offline mode, its white space folded."""
    buffer = io.StringIO()
    context = MigrationContext.configure(
        dialect_name="postgresql", opts={"as_sql": True, "output_buffer": buffer}
    )
    with Operations.context(context):
        step()
    return " ".join(buffer.getvalue().split())


def _create_table(*columns: sa.Column[Any]) -> None:
    op.create_table("t", *columns, schema="s")


def _two_columns() -> list[sa.Column[object]]:
    return [sa.Column("a", sa.Integer(), nullable=True), m.jsonb_array("b")]


PINNED: list[tuple[str, Callable[[], None], str]] = [
    (
        "columns",
        lambda: op.create_table(
            "t", m.uuid_id(), m.workspace_id(), m.created_at(), m.updated_at(), schema="s"
        ),
        "CREATE TABLE s.t ( id VARCHAR(36) NOT NULL, workspace_id VARCHAR(63) NOT NULL, "
        "created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, "
        "updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL );",
    ),
    (
        "jsonb_array",
        lambda: _create_table(m.jsonb_array("a")),
        "CREATE TABLE s.t ( a JSONB DEFAULT '[]'::jsonb NOT NULL );",
    ),
    (
        "jsonb_object",
        lambda: _create_table(m.jsonb_object("o")),
        "CREATE TABLE s.t ( o JSONB DEFAULT '{}'::jsonb NOT NULL );",
    ),
    (
        "due_columns",
        lambda: _create_table(*m.due_columns()),
        "CREATE TABLE s.t ( next_attempt_at TIMESTAMP WITH TIME ZONE NOT NULL, "
        "claimed_at TIMESTAMP WITH TIME ZONE );",
    ),
    (
        "traceparent",
        lambda: _create_table(m.traceparent()),
        "CREATE TABLE s.t ( traceparent VARCHAR(55) );",
    ),
    (
        "add_columns",
        lambda: m.add_columns("t", _two_columns(), schema="s"),
        "ALTER TABLE s.t ADD COLUMN a INTEGER; ALTER TABLE s.t ADD COLUMN b JSONB DEFAULT '[]'::jsonb NOT NULL;",
    ),
    (
        "drop_columns",
        lambda: m.drop_columns("t", _two_columns(), schema="s"),
        "ALTER TABLE s.t DROP COLUMN b; ALTER TABLE s.t DROP COLUMN a;",
    ),
    (
        "create_inbox_table",
        lambda: m.create_inbox_table("s"),
        "CREATE TABLE s.inbox ( consumer VARCHAR(100) NOT NULL, event_id VARCHAR(64) NOT NULL, "
        'event_type VARCHAR(200) NOT NULL, topic VARCHAR(200) NOT NULL, partition INTEGER NOT NULL, "offset" '
        "BIGINT NOT NULL, processed_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, "
        "CONSTRAINT pk_inbox PRIMARY KEY (consumer, event_id) );",
    ),
    (
        "create_first_outbox_table",
        lambda: m.create_first_outbox_table("s"),
        "CREATE TABLE s.outbox ( seq BIGSERIAL NOT NULL, event_id VARCHAR(64) NOT NULL, "
        "topic VARCHAR(200) NOT NULL, key VARCHAR(300) NOT NULL, payload JSONB NOT NULL, "
        "created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, published_at TIMESTAMP WITH TIME ZONE, "
        "attempts INTEGER DEFAULT '0' NOT NULL, last_error TEXT, CONSTRAINT pk_outbox PRIMARY KEY (seq), "
        "CONSTRAINT uq_outbox_event_id UNIQUE (event_id) ); "
        "CREATE INDEX ix_outbox_unpublished ON s.outbox (seq) WHERE published_at IS NULL;",
    ),
    (
        "drop_first_outbox_table",
        lambda: m.drop_first_outbox_table("s"),
        "DROP INDEX s.ix_outbox_unpublished; DROP TABLE s.outbox;",
    ),
    (
        "create_slim_outbox_table",
        lambda: m.create_slim_outbox_table("s"),
        "CREATE TABLE s.outbox ( seq BIGSERIAL NOT NULL, event_id VARCHAR(64) NOT NULL, "
        "topic VARCHAR(200) NOT NULL, key VARCHAR(300) NOT NULL, payload JSONB NOT NULL, "
        "created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, CONSTRAINT pk_outbox PRIMARY KEY (seq) );",
    ),
    (
        "create_revoked_keys_table",
        lambda: m.create_revoked_keys_table("s"),
        "CREATE TABLE s.revoked_keys ( key_id VARCHAR(32) NOT NULL, workspace_id VARCHAR(63) NOT NULL, "
        "revoked_at TIMESTAMP WITH TIME ZONE NOT NULL, expires_at TIMESTAMP WITH TIME ZONE, "
        "recorded_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, "
        "CONSTRAINT pk_revoked_keys PRIMARY KEY (key_id) ); "
        "CREATE INDEX ix_s_revoked_keys_recorded_at ON s.revoked_keys (recorded_at);",
    ),
    (
        "drop_revoked_keys_table",
        lambda: m.drop_revoked_keys_table("s"),
        "DROP INDEX s.ix_s_revoked_keys_recorded_at; DROP TABLE s.revoked_keys;",
    ),
    (
        "create_erased_contacts_table",
        lambda: m.create_erased_contacts_table("s"),
        "CREATE TABLE s.erased_contacts ( workspace_id VARCHAR(63) NOT NULL, contact_hash VARCHAR(64) NOT NULL, "
        "erased_at TIMESTAMP WITH TIME ZONE NOT NULL, "
        "CONSTRAINT pk_erased_contacts PRIMARY KEY (workspace_id, contact_hash) );",
    ),
    (
        "create_known_surveys_table",
        lambda: m.create_known_surveys_table("s", survey_id_length=36),
        "CREATE TABLE s.surveys ( workspace_id VARCHAR(63) NOT NULL, survey_id VARCHAR(36) NOT NULL, "
        "version INTEGER DEFAULT '0' NOT NULL, name VARCHAR(200), open BOOLEAN NOT NULL, "
        "state_at TIMESTAMP WITH TIME ZONE NOT NULL, updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, "
        "CONSTRAINT pk_surveys PRIMARY KEY (workspace_id, survey_id) );",
    ),
    (
        "create_due_index",
        lambda: m.create_due_index("jobs", schema="s"),
        "CREATE INDEX ix_jobs_due ON s.jobs (next_attempt_at) WHERE status IN ('scheduled', 'sending');",
    ),
    ("drop_due_index", lambda: m.drop_due_index("jobs", schema="s"), "DROP INDEX s.ix_jobs_due;"),
]


@pytest.mark.parametrize(("step", "expected"), [(s, e) for _, s, e in PINNED], ids=[n for n, _, _ in PINNED])
def test_a_building_block_emits_what_it_emitted_when_released(
    step: Callable[[], None], expected: str
) -> None:
    assert emitted_sql(step) == expected


def test_every_building_block_is_pinned() -> None:
    blocks = {
        name
        for name in vars(m)
        if not name.startswith("_")
        and callable(getattr(m, name))
        and getattr(m, name).__module__ == m.__name__
    }
    pinned = {name for name, _, _ in PINNED} | {"uuid_id", "workspace_id", "created_at", "updated_at"}
    assert blocks <= pinned
