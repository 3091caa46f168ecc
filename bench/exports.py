"""``python -m bench.exports``: streaming exports of 1 M responses — rows/s and the serving process's memory.

Starts its own PostgreSQL database (``DATABASE_URL``'s server, or an embedded one) and Tansu broker,
migrates the scoring schema, then:

1. **loads** ``--rows`` scored responses (default 1 M; two answers each, the NPS with an NLS or a CSAT,
   every dimension) of one workspace with ``generate_series`` (``bench.scoring``'s loader), and a
   comment on every tenth response;
2. starts the scoring API as its own process (``closeloop serve scoring --role api``), as deployed;
3. **exports** through HTTP, as a BI tool would, a tenth of the responses (one period) and then all
   of them, as CSV and as NDJSON (``GET /v1/exports/responses``), reading the stream to the end, and
   prints rows/s, MB/s and the serving process's peak resident set size (``VmHWM``) before and after
   each: an export that streams in constant memory leaves the peak where the small one left it;
4. **exports a segment** (the workspace's promoters by their latest answer) the same way.

Nothing here is a timed test: the numbers are printed (and recorded in bench/RESULTS.md by hand).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import text

from bench.__main__ import table
from bench.cli import arguments, run, spawn, stop
from bench.scoring import load
from closeloop.infra import free_port, scratch_broker, scratch_database
from shared.access import Role, issue_api_key
from shared.db import Database

COMMENTS_SQL = """
INSERT INTO scoring.comments (response_key, question_id, workspace_id, survey_key, day, kind, text, language,
  confidence, sentiment, label, lemmas, nps)
SELECT a.response_key, 'q-why', 'bench', a.survey_key, a.day, 'transactional',
  (ARRAY['Delivery was late, "again"', 'Friendly staff', '=SUM(A1:A9) invoice wrong', 'Fast and easy'])
    [1 + a.response_key % 4],
  'en', 'high', ((a.response_key % 21) - 10) / 10.0,
  (ARRAY['negative', 'positive', 'negative', 'positive'])[1 + a.response_key % 4],
  (ARRAY[' delivery be late again ', ' friendly staff ', ' sum invoice wrong ', ' fast and easy '])
    [1 + a.response_key % 4],
  a.score
FROM scoring.answers a
WHERE a.metric = 'nps' AND a.response_key % 10 = 0
"""


def peak_rss_mb(pid: int) -> tuple[float, float]:
    """Return the process's (current, peak) resident set size in MB, from /proc."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def export(client: httpx.AsyncClient, path: str, params: dict[str, str]) -> tuple[int, int, float]:
    """Read an export to its end; return (rows, bytes, seconds)."""
    started = time.monotonic()
    lines = size = 0
    async with client.stream("GET", path, params=params) as response:
        response.raise_for_status()
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            lines += chunk.count(b"\n")
    return lines - (1 if params.get("format") == "csv" else 0), size, time.monotonic() - started


async def main(args: argparse.Namespace) -> int:
    print("closeloop exports bench — starting PostgreSQL and the broker …", flush=True)
    secret = secrets.token_urlsafe(24)
    results: list[tuple[str, str]] = []
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(scratch_database("bench-exports", services=["scoring"]))
        broker = await stack.enter_async_context(scratch_broker())
        db = Database(url, pool_size=2)
        stack.push_async_callback(db.dispose)
        print(f"[1/3] generating {args.rows:,} scored responses …", flush=True)
        started = time.monotonic()
        await load(db, args.rows * 2)
        async with db.engine.begin() as conn:
            await conn.execute(text(COMMENTS_SQL))
        async with db.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE scoring.scored_responses"))
            await conn.execute(text("VACUUM ANALYZE scoring.comments"))
        load_s = time.monotonic() - started

        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "CLOSELOOP_SECRET_KEY": secret,
            "LOG_LEVEL": "WARNING",
        }
        command = [
            sys.executable,
            "-m",
            "closeloop.cli",
            "serve",
            "scoring",
            "--port",
            str(port),
            "--role",
            "api",
        ]
        child = spawn(command, env)
        stack.callback(stop, child)
        base = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {issue_api_key(secret, 'bench', role=Role.ANALYST)}"}
        async with httpx.AsyncClient(
            base_url=base, headers=auth, timeout=httpx.Timeout(600, connect=5)
        ) as client:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/readyz")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise SystemExit("the scoring API did not become ready in 60 s")
                await asyncio.sleep(0.2)
            rss, peak = peak_rss_mb(child.pid)
            results.append(("scoring API process at rest", f"RSS {rss:6.0f} MB   peak {peak:6.0f} MB"))
            # A tenth of the responses: one period of the two years the loader spreads them over.
            tenth = {"from": "2024-12-01", "to": "2025-02-12"}
            print("[2/3] exporting responses …", flush=True)
            for fmt in [f for f in args.formats.split(",") if f]:
                for label, params in ((f"{fmt}, one period (~10%)", tenth), (f"{fmt}, all", {})):
                    rows, size, seconds = await export(
                        client, "/v1/exports/responses", {"format": fmt, **params}
                    )
                    rss, peak = peak_rss_mb(child.pid)
                    results.append(
                        (
                            f"responses {label}",
                            f"{rows:>9,} rows  {rows / seconds:>8,.0f} rows/s  {size / seconds / 1e6:5.1f} MB/s  "
                            f"{seconds:6.1f} s   peak RSS {peak:5.0f} MB (now {rss:.0f})",
                        )
                    )
                    print(f"  {results[-1][0]}: {results[-1][1]}", flush=True)
            if args.segment:
                print("[3/3] exporting a segment …", flush=True)
                rows, size, seconds = await export(
                    client, "/v1/segments/promoter/contacts/export", {"format": "csv"}
                )
                rss, peak = peak_rss_mb(child.pid)
                results.append(
                    (
                        "promoters (latest answer per contact), csv",
                        f"{rows:>9,} contacts {rows / seconds:>7,.0f} rows/s  {seconds:6.1f} s   peak RSS {peak:5.0f} MB",
                    )
                )
                print(f"  {results[-1][0]}: {results[-1][1]}", flush=True)
    results.append(("load (generate_series, rollups, indexes, comments)", f"{load_s:7.1f} s"))
    print()
    print(
        f"closeloop exports benchmark ({args.rows:,} responses; 2 cores shared by PostgreSQL, broker and service)"
    )
    print(table(results))
    return 0


if __name__ == "__main__":
    parser = arguments("bench.exports", __doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="scored responses to generate and export")
    parser.add_argument(
        "--formats", default="csv,ndjson", help="comma-separated: csv, ndjson (empty: the segment only)"
    )
    parser.add_argument(
        "--segment", action=argparse.BooleanOptionalAction, default=True, help="export a segment too"
    )
    run(main, parser)
