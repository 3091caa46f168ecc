"""``make bench``: the whole loop on the real stack — webhooks in, invitations emailed.

Starts its own PostgreSQL database (``DATABASE_URL`` or embedded), Tansu broker, an SMTP sink and
the six services as processes (``--processes 2``: two of each of the five feedback services), seeds
a workspace through the APIs, then:

1. idle: each process's resident set size once the stack is ready;
2. peak ingest: signed webhooks as fast as ``--concurrency`` connections can send them for
   ``--ingest-s`` seconds (events/s, acknowledgement p50/p99), then the time until every invitation
   for them has been emailed;
3. sustained: ``--rate`` webhooks per second for ``--seconds`` seconds, open loop (a webhook is sent
   on schedule whether or not the stack keeps up); webhook → email latency p50/p99 from the moment a
   webhook is written to the moment its email reaches the SMTP sink;
4. burst: ``--burst`` HubSpot contact property changes (``lifecyclestage`` → customer, 100 to a
   webhook, signed ``X-HubSpot-Signature-v3``) for contacts imported beforehand, as fast as trigger
   takes them; the time until every one of them has been emailed;

with each process's CPU per event (the five services, PostgreSQL and the broker) for phases 3 and 4,
and each process's peak resident set size. The sink counts every email and every address emailed
twice: a run with a missing or a doubled email fails (exit 1).

Webhooks are sent as raw HTTP/1.1 (``bench.loadgen``), so the client's own CPU stays small.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from bench.cli import arguments, run, service_env
from bench.loadgen import drive, http_request, percentile, read_response
from bench.trigger import hubspot_requests
from closeloop.demo import DemoWorkspace, seed_workspace
from closeloop.infra import free_port, scratch_broker, scratch_database
from closeloop.stack import SERVICE_PORTS, ServiceStack
from shared import standard_webhooks
from shared.vocabulary import SERVICES

HUBSPOT_SECRET = "bench-hubspot-client-secret"
AIMS = {"rate": 300, "e2e_p99_ms": 1000, "burst_s": 600, "idle_mb": 150, "peak_mb": 250}
"""Issue 17's aims for the whole stack, printed beside the figures."""


# --- the SMTP sink -----------------------------------------------------------------------------------


class EmailSink:
    """An SMTP server that only notes who was emailed when (no parsing: the bench's CPU stays small)."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        """Recipient → ``time.monotonic()`` of its first email."""
        self.twice: list[str] = []
        self.port = free_port()
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        now = time.monotonic()
        with self._lock:
            for address in envelope.rcpt_tos:
                if address.lower() in self.arrived:
                    self.twice.append(address)
                else:
                    self.arrived[address.lower()] = now
        return "250 Message accepted for delivery"

    def start(self) -> EmailSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    async def wait_for(self, addresses: list[str], *, timeout_s: float, label: str) -> float:
        """Wait until every address has been emailed; return when the last one arrived. Prints progress."""
        deadline = time.monotonic() + timeout_s
        shown = 0.0
        while True:
            missing = sum(1 for a in addresses if a not in self.arrived)
            if not missing:
                return max(self.arrived[a] for a in addresses)
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{label}: {missing} of {len(addresses)} emails missing after {timeout_s:.0f} s"
                )
            if time.monotonic() - shown > 10:
                print(f"      … {len(addresses) - missing:,} of {len(addresses):,} emailed", flush=True)
                shown = time.monotonic()
            await asyncio.sleep(0.1)


# --- measuring processes -----------------------------------------------------------------------------


@dataclass
class Processes:
    """The stack's processes by name, plus PostgreSQL's and the broker's, for CPU and memory."""

    stack: ServiceStack
    broker_pid: int | None
    peak_mb: dict[str, float] = field(default_factory=dict)

    def by_name(self) -> dict[str, list[psutil.Process]]:
        found: dict[str, list[psutil.Process]] = {
            name: [psutil.Process(p.pid)] for name, p in self.stack.processes.items()
        }
        found["postgres"] = [p for p in psutil.process_iter(["name"]) if "postgres" in (p.info["name"] or "")]
        if self.broker_pid:
            found["broker"] = [psutil.Process(self.broker_pid)]
        return found

    def cpu(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for name, processes in self.by_name().items():
            for process in processes:
                with contextlib.suppress(psutil.NoSuchProcess):
                    times = process.cpu_times()
                    totals[name] = totals.get(name, 0.0) + times.user + times.system
        return totals

    def rss_mb(self) -> dict[str, float]:
        return {
            name: psutil.Process(p.pid).memory_info().rss / 2**20
            for name, p in self.stack.processes.items()
            if p.poll() is None
        }

    async def sample_peaks(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for name, mb in self.rss_mb().items():
                self.peak_mb[name] = max(self.peak_mb.get(name, 0.0), mb)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)


def cpu_per_event(before: dict[str, float], after: dict[str, float], events: int) -> dict[str, float]:
    """Microseconds of CPU per event by process kind (a service's second process counts with its first)."""
    spent: dict[str, float] = {}
    for name in after:
        kind = name.removesuffix("-b")
        spent[kind] = spent.get(kind, 0.0) + (after[name] - before.get(name, 0.0)) / events * 1e6
    return spent


def cpu_line(spent: dict[str, float]) -> str:
    return (
        f"{sum(spent.values()):,.0f} µs in all: "
        + ", ".join(f"{k} {v:,.0f}" for k, v in spent.items())
        + " µs"
    )


BUSY = 0.7
"""The share of a core a replica is planned to use (headroom for bursts and garbage collection)."""


def sizing(spent: dict[str, float]) -> str:
    """Cores each kind of process needs for 1,000 and 10,000 webhooks/s at the measured CPU per webhook."""
    lines = [
        f"  {'':10}  {'µs/webhook':>10}  {'webhooks/s per core':>19}  {'cores for 1,000/s':>17}  {'for 10,000/s':>12}"
    ]
    for kind, micros in spent.items():
        if micros <= 0:
            continue
        per_core = 1e6 / micros
        lines.append(
            f"  {kind:10}  {micros:10,.0f}  {per_core:19,.0f}  {1_000 / per_core / BUSY:17.1f}  "
            f"{10_000 / per_core / BUSY:12.1f}"
        )
    return "\n".join(lines)


# --- the load ----------------------------------------------------------------------------------------


@dataclass
class Target:
    """Where webhooks go: every trigger process in turn."""

    ports: list[int]
    path: str
    demo: DemoWorkspace

    def webhook(self, n: int, address: str) -> bytes:
        body = json.dumps(
            {
                "type": "ticket.solved",
                "data": {
                    "contact": {"external_id": address, "email": address, "name": "Bench"},
                    "ticket_id": "T-1",
                },
            }
        ).encode()
        msg_id, ts = "msg_" + uuid.uuid4().hex, int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": standard_webhooks.sign(self.demo.webhook_secret, msg_id, ts, body),
        }
        return http_request("127.0.0.1", self.port(n), self.path, headers, body)

    def port(self, n: int) -> int:
        return self.ports[n % len(self.ports)]


async def peak_ingest(
    target: Target, *, seconds: float, concurrency: int
) -> tuple[list[str], list[float], float]:
    """As fast as ``concurrency`` connections go for ``seconds``; return the addresses sent, the
    acknowledgement latencies and the time taken."""
    per_port: dict[int, list[tuple[str, bytes]]] = {port: [] for port in target.ports}
    for i in range(int(seconds * 8_000)):  # more than trigger acknowledges in that time
        address = f"peak-{i}@bench.example"
        per_port[target.port(i)].append((address, target.webhook(i, address)))
    connections = max(1, concurrency // len(per_port))
    results = await asyncio.gather(
        *(
            drive("127.0.0.1", port, [raw for _, raw in pairs], connections=connections, seconds=seconds)
            for port, pairs in per_port.items()
        )
    )
    # drive takes requests in order and sends every one it takes before the deadline: a prefix of each list
    sent = [
        address
        for (done, _, _), pairs in zip(results, per_port.values(), strict=True)
        for address, _ in pairs[:done]
    ]
    return sent, [x for _, latencies, _ in results for x in latencies], max(r[2] for r in results)


async def paced(
    target: Target, *, rate: float, seconds: float, prefix: str
) -> tuple[dict[str, float], list[float]]:
    """Open loop: webhook ``i`` is written at ``start + i / rate``; return each address's send time and
    the acknowledgement latencies."""
    total = int(rate * seconds)
    requests = [
        (f"{prefix}-{i}@bench.example", target.webhook(i, f"{prefix}-{i}@bench.example"))
        for i in range(total)
    ]
    pools: dict[int, asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = {}
    for port in target.ports:
        pools[port] = asyncio.Queue()
        for _ in range(32):
            pools[port].put_nowait(await asyncio.open_connection("127.0.0.1", port))
    sent: dict[str, float] = {}
    acks: list[float] = []

    async def one(i: int, address: str, raw: bytes) -> None:
        pool = pools[target.port(i)]
        reader, writer = await pool.get()
        started = time.monotonic()
        sent[address] = started
        writer.write(raw)
        status, body = await read_response(reader)
        acks.append(time.monotonic() - started)
        pool.put_nowait((reader, writer))
        if status != 202:
            raise RuntimeError(f"webhook refused: {status} {body[:200]!r}")

    tasks = []
    start = time.monotonic()
    for i, (address, raw) in enumerate(requests):
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        tasks.append(asyncio.create_task(one(i, address, raw)))
    await asyncio.gather(*tasks)
    for pool in pools.values():
        while not pool.empty():
            pool.get_nowait()[1].close()
    return sent, acks


async def prepare_burst(urls: dict[str, str], demo: DemoWorkspace, count: int, first_id: int) -> str:
    """Import ``count`` contacts with an email each and a HubSpot rule that emails them; return the path."""
    async with httpx.AsyncClient(base_url=urls["trigger"], headers=demo.auth, timeout=120) as http:
        for start in range(0, count, 2000):
            rows = "".join(
                json.dumps({"external_id": str(first_id + i), "email": f"h{first_id + i}@bench.example"})
                + "\n"
                for i in range(start, min(count, start + 2000))
            )
            response = await http.post(
                "/v1/contacts/import", content=rows, headers={"content-type": "application/x-ndjson"}
            )
            response.raise_for_status()
            print(
                f"      … {min(count, start + 5000):,} of {count:,} contacts imported", end="\r", flush=True
            )
        print()
        integration = (
            (
                await http.post(
                    "/v1/integrations", json={"name": "HubSpot", "kind": "hubspot", "secret": HUBSPOT_SECRET}
                )
            )
            .raise_for_status()
            .json()
        )
        (
            await http.post(
                "/v1/rules",
                json={
                    "name": "New customer NPS",
                    "source": "hubspot",
                    "event_type": "contact.propertyChange",
                    "conditions": {"field": "event.lifecyclestage", "op": "equals", "value": "customer"},
                    "survey_id": demo.survey_id,
                    "channel": "email",
                    "delay_seconds": 0,
                },
            )
        ).raise_for_status()
    return f"/v1/webhooks/hubspot/{integration['id']}"


async def burst(target: Target, path: str, count: int, first_id: int) -> float:
    """All ``count`` events in 100-event HubSpot webhooks, as fast as trigger acknowledges; return the time taken."""
    batches = count // 100
    per_port = {
        port: hubspot_requests(
            "127.0.0.1",
            port,
            path,
            HUBSPOT_SECRET,
            batches // len(target.ports),
            first_id + k * (batches // len(target.ports)) * 100,
        )
        for k, port in enumerate(target.ports)
    }
    started = time.monotonic()
    await asyncio.gather(
        *(
            drive("127.0.0.1", port, requests, connections=8, seconds=3600)
            for port, requests in per_port.items()
        )
    )
    return time.monotonic() - started


def rss_mb(pid: int) -> float:
    """Return a process's resident memory in MB (bench.dispatch and bench.outbound read it)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- the run -----------------------------------------------------------------------------------------


def start_stack(env: dict[str, str], processes: int) -> ServiceStack:
    names = {s: s for s in SERVICE_PORTS} | {f"{s}-b": s for s in SERVICES if processes > 1}
    stack = ServiceStack(
        env=env,
        log_dir=Path(tempfile.mkdtemp(prefix="closeloop-bench-")),
        ports={n: free_port() for n in names},
    )
    for name, service in names.items():
        stack.start(service, name=name)
    return stack


def table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def memory(values: dict[str, float]) -> str:
    return (
        ", ".join(f"{name} {mb:.0f}" for name, mb in values.items())
        + f" MB (largest {max(values.values()):.0f})"
    )


async def main(args: argparse.Namespace) -> int:
    print(
        f"closeloop bench — PostgreSQL, broker, SMTP sink and the services ({args.processes} process(es) each) …",
        flush=True,
    )
    infra = contextlib.AsyncExitStack()
    url = await infra.enter_async_context(scratch_database("bench"))
    broker = await infra.enter_async_context(scratch_broker(partitions=max(3, 2 * args.processes)))
    sink = EmailSink().start()
    secret = secrets.token_urlsafe(32)
    stack = start_stack(
        service_env(
            url,
            broker.bootstrap_servers,
            secret,
            CLOSELOOP_DISPATCH_SMTP_HOST="127.0.0.1",
            CLOSELOOP_DISPATCH_SMTP_PORT=str(sink.port),
            # The load, not an integrator's misbehaviour: trigger's per-integration limit (500/s) off.
            CLOSELOOP_TRIGGER_RATE_LIMIT_PER_S="1000000",
            KAFKA_SESSION_TIMEOUT_MS="6000",
            KAFKA_HEARTBEAT_INTERVAL_MS="500",
            KAFKA_REBALANCE_TIMEOUT_MS="3000",
        ),
        args.processes,
    )
    rows: list[tuple[str, str]] = []
    steady_cpu: dict[str, float] = {}
    failed = False
    try:
        await asyncio.to_thread(stack.wait_ready)
        urls = {s: stack.url(s) for s in SERVICE_PORTS}
        demo = await asyncio.to_thread(seed_workspace, urls, secret_key=secret, workspace_id="bench")
        procs = Processes(stack, broker.process.pid if broker.process else None)
        trigger_ports = [stack.ports[n] for n in stack.ports if n in ("trigger", "trigger-b")]
        target = Target(trigger_ports, httpx.URL(demo.webhook_url).path, demo)
        print(f"stack ready; logs in {stack.log_dir}", flush=True)
        await asyncio.sleep(3)  # settle: what a quiet service holds
        idle = procs.rss_mb()
        rows.append(("memory at idle (RSS)", memory(idle) + f"   aim ≤ {AIMS['idle_mb']} MB"))

        stop_sampling = asyncio.Event()
        sampler = asyncio.create_task(procs.sample_peaks(stop_sampling))

        if args.ingest_s:
            print(
                f"[1/3] peak ingest: {args.concurrency} connections for {args.ingest_s:.0f} s …", flush=True
            )
            started = time.monotonic()
            sent, acks, elapsed = await peak_ingest(
                target, seconds=args.ingest_s, concurrency=args.concurrency
            )
            print(f"      {len(sent):,} webhooks acknowledged; waiting for their emails …", flush=True)
            last = await sink.wait_for(sent, timeout_s=args.drain_timeout_s, label="peak ingest")
            rows += [
                (
                    "peak ingest (acknowledged)",
                    f"{len(sent) / elapsed:8,.0f} webhooks/s   ack p50 {percentile(acks, 50) * 1e3:.1f} ms, "
                    f"p99 {percentile(acks, 99) * 1e3:.1f} ms   ({len(sent):,} in {elapsed:.1f} s)",
                ),
                ("  all of them emailed", f"{last - started:8.1f} s after the first webhook"),
            ]

        print(f"[2/3] sustained: {args.rate:.0f} webhooks/s for {args.seconds:.0f} s …", flush=True)
        before = procs.cpu()
        times, acks = await paced(target, rate=args.rate, seconds=args.seconds, prefix="steady")
        print(f"      all {len(times):,} sent; waiting for their emails …", flush=True)
        await sink.wait_for(list(times), timeout_s=args.drain_timeout_s, label="sustained")
        steady_cpu = cpu_per_event(before, procs.cpu(), len(times))
        e2e = [sink.arrived[a] - t for a, t in times.items()]
        rows += [
            (
                "sustained, offered",
                f"{args.rate:8,.0f} webhooks/s for {args.seconds:.0f} s   ack p50 {percentile(acks, 50) * 1e3:.1f} ms, "
                f"p99 {percentile(acks, 99) * 1e3:.1f} ms",
            ),
            (
                "  webhook → email",
                f"p50 {percentile(e2e, 50) * 1e3:,.0f} ms, p99 {percentile(e2e, 99) * 1e3:,.0f} ms, "
                f"max {max(e2e) * 1e3:,.0f} ms   aim p99 ≤ {AIMS['e2e_p99_ms']} ms at {AIMS['rate']}/s",
            ),
            ("  CPU per webhook", cpu_line(steady_cpu)),
        ]

        if args.burst:
            first_id = 10_000_000
            print(f"[3/3] burst: importing {args.burst:,} contacts …", flush=True)
            path = await prepare_burst(urls, demo, args.burst, first_id)
            print(f"      sending {args.burst:,} HubSpot events, 100 a webhook …", flush=True)
            before = procs.cpu()
            started = time.monotonic()
            acked_s = await burst(target, path, args.burst, first_id)
            addresses = [f"h{first_id + i}@bench.example" for i in range(args.burst)]
            last = await sink.wait_for(addresses, timeout_s=args.burst_timeout_s, label="burst")
            took = last - started
            rows += [
                (
                    "burst of HubSpot events",
                    f"{args.burst:,} acknowledged in {acked_s:.1f} s ({args.burst / acked_s:,.0f} events/s); "
                    f"all emailed {took:.0f} s after the first   aim ≤ {AIMS['burst_s']} s",
                ),
                ("  CPU per event", cpu_line(cpu_per_event(before, procs.cpu(), args.burst))),
            ]
        stop_sampling.set()
        await sampler
        rows.append(("memory at peak (RSS)", memory(procs.peak_mb) + f"   aim ≤ {AIMS['peak_mb']} MB"))
        if sink.twice:
            failed = True
            rows.append(("emailed twice", f"{len(sink.twice)} addresses, e.g. {sink.twice[:3]}"))
        else:
            rows.append(("emailed twice", "none"))
    except TimeoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        failed = True
    finally:
        stack.stop_all()
        sink.stop()
        await infra.aclose()

    print()
    print(
        f"closeloop benchmark ({args.processes} process(es) per service; 2 cores shared by the client, "
        "the broker, PostgreSQL and the services)"
    )
    if rows:
        print(table(rows))
    if steady_cpu:
        print()
        print(
            f"Cores needed at the sustained phase's CPU per webhook, each replica planned at {BUSY:.0%} busy:"
        )
        print(sizing(steady_cpu))
    return 1 if failed else 0


if __name__ == "__main__":
    parser = arguments("bench", __doc__)
    parser.add_argument("--processes", type=int, default=1, choices=(1, 2), help="processes per service")
    parser.add_argument("--ingest-s", type=float, default=10, help="peak ingest seconds (0: skip)")
    parser.add_argument("--concurrency", type=int, default=32, help="connections for the peak ingest")
    parser.add_argument("--rate", type=float, default=AIMS["rate"], help="webhooks/s of the sustained phase")
    parser.add_argument("--seconds", type=float, default=60, help="length of the sustained phase")
    parser.add_argument("--burst", type=int, default=100_000, help="HubSpot events of the burst (0: skip)")
    parser.add_argument("--drain-timeout-s", type=float, default=300)
    parser.add_argument("--burst-timeout-s", type=float, default=1200)
    run(main, parser)
