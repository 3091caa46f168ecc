"""``python -m bench.scoring``: the scoring service's reports over millions of answers, and its ingest.

Starts its own PostgreSQL database (``DATABASE_URL``'s server, or an embedded one) and Tansu broker,
migrates the scoring schema, then:

1. **loads** ``--answers`` scored answers (default 10 M) of one workspace: 2 years, 50 surveys, two
   score questions per response (NPS with NLS on half the surveys, NPS with CSAT on the others),
   8 declared dimensions (channel, language, country, team, agent, product, journey stage, plan) and
   an ad-hoc attribute (``tier``), generated inside PostgreSQL with ``generate_series`` in chunks;
   the rollups are built from them as the consumer would have;
2. **queries** each report through the service's own read side (``services.scoring.queries``: the SQL
   and the Python that turns it into the API's figures, without HTTP), ``--repeat`` times each over
   varying surveys and dimensions, and prints p50/p95 and this process's CPU time: NPS of a survey and
   of the workspace, a weekly trend over 2 years, the loyalty matrix, ``group_by`` over each declared
   dimension with two filters, and an ad-hoc attribute filter; first it loads the API's columns of the
   last ``--answer-cache-days`` days (``services.scoring.queries.answer_cache``), which the segmented
   reports from a day in them read (caught up from PostgreSQL before each), and prints what that took;
3. **ingests** ``--ingest`` ``ResponseCompleted`` events from the ``responses`` topic with the real
   service (consumer, inbox, rollups, text analysis of comments, outbox, relay) into the loaded
   database, and prints responses/s and the service's CPU time per response (its processes' user and
   system time from the first scored response to the last: the figure a shared machine leaves
   comparable);
4. prints the storage per million answers.

``--ingest-only`` skips 1, 2 and 4: the ingest into an empty schema, e.g. to compare the consumer's
CPU per response before and after a change in one sitting. ``--handler-cpu N`` runs the consumer's
batch handler in this process (no broker) over blocks of N responses, alternating the garbage
collector's setups (``GC_SETUPS``), and prints CPU µs per response and the part spent collecting.

Nothing here is a timed test: the numbers are printed (and recorded in bench/RESULTS.md by hand).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import random
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy import text

from bench.__main__ import percentile, table
from bench.cli import arguments, run, service_env, spawn, stop
from closeloop.infra import free_port, scratch_broker, scratch_database
from services.scoring import domain
from services.scoring.app import CONSUMER_GC_THRESHOLD, consumes, create_app
from services.scoring.handlers import ingest as ingest_handler
from services.scoring.models import inbox as inbox_table
from services.scoring.models import outbox as outbox_table
from services.scoring.queries import answer_cache, reports
from services.scoring.settings import ScoringSettings
from services.scoring.text import warm_up
from shared.db import Database
from shared.events import Answer, CloudEvent, ResponseCompleted, new_id
from shared.inbox import EventConsumer
from shared.kafka import event_headers
from shared.outbox import Outbox

WORKSPACE = "bench"
SURVEYS = 50
DAYS = 730
START = date(2024, 12, 1)
CHUNK = 250_000
"""Responses generated per statement (two answers each)."""

DIMENSIONS = ("channel", "language", "country", "team", "agent", "product", "journey_stage", "plan")

# Per response, four independent 31-bit hashes of its number drive every choice (deterministic).
CHUNK_SQL = """
CREATE UNLOGGED TABLE IF NOT EXISTS scoring.bench_chunk AS SELECT 1 AS k WITH NO DATA;
DROP TABLE scoring.bench_chunk;
CREATE UNLOGGED TABLE scoring.bench_chunk AS
WITH h AS (
  SELECT g AS k,
         hashint8(g) & 2147483647 AS h1, hashint8(g # 7919) & 2147483647 AS h2,
         hashint8(g # 104729) & 2147483647 AS h3, hashint8(g # 1299709) & 2147483647 AS h4
  FROM generate_series(:lo, :hi - 1) g
)
SELECT k, (h1 % 50)::int AS s, DATE '2024-12-01' + (h2 % 730)::int AS day,
  (ARRAY['email','sms','whatsapp','link'])[1 + h3 % 4] AS channel,
  (ARRAY['en','nl','de','fr'])[1 + (h3 / 4) % 4] AS language,
  'C' || lpad(((h3 / 16) % 12)::text, 2, '0') AS country,
  'team-' || (h4 % 8) AS team,
  'agent-' || lpad(((h4 / 8) % 120)::text, 3, '0') AS agent,
  'product-' || ((h4 / 960) % 15) AS product,
  (ARRAY['onboarding','active','renewal','churn-risk'])[1 + (h2 / 730) % 4] AS journey_stage,
  (ARRAY['free','pro','team','enterprise'])[1 + (h2 / 2920) % 4] AS plan,
  (ARRAY['gold','silver','bronze'])[1 + (h1 / 50) % 3] AS tier,
  CASE WHEN (h1 / 150) % 100 < 25 THEN ((h1 / 15000) % 7) WHEN (h1 / 150) % 100 < 55 THEN 7 + (h1 / 15000) % 2
       ELSE 9 + (h1 / 15000) % 2 END AS nps,
  CASE WHEN (h3 / 192) % 100 < 30 THEN ((h3 / 19200) % 7) WHEN (h3 / 192) % 100 < 55 THEN 7 + (h3 / 19200) % 2
       ELSE 9 + (h3 / 19200) % 2 END AS nls,
  CASE WHEN (h4 / 14400) % 100 < 15 THEN 1 + (h4 / 1440000) % 2 WHEN (h4 / 14400) % 100 < 30 THEN 3
       ELSE 4 + (h4 / 1440000) % 2 END AS csat
FROM h
"""

RESPONSES_SQL = """
INSERT INTO scoring.scored_responses (id, key, workspace_id, response_id, request_id, contact_id, survey_id,
  survey_version, kind, channel, locale, dimensions, metric, score, classification, negative, loyalty,
  consent_to_contact, completed_at)
SELECT 'r-' || k, k, 'bench', 'r-' || k, NULL, 'c-' || (k % 400000), 'survey-' || lpad(s::text, 2, '0'), 1,
  'transactional', channel, language,
  jsonb_build_object('channel', channel, 'kind', 'transactional', 'language', language, 'country', country,
    'team', team, 'agent', agent, 'product', product, 'journey_stage', journey_stage, 'plan', plan, 'tier', tier),
  'nps', nps, CASE WHEN nps >= 9 THEN 'promoter' WHEN nps >= 7 THEN 'passive' ELSE 'detractor' END,
  nps <= 6, NULL, (k % 3 = 0), day + time '12:00' AT TIME ZONE 'UTC'
FROM scoring.bench_chunk
"""

ANSWERS_SQL = """
INSERT INTO scoring.answers (response_key, question_id, survey_key, metric, day, score, kind, channel, language,
  country, team, agent, product, journey_stage, plan, paired, attributes)
SELECT c.k, q.question_id, sv.key, q.metric, c.day, q.score, 'transactional', c.channel, c.language, c.country,
  c.team, c.agent, c.product, c.journey_stage, c.plan, q.paired, jsonb_build_object('tier', c.tier)
FROM scoring.bench_chunk c
JOIN scoring.surveys sv ON sv.workspace_id = 'bench' AND sv.survey_id = 'survey-' || lpad(c.s::text, 2, '0')
CROSS JOIN LATERAL (VALUES
  ('q-nps', 'nps', c.nps, CASE WHEN c.s < 25 THEN c.nls END),
  (CASE WHEN c.s < 25 THEN 'q-nls' ELSE 'q-csat' END, CASE WHEN c.s < 25 THEN 'nls' ELSE 'csat' END,
   CASE WHEN c.s < 25 THEN c.nls ELSE c.csat END, NULL)
) AS q(question_id, metric, score, paired)
"""

HISTOGRAM_SQL = (
    "INSERT INTO scoring.daily_histograms (survey_key, question_id, metric, kind, day, "
    + ", ".join(f"n{i}" for i in range(11))
    + ") SELECT survey_key, question_id, metric, kind, day, "
    + ", ".join(f"count(*) FILTER (WHERE score = {i})" for i in range(11))
    + " FROM scoring.answers GROUP BY survey_key, question_id, metric, kind, day"
)


def _cell(promoter_min: int) -> dict[str, str]:
    hi_n, lo_n = f"score >= {promoter_min}", "score <= 6"
    hi_l, lo_l = f"paired >= {promoter_min}", "paired <= 6"
    return {
        "pure": f"{hi_n} AND {hi_l}",
        "false": f"{hi_n} AND {lo_l}",
        "trapped": f"{lo_n} AND {hi_l}",
        "disloyal": f"{lo_n} AND {lo_l}",
        "undecided": f"NOT (({hi_n} OR {lo_n}) AND ({hi_l} OR {lo_l}))",
    }


LOYALTY_SQL = (
    "INSERT INTO scoring.daily_loyalty (survey_key, kind, day, "
    + ", ".join(f"{scale}_{cell}" for scale in ("standard", "european") for cell in _cell(9))
    + ") SELECT survey_key, kind, day, "
    + ", ".join(f"count(*) FILTER (WHERE {cond})" for minimum in (9, 8) for cond in _cell(minimum).values())
    + " FROM scoring.answers WHERE metric = 'nps' AND paired IS NOT NULL GROUP BY survey_key, kind, day"
)

DEFERRED_INDEXES = {
    "ix_answers_survey_metric_day": "CREATE INDEX ix_answers_survey_metric_day ON scoring.answers "
    "(survey_key, metric, day) INCLUDE (score, question_id, kind, channel, language, country, team, agent, "
    "product, journey_stage, plan, role, paired, attributes)",
    "ix_scored_responses_contact": "CREATE INDEX ix_scored_responses_contact ON scoring.scored_responses "
    "(workspace_id, contact_id)",
    "ix_scored_responses_survey": "CREATE INDEX ix_scored_responses_survey ON scoring.scored_responses "
    "(workspace_id, survey_id, completed_at)",
}


async def load(db: Database, answers: int) -> float:
    """Generate ``answers`` scored answers (two per response); return the seconds it took."""
    responses = answers // 2
    started = time.monotonic()
    async with db.engine.begin() as conn:
        await conn.execute(text("SET LOCAL synchronous_commit = off"))
        for name in DEFERRED_INDEXES:
            await conn.execute(text(f"DROP INDEX scoring.{name}"))
        await conn.execute(
            text(
                "INSERT INTO scoring.surveys (workspace_id, survey_id, answered, published, name) "
                "SELECT 'bench', 'survey-' || lpad(s::text, 2, '0'), true, true, 'Survey ' || s "
                "FROM generate_series(0, 49) s"
            )
        )
    for lo in range(1, responses + 1, CHUNK):
        hi = min(lo + CHUNK, responses + 1)
        async with db.engine.begin() as conn:
            await conn.execute(text("SET LOCAL synchronous_commit = off"))
            for statement in CHUNK_SQL.split(";"):
                if statement.strip():
                    await conn.execute(text(statement), {"lo": lo, "hi": hi})
            await conn.execute(text(RESPONSES_SQL))
            await conn.execute(text(ANSWERS_SQL))
        done = (hi - 1) * 2
        rate = done / (time.monotonic() - started)
        print(f"  loaded {done:>11,} answers  ({rate:,.0f}/s)", flush=True)
    async with db.engine.begin() as conn:
        await conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
        await conn.execute(text("DROP TABLE IF EXISTS scoring.bench_chunk"))
        print("  building the rollups and indexes …", flush=True)
        await conn.execute(text(HISTOGRAM_SQL))
        await conn.execute(text(LOYALTY_SQL))
        for statement in DEFERRED_INDEXES.values():
            await conn.execute(text(statement))
        await conn.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('scoring.scored_responses', 'key'), "
                "(SELECT max(key) FROM scoring.scored_responses))"
            )
        )
    async with db.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE scoring.answers"))
        await conn.execute(text("VACUUM ANALYZE scoring.scored_responses"))
        await conn.execute(text("VACUUM ANALYZE scoring.daily_histograms"))
        await conn.execute(text("VACUUM ANALYZE scoring.daily_loyalty"))
    return time.monotonic() - started


async def sizes(db: Database) -> dict[str, int]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = 'scoring' AND c.relkind = 'r'"
            )
        )
        return {name: int(size) for name, size in rows}


Query = Callable[[random.Random], Callable[[Any], Awaitable[Any]]]
"""Given a random source, a query: a function of a session."""


CPU: dict[str, list[float]] = {}
"""This process's CPU seconds per timed query, by name (the service's part, PostgreSQL's not)."""


async def timed(db: Database, name: str, query: Query, *, repeat: int) -> tuple[str, list[float]]:
    rng = random.Random(name)
    async with db.unit_of_work() as session:
        await query(rng)(session)  # warm-up
    latencies = []
    for _ in range(repeat):
        async with db.unit_of_work() as session:
            started, cpu = time.perf_counter(), time.process_time()
            await query(rng)(session)
            latencies.append(time.perf_counter() - started)
            CPU.setdefault(name, []).append(time.process_time() - cpu)
    return name, latencies


async def load_cache(db: Database, days: int, today: date) -> dict[str, float]:
    """Load the workspace's columns of answers the API keeps (``answer_cache``) and install them, so that
    the segmented reports over its days read them; return what it took and holds."""
    cache = answer_cache.AnswerCache(db, days=days, today=lambda: today)
    print(f"  loading the answer cache (last {days} days) …", flush=True)
    started, cpu = time.monotonic(), time.process_time()
    await cache.ready(WORKSPACE)
    answer_cache.install(cache)
    return {
        **cache.stats(),
        "seconds": time.monotonic() - started,
        "cpu": time.process_time() - cpu,
    }


def survey(rng: random.Random) -> str:
    return f"survey-{rng.randrange(SURVEYS):02d}"


def request(rng: random.Random, **fields: Any) -> reports.Request:
    return reports.Request(workspace_id=WORKSPACE, **fields)


def filters_for(dimension: str, rng: random.Random) -> domain.Segment:
    """Two filters on other declared dimensions than the one grouped by: an equality and an exclusion."""
    others = [d for d in ("country", "plan", "channel", "journey_stage") if d != dimension]
    eq, ne = others[0], others[1]
    values = {
        "country": f"C{rng.randrange(12):02d}",
        "plan": "free",
        "channel": "link",
        "journey_stage": "churn-risk",
    }
    return domain.parse_filters([f"{eq}={values[eq]}", f"{ne}!={values[ne]}"])


def queries(today: date) -> list[tuple[str, Query]]:
    last_90 = today - timedelta(days=89)

    def metrics(**fields: Any) -> Query:
        def make(rng: random.Random) -> Any:
            built = {k: (v(rng) if callable(v) else v) for k, v in fields.items()}
            return lambda s: reports.metrics_report(
                s, request(rng, **built), metrics_wanted=["nps"], default_scale="standard", today=today
            )

        return make

    def trend(**fields: Any) -> Query:
        def make(rng: random.Random) -> Any:
            built = {k: (v(rng) if callable(v) else v) for k, v in fields.items()}
            return lambda s: reports.trend_report(
                s, request(rng, interval="week", **built), metric="nps", default_scale="standard"
            )

        return make

    def matrix(**fields: Any) -> Query:
        def make(rng: random.Random) -> Any:
            built = {k: (v(rng) if callable(v) else v) for k, v in fields.items()}
            return lambda s: reports.matrix_report(s, request(rng, **built), default_scale="standard")

        return make

    plan: list[tuple[str, Query]] = [
        ("NPS, one survey, 2 years", metrics(survey_id=survey)),
        ("NPS, workspace, 2 years", metrics()),
        ("NPS, workspace, vs previous 90 days", metrics(since=last_90, until=today, compare=True)),
        ("trend weekly, one survey, 2 years", trend(survey_id=survey)),
        ("trend weekly, workspace, 2 years", trend()),
        ("matrix, one survey", matrix(survey_id=lambda r: f"survey-{r.randrange(25):02d}")),
        ("matrix, workspace", matrix()),
        (
            "matrix by team, one survey, 2 filters",
            matrix(
                survey_id=lambda r: f"survey-{r.randrange(25):02d}",
                group_by="team",
                segment=lambda r: filters_for("team", r),
            ),
        ),
    ]
    for dimension in DIMENSIONS:
        plan.append(
            (
                f"group_by {dimension}, one survey, 2 filters",
                metrics(
                    survey_id=survey, group_by=dimension, segment=lambda r, d=dimension: filters_for(d, r)
                ),
            )
        )
    for dimension in DIMENSIONS:
        plan.append(
            (
                f"group_by {dimension}, workspace 90 days, 2 filters",
                metrics(
                    group_by=dimension,
                    since=last_90,
                    until=today,
                    segment=lambda r, d=dimension: filters_for(d, r),
                ),
            )
        )
    tier = lambda r: domain.parse_filters([f"tier={r.choice(['gold', 'silver', 'bronze'])}"])  # noqa: E731
    plan += [
        (
            "ad-hoc tier=…, one survey, by country",
            metrics(survey_id=survey, group_by="country", segment=tier),
        ),
        ("ad-hoc tier=…, workspace 90 days", metrics(since=last_90, until=today, segment=tier)),
        ("ad-hoc group_by tier, one survey", metrics(survey_id=survey, group_by="tier")),
    ]
    return plan


def ingest_events(count: int, *, seed: int = 7, prefix: str = "ingest") -> list[ResponseCompleted]:
    rng = random.Random(seed)
    comments = [
        ("en", "The delivery was late and nobody answered"),
        ("nl", "Heel vriendelijke medewerker, snel geholpen"),
        ("en", "Great service, thank you"),
        ("nl", "De factuur klopte niet en ik moest lang wachten"),
    ]
    out = []
    now = datetime.now(UTC)
    for i in range(count):
        s = rng.randrange(SURVEYS)
        answers = [Answer(question_id="q-nps", type="nps", value=rng.randrange(11))]
        if s < 25:
            answers.append(Answer(question_id="q-nls", type="nls", value=rng.randrange(11)))
        else:
            answers.append(Answer(question_id="q-csat", type="csat", value=rng.randrange(1, 6)))
        locale = "en"
        if rng.random() < 0.3:
            locale, comment = rng.choice(comments)
            answers.append(Answer(question_id="q-why", type="open", value=comment))
        out.append(
            ResponseCompleted(
                workspace_id=WORKSPACE,
                response_id=f"{prefix}-{i}",
                invitation_id=None,
                request_id=new_id(),
                contact_id=f"ingest-c-{i % 5000}",
                survey_id=f"survey-{s:02d}",
                survey_version=1,
                kind="transactional",
                channel=rng.choice(["email", "sms", "link"]),
                locale=locale,
                hidden_fields={
                    "team": f"team-{rng.randrange(8)}",
                    "agent": f"agent-{rng.randrange(120):03d}",
                    "attr.country": f"C{rng.randrange(12):02d}",
                    "attr.plan": rng.choice(["free", "pro", "team", "enterprise"]),
                    "attr.tier": rng.choice(["gold", "silver", "bronze"]),
                },
                answers=tuple(answers),
                consent_to_contact=rng.random() < 0.5,
                completed_at=now,
            )
        )
    return out


async def _scored_so_far(db: Database) -> int:
    async with db.engine.connect() as conn:
        found = await conn.scalar(
            text("SELECT count(*) FROM scoring.scored_responses WHERE response_id LIKE 'ingest-%'")
        )
    return int(found or 0)


def _cpu_seconds(pids: list[int]) -> float:
    """Return the CPU time (user + system, every thread) the processes ``pids`` have used so far."""
    if not pids:
        return time.process_time()  # the service runs in this process
    ticks = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Ingested:
    elapsed_s: float
    """From start-up (joining the group, loading the lexicons) to the last scored response."""
    done: int
    steady: float
    """Responses/s from the first scored response to the last."""
    cpu_s: float
    """CPU time of the service's processes over the whole run, start-up included."""
    steady_cpu_us: float
    """CPU µs per response of the service's processes from the first scored response to the last."""


async def ingest(
    db: Database, url: str, bootstrap: str, count: int, *, processes: int, batch: int
) -> Ingested:
    """Publish ``count`` responses, then run the service until all are scored; return the rates and
    the service's CPU time per response (what survives a shared machine: throughput varies with the
    neighbours, CPU per event much less).

    One process runs the service in this process (consumer, relay, evaluator); more run as
    ``closeloop serve scoring --role consumer,relay`` processes, one per partition, as deployed."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=False, acks="all", linger_ms=5
    )
    await producer.start()
    try:
        sends = []
        for event in ingest_events(count):
            value = CloudEvent.wrap(event, source="bench").model_dump_json().encode()
            sends.append(await producer.send(event.topic, value, key=event.partition_key().encode()))
        await asyncio.gather(*sends)
    finally:
        await producer.stop()
    started = time.monotonic()
    first: tuple[float, int, float] | None = None
    children: list[subprocess.Popen[bytes]] = []
    async with contextlib.AsyncExitStack() as running_service:
        if processes == 1:
            settings = ScoringSettings(
                database_url=url,
                kafka_bootstrap_servers=bootstrap,
                log_format="text",
                log_level="WARNING",
                worker_nice=0,
                secret_key=secrets.token_hex(32),
                consumer_max_records=batch,
            )
            app = create_app(settings)
            await running_service.enter_async_context(
                app.router.lifespan_context(app)
            )  # consumer, relay, evaluator
        else:
            env = {
                **os.environ,
                **service_env(
                    url,
                    bootstrap,
                    secrets.token_hex(32),
                    LOG_FORMAT="text",
                    CLOSELOOP_WORKER_NICE="0",
                    CLOSELOOP_CONSUMER_MAX_RECORDS=str(batch),
                ),
            }
            for _ in range(processes):
                child = _spawn(env)
                running_service.callback(stop, child)
                children.append(child)
        pids = [child.pid for child in children]
        cpu_started = 0.0 if pids else time.process_time()
        while True:
            if any(child.poll() is not None for child in children):
                raise RuntimeError("a scoring process ended before the ingest did (its log is above)")
            done = await _scored_so_far(db)
            if done and first is None:
                first = (time.monotonic(), done, _cpu_seconds(pids))
            if done >= count:
                break
            await asyncio.sleep(0.2)
        ended, cpu_ended = time.monotonic(), _cpu_seconds(pids)
    assert first is not None
    steady = (done - first[1]) / (ended - first[0]) if ended > first[0] else float("nan")
    steady_cpu = (cpu_ended - first[2]) / (done - first[1]) * 1e6 if done > first[1] else float("nan")
    return Ingested(ended - started, done, steady, cpu_ended - cpu_started, steady_cpu)


GC_SETUPS: dict[str, tuple[bool, int]] = {
    "nothing frozen, threshold 700": (False, 700),
    "frozen, threshold 700 (before)": (True, 700),
    f"frozen, threshold {CONSUMER_GC_THRESHOLD:,} (the service now)": (True, CONSUMER_GC_THRESHOLD),
}
"""The collector with nothing frozen (what ``freeze_startup_objects`` saves), as the consumer process
had it (startup objects frozen, the default threshold) and as it has it now."""


async def handler_cpu(
    url: str, count: int, *, batch: int, rounds: int = 2
) -> dict[str, list[tuple[float, float]]]:
    """Run the consumer's batch handler in this process (no broker: records built here, ``batch`` a batch,
    inbox, scoring, flush and outbox as deployed) over ``count`` new responses per block, under each
    of ``GC_SETUPS`` in turn, ``rounds`` times; return each setup's (CPU µs, GC µs) per response."""
    warm_up()
    db = Database(url, pool_size=2)
    settings = ScoringSettings(database_url=url, secret_key=secrets.token_hex(32))
    runtime = SimpleNamespace(outbox=Outbox(outbox_table, source="scoring"), settings=settings)
    handler = EventConsumer(
        name="scoring",
        consumer=None,  # type: ignore[arg-type]  # process_together never fetches
        producer=None,  # type: ignore[arg-type]
        db=db,
        inbox=inbox_table,
        callbacks=consumes(runtime),  # type: ignore[arg-type]
        batch=True,
        flush=ingest_handler.flush,
    )
    blocks = len(GC_SETUPS) * rounds + 1
    records = []
    for n, event in enumerate(ingest_events(count * blocks, seed=11, prefix="handler")):
        envelope = CloudEvent.wrap(event, source="responses")
        headers = event_headers(event_id=envelope.id, event_type=envelope.type, source="responses")
        value = envelope.model_dump_json().encode()
        records.append(
            SimpleNamespace(value=value, key=b"", topic="responses", partition=0, offset=n, headers=headers)
        )
    collecting = [0.0, 0.0]

    def timing(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            collecting[1] = time.process_time()
        else:
            collecting[0] += time.process_time() - collecting[1]

    async def block(chunk: list[Any]) -> tuple[float, float]:
        collecting[0] = 0.0
        started = time.process_time()
        for i in range(0, len(chunk), batch):
            assert await handler.process_together(chunk[i : i + batch])
        return (time.process_time() - started) / len(chunk) * 1e6, collecting[0] / len(chunk) * 1e6

    threshold = gc.get_threshold()
    out: dict[str, list[tuple[float, float]]] = {name: [] for name in GC_SETUPS}
    gc.callbacks.append(timing)
    try:
        await block(records[:count])  # warms the statement caches
        chunks = iter(range(count, len(records), count))
        for _ in range(rounds):
            for name, (frozen, youngest) in GC_SETUPS.items():
                gc.unfreeze()
                if frozen:
                    gc.collect()
                    gc.freeze()
                gc.set_threshold(youngest, *threshold[1:])
                first = next(chunks)
                out[name].append(await block(records[first : first + count]))
    finally:
        gc.callbacks.remove(timing)
        gc.set_threshold(*threshold)
        await db.dispose()
    return out


def _spawn(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``closeloop serve scoring`` running only the consumer and the outbox relay."""
    command = [sys.executable, "-m", "closeloop.cli", "serve", "scoring", "--port", str(free_port())]
    return spawn([*command, "--role", "consumer,relay"], env)


async def main(args: argparse.Namespace) -> int:
    print("closeloop scoring bench — starting PostgreSQL and the broker …", flush=True)
    results: list[tuple[str, list[float]]] = []
    load_s, storage, ingested = None, {}, None
    cached: dict[str, float] = {}
    handler: dict[str, list[tuple[float, float]]] = {}
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(scratch_database("bench-scoring", services=["scoring"]))
        broker = await stack.enter_async_context(scratch_broker(partitions=args.processes))
        db = Database(url, pool_size=2)
        stack.push_async_callback(db.dispose)
        if not args.ingest_only:
            print(
                f"[1/3] generating {args.answers:,} scored answers (2 years, {SURVEYS} surveys, 8 dimensions) …",
                flush=True,
            )
            load_s = await load(db, args.answers)
            storage = await sizes(db)
            today = START + timedelta(days=DAYS - 1)
            if args.answer_cache_days:
                cached = await load_cache(db, args.answer_cache_days, today)
            print(f"[2/3] querying, {args.repeat} times each …", flush=True)
            for name, query in queries(today):
                results.append(await timed(db, name, query, repeat=args.repeat))
                print(f"  {name}: p95 {percentile(results[-1][1], 95) * 1000:.1f} ms", flush=True)
        if args.handler_cpu:
            print(f"[+] the batch handler in process, {args.handler_cpu:,} responses a block …", flush=True)
            handler = await handler_cpu(url, args.handler_cpu, batch=args.batch)
        if args.ingest:
            print(f"[3/3] ingesting {args.ingest:,} responses from the responses topic …", flush=True)
            ingested = await ingest(
                db, url, broker.bootstrap_servers, args.ingest, processes=args.processes, batch=args.batch
            )

    print()
    answers = "no answers loaded" if args.ingest_only else f"{args.answers:,} answers"
    print(f"closeloop scoring benchmark ({answers}; 2 cores shared by PostgreSQL, broker and service)")
    rows = [
        (
            name,
            f"p50 {statistics.median(ls) * 1000:7.1f} ms   p95 {percentile(ls, 95) * 1000:7.1f} ms   "
            f"CPU here p50 {statistics.median(CPU[name]) * 1000:5.1f} ms",
        )
        for name, ls in results
    ]
    if load_s is not None:
        rows.append(("load (generate_series, rollups, indexes)", f"{load_s:7.1f} s"))
    if cached:
        rows.append(
            (
                f"answer cache, last {args.answer_cache_days} days",
                f"{cached['answers']:,.0f} answers loaded in {cached['seconds']:.1f} s "
                f"({cached['cpu']:.1f} s CPU), {cached['bytes'] / 1e6:.1f} MB = "
                f"{cached['mb_per_million']:.1f} MB per million answers",
            )
        )
    if ingested is not None:
        rows.append(
            (
                "ingest from the responses topic",
                f"{ingested.steady:7.0f} responses/s once running   ({ingested.done / ingested.elapsed_s:.0f}/s "
                f"with start-up; {args.ingest:,} responses, {args.processes} consumer process(es))",
            )
        )
        rows.append(
            (
                "  service CPU per response once running",
                f"{ingested.steady_cpu_us:7.0f} µs   ({ingested.cpu_s:.1f} s CPU in all, start-up included)",
            )
        )
    for name, measured in handler.items():
        rows.append(
            (
                f"  handler CPU per response, {name}",
                "   ".join(f"{cpu:5.0f} µs (GC {collecting:3.0f})" for cpu, collecting in measured),
            )
        )
    if storage:
        per_million = sum(storage.values()) / (args.answers / 1_000_000)
        rows.append(
            (
                "storage per million answers",
                f"{per_million / 1e6:7.1f} MB   (all of scoring's tables and indexes)",
            )
        )
        for name in ("answers", "scored_responses", "daily_histograms", "daily_loyalty"):
            rows.append((f"  {name}", f"{storage.get(name, 0) / 1e6:9.1f} MB"))
    print(table(rows))
    return 0


if __name__ == "__main__":
    parser = arguments("bench.scoring", __doc__)
    parser.add_argument(
        "--answers", type=int, default=10_000_000, help="scored answers to generate (two per response)"
    )
    parser.add_argument("--repeat", type=int, default=20, help="timed runs of each query")
    parser.add_argument(
        "--ingest", type=int, default=20_000, help="responses to ingest from the topic (0: skip)"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=2,
        help="scoring consumer processes for the ingest (one per partition)",
    )
    parser.add_argument(
        "--handler-cpu",
        type=int,
        default=0,
        metavar="N",
        help="also run the consumer's batch handler in this process over blocks of N responses under "
        "each garbage-collector setup in turn, and print CPU µs per response (0: skip)",
    )
    parser.add_argument(
        "--answer-cache-days",
        type=int,
        default=200,
        metavar="N",
        help="keep the workspace's last N days of answers in memory as the API does, for the segmented "
        "reports over them (0: every report reads PostgreSQL)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=ScoringSettings.model_fields["consumer_max_records"].default,
        metavar="N",
        help="records a consumer handles in one transaction (CLOSELOOP_CONSUMER_MAX_RECORDS; "
        "default: the service's default)",
    )
    parser.add_argument(
        "--ingest-only",
        action="store_true",
        help="skip loading and querying: only the ingest into an empty schema (and its CPU per response)",
    )
    run(main, parser)
