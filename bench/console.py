"""``python -m bench.console``: the console's pages over a loaded programme.

Starts its own PostgreSQL database (``DATABASE_URL``'s server, or an embedded one) and Tansu broker,
migrates scoring, followup and the console, then:

1. **loads** ``--answers`` scored answers into scoring (``bench.scoring.load``: 2 years, 50 surveys,
   8 dimensions, generated inside PostgreSQL) and ``--cases`` open cases into followup
   (``bench.followup``: 200 agents, 20 teams, routing rules, the escalation ladder);
2. runs scoring (API and consumer), followup (API) and the console as separate processes
   (``closeloop serve``, one per service, as deployed: the console's eight calls to scoring do not share
   its event loop), makes the workspace's owner through the operator API and signs in like a browser;
3. **times** the first byte of ``/overview`` (last 90 days: about 1.2 M answers at 10 M; every card,
   the trend, matrix, funnel, themes, targets and comments — eight calls to scoring as the person) on a
   console without the overview's cache (with the CPU time the console and scoring spend on each), the
   same page again on the console with its cache (a page opened again within its seconds), and the
   inbox (``/cases``, all open), ``--repeat`` times each, and prints p50/p95;
4. **weighs** the overview: its HTML plus the stylesheet, the script and the icon;
5. **live**: with ``/overview/live`` open (last 7 days), publishes ``--live`` ``ResponseCompleted``
   events one at a time and times each from the publish to the stream's ``changed`` event (scoring's
   consumer counts it, the console's next poll sees it; the browser then fetches the page once more,
   whose first byte is timed in step 3).

Nothing here is a timed test: the numbers are printed (and recorded in bench/RESULTS.md by hand).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from bench.__main__ import percentile, table
from bench.cli import arguments, run, service_env
from bench.followup import install_ladder, seed_cases, seed_setup
from bench.scoring import _cpu_seconds, load
from closeloop.infra import free_port, scratch_broker, scratch_database
from closeloop.stack import ServiceStack
from services.followup.app import create_app as create_followup
from services.followup.settings import FollowUpSettings
from shared.access import Role, issue_api_key, issue_operator_token
from shared.clock import Clock
from shared.db import Database, driver_dsn
from shared.events import Answer, CloudEvent, ResponseCompleted, new_id, utcnow

WORKSPACE = "bench"
SECRET = "bench-console-secret-" + "x" * 32


def say(text: str) -> None:
    print(text, flush=True)


@contextlib.asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """Run ``app`` (with its lifespan) under uvicorn on a free port; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.contextmanager
def services(url: str, bootstrap: str, logs: Path) -> Iterator[ServiceStack]:
    """Run scoring (all roles: its consumer counts the live responses), followup's API and the console
    as ``closeloop serve`` processes on free ports (the services the console is not timed on get a
    port nobody listens on), and a second console without the overview's cache; stop them at the end."""
    names = ("trigger", "dispatch", "responses", "scoring", "console", "console-uncached")
    ports = {name: free_port() for name in names}
    ports["followup"] = ports["followup-api"] = free_port()  # the console calls followup's API process
    stack = ServiceStack(
        env=service_env(url, bootstrap, SECRET, LOG_FORMAT="text"), log_dir=logs, ports=ports
    )
    try:
        stack.start("scoring")
        stack.start("followup", role="api")
        stack.start("console")
        # A second console without the overview's cache: what every request costs when it asks scoring.
        stack.env["CLOSELOOP_CONSOLE_OVERVIEW_CACHE_S"] = "0"
        stack.start("console", name="console-uncached")
        stack.wait_ready(["scoring", "followup-api", "console", "console-uncached"], timeout_s=120)
        yield stack
    finally:
        stack.stop_all()


async def sign_in(console: str) -> httpx.AsyncClient:
    """Make the workspace's owner (operator API) and return a browser-like client signed in as them."""
    async with httpx.AsyncClient(base_url=console, timeout=60) as operator:
        made = await operator.post(
            "/v1/workspaces",
            json={
                "id": WORKSPACE,
                "owner_email": "owner@bench.example",
                "owner_name": "Bench Owner",
                "owner_sign_in": "password",
            },
            headers={"Authorization": f"Bearer {issue_operator_token(SECRET, now=time.time())}"},
        )
        made.raise_for_status()
    browser = httpx.AsyncClient(base_url=console, timeout=60)
    page = await browser.get("/sign-in")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf, "no sign-in form"
    owner = made.json()
    done = await browser.post(
        "/sign-in",
        data={"email": owner["owner_email"], "password": owner["password"], "csrf_token": csrf.group(1)},
    )
    assert done.status_code == 303, done.text[:300]
    return browser


async def ttfb(browser: httpx.AsyncClient, path: str, repeat: int) -> tuple[list[float], int]:
    """Time to the first byte of the body of ``path``, ``repeat`` times; and the last body's size."""
    times, size = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        async with browser.stream("GET", path) as response:
            assert response.status_code == 200, (path, response.status_code)
            chunks = response.aiter_bytes()
            first = await chunks.__anext__()
            times.append(time.perf_counter() - started)
            size = len(first) + sum([len(c) async for c in chunks])
    return times, size


async def live(browser: httpx.AsyncClient, bootstrap: str, n: int) -> list[float]:
    """Seconds from publishing a response to the open overview's ``changed`` event, ``n`` times."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all")
    await producer.start()
    latencies: list[float] = []
    try:
        async with browser.stream("GET", "/overview/live?period=7d", timeout=None) as stream:
            lines = stream.aiter_lines()
            await lines.__anext__()  # retry:
            await asyncio.sleep(2.5)  # the stream's first poll has taken its mark
            for i in range(n):
                event = ResponseCompleted(
                    workspace_id=WORKSPACE,
                    response_id=new_id(),
                    invitation_id=None,
                    request_id=new_id(),
                    contact_id=f"live-{i}",
                    survey_id="survey-01",
                    survey_version=1,
                    kind="transactional",
                    channel="email",
                    locale="en",
                    hidden_fields={"country": "NL"},
                    answers=(Answer(question_id="nps", type="nps", value=i % 11),),
                    consent_to_contact=False,
                    completed_at=utcnow(),
                )
                envelope = CloudEvent.wrap(event, source="bench")
                started = time.perf_counter()
                await producer.send_and_wait(
                    event.topic, envelope.model_dump_json().encode(), key=event.partition_key().encode()
                )
                async for line in lines:
                    if line.startswith("event: changed"):
                        latencies.append(time.perf_counter() - started)
                        break
                await asyncio.sleep(0.3)
    finally:
        await producer.stop()
    return latencies


async def main(args: argparse.Namespace) -> int:
    say(
        f"console bench — {args.answers:,} answers, {args.cases:,} open cases; starting PostgreSQL and the broker …"
    )
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(
            scratch_database("bench-console", services=["scoring", "followup", "console"])
        )
        broker = await stack.enter_async_context(scratch_broker(partitions=1))
        db = Database(url, pool_size=2)
        stack.push_async_callback(db.dispose)
        say(f"[1/5] generating {args.answers:,} scored answers …")
        load_s = await load(db, args.answers)
        say(f"      in {load_s:.0f} s")
        common: dict[str, Any] = {
            "database_url": url,
            "kafka_bootstrap_servers": broker.bootstrap_servers,
            "secret_key": SECRET,
            "log_level": "WARNING",
        }
        say(f"[2/5] seeding {args.cases:,} open cases …")
        started = time.perf_counter()
        # Followup in this process only to seed (its runtime writes the ladder); it stops before the timing.
        followup_app = create_followup(FollowUpSettings(**common, role="api"), clock=Clock())
        async with serve(followup_app) as seeding:
            admin = {"Authorization": f"Bearer {issue_api_key(SECRET, WORKSPACE, role=Role.ADMIN)}"}
            async with httpx.AsyncClient(base_url=seeding, timeout=120) as client:
                teams = await seed_setup(client, admin, agents=200, teams=20)
            runtime = followup_app.state.runtime
            now = runtime.deps.clock.now()
            steps = await install_ladder(runtime.db, created_at=now - timedelta(days=30))
            await seed_cases(driver_dsn(url), teams, steps, count=args.cases, now=now)
        say(f"      in {time.perf_counter() - started:.0f} s")
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-console-")))
        running = stack.enter_context(services(url, broker.bootstrap_servers, logs))
        console = running.url("console")
        browser = await sign_in(console)
        stack.push_async_callback(browser.aclose)
        # The session lives in the database: the same cookie signs in to the second console.
        uncached = httpx.AsyncClient(
            base_url=running.url("console-uncached"), cookies=browser.cookies, timeout=60
        )
        stack.push_async_callback(uncached.aclose)
        say(f"[3/5] first byte of the overview and the inbox, {args.repeat} times each …")
        await ttfb(uncached, "/overview?period=90d", 2)  # warm the pools
        pids = {name: running.processes[name].pid for name in ("console-uncached", "scoring")}
        cpu_before = {name: _cpu_seconds([pid]) for name, pid in pids.items()}
        overview, overview_bytes = await ttfb(uncached, "/overview?period=90d", args.repeat)
        cpu = {name: (_cpu_seconds([pid]) - cpu_before[name]) / args.repeat for name, pid in pids.items()}
        await ttfb(browser, "/overview?period=90d", 1)  # fills the cache
        cached, _ = await ttfb(browser, "/overview?period=90d", args.repeat)
        inbox, inbox_bytes = await ttfb(browser, "/cases?view=open", args.repeat)
        say("[4/5] page weight …")
        assets = 0
        for path in ("/console.css", "/console.js", "/favicon.svg"):
            assets += len((await browser.get(path)).content)
        say(f"[5/5] live: {args.live} new responses on an open overview …")
        latencies = await live(browser, broker.bootstrap_servers, args.live)

    def ms(values: list[float]) -> str:
        return f"p50 {statistics.median(values) * 1000:7.1f} ms   p95 {percentile(values, 95) * 1000:7.1f} ms"

    print()
    print(
        f"closeloop console benchmark ({args.answers:,} answers, {args.cases:,} open cases; "
        "one process each for scoring, followup and the console; 2 cores shared with PostgreSQL and the broker)"
    )
    rows = [
        ("overview, last 90 days: time to first byte", ms(overview) + "   (aim p95 ≤ 300 ms; no cache)"),
        (
            "  CPU per overview (no cache)",
            f"console {cpu['console-uncached'] * 1000:6.1f} ms   scoring {cpu['scoring'] * 1000:6.1f} ms",
        ),
        ("overview again within the cache's seconds", ms(cached)),
        ("inbox, all open cases: time to first byte", ms(inbox) + "   (aim p95 ≤ 300 ms)"),
        (
            "overview page weight (HTML + CSS + JS + icon)",
            f"{(overview_bytes + assets) / 1024:7.1f} KB   (HTML {overview_bytes / 1024:.1f} KB; aim ≤ 150 KB)",
        ),
        ("inbox HTML (100 cases)", f"{inbox_bytes / 1024:7.1f} KB"),
        (
            "new response → changed on an open overview",
            (ms(latencies) if latencies else "none arrived")
            + f"   ({len(latencies)} of {args.live}; aim p95 ≤ 2 s)",
        ),
        ("load (generate_series, rollups, indexes)", f"{load_s:7.1f} s"),
    ]
    print(table(rows))
    return 0


if __name__ == "__main__":
    parser = arguments("bench.console", __doc__)
    parser.add_argument("--answers", type=int, default=10_000_000, help="scored answers to generate")
    parser.add_argument("--cases", type=int, default=50_000, help="open cases to seed")
    parser.add_argument("--repeat", type=int, default=30, help="timed requests of each page")
    parser.add_argument("--live", type=int, default=20, help="responses published on an open overview")
    run(main, parser)
