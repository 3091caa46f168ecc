"""``python -m bench.dispatch``: how fast dispatch hands invitations off, by email and by SMS.

Starts its own PostgreSQL database (``DATABASE_URL`` or embedded), a Tansu broker, a local SMTP
server and a local Twilio-compatible HTTP server (``tests.support.dispatch.FakeProvider``), runs
the dispatch service as its own process (``closeloop serve dispatch``), then publishes
``SurveyRequested`` events straight to the ``survey-requests`` topic:

1. email: ``--emails`` requests at once; emails/s from the first publish to the last message
   accepted by the SMTP server, and latency from each publish to its hand-off, p50/p99;
2. SMS: ``--sms`` requests at once; provider requests/s and the same latencies.

Hand-off is when the SMTP server accepted the message or the provider answered 201. Dispatch's
own CPU per message is read from ``/proc/<pid>/stat``, also less what it spends at idle (measured for
``--idle-s`` before the emails: at a low rate its polls are a good part of the CPU per message). With ``--profile`` (needs ``py-spy`` in the
virtualenv), the email phase is sampled with ``py-spy record --gil`` and the GIL time is broken down
by where it went: template, MIME, SMTP, database, Kafka, the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from bench.__main__ import rss_mb
from bench.cli import arguments, run, service_env
from bench.loadgen import cpu_seconds, percentile
from closeloop.infra import free_port, scratch_broker, scratch_database
from closeloop.mailcatcher import MailCatcher, recipient
from closeloop.stack import ServiceStack
from shared.events import CloudEvent, Recipient, SurveyRequested, new_id
from tests.support.dispatch import FakeProvider


async def publish_all(producer: AIOKafkaProducer, requests: list[SurveyRequested]) -> dict[str, float]:
    """Publish every request; return when each was published (monotonic), by request id."""
    published: dict[str, float] = {}
    pending = []
    for req in requests:
        envelope = CloudEvent.wrap(req, source="bench")
        published[req.request_id] = time.monotonic()
        pending.append(
            await producer.send(
                req.topic, value=envelope.model_dump_json().encode(), key=req.partition_key().encode()
            )
        )
    await asyncio.gather(*pending)
    return published


# Where a sample's time went: the innermost frame whose file matches, leaf first.
BREAKDOWN = [
    (
        "template",
        ("jinja2", "markupsafe", "dispatch/templates.py", "dispatch/embeds.py", "dispatch/wording.py"),
    ),
    ("MIME", ("(email/", "/email/", "dispatch/emails.py")),
    ("SMTP", ("aiosmtplib",)),
    ("database", ("sqlalchemy", "asyncpg", "shared/db.py", "shared/outbox.py")),
    ("Kafka", ("aiokafka", "kafka/", "shared/inbox.py", "shared/consumer")),
    ("SMS HTTP", ("httpx", "httpcore", "h11", "dispatch/poster.py", "dispatch/providers.py")),
]


def breakdown(
    raw: str,
    parts: list[tuple[str, tuple[str, ...]]] = BREAKDOWN,
    other: str = "other (asyncio, dispatch's own code, logging, …)",
) -> dict[str, float]:
    """Return the share of samples per part of ``parts`` in py-spy's raw (collapsed stack) output."""
    counts: dict[str, int] = {}
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        part = other
        for frame in reversed(stack.split(";")):
            hit = next((name for name, marks in parts if any(m in frame for m in marks)), None)
            if hit is not None:
                part = hit
                break
        counts[part] = counts.get(part, 0) + int(n)
    total = sum(counts.values()) or 1
    return {k: v / total for k, v in sorted(counts.items(), key=lambda kv: -kv[1])}


def start_profile(
    pid: int, seconds: int, phase: str, *, bench: str = "dispatch"
) -> tuple[subprocess.Popen[bytes], Path] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("warning: --profile needs py-spy (pip install py-spy); not profiling", file=sys.stderr)
        return None
    out = Path(tempfile.mkdtemp(prefix=f"closeloop-bench-{bench}-")) / f"{phase}.raw"
    cmd = [
        spy,
        "record",
        "--gil",
        "--nonblocking",
        "-r",
        os.environ.get("CLOSELOOP_BENCH_PROFILE_RATE", "100"),
        "-p",
        str(pid),
        "-f",
        "raw",
        "-d",
        str(seconds),
        "-o",
        str(out),
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), out


async def stop_profile(
    profile: tuple[subprocess.Popen[bytes], Path] | None, **parts: Any
) -> dict[str, float]:
    """Stop py-spy (it writes what it sampled so far on SIGINT); return the breakdown of its samples
    (``parts`` as ``breakdown`` takes them)."""
    if profile is None:
        return {}
    spy, raw = profile
    spy.send_signal(signal.SIGINT)
    await asyncio.to_thread(spy.wait, 30)
    print(f"  profile: {raw}", flush=True)
    return breakdown(raw.read_text(errors="replace"), **parts) if raw.exists() else {}


def shares_rows(shares: dict[str, float], per_message_ms: float, what: str) -> list[tuple[str, str]]:
    """The breakdown's rows: each part's share of the samples, and that share of the CPU per message."""
    return [
        (f"    {part}", f"{share * 100:7.0f} %    ~{share * per_message_ms:.2f} ms per {what}")
        for part, share in shares.items()
    ]


def email_request(workspace: str, key: str) -> SurveyRequested:
    return SurveyRequested(
        workspace_id=workspace,
        request_id=new_id(),
        contact_id=key,
        survey_id="svy-bench",
        recipient=Recipient(name="Bench Customer", email=f"{key}@bench.example"),
    )


async def wait_for(condition, *, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not done within {timeout_s}s")
        await asyncio.sleep(0.02)


@dataclass(frozen=True)
class Phase:
    """One channel's requests: when each was published and handed off (by request id), and what CPU
    dispatch spent from the first publish to the last hand-off."""

    published: dict[str, float]
    handed: dict[str, float]
    started: float
    cpu_s: float
    busy_s: float
    """``cpu_s`` less what dispatch spends at idle in as long."""
    shares: dict[str, float]
    """The ``--profile`` breakdown (empty without it)."""

    def rows(self, *, handed_to: str, rate: str, hand_off: str, what: str) -> list[tuple[str, str]]:
        """The phase's rows: hand-offs per second, latency from publish to hand-off, CPU per message."""
        count = len(self.handed)
        elapsed = max(self.handed.values()) - self.started
        latency = [self.handed[r] - self.published[r] for r in self.handed]
        per_message_ms = self.cpu_s / count * 1000
        return [
            (handed_to, f"{count / elapsed:8.0f} {rate:<10} ({count} in {elapsed:.1f}s)"),
            (
                f"  SurveyRequested → {hand_off}",
                f"p50 {percentile(latency, 50) * 1000:7.0f} ms   p99 {percentile(latency, 99) * 1000:7.0f} ms",
            ),
            (f"  dispatch CPU per {what}", f"{per_message_ms:8.2f} ms       ({self.cpu_s:.1f} s of CPU)"),
            ("    beyond the idle CPU", f"{self.busy_s / count * 1000:8.2f} ms"),
            *shares_rows(self.shares, per_message_ms, what),
        ]


async def send(
    producer: AIOKafkaProducer,
    requests: list[SurveyRequested],
    *,
    pid: int,
    idle: float,
    args: argparse.Namespace,
    profile_as: str,
    sent: Callable[[], int],
    waiting_for: str,
    handed: Callable[[], dict[str, float]],
) -> Phase:
    """Publish ``requests`` at once and wait until ``sent()`` counts them all handed off; return the
    phase, with ``handed()``'s hand-off times (``idle``: dispatch's CPU seconds per second at idle)."""
    profile = start_profile(pid, args.profile, profile_as) if args.profile else None
    cpu_before = cpu_seconds(pid)
    started = time.monotonic()
    published = await publish_all(producer, requests)
    await wait_for(lambda: sent() >= len(requests), timeout_s=args.timeout_s, what=waiting_for)
    cpu_s = cpu_seconds(pid) - cpu_before
    busy_s = cpu_s - idle * (time.monotonic() - started)
    shares = await stop_profile(profile)
    return Phase(published, handed(), started, cpu_s, busy_s, shares)


async def main(args: argparse.Namespace) -> int:
    print("dispatch bench — starting PostgreSQL, broker, SMTP server and a local SMS provider …", flush=True)
    infra = contextlib.AsyncExitStack()
    url = await infra.enter_async_context(scratch_database("bench-dispatch", services=["dispatch"]))
    broker = await infra.enter_async_context(scratch_broker())
    catcher = MailCatcher().start()
    workspace = "bench-" + secrets.token_hex(3)
    rows: list[tuple[str, str]] = []
    stack: ServiceStack | None = None
    try:
        async with FakeProvider() as provider:
            stack = ServiceStack(
                env=service_env(
                    url,
                    broker.bootstrap_servers,
                    secrets.token_urlsafe(16),
                    CLOSELOOP_DISPATCH_SMTP_PORT=str(catcher.port),
                    CLOSELOOP_DISPATCH_TWILIO_BASE_URL=provider.url,
                    CLOSELOOP_DISPATCH_TWILIO_ACCOUNT_SID=provider.account_sid,
                    CLOSELOOP_DISPATCH_TWILIO_AUTH_TOKEN=provider.auth_token,
                    CLOSELOOP_DISPATCH_SMS_FROM="+15005550006",
                    CLOSELOOP_DISPATCH_SEND_CONCURRENCY=str(args.concurrency),
                    CLOSELOOP_DISPATCH_SMTP_POOL_SIZE=str(args.smtp_pool),
                ),
                log_dir=Path(tempfile.mkdtemp(prefix="closeloop-bench-dispatch-")),
                ports={service: free_port() for service in ("trigger", "dispatch", "responses")},
            )
            stack.start("dispatch")
            await asyncio.to_thread(stack.wait_ready, ["dispatch"])
            producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all", linger_ms=5)
            await producer.start()
            try:
                # Warm up: the consumer group has joined once the first invitation is out.
                await publish_all(producer, [email_request(workspace, "warmup")])
                await wait_for(lambda: len(catcher.messages) >= 1, timeout_s=60, what="the warm-up email")
                catcher.messages.clear()
                catcher.arrived_at.clear()

                pid = stack.processes["dispatch"].pid
                # What dispatch spends with nothing to do (its workers' polls, the consumers' fetches and
                # heartbeats): at a low rate this is a good part of the CPU per message.
                profile = start_profile(pid, args.profile, "idle") if args.profile else None
                idle_before, idle_started = cpu_seconds(pid), time.monotonic()
                await asyncio.sleep(args.idle_s)
                idle = (cpu_seconds(pid) - idle_before) / (time.monotonic() - idle_started)
                shares = await stop_profile(profile)
                rows.append(("dispatch CPU at idle", f"{idle * 1000:8.1f} ms per second"))
                rows += shares_rows(shares, idle * 1000, "second")

                print(f"[1/2] email: {args.emails} survey requests …", flush=True)
                emails = [email_request(workspace, f"e{n}") for n in range(args.emails)]
                by_address = {r.recipient.email: r.request_id for r in emails if r.recipient}
                email = await send(
                    producer,
                    emails,
                    pid=pid,
                    idle=idle,
                    args=args,
                    profile_as="email",
                    sent=lambda: len(catcher.messages),
                    waiting_for="emails",
                    handed=lambda: {
                        by_address[recipient(m)]: at
                        for m, at in zip(list(catcher.messages), list(catcher.arrived_at), strict=False)
                    },
                )
                rows += email.rows(
                    handed_to="emails handed to SMTP", rate="emails/s", hand_off="SMTP", what="email"
                )

                print(f"[2/2] SMS: {args.sms} survey requests …", flush=True)
                sms = [
                    SurveyRequested(
                        workspace_id=workspace,
                        request_id=new_id(),
                        contact_id=f"s{n}",
                        survey_id="svy-bench",
                        channel="sms",
                        recipient=Recipient(name="Bench", phone=f"+1415{n:07d}"),
                    )
                    for n in range(args.sms)
                ]
                by_phone = {r.recipient.phone: r.request_id for r in sms if r.recipient}
                sms_phase = await send(
                    producer,
                    sms,
                    pid=pid,
                    idle=idle,
                    args=args,
                    profile_as="sms",
                    sent=lambda: len(provider.messages),
                    waiting_for="SMS requests",
                    handed=lambda: {by_phone[m.to]: m.at for m in provider.messages},
                )
                rows += sms_phase.rows(
                    handed_to="SMS requests to provider", rate="requests/s", hand_off="201", what="SMS"
                )
                memory = rss_mb(stack.processes["dispatch"].pid)
                rows.append(("dispatch memory (RSS)", f"{memory:8.0f} MB"))
                if provider.violations:
                    print(
                        f"error: provider requests broke the API: {provider.violations[:3]}", file=sys.stderr
                    )
                    return 1
            finally:
                await producer.stop()
    finally:
        if stack is not None:
            stack.stop_all()
        catcher.stop()
        await infra.aclose()

    width = max(len(k) for k, _ in rows)
    print()
    print(
        f"dispatch benchmark (one dispatch process, send_concurrency={args.concurrency}, "
        f"smtp_pool_size={args.smtp_pool}; {os.cpu_count()} cores shared with the broker, database and servers)"
    )
    print("\n".join(f"  {k:<{width}}  {v}" for k, v in rows))
    return 0


if __name__ == "__main__":
    parser = arguments("bench.dispatch", __doc__)
    parser.add_argument("--emails", type=int, default=2000)
    parser.add_argument("--sms", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50, help="CLOSELOOP_DISPATCH_SEND_CONCURRENCY")
    parser.add_argument("--smtp-pool", type=int, default=4, help="CLOSELOOP_DISPATCH_SMTP_POOL_SIZE")
    parser.add_argument("--timeout-s", type=float, default=240)
    parser.add_argument(
        "--idle-s",
        type=float,
        default=10,
        help="seconds dispatch's CPU at idle is measured before the emails",
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="SECONDS",
        help="sample the email phase with py-spy --gil for up to SECONDS and print where the time went",
    )
    run(main, parser)
