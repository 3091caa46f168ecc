"""Alembic, driven from code: every service keeps its migrations in ``services/<name>/migrations``
and its version table in its own schema."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.vocabulary import STACK_SERVICES as SERVICES

_SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"


def alembic_config(service: str, database_url: str) -> Config:
    """Return the Alembic config of one service (no alembic.ini needed)."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)}")
    config = Config()
    config.set_main_option("script_location", str(_SERVICES_DIR / service / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.set_main_option(
        "file_template", "%%(year)d%%(month).2d%%(day).2d_%%(hour).2d%%(minute).2d_%%(rev)s_%%(slug)s"
    )
    config.attributes["schema"] = service
    return config


def upgrade(service: str, database_url: str, revision: str = "head") -> None:
    """Migrate one service's schema (synchronous: call it from a thread inside an event loop)."""
    command.upgrade(alembic_config(service, database_url), revision)


async def upgrade_all(database_url: str) -> None:
    for service in SERVICES:
        await asyncio.to_thread(upgrade, service, database_url)


def new_revision(service: str, database_url: str, message: str) -> None:
    """Autogenerate a migration from the difference between the models and the database."""
    command.revision(alembic_config(service, database_url), message=message, autogenerate=True)


def run_env(target_metadata: MetaData) -> None:
    """The body of every service's ``env.py``: online, async, schema-scoped migrations."""
    config = context.config
    schema = config.attributes.get("schema") or target_metadata.schema

    def do_run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table_schema=schema,
            include_schemas=True,
            include_name=lambda name, type_, parent: type_ != "schema" or name == schema,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=pool.NullPool)
        async with engine.connect() as connection:
            # Several services may migrate at once against one database; serialise them.
            await connection.execute(text("SELECT pg_advisory_lock(724021)"))
            await connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            await connection.commit()
            try:
                await connection.run_sync(do_run)
                await connection.commit()
            finally:
                await connection.execute(text("SELECT pg_advisory_unlock(724021)"))
                await connection.commit()
        await engine.dispose()

    asyncio.run(run_async())


# --- migration steps every service takes (as released: never change one, add a new one) ----------


def slim_outbox(schema: str) -> None:
    """Drop what the outbox no longer uses: the relay deletes rows once published, so
    ``published_at`` was always null and its partial index duplicated the primary key; ``attempts``
    and ``last_error`` were never written; and the event id, a fresh random UUID, needs no unique
    index (consumers deduplicate by it in their inbox). Each index cost every event a write."""
    from alembic import op

    op.drop_index("ix_outbox_unpublished", table_name="outbox", schema=schema)
    op.drop_constraint("uq_outbox_event_id", "outbox", schema=schema, type_="unique")
    for column in ("published_at", "attempts", "last_error"):
        op.drop_column("outbox", column, schema=schema)


def unslim_outbox(schema: str) -> None:
    import sqlalchemy as sa
    from alembic import op

    op.add_column("outbox", sa.Column("published_at", sa.DateTime(timezone=True)), schema=schema)
    op.add_column(
        "outbox", sa.Column("attempts", sa.Integer(), server_default="0", nullable=False), schema=schema
    )
    op.add_column("outbox", sa.Column("last_error", sa.Text()), schema=schema)
    op.create_unique_constraint("uq_outbox_event_id", "outbox", ["event_id"], schema=schema)
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["seq"],
        schema=schema,
        postgresql_where=sa.text("published_at IS NULL"),
    )
