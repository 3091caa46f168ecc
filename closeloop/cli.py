"""The ``closeloop`` command: run the stack, serve one service, migrate, manage workspaces."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

from closeloop.stack import SERVICE_PORTS


def app_factory(service: str) -> Callable[..., Any]:
    """Return ``create_app`` of one service."""
    if service not in SERVICE_PORTS:
        raise SystemExit(f"unknown service {service!r}; choose one of: {', '.join(SERVICE_PORTS)}")
    return importlib.import_module(f"services.{service}.app").create_app


def cmd_serve(args: argparse.Namespace) -> int:
    from shared.server import serve

    port = args.port or int(os.environ.get("PORT", SERVICE_PORTS[args.service]))
    if args.role:
        os.environ["CLOSELOOP_ROLE"] = args.role
    serve(app_factory(args.service), factory=True, host=args.host, port=port)
    return 0


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit(
            "DATABASE_URL is not set. Example: DATABASE_URL=postgresql://postgres@127.0.0.1:5432/closeloop"
        )
    from shared.settings import ServiceSettings

    return ServiceSettings(database_url=url).database_url


def cmd_migrate(args: argparse.Namespace) -> int:
    from closeloop.infra import ensure_database
    from shared.migrations import SERVICES as MIGRATABLE
    from shared.migrations import upgrade

    url = _database_url()
    asyncio.run(ensure_database(url))
    for service in args.services or MIGRATABLE:
        print(f"migrating {service} …", flush=True)
        upgrade(service, url)
    print("migrations done")
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    from shared.kafka import ensure_topics

    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    created = asyncio.run(ensure_topics(servers, partitions=args.partitions, replication=args.replication))
    print(f"created {len(created)} topics: {', '.join(created)}" if created else "all topics exist")
    return 0


def cmd_workspace_create(args: argparse.Namespace) -> int:
    from shared.security import issue_api_key
    from shared.settings import DEV_SECRET_KEY

    secret = os.environ.get("CLOSELOOP_SECRET_KEY", DEV_SECRET_KEY)
    if secret == DEV_SECRET_KEY:
        print(
            "warning: CLOSELOOP_SECRET_KEY is not set; this key only works with the development secret",
            file=sys.stderr,
        )
    try:
        key = issue_api_key(secret, args.workspace_id)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from exc
    print(key)
    return 0


def cmd_contacts_import(args: argparse.Namespace) -> int:
    from closeloop.contacts_import import run

    return run(args)


def cmd_dev(args: argparse.Namespace) -> int:
    from closeloop.dev import main as dev_main

    return dev_main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="closeloop", description="closed-loop customer feedback")
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="run the whole stack locally (what 'make run' does)")
    dev.add_argument("--data-dir", default=".data", help="where the embedded database and mail live")
    dev.add_argument("--no-seed", action="store_true", help="do not create the demo workspace")
    dev.set_defaults(func=cmd_dev)

    serve = sub.add_parser("serve", help="run one service (what a container runs)")
    serve.add_argument("service", choices=list(SERVICE_PORTS))
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument(
        "--role",
        default=None,
        help="all (default, or CLOSELOOP_ROLE): HTTP and background work; api: HTTP only; "
        "worker: consumers and background loops only (its port serves health checks); or a "
        "comma-separated list of single workers, e.g. api,relay",
    )
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="apply database migrations (DATABASE_URL)")
    migrate.add_argument(
        "services", nargs="*", metavar="SERVICE", help=f"any of {', '.join(SERVICE_PORTS)} (default: all)"
    )
    migrate.set_defaults(func=cmd_migrate)

    topics = sub.add_parser("topics", help="create the Kafka topics and their dead-letter topics")
    topics.add_argument("--partitions", type=int, default=6)
    topics.add_argument("--replication", type=int, default=1)
    topics.set_defaults(func=cmd_topics)

    workspace = sub.add_parser("workspace", help="workspaces and their API keys")
    ws_sub = workspace.add_subparsers(dest="workspace_command", required=True)
    create = ws_sub.add_parser("create", help="issue an API key for a workspace id")
    create.add_argument("workspace_id")
    create.set_defaults(func=cmd_workspace_create)

    from closeloop.contacts_import import configure

    contacts = sub.add_parser("contacts", help="contacts of a workspace")
    contacts_sub = contacts.add_subparsers(dest="contacts_command", required=True)
    configure(contacts_sub.add_parser("import", help="import contacts from CSV or JSON lines")).set_defaults(
        func=cmd_contacts_import
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
