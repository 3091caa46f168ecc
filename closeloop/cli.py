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

SETTINGS = {
    "trigger": "TriggerSettings",
    "dispatch": "DispatchSettings",
    "responses": "ResponsesSettings",
    "scoring": "ScoringSettings",
    "followup": "FollowUpSettings",
    "console": "ConsoleSettings",
}
"""Each service's settings class, in ``services.<name>.settings``."""


def app_factory(service: str) -> Callable[..., Any]:
    """Return ``create_app`` of one service."""
    if service not in SERVICE_PORTS:
        raise SystemExit(f"unknown service {service!r}; choose one of: {', '.join(SERVICE_PORTS)}")
    return importlib.import_module(f"services.{service}.app").create_app


def settings_class(service: str) -> Any:
    """Return the settings class of one service."""
    return getattr(importlib.import_module(f"services.{service}.settings"), SETTINGS[service])


def offline_app(service: str) -> Any:
    """Return one service's app built, not started, with a database nobody listens on: its routes and
    OpenAPI document to read, without any I/O."""
    return app_factory(service)(settings_class(service)(database_url="postgresql://nobody@127.0.0.1:1/none"))


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
    from shared.settings import KafkaSettings

    # KAFKA_BOOTSTRAP_SERVERS and the KAFKA_SECURITY_PROTOCOL / SSL / SASL settings, as the services read them.
    created = asyncio.run(
        ensure_topics(KafkaSettings(), partitions=args.partitions, replication=args.replication)
    )
    print(f"created {len(created)} topics: {', '.join(created)}" if created else "all topics exist")
    return 0


def cmd_workspace_create(args: argparse.Namespace) -> int:
    from pathlib import Path

    from closeloop.workspaces import WorkspaceError, create_workspace, operator_secret

    try:
        made = create_workspace(
            args.console_url,
            operator_secret(Path(args.data_dir)),
            workspace_id=args.workspace_id,
            owner_email=args.owner,
            owner_name=args.owner_name,
            name=args.name,
            sign_in="password" if args.password else "link",
        )
    except WorkspaceError as exc:
        raise SystemExit(f"error: {exc}") from exc
    state = "created" if made["created"] else "already existed: a new admin key and owner sign-in were made"
    print(f"workspace {made['workspace_id']} {state}")
    print(f"console   {made['console_url']}")
    print(f"owner     {made['owner_email']}")
    if made["password"]:
        print(f"password  {made['password']}   (shown once; change it after signing in)")
    if made["sign_in_url"]:
        print(f"sign in   {made['sign_in_url']}   (works once: it sets the owner's password)")
    print("admin API key (shown once; closeloop keeps only its id):")
    print(made["api_key"]["secret"])
    return 0


def cmd_contacts_import(args: argparse.Namespace) -> int:
    from closeloop.contacts_import import run

    return run(args)


def cmd_dlq(args: argparse.Namespace) -> int:
    from closeloop.dlq import run

    return run(args)


def cmd_dictionaries(args: argparse.Namespace) -> int:
    from services.scoring.text.dictionaries import build, cache_dir
    from services.scoring.text.language import SUPPORTED

    print(f"› simplemma's word lists for {', '.join(SUPPORTED)} as tries in {cache_dir()}", flush=True)
    build(SUPPORTED)
    return 0


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

    sub.add_parser(
        "dictionaries",
        help="build the word lists scoring reads comments with (once per machine or image; else on first start)",
    ).set_defaults(func=cmd_dictionaries)

    topics = sub.add_parser("topics", help="create the Kafka topics and their dead-letter topics")
    topics.add_argument("--partitions", type=int, default=6)
    topics.add_argument("--replication", type=int, default=1)
    topics.set_defaults(func=cmd_topics)

    from closeloop.dlq import configure as configure_dlq

    configure_dlq(
        sub.add_parser("dlq", help="dead-letter topics: list, show, replay or purge what consumers parked")
    ).set_defaults(func=cmd_dlq)

    workspace = sub.add_parser("workspace", help="workspaces and their API keys")
    ws_sub = workspace.add_subparsers(dest="workspace_command", required=True)
    create = ws_sub.add_parser(
        "create",
        help="create a workspace in the console with its owner and an admin API key",
        description="Creates the workspace, makes OWNER its owner (printing a one-time sign-in link, or "
        "with --password a generated password) and prints a new admin API key. It signs its request with "
        "the stack's secret: CLOSELOOP_SECRET_KEY, else DATA_DIR/secret_key (what make run uses). Run on an "
        "existing workspace, it makes a new admin key and owner sign-in.",
    )
    create.add_argument("workspace_id", help="2-63 lowercase letters, digits and dashes, e.g. acme")
    create.add_argument("--owner", required=True, metavar="EMAIL", help="the owner's email address")
    create.add_argument("--owner-name", default=None, help="the owner's name (default: from the address)")
    create.add_argument("--name", default=None, help="the workspace's display name (default: its id)")
    create.add_argument(
        "--password", action="store_true", help="print a generated password instead of a one-time link"
    )
    create.add_argument(
        "--console-url",
        default=os.environ.get("CLOSELOOP_CONSOLE_URL", "http://127.0.0.1:8000"),
        help="the console (default: CLOSELOOP_CONSOLE_URL or http://127.0.0.1:8000)",
    )
    create.add_argument(
        "--data-dir", default=".data", help="where make run keeps its secret (default: .data)"
    )
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
