"""``closeloop dev`` (what ``make run`` runs): the whole stack on this machine, one command.

PostgreSQL is ``DATABASE_URL`` or an embedded server with its data under ``.data/postgres``;
Kafka is ``KAFKA_BOOTSTRAP_SERVERS`` or a Tansu broker with in-memory storage; mail goes to a
local catcher with a web inbox. The six services (the five feedback services and the console) run as
separate processes. Ctrl-C stops all.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import sys
import time
from pathlib import Path

import uvicorn

from closeloop.demo import DemoWorkspace, curl_command, load_or_seed
from closeloop.infra import (
    Broker,
    ensure_database,
    port_open,
    start_embedded_postgres,
    stop_embedded_postgres,
    with_database,
)
from closeloop.mailcatcher import MailCatcher, inbox_app
from closeloop.stack import SERVICE_PORTS, ServiceStack
from shared.kafka import ensure_topics
from shared.migrations import upgrade_all

BOLD, DIM, GREEN, RESET = ("\033[1m", "\033[2m", "\033[32m", "\033[0m") if sys.stdout.isatty() else ("",) * 4


def say(message: str) -> None:
    print(message, flush=True)


def step(message: str) -> float:
    print(f"  … {message}", end="", flush=True)
    return time.monotonic()


def done(started: float, detail: str = "") -> None:
    print(f"\r  {GREEN}✓{RESET} {detail} {DIM}({time.monotonic() - started:.1f}s){RESET}", flush=True)


def _secret_key(data_dir: Path) -> str:
    if os.environ.get("CLOSELOOP_SECRET_KEY"):
        return os.environ["CLOSELOOP_SECRET_KEY"]
    path = data_dir / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _port(preferred: int) -> int:
    from closeloop.infra import free_port

    return preferred if not port_open("127.0.0.1", preferred) else free_port()


async def run(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    busy = [f"{name} ({port})" for name, port in SERVICE_PORTS.items() if port_open("127.0.0.1", port)]
    if busy:
        say(f"Ports in use: {', '.join(busy)}. Is 'make run' already running? Stop it (Ctrl-C) and retry.")
        return 1
    say(f"{BOLD}closeloop dev{RESET} — data in {data_dir}")
    secret_key = _secret_key(data_dir)
    started_pg = False

    t = step("PostgreSQL")
    if os.environ.get("DATABASE_URL"):
        base_url, where = os.environ["DATABASE_URL"], "DATABASE_URL"
    else:
        base_url = await asyncio.to_thread(start_embedded_postgres, data_dir / "postgres")
        started_pg, where = True, f"embedded, data in {data_dir / 'postgres'}"
    database_url = with_database(base_url, "closeloop") if started_pg else base_url
    database_url = database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    await ensure_database(database_url)
    done(t, f"PostgreSQL ready ({where})")

    broker = None
    t = step("Kafka broker")
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        bootstrap, where = os.environ["KAFKA_BOOTSTRAP_SERVERS"], "KAFKA_BOOTSTRAP_SERVERS"
    else:
        broker = Broker(_port(9092), log_path=data_dir / "logs" / "broker.log").start()
        bootstrap, where = broker.bootstrap_servers, f"Tansu, in memory, on {broker.bootstrap_servers}"
    created = await ensure_topics(bootstrap, partitions=3)
    done(t, f"Kafka ready ({where}; {len(created)} topics created)")

    t = step("migrations")
    await upgrade_all(database_url)
    done(t, "database migrated")

    t = step("mail catcher")
    catcher = MailCatcher(port=_port(1025), maildir=data_dir / "mail").start()
    inbox_port = _port(8025)
    inbox = uvicorn.Server(
        uvicorn.Config(
            inbox_app(catcher), host="127.0.0.1", port=inbox_port, log_level="warning", lifespan="off"
        )
    )
    inbox_task = asyncio.create_task(inbox.serve())
    done(t, f"mail catcher: SMTP on 127.0.0.1:{catcher.port}, inbox at http://127.0.0.1:{inbox_port}")

    stack = ServiceStack(
        env={
            "DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "CLOSELOOP_SECRET_KEY": secret_key,
            "CLOSELOOP_DISPATCH_SMTP_HOST": "127.0.0.1",
            "CLOSELOOP_DISPATCH_SMTP_PORT": str(catcher.port),
            "CLOSELOOP_ENV": "development",
            # Tenant-set URLs may point at this machine (a local OIDC provider, a chat or webhook receiver).
            "CLOSELOOP_OUTBOUND_ALLOW_NETWORKS": "127.0.0.0/8,::1/128",
            # Short group timeouts: a restarted service rejoins in about a second on this one-node broker.
            "KAFKA_SESSION_TIMEOUT_MS": "6000",
            "KAFKA_HEARTBEAT_INTERVAL_MS": "500",
            "KAFKA_REBALANCE_TIMEOUT_MS": "3000",
        },
        log_dir=data_dir / "logs",
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    try:
        t = step("services")
        stack.start_all()
        await asyncio.to_thread(stack.wait_ready)
        done(t, "services ready: " + ", ".join(f"{s} :{p}" for s, p in SERVICE_PORTS.items()))
        urls = {s: stack.url(s) for s in SERVICE_PORTS}
        demo = None
        if not args.no_seed:
            t = step("demo workspace")
            demo, new = await asyncio.to_thread(
                load_or_seed, data_dir / "demo.json", urls, secret_key=secret_key
            )
            done(t, "demo workspace " + ("created" if new else "reused") + f" ({demo.workspace_id})")
        _print_summary(urls, demo, inbox_port, data_dir)
        while not stopping.is_set():
            for service, process in list(stack.processes.items()):
                if process.poll() is not None:
                    say(
                        f"{service} exited with {process.returncode}; restarting. Last log lines:\n"
                        f"{stack.log_tail(service, 10)}"
                    )
                    stack.start(service)
            try:
                await asyncio.wait_for(stopping.wait(), timeout=1)
            except TimeoutError:
                pass
    finally:
        say("\nstopping …")
        await asyncio.to_thread(stack.stop_all)
        inbox.should_exit = True
        await inbox_task
        catcher.stop()
        if broker:
            broker.stop()
        if started_pg:
            await asyncio.to_thread(stop_embedded_postgres, data_dir / "postgres")
        say("stopped; data kept in " + str(data_dir))
    return 0


def _print_summary(urls: dict[str, str], demo: DemoWorkspace | None, inbox_port: int, data_dir: Path) -> None:
    say("")
    say(f"{BOLD}closeloop is running.{RESET} Ctrl-C stops everything.")
    say(f"  {'console':<10} {urls['console']}   (sign in here; API docs: {urls['console']}/docs)")
    for service, url in urls.items():
        if service != "console":
            say(f"  {service:<10} {url}   (API docs: {url}/docs)")
    say(f"  mail       http://127.0.0.1:{inbox_port}   (every email closeloop sends lands here)")
    say(f"  logs       {data_dir / 'logs'}")
    if demo is not None:
        say("")
        say(f"{BOLD}Demo workspace{RESET} '{demo.workspace_id}'")
        say(f"  sign in:   {urls['console']}/sign-in")
        say(f"  email:     {demo.owner_email}")
        say(f"  password:  {demo.owner_password}   (as generated; kept in {data_dir / 'demo.json'})")
        say(f"  API key:   {demo.api_key}   (role admin: configures everything but people)")
        if demo.integration_key:
            say(f"  CRM key:   {demo.integration_key}   (role integration: POST /v1/events, contacts)")
        say(f"  webhook:   {demo.webhook_url}")
        say("")
        say("Fire a signed 'ticket.solved' webhook for Ada (paste into a shell):")
        say("")
        say(curl_command(demo))
        say("")
        say(
            f"Then open the mail inbox, follow the survey link, answer 0–6 and say yes to contact;\n"
            f"the follow-up case appears in the console ({urls['console']}/cases?view=open, signed in as above)\n"
            f"and in the API:  curl -H 'Authorization: Bearer {demo.api_key}' "
            f"'{urls['followup']}/v1/cases?active=true'"
        )
        say("")
        say("Another workspace:  .venv/bin/closeloop workspace create acme --owner you@example.com")
    say("")


def main(args: argparse.Namespace) -> int:
    return asyncio.run(run(args))
