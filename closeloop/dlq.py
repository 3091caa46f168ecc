"""``closeloop dlq list|show|replay|purge``: the dead-letter topics, for operators.

Connects like the services do (``KAFKA_BOOTSTRAP_SERVERS`` and the ``KAFKA_SECURITY_PROTOCOL`` /
SSL / SASL variables). See ``shared.deadletters`` for what "pending" means.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.settings import KafkaSettings


def configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    sub = parser.add_subparsers(dest="dlq_command", required=True)
    sub.add_parser("list", help="every dead-letter topic with its pending records")
    show = sub.add_parser("show", help="the pending records of one dead-letter topic, as JSON lines")
    show.add_argument(
        "topic", help="a topic or its dead-letter topic, e.g. customer-events or customer-events.dlq"
    )
    show.add_argument("--limit", type=int, default=20, help="at most this many records (20)")
    replay = sub.add_parser(
        "replay",
        help="publish the pending records again to their original topic (original key and headers), "
        "then mark them dealt with; consumers' inboxes skip events they already handled",
    )
    replay.add_argument("topic")
    replay.add_argument("--limit", type=int, default=None, help="only the first N pending records")
    replay.add_argument("--dry-run", action="store_true", help="say what would be replayed; change nothing")
    purge = sub.add_parser("purge", help="mark every pending record dealt with, without replaying it")
    purge.add_argument("topic")
    purge.add_argument("--dry-run", action="store_true", help="say what would be purged; change nothing")
    return parser


def run(args: argparse.Namespace) -> int:
    from shared.settings import KafkaSettings

    return asyncio.run(_run(args, KafkaSettings()))


async def _run(args: argparse.Namespace, kafka: KafkaSettings) -> int:
    from shared.deadletters import DeadLetters, dlq_name

    async with DeadLetters(kafka) as dlq:
        if args.dlq_command == "list":
            print(f"{'dead-letter topic':<40} {'pending':>8}")
            for topic in await dlq.topics():
                print(f"{topic:<40} {(await dlq.backlog(topic)).pending:>8}")
            return 0
        try:
            backlog = await dlq.backlog(args.topic)
        except LookupError as exc:
            raise SystemExit(f"error: {exc}") from exc
        if args.dlq_command == "show":
            for record in await dlq.read(backlog, limit=args.limit):
                print(json.dumps(record.describe(), default=str))
            return 0
        if args.dlq_command == "replay":
            records = await dlq.read(backlog, limit=args.limit)
            prefix = "would replay" if args.dry_run else "replayed"
            for record in records:
                d = record.describe()
                print(
                    f"{prefix} {d['topic']}/{d['partition']}@{d['offset']} {d['event_type']} {d['event_id']} -> {d['original_topic']}"
                )
            if not args.dry_run:
                await dlq.replay(records)
            print(f"{prefix} {len(records)} of {backlog.pending} pending records of {dlq_name(args.topic)}")
            return 0
        # purge
        if args.dry_run:
            print(f"would purge {backlog.pending} pending records of {backlog.topic}")
            return 0
        await dlq.mark(backlog.topic, {p: end for p, (_, end) in backlog.ranges.items()})
        print(
            f"purged {backlog.pending} pending records of {backlog.topic} (marked; Kafka retention deletes them)"
        )
        return 0
