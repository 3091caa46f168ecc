"""``python -m bench.responses``: the survey page and answer submissions on the real service.

Starts its own PostgreSQL database (``DATABASE_URL`` or embedded), a Tansu broker and the responses
service as a process, defines a three-question survey through the API, then for a bounded time:

1. survey page: ``GET /s/<token>`` (a fresh link each time) from ``--concurrency`` clients: requests/s,
   p50/p99 and the page's size in bytes;
2. answers: ``PUT /v1/public/surveys/<token>/answers/nps`` (each a first answer: a new response and
   a ResponseStarted in the outbox) — answers/s, p50/p99;
3. completions: the page's form post of every answer (``POST /s/<token>`` → 303) — responses/s, p50/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from closeloop.infra import free_port, scratch_broker, scratch_database
from closeloop.stack import SERVICE_PORTS, ServiceStack
from shared.access import Role, issue_api_key
from shared.survey_links import SurveyLink, issue_link_token

SURVEY = {
    "name": "Bench NPS",
    "questions": [
        {
            "id": "nps",
            "type": "nps",
            "required": True,
            "text": {
                "en": "How likely are you to recommend us?",
                "nl": "Hoe waarschijnlijk is het dat u ons aanbeveelt?",
            },
        },
        {
            "id": "why",
            "type": "open",
            "text": {"en": "What is the main reason for your score?", "nl": "Wat is de belangrijkste reden?"},
        },
        {
            "id": "consent",
            "type": "consent",
            "text": {"en": "May we contact you?", "nl": "Mogen we contact opnemen?"},
        },
    ],
}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def token(secret: str, workspace: str, survey_id: str) -> str:
    link = SurveyLink(
        workspace_id=workspace,
        invitation_id=str(uuid.uuid4()),
        request_id=str(uuid.uuid4()),
        survey_id=survey_id,
        contact_id=str(uuid.uuid4()),
        locale="nl",
        context={"agent": "Grace", "ticket_id": "T-1"},
    )
    return issue_link_token(secret, link, ttl_s=3600)


async def load(
    call: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]],
    *,
    base_url: str,
    seconds: float,
    concurrency: int,
    expect: int,
) -> tuple[int, list[float], float, int]:
    """Return (requests, latencies, elapsed, bytes of the last body) of ``call`` in a closed loop."""
    latencies: list[float] = []
    size = 0
    deadline = time.monotonic() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal size
        while time.monotonic() < deadline:
            started = time.perf_counter()
            response = await call(client)
            latencies.append(time.perf_counter() - started)
            if response.status_code != expect:
                raise RuntimeError(f"unexpected {response.status_code}: {response.text[:300]}")
            size = len(response.content)

    start = time.monotonic()
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return len(latencies), latencies, time.monotonic() - start, size


def row(name: str, result: tuple[int, list[float], float, int], unit: str) -> tuple[str, str]:
    count, latencies, elapsed, _ = result
    return (
        name,
        f"{count / elapsed:7.0f} {unit}/s   p50 {percentile(latencies, 50) * 1000:6.1f} ms   "
        f"p99 {percentile(latencies, 99) * 1000:6.1f} ms   (n={count})",
    )


async def main(args: argparse.Namespace) -> int:
    print("responses bench — starting PostgreSQL, broker and the responses service …", flush=True)
    infra = contextlib.AsyncExitStack()
    url = await infra.enter_async_context(scratch_database("bench-responses"))
    broker = await infra.enter_async_context(scratch_broker())
    secret = secrets.token_urlsafe(16)
    port = free_port()
    stack = ServiceStack(
        env={
            "DATABASE_URL": url,
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "CLOSELOOP_SECRET_KEY": secret,
            "LOG_LEVEL": "WARNING",
        },
        log_dir=Path(tempfile.mkdtemp(prefix="closeloop-bench-responses-")),
        ports={s: port if s == "responses" else free_port() for s in SERVICE_PORTS},
    )
    workspace = "bench"
    auth = {"Authorization": f"Bearer {issue_api_key(secret, workspace, role=Role.ADMIN)}"}
    base_url = stack.url("responses")
    try:
        stack.start("responses")
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            for _ in range(300):
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
            else:
                print(stack.log_tail("responses"), file=sys.stderr)
                return 1
            created = await http.post("/v1/surveys", json=SURVEY, headers=auth)
            created.raise_for_status()
            survey_id = created.json()["id"]

        def fresh() -> str:
            return token(secret, workspace, survey_id)

        print(f"[1/3] survey page: {args.concurrency} clients for {args.seconds:.0f}s …", flush=True)
        page = await load(
            lambda c: c.get(f"/s/{fresh()}"),
            base_url=base_url,
            seconds=args.seconds,
            concurrency=args.concurrency,
            expect=200,
        )
        print(f"[2/3] first answers: {args.concurrency} clients for {args.seconds:.0f}s …", flush=True)
        answers = await load(
            lambda c: c.put(f"/v1/public/surveys/{fresh()}/answers/nps", json={"value": 9}),
            base_url=base_url,
            seconds=args.seconds,
            concurrency=args.concurrency,
            expect=200,
        )
        print(f"[3/3] completed form posts: {args.concurrency} clients for {args.seconds:.0f}s …", flush=True)
        posts = await load(
            lambda c: c.post(f"/s/{fresh()}", data={"nps": "3", "why": "Too slow", "consent": "yes"}),
            base_url=base_url,
            seconds=args.seconds,
            concurrency=args.concurrency,
            expect=303,
        )
    finally:
        stack.stop_all()
        await infra.aclose()

    rows = [
        row("survey page GET", page, "pages"),
        ("  page size", f"{page[3]:7d} bytes (HTML with inline CSS and script; budget 50 000)"),
        row("answer saved (PUT)", answers, "answers"),
        row("form post, completed", posts, "responses"),
    ]
    width = max(len(name) for name, _ in rows)
    print()
    print("responses benchmark (2 cores shared by client, broker, database and the service)")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    return 0 if page[3] < 50_000 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8, help="duration of each phase")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients")
    sys.exit(asyncio.run(main(parser.parse_args())))
