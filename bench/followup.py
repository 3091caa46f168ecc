"""``python -m bench.followup``: case management at scale — 50,000 open cases, 200 agents, 20 rules.

Starts its own PostgreSQL database (``DATABASE_URL`` or embedded) and Tansu broker, migrates the
followup schema and seeds one workspace: 200 agents in 20 teams (round robin and least-open, each in
its own time zone with public holidays), 20 routing rules, SLA policies, a three-step escalation
ladder and ``--cases`` open cases spread over the last ten days (the steps already due are recorded
as applied, as a running scheduler would have left them). Then it measures:

1. **case creation**: ``NegativeFeedbackDetected`` events handled as the consumer handles them (the
   handler and the inbox row in one transaction, committed): routing, round robin, SLA due times on
   both clocks, the escalation schedule, history, decisions and outbox events. Handler time p50/p95.
2. **my open cases**: ``GET /v1/cases?assignee=…&active=true`` (and with ``priority``/``overdue``
   filters) through the real FastAPI app in process. Request time p50/p95.
3. **escalation**: the scheduler's pass after the clock moved ten minutes (what a pass does every few
   seconds in production), and a pass that re-evaluates every open case (what follows a change to the
   timing of a ladder step).

Prints progress, then a table with the aims side by side.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from sqlalchemy import insert as sa_insert

from bench.cli import arguments, run
from bench.loadgen import percentile
from closeloop.infra import scratch_broker, scratch_database
from services.followup.app import create_app
from services.followup.domain import escalation as ladder
from services.followup.domain import sla
from services.followup.escalation import EscalationScheduler
from services.followup.handlers import common, opening
from services.followup.handlers.config import reschedule_all
from services.followup.models import EscalationStep, inbox
from services.followup.settings import FollowUpSettings
from shared.access import Role, issue_api_key, issue_user_token
from shared.clock import Clock
from shared.db import Database, driver_dsn
from shared.events import NegativeFeedbackDetected, Recipient, ScoredAnswer, new_id

WORKSPACE = "bench"
COUNTRIES = [
    "NL",
    "BE",
    "DE",
    "FR",
    "GB",
    "ES",
    "IT",
    "SE",
    "DK",
    "NO",
    "FI",
    "PL",
    "AT",
    "CH",
    "IE",
    "PT",
    "CZ",
    "US",
]
ZONES = {"NL": "Europe/Amsterdam", "GB": "Europe/London", "US": "America/New_York"}
PRODUCTS = ["basic", "pro", "enterprise"]


def say(message: str) -> None:
    print(f"  {message}", flush=True)


async def seed_setup(
    client: httpx.AsyncClient, auth: dict[str, str], *, agents: int, teams: int
) -> list[dict[str, Any]]:
    """Create agents, teams, rules, policies and the ladder through the API; return the teams."""
    names = [f"agent-{i:03d}" for i in range(agents)]
    for name in names:
        r = await client.put(
            f"/v1/agents/{name}", json={"name": name.title(), "email": f"{name}@acme.example"}, headers=auth
        )
        r.raise_for_status()
    made = []
    per_team = agents // teams
    for t in range(teams):
        country = COUNTRIES[t % len(COUNTRIES)]
        members = names[t * per_team : (t + 1) * per_team]
        r = await client.post(
            "/v1/teams",
            json={
                "name": f"Team {t:02d} {country}",
                "timezone": ZONES.get(country, "Europe/Berlin"),
                "holiday_country": country,
                "members": members,
                "lead_agent_id": members[0],
                "strategy": "least_open" if t % 2 else "round_robin",
                "notify_channel": "chat",
                "notify_to": f"https://chat.example/hooks/{t}",
            },
            headers=auth,
        )
        r.raise_for_status()
        made.append(r.json())
    rules = [
        {
            "name": "Very unhappy",
            "conditions": {"score": {"metric": "nps", "max": 1}},
            "team_id": made[-1]["id"],
            "priority": "high",
        }
    ]
    rules += [
        {
            "name": f"{COUNTRIES[i]}",
            "conditions": {"dimensions": {"country": [COUNTRIES[i]]}},
            "team_id": made[i]["id"],
        }
        for i in range(18)
    ]
    rules.append(
        {
            "name": "Enterprise",
            "conditions": {"dimensions": {"product": ["enterprise"]}},
            "team_id": made[18]["id"],
        }
    )
    r = await client.put(
        "/v1/routing-rules", json={"rules": rules, "default_team_id": made[19]["id"]}, headers=auth
    )
    r.raise_for_status()
    r = await client.put(
        "/v1/sla-policies",
        json={
            "policies": [
                {"name": "Default"},
                {
                    "name": "High",
                    "priority": "high",
                    "first_contact_minutes": 240,
                    "first_contact_business_minutes": 120,
                },
            ]
        },
        headers=auth,
    )
    r.raise_for_status()
    return made


async def install_ladder(db: Database, *, created_at: datetime) -> list[ladder.Step]:
    """The ladder, dated before every seeded case (steps apply to cases opened after them)."""
    steps = [
        ("Remind the assignee", "age", 24 * 60, "notify_assignee", "calendar"),
        ("Tell the lead", "first_contact_breach", 0, "notify_lead", "business"),
        ("Give it to the lead", "resolution_breach", 0, "reassign", "business"),
    ]
    async with db.unit_of_work() as session:
        for position, (name, trigger, after, action, clock) in enumerate(steps, start=1):
            session.add(
                EscalationStep(
                    id=new_id(),
                    workspace_id=WORKSPACE,
                    position=position,
                    name=name,
                    trigger=trigger,
                    after_minutes=after,
                    action=action,
                    clock=clock,
                    created_at=created_at,
                )
            )
    async with db.unit_of_work() as session:
        return await common.load_steps(session, WORKSPACE)


async def seed_cases(
    dsn: str, teams: list[dict[str, Any]], steps: list[ladder.Step], *, count: int, now: datetime
) -> None:
    """Copy ``count`` open cases in, with their due times, applied steps and next escalation."""
    rng = random.Random(7)
    calendars = {
        t["id"]: sla.BusinessCalendar(timezone=t["timezone"], holiday_country=t["holiday_country"])
        for t in teams
    }
    targets = sla.DEFAULT_TARGETS
    columns = [
        "id",
        "workspace_id",
        "status",
        "priority",
        "opened_because",
        "response_id",
        "request_id",
        "survey_id",
        "contact_id",
        "kind",
        "channel",
        "metric",
        "score",
        "scores",
        "dimensions",
        "comment",
        "contact_known",
        "contact_name",
        "contact_email",
        "team_id",
        "assignee",
        "first_contact_due_at",
        "first_contact_due_business_at",
        "resolution_due_at",
        "resolution_due_business_at",
        "first_contacted_at",
        "reopen_count",
        "feedback_at",
        "created_at",
        "updated_at",
    ]
    records, applied, schedule = [], [], []
    for i in range(count):
        team = teams[i % len(teams)]
        opened = now - timedelta(seconds=rng.uniform(0, 10 * 24 * 3600))
        due = sla.due_times(opened, targets, calendars[team["id"]])
        contacted = opened + timedelta(hours=rng.uniform(1, 60)) if rng.random() < 0.5 else None
        contacted = contacted if contacted and contacted < now else None
        case_id = new_id()
        clock = ladder.CaseClock(
            opened,
            True,
            team["id"],
            contacted is not None,
            False,
            due.first_contact,
            due.first_contact_business,
            due.resolution,
            due.resolution_business,
        )
        done = {s.id for s in ladder.due_steps(steps, clock, done=(), now=now)}
        applied += [(case_id, step_id, WORKSPACE, "notify_lead", now) for step_id in done]
        score = rng.randint(0, 6)
        records.append(
            (
                case_id,
                WORKSPACE,
                "in_progress" if contacted else "open",
                "normal",
                "negative",
                new_id(),
                new_id(),
                "svy",
                f"c-{i}",
                "transactional",
                "email",
                "nps",
                score,
                json.dumps(
                    [
                        {
                            "question_id": "nps",
                            "metric": "nps",
                            "score": score,
                            "classification": "detractor",
                            "negative": True,
                        }
                    ]
                ),
                json.dumps({"country": COUNTRIES[i % len(COUNTRIES)], "product": PRODUCTS[i % 3]}),
                "Late again.",
                True,
                f"Customer {i}",
                f"customer{i}@example.com",
                team["id"],
                team["members"][i % len(team["members"])],
                due.first_contact,
                due.first_contact_business,
                due.resolution,
                due.resolution_business,
                contacted,
                0,
                opened,
                opened,
                opened,
            )
        )
        if (at := ladder.next_due(steps, clock, done=done)) is not None:
            schedule.append((case_id, WORKSPACE, at))
    connection = await asyncpg.connect(dsn)
    try:
        await connection.copy_records_to_table(
            "cases", schema_name="followup", columns=columns, records=records
        )
        await connection.copy_records_to_table(
            "escalations",
            schema_name="followup",
            columns=["case_id", "step_id", "workspace_id", "action", "applied_at"],
            records=applied,
        )
        await connection.copy_records_to_table(
            "escalation_schedule",
            schema_name="followup",
            columns=["case_id", "workspace_id", "next_at"],
            records=schedule,
        )
        await connection.execute(
            "ANALYZE followup.cases; ANALYZE followup.escalations; ANALYZE followup.escalation_schedule"
        )
    finally:
        await connection.close()


def event(rng: random.Random) -> NegativeFeedbackDetected:
    score = rng.randint(0, 6)
    answer = ScoredAnswer(
        question_id="nps", metric="nps", score=score, classification="detractor", negative=True
    )
    return NegativeFeedbackDetected(
        workspace_id=WORKSPACE,
        response_id=new_id(),
        request_id=new_id(),
        contact_id=f"c-new-{new_id()[:8]}",
        survey_id="svy",
        kind="transactional",
        channel="email",
        scores=(answer,),
        negatives=(answer,),
        dimensions={"country": rng.choice(COUNTRIES + ["JP"]), "product": rng.choice(PRODUCTS)},
        consent_to_contact=True,
        respondent=Recipient(name="Ada", email="ada@example.com", locale="nl-NL"),
        comment="It broke.",
        detected_at=datetime.now(UTC),
    )


async def measure_creation(db: Database, runtime: Any, *, n: int) -> list[float]:
    rng = random.Random(11)
    times = []
    for _ in range(n):
        e = event(rng)
        started = time.perf_counter()
        async with db.unit_of_work() as session:
            await opening.on_negative_feedback(session, runtime.outbox, event=e, now=runtime.deps.clock.now())
            await session.execute(
                sa_insert(inbox).values(
                    consumer="followup",
                    event_id=new_id(),
                    event_type=e.type_name(),
                    topic=e.topic,
                    partition=0,
                    offset=0,
                )
            )
        times.append((time.perf_counter() - started) * 1000)
    return times


async def measure_lists(
    client: httpx.AsyncClient, auth: dict[str, str], *, n: int, agents: int
) -> list[float]:
    rng = random.Random(13)
    times = []
    for i in range(n):
        params: dict[str, Any] = {
            "assignee": f"agent-{rng.randrange(agents):03d}",
            "active": "true",
            "limit": 50,
        }
        if i % 3 == 1:
            params["priority"] = "normal"
        if i % 3 == 2:
            params["overdue"] = "true"
        started = time.perf_counter()
        r = await client.get("/v1/cases", params=params, headers=auth)
        times.append((time.perf_counter() - started) * 1000)
        r.raise_for_status()
    return times


async def full_pass(scheduler: EscalationScheduler) -> tuple[float, int]:
    started = time.perf_counter()
    looked = 0
    while done := await scheduler.work_once():
        looked += done
    return time.perf_counter() - started, looked


async def main(args: argparse.Namespace) -> int:
    print(f"followup bench — {args.cases:,} open cases, {args.agents} agents, 20 routing rules", flush=True)
    async with contextlib.AsyncExitStack() as stack:
        say("starting PostgreSQL (DATABASE_URL or embedded) and the broker …")
        url = await stack.enter_async_context(scratch_database("bench-followup", services=["followup"]))
        broker = await stack.enter_async_context(scratch_broker(partitions=1))
        secret = new_id()
        clock = Clock()
        settings = FollowUpSettings(
            database_url=url,
            kafka_bootstrap_servers=broker.bootstrap_servers,
            secret_key=secret,
            role="api",
            log_level="WARNING",
            escalation_batch=args.batch,
        )
        app = create_app(settings, clock=clock)
        await stack.enter_async_context(app.router.lifespan_context(app))
        runtime = app.state.runtime
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=60)
        )
        auth = {"Authorization": f"Bearer {issue_api_key(secret, WORKSPACE, role=Role.ADMIN)}"}
        started = time.perf_counter()
        teams = await seed_setup(client, auth, agents=args.agents, teams=20)
        now = clock.now()
        steps = await install_ladder(runtime.db, created_at=now - timedelta(days=30))
        say(
            f"agents, teams, rules, policies and ladder in {time.perf_counter() - started:.1f}s; seeding cases …"
        )
        started = time.perf_counter()
        await seed_cases(driver_dsn(url), teams, steps, count=args.cases, now=now)
        say(f"{args.cases:,} open cases seeded in {time.perf_counter() - started:.1f}s")

        say(f"creating {args.events} cases from events …")
        create = await measure_creation(runtime.db, runtime, n=args.events)
        say(f"listing an agent's open cases {args.lists} times …")
        # An agent lists their cases through the console: a user token of role agent, as in production.
        agent = issue_user_token(
            secret, workspace_id=WORKSPACE, user_id="agent-1", name="Agent", role=Role.AGENT, now=time.time()
        )
        lists = await measure_lists(
            client, {"Authorization": f"Bearer {agent}"}, n=args.lists, agents=args.agents
        )

        scheduler = EscalationScheduler(runtime.db, runtime.outbox, clock, batch=args.batch)
        await full_pass(scheduler)  # whatever came due while seeding
        clock.advance(timedelta(minutes=10))
        say("escalation pass after ten minutes …")
        routine_s, routine_n = await full_pass(scheduler)
        async with runtime.db.unit_of_work() as session:
            await reschedule_all(session, workspace_id=WORKSPACE, at=clock.now())
        say("escalation pass re-evaluating every open case …")
        everything_s, everything_n = await full_pass(scheduler)

    rows = [
        ("case creation from the event, p50", f"{percentile(create, 50):7.1f} ms", ""),
        ("case creation from the event, p95", f"{percentile(create, 95):7.1f} ms", "≤ 50 ms"),
        ("my open cases (filters), p50", f"{percentile(lists, 50):7.1f} ms", ""),
        ("my open cases (filters), p95", f"{percentile(lists, 95):7.1f} ms", "≤ 50 ms"),
        (f"escalation pass, clock +10 min ({routine_n:,} cases due)", f"{routine_s * 1000:7.0f} ms", "≤ 2 s"),
        (
            f"escalation pass over every open case ({everything_n:,})",
            f"{everything_s * 1000:7.0f} ms",
            "≤ 2 s",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print()
    print(
        f"followup benchmark ({args.cases:,} open cases, {args.agents} agents, 20 rules, 3-step ladder; "
        f"{os.cpu_count()} cores shared with PostgreSQL)"
    )
    print(f"  {'':<{width}}  {'measured':>10}  aim")
    for name, value, aim in rows:
        print(f"  {name:<{width}}  {value:>10}  {aim}")
    return 0


if __name__ == "__main__":
    parser = arguments("bench.followup", __doc__)
    parser.add_argument("--cases", type=int, default=50_000)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--events", type=int, default=300, help="cases created from events (timed)")
    parser.add_argument("--lists", type=int, default=300, help="'my open cases' requests (timed)")
    parser.add_argument("--batch", type=int, default=2000, help="CLOSELOOP_FOLLOWUP_ESCALATION_BATCH")
    run(main, parser)
