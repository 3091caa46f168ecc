"""Every service's migrations build exactly the schema its models describe, and step back and forth."""

from __future__ import annotations

import asyncio
import importlib
import secrets
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from closeloop.infra import drop_database, ensure_database, with_database
from shared.migrations import SERVICES, alembic_config, upgrade


def _differences(schema: str, metadata: Any, connection: Any) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={
            "include_schemas": True,
            "include_name": lambda name, type_, parent: type_ != "schema" or name == schema,
            "version_table_schema": schema,
        },
    )
    return compare_metadata(context, metadata)


@pytest.mark.parametrize("service", SERVICES)
async def test_the_migrated_schema_is_the_one_the_models_describe(database_url, service):
    metadata = importlib.import_module(f"services.{service}.models").Base.metadata
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(lambda c: _differences(service, metadata, c))
    finally:
        await engine.dispose()
    assert differences == []


async def test_the_latest_migration_of_every_service_steps_back_and_forth(database_url):
    url = with_database(database_url, f"closeloop_migrations_{secrets.token_hex(3)}")
    await ensure_database(url, drop_first=True)
    try:
        for service in SERVICES:
            await asyncio.to_thread(upgrade, service, url)
            await asyncio.to_thread(command.downgrade, alembic_config(service, url), "-1")
            await asyncio.to_thread(upgrade, service, url)
    finally:
        await drop_database(url)
