"""Engine, sessions and the unit of work: one transaction per unit, committed or rolled back."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import MetaData, Table, Text, bindparam, cast, event, func, make_url, select, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, Insert, insert
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def driver_dsn(url: str) -> str:
    """Return ``url`` (SQLAlchemy's ``postgresql+asyncpg://…``) as asyncpg itself takes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def service_metadata(schema: str) -> MetaData:
    """Return the MetaData for one service's own schema."""
    return MetaData(schema=schema, naming_convention=NAMING_CONVENTION)


def unnest_insert(table: Table, columns: Sequence[str], *, json_text: Iterable[str] = ()) -> Insert:
    """Return ``INSERT INTO table (columns) SELECT … FROM unnest(:column, …)``: many rows as one array
    per column and one statement, in the arrays' order (an identity or sequence numbers them so).

    Execute it with ``unnest_params`` (one parameter set: executemany would insert each row per set).
    Columns of ``json_text`` take JSON already serialised (text) and are cast to JSONB by PostgreSQL."""
    as_text = set(json_text)
    arrays = [
        bindparam(name, type_=ARRAY(Text() if name in as_text else table.c[name].type)) for name in columns
    ]
    rows = func.unnest(*arrays).table_valued(*columns).render_derived(name="u")
    return insert(table).from_select(
        list(columns), select(*(cast(rows.c[n], JSONB) if n in as_text else rows.c[n] for n in columns))
    )


def unnest_params(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> dict[str, list[Any]]:
    """Return the parameters of ``unnest_insert(…, columns)`` for ``rows`` (tuples in ``columns``'
    order)."""
    arrays = [list(column) for column in zip(*rows, strict=True)] or [[] for _ in columns]
    return dict(zip(columns, arrays, strict=True))


IDLE_SINCE = "closeloop_idle_since"


def check_out(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection) -> None:
    """Hand out only live connections, without a round trip for the busy ones (``pool_pre_ping`` costs
    three on every checkout: BEGIN, a query, ROLLBACK). One the server closed — a restart,
    ``pg_terminate_backend``, an idle timeout — is known to the driver already, at no cost; one idle
    for ``PING_IDLE_S`` or more (a connection can die without the server's word: a lost peer, a
    firewall) is pinged first. Either failing makes the pool replace every connection it holds from
    before now, as a failed pre-ping does."""
    idle_since = record.info.get(IDLE_SINCE)
    if dbapi_connection._connection.is_closed():
        raise InvalidatePoolError("the server closed the connection")
    if idle_since is not None and time.monotonic() - idle_since >= PING_IDLE_S:
        try:
            dbapi_connection.ping()
        except Exception as exc:
            raise InvalidatePoolError(f"the connection no longer answers: {exc}") from exc


def check_in(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info[IDLE_SINCE] = time.monotonic()


PING_IDLE_S = 30.0
"""A pooled connection idle this long is pinged before it is handed out again."""


class Database:
    """Owns the engine of one service and tells the outbox relay when a commit added events."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.engine: AsyncEngine = create_async_engine(
            url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800
        )
        event.listen(self.engine.sync_engine, "checkout", check_out)
        event.listen(self.engine.sync_engine, "checkin", check_in)
        # A Session class of its own, so that commit hooks of one Database never fire for another.
        self._session_class = type("ServiceSession", (Session,), {})
        self.sessionmaker = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=self._session_class
        )
        self._on_outbox_commit: list[Callable[[], None]] = []
        event.listen(self._session_class, "after_commit", self._after_commit)

    def on_outbox_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after each commit that wrote outbox rows (the relay wakes on it)."""
        self._on_outbox_commit.append(callback)

    def outbox_committed(self) -> None:
        """Wake the relay for outbox rows committed outside a session (a statement on a raw connection)."""
        for callback in self._on_outbox_commit:
            callback()

    def _after_commit(self, session: Session) -> None:
        if session.info.pop("outbox_written", False):
            for callback in self._on_outbox_commit:
                callback()

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """Yield a session inside a transaction that commits on success and rolls back on error."""
        async with self.sessionmaker() as session, session.begin():
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
