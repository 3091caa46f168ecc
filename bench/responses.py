"""``python -m bench.responses``: the survey page and answer submissions on the real service.

Starts its own PostgreSQL database (``DATABASE_URL`` or embedded), a Tansu broker and the responses
service as a process, defines a three-question survey through the API, then for a bounded time:

0. the bare limit: uvicorn + FastAPI serving the same page already rendered, side by side;
1. survey page: ``GET /s/<token>`` (a fresh link each time) from ``--concurrency`` clients: requests/s,
   p50/p99, the service's CPU per page and the page's size in bytes;
2. answers: ``PUT /v1/public/surveys/<token>/answers/nps`` (each a first answer: a new response and
   a ResponseStarted in the outbox) — answers/s, p50/p99;
3. completions: the page's form post of every answer (``POST /s/<token>`` → 303) — responses/s, p50/p99.

With ``--profile`` (needs ``py-spy`` in the virtualenv), each of the service's phases is sampled with
``py-spy record --gil`` and its GIL time broken down by the innermost matching frame (``PARTS``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import httpx
from fastapi import FastAPI, Response

from bench.cli import arguments, run, serve_factory, service_env
from bench.dispatch import start_profile, stop_profile
from bench.loadgen import cpu_seconds, drive, http_request, percentile
from closeloop.infra import free_port, scratch_broker, scratch_database, wait_for_port
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


# Where a sample's GIL time went (``--profile``): the innermost frame whose file matches, leaf first.
PARTS = [
    ("template (Jinja2, pages.py)", ("jinja2", "markupsafe", "responses/pages.py", "responses/i18n.py")),
    ("database (asyncpg, SQLAlchemy)", ("asyncpg", "sqlalchemy", "shared/db.py", "shared/outbox.py")),
    ("link token (decrypt, verify)", ("survey_links", "cryptography", "shared/crypto")),
    (
        "FastAPI/Starlette (routing, dependencies, middlewares)",
        ("fastapi", "starlette", "shared/inputs.py", "shared/headers.py", "shared/observability.py"),
    ),
    ("uvicorn (HTTP parsing, transport)", ("uvicorn", "h11", "httptools")),
    ("responses' own code (handlers, domain, events)", ("services/responses", "shared/events", "pydantic")),
]
OTHER = "other (asyncio, logging, …)"


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


def bare_app() -> FastAPI:
    """The bare limit: uvicorn + FastAPI answering every survey link with a page already rendered."""
    app = FastAPI()
    page = Path(os.environ["BENCH_BARE_PAGE"]).read_bytes()

    @app.get("/s/{token}")
    async def survey_page(token: str) -> Response:
        return Response(page, media_type="text/html; charset=utf-8")

    return app


def start_bare(host: str, port: int, page_file: Path) -> subprocess.Popen[bytes]:
    """The bare endpoint as a process, with the uvicorn settings the services use."""
    return serve_factory(
        "bench.responses:bare_app", host, port, {**os.environ, "BENCH_BARE_PAGE": str(page_file)}
    )


Result = tuple[int, list[float], float, float]
"""(requests, latencies, elapsed seconds, CPU seconds of the serving process)."""
profiles: dict[str, dict[str, float]] = {}
"""The ``--profile`` breakdown of each phase, by phase."""


async def measure(
    host: str,
    port: int,
    pid: int,
    requests: list[bytes],
    *,
    args: argparse.Namespace,
    expect: int,
    phase: str | None = None,
) -> Result:
    """Drive ``requests`` for ``--seconds`` from ``--concurrency`` connections; CPU of ``pid`` beside
    (and, with ``--profile``, its samples as ``profiles[phase]``)."""
    profile = (
        start_profile(pid, int(args.seconds), phase, bench="responses") if phase and args.profile else None
    )
    cpu = cpu_seconds(pid)
    done, latencies, elapsed = await drive(
        host, port, requests, connections=args.concurrency, seconds=args.seconds, expect=expect
    )
    cpu = cpu_seconds(pid) - cpu
    if phase and profile is not None:
        profiles[phase] = await stop_profile(profile, parts=PARTS, other=OTHER)
    return done, latencies, elapsed, cpu


def row(name: str, result: Result, unit: str) -> tuple[str, str]:
    count, latencies, elapsed, cpu = result
    return (
        name,
        f"{count / elapsed:7.0f} {unit}/s   p50 {percentile(latencies, 50) * 1000:6.1f} ms   "
        f"p99 {percentile(latencies, 99) * 1000:6.1f} ms   CPU {cpu / max(count, 1) * 1000:5.2f} ms each   "
        f"(n={count})",
    )


async def main(args: argparse.Namespace) -> int:
    print("responses bench — starting PostgreSQL, broker and the responses service …", flush=True)
    infra = contextlib.AsyncExitStack()
    url = await infra.enter_async_context(scratch_database("bench-responses"))
    broker = await infra.enter_async_context(scratch_broker())
    secret = secrets.token_urlsafe(16)
    port = free_port()
    stack = ServiceStack(
        env=service_env(url, broker.bootstrap_servers, secret),
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

        # Each request its own link (a new respondent), built before the clock starts.
        count = int(args.seconds * args.max_rate)
        host = "127.0.0.1"
        form = b"nps=3&why=Too+slow&consent=yes"
        form_headers = {"Content-Type": "application/x-www-form-urlencoded"}
        print(f"  building {3 * count:,} requests with fresh links …", flush=True)
        gets = [http_request(host, port, f"/s/{fresh()}", {}, method="GET") for _ in range(count)]
        puts = [
            http_request(
                host,
                port,
                f"/v1/public/surveys/{fresh()}/answers/nps",
                {"Content-Type": "application/json"},
                b'{"value":9}',
                method="PUT",
            )
            for _ in range(count)
        ]
        posts_ = [http_request(host, port, f"/s/{fresh()}", form_headers, form) for _ in range(count)]
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            page_bytes = (await http.get(f"/s/{fresh()}")).content
        page_file = Path(tempfile.mkdtemp(prefix="closeloop-bench-page-")) / "page.html"
        page_file.write_bytes(page_bytes)
        pid = stack.processes["responses"].pid

        print(f"[1/4] bare limit: a pre-rendered page, {args.concurrency} clients for {args.seconds:.0f}s …")
        bare_port = free_port()
        bare = start_bare(host, bare_port, page_file)
        try:
            await asyncio.to_thread(wait_for_port, host, bare_port, timeout_s=30, process=bare)
            bare_gets = [
                http_request(host, bare_port, f"/s/{fresh()}", {}, method="GET") for _ in range(count)
            ]
            bare_result = await measure(host, bare_port, bare.pid, bare_gets, args=args, expect=200)
        finally:
            bare.terminate()
            bare.wait(10)
        print(f"[2/4] survey page: {args.concurrency} clients for {args.seconds:.0f}s …", flush=True)
        page = await measure(host, port, pid, gets, args=args, expect=200, phase="page")
        print(f"[3/4] first answers: {args.concurrency} clients for {args.seconds:.0f}s …", flush=True)
        answers = await measure(host, port, pid, puts, args=args, expect=200, phase="answer")
        print(f"[4/4] completed form posts: {args.concurrency} clients for {args.seconds:.0f}s …", flush=True)
        posts = await measure(host, port, pid, posts_, args=args, expect=303, phase="form post")
    finally:
        stack.stop_all()
        await infra.aclose()

    rows = [
        row("bare: pre-rendered page", bare_result, "pages"),
        row("survey page GET", page, "pages"),
        ("  page size", f"{len(page_bytes):7d} bytes (HTML with inline CSS and script; budget 50 000)"),
        row("answer saved (PUT)", answers, "answers"),
        row("form post, completed", posts, "responses"),
    ]
    width = max(len(name) for name, _ in rows)
    print()
    print(
        f"responses benchmark ({args.concurrency} keep-alive clients; 2 cores shared by client, broker, "
        "database and the service; CPU = the serving process's own)"
    )
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    for phase, shares in profiles.items():
        print(f"\nwhere the {phase}'s GIL time went (py-spy --gil):")
        for part, share in shares.items():
            print(f"  {share * 100:5.1f} %  {part}")
    return 0 if len(page_bytes) < 50_000 else 1


if __name__ == "__main__":
    parser = arguments("bench.responses", __doc__)
    parser.add_argument("--seconds", type=float, default=8, help="duration of each phase")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients")
    parser.add_argument(
        "--profile", action="store_true", help="sample each phase with py-spy --gil and print the breakdown"
    )
    parser.add_argument(
        "--max-rate", type=int, default=8000, help="requests built per second of a phase (an upper bound)"
    )
    run(main, parser)
