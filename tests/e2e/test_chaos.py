"""Chaos: random service processes are SIGKILLed (and restarted, as Kubernetes restarts a crashed
container) while signed webhooks stream in and customers answer through the public pages; every
feedback service runs as one process, then (a second run) as two. At the end, counted exactly:

- every acknowledged webhook yields one invitation and one email (a resend keeps its Message-ID);
- every consented detractor answer yields one follow-up case, and no other answer does.

Bounded to about two and a half minutes for both runs by default; ``make chaos`` runs each for five
minutes (well over 100 kills each). Tune with ``CLOSELOOP_CHAOS_SECONDS`` (how long the kills go on,
per run), ``CLOSELOOP_CHAOS_WEBHOOKS`` (per run),
``CLOSELOOP_CHAOS_KILL_EVERY_S`` and ``CLOSELOOP_CHAOS_SEED`` (printed, to rerun a run).
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from closeloop.demo import DemoWorkspace, demo_event, send_signed
from closeloop.infra import free_port
from closeloop.mailcatcher import MailCatcher, body_of, recipient
from closeloop.stack import ServiceStack
from tests.support.stack import wait_until

pytestmark = pytest.mark.e2e

SECONDS = float(os.environ.get("CLOSELOOP_CHAOS_SECONDS", "40"))
WEBHOOKS = int(os.environ.get("CLOSELOOP_CHAOS_WEBHOOKS", "24"))
KILL_EVERY_S = float(os.environ.get("CLOSELOOP_CHAOS_KILL_EVERY_S", "2"))
SEED = int(os.environ.get("CLOSELOOP_CHAOS_SEED", str(random.randrange(1_000_000))))
SETTLE_S = float(os.environ.get("CLOSELOOP_CHAOS_SETTLE_S", "180"))
FEEDBACK_SERVICES = ("trigger", "dispatch", "responses", "scoring", "followup")
SHORT_LINK = re.compile(r"https?://[^\s\"'<>?]+/l/[A-Za-z0-9_\-]+")


@dataclass
class Tally:
    kills: collections.Counter[str] = field(default_factory=collections.Counter)
    acknowledged: set[str] = field(default_factory=set)
    """Recipients whose webhook got a 202."""
    webhook_retries: int = 0
    answered: dict[str, str] = field(default_factory=dict)
    """Recipient → how they answered: consented-detractor, detractor (no consent), promoter."""
    answer_retries: int = 0


@pytest.fixture(params=[1, 2], ids=["one process per service", "two processes per service"])
def chaos_stack(stack: ServiceStack, request: pytest.FixtureRequest) -> Iterator[ServiceStack]:
    """The e2e stack, with (second run) a second process of every feedback service (``<service>-b``);
    afterwards the second processes stop and every first one is running again for the tests after."""
    second = [f"{s}-b" for s in FEEDBACK_SERVICES] if request.param == 2 else []
    for name in second:
        stack.ports[name] = free_port()
        stack.start(name.removesuffix("-b"), name=name)
    stack.wait_ready(second)
    try:
        yield stack
    finally:
        for service in FEEDBACK_SERVICES:
            stack.stop(f"{service}-b")
            stack.ports.pop(f"{service}-b", None)
            if service not in stack.processes:
                stack.start(service)
        stack.wait_ready(list(FEEDBACK_SERVICES))


def processes_of(stack: ServiceStack, service: str) -> list[str]:
    return [n for n in (service, f"{service}-b") if n in stack.ports]


def base_of(stack: ServiceStack, name: str) -> str:
    return stack.url(name)


def on(stack: ServiceStack, url: str, name: str) -> str:
    """``url`` sent to process ``name`` instead (same path and query)."""
    parts, target = urlsplit(url), urlsplit(stack.url(name))
    return urlunsplit((parts.scheme, target.netloc, parts.path, parts.query, parts.fragment))


async def kill_randomly(stack: ServiceStack, tally: Tally, rng: random.Random, until: float) -> None:
    """SIGKILL a random feedback process every ``KILL_EVERY_S`` (±50%); restart it after up to a second."""
    names = [n for s in FEEDBACK_SERVICES for n in processes_of(stack, s)]
    restarting: list[asyncio.Task[None]] = []

    async def restart(name: str, after: float) -> None:
        await asyncio.sleep(after)
        service = name.removesuffix("-b")
        stack.start(service, name=name)

    while time.monotonic() < until:
        await asyncio.sleep(KILL_EVERY_S * rng.uniform(0.5, 1.5))
        alive = [n for n in names if n in stack.processes]
        if not alive:
            continue
        victim = rng.choice(alive)
        stack.kill(victim)
        tally.kills[victim.removesuffix("-b")] += 1
        restarting.append(asyncio.create_task(restart(victim, rng.uniform(0.0, 1.0))))
    await asyncio.gather(*restarting)


async def send_webhooks(
    stack: ServiceStack,
    demo: DemoWorkspace,
    tally: Tally,
    rng: random.Random,
    emails: list[str],
    spread_s: float,
) -> None:
    """Post one signed webhook per customer, spread over ``spread_s``; like a webhook sender, retry
    the same message (same webhook-id) on any trigger process until it is acknowledged."""

    async def one(i: int, email: str) -> None:
        await asyncio.sleep(spread_s * i / len(emails))
        event = demo_event(external_id=f"chaos_{i}", email=email, name=f"Customer {i}")
        msg_id = f"msg_chaos_{demo.workspace_id}_{i}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            target = rng.choice(processes_of(stack, "trigger"))
            url = on(stack, demo.webhook_url, target)
            try:
                response = await asyncio.to_thread(_post_signed, demo, url, event, msg_id)
            except httpx.HTTPError:
                response = None
            if response is not None and response.status_code == 202:
                tally.acknowledged.add(email)
                return
            assert response is None or response.status_code >= 500, response.text
            tally.webhook_retries += 1
            await asyncio.sleep(0.3)

    await asyncio.gather(*(one(i, email) for i, email in enumerate(emails)))


def _post_signed(demo: DemoWorkspace, url: str, event: dict, msg_id: str) -> httpx.Response:
    with httpx.Client(timeout=5) as http:
        return send_signed(http, DemoWorkspace(**{**demo.__dict__, "webhook_url": url}), event, msg_id=msg_id)


def behaviour(i: int) -> str:
    return ("consented-detractor", "detractor", "promoter")[i % 3]


async def answer_invitations(
    stack: ServiceStack,
    smtp: MailCatcher,
    tally: Tally,
    rng: random.Random,
    index: dict[str, int],
    stop: asyncio.Event,
) -> None:
    """Each customer answers their invitation once it arrives: follow the short link (dispatch), post
    the survey form (responses), retrying on any process while processes die."""
    started: set[str] = set()
    pending: list[asyncio.Task[None]] = []

    async def answer(email: str, link: str) -> None:
        how = behaviour(index[email])
        form = {"nps": "2", "why": "Chaos everywhere."} if how != "promoter" else {"nps": "10"}
        if how == "consented-detractor":
            form["consent"] = "yes"
        async with httpx.AsyncClient(timeout=5) as http:
            while True:
                try:
                    redirect = await http.get(
                        on(stack, link, rng.choice(processes_of(stack, "dispatch"))), follow_redirects=False
                    )
                    if redirect.status_code in (302, 303, 307):
                        page = on(
                            stack, redirect.headers["location"], rng.choice(processes_of(stack, "responses"))
                        )
                        posted = await http.post(page, data=form, follow_redirects=True)
                        # 409: an earlier try was stored before its answer was cut off.
                        if posted.status_code in (200, 409):
                            tally.answered[email] = how
                            return
                        assert posted.status_code >= 500, posted.text
                    else:
                        assert redirect.status_code >= 500, redirect.text
                except httpx.HTTPError:
                    pass
                tally.answer_retries += 1
                await asyncio.sleep(0.3)

    while not stop.is_set() or len(started) < len(tally.acknowledged):
        for message in list(smtp.messages):
            email = recipient(message)
            if email in index and email not in started:
                links = SHORT_LINK.findall(body_of(message, "plain"))
                if links:
                    started.add(email)
                    pending.append(asyncio.create_task(answer(email, links[0])))
        await asyncio.sleep(0.2)
    await asyncio.gather(*pending)


async def invitations_by_recipient(database_url: str, workspace: str) -> dict[str, list[asyncpg.Record]]:
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT recipient_email, status, message_id FROM dispatch.invitations "
            "WHERE workspace_id = $1 AND kind = 'transactional'",
            workspace,
        )
    finally:
        await connection.close()
    out: dict[str, list[asyncpg.Record]] = collections.defaultdict(list)
    for row in rows:
        out[row["recipient_email"]].append(row)
    return out


async def cases_by_email(stack: ServiceStack, demo: DemoWorkspace) -> dict[str, int]:
    counts: collections.Counter[str] = collections.Counter()
    cursor = None
    async with httpx.AsyncClient(timeout=10) as http:
        while True:
            params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            response = await http.get(f"{stack.url('followup')}/v1/cases", params=params, headers=demo.auth)
            response.raise_for_status()
            page = response.json()
            counts.update(case["contact"]["email"] for case in page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return dict(counts)


async def test_nothing_lost_nothing_doubled_while_processes_die(
    chaos_stack: ServiceStack, demo: DemoWorkspace, smtp: MailCatcher, database_url: str
):
    stack = chaos_stack
    rng = random.Random(SEED)
    tally = Tally()
    emails = [f"chaos{i}.{demo.workspace_id}@example.com" for i in range(WEBHOOKS)]
    index = {email: i for i, email in enumerate(emails)}
    started = time.monotonic()
    until = started + SECONDS
    stop_answering = asyncio.Event()

    answering = asyncio.create_task(answer_invitations(stack, smtp, tally, rng, index, stop_answering))
    killing = asyncio.create_task(kill_randomly(stack, tally, rng, until))
    await send_webhooks(stack, demo, tally, rng, emails, spread_s=SECONDS * 0.8)
    await killing
    await asyncio.to_thread(stack.wait_ready)
    chaos_s = time.monotonic() - started

    acknowledged = tally.acknowledged
    assert acknowledged == set(emails), f"{len(emails) - len(acknowledged)} webhooks never acknowledged"

    def invited(messages: list) -> bool | None:
        return {recipient(m) for m in messages} >= acknowledged or None

    await smtp.wait_until(
        invited, timeout_s=SETTLE_S, what="an invitation email for every acknowledged webhook"
    )
    stop_answering.set()
    await asyncio.wait_for(answering, timeout=SETTLE_S)
    consented = {e for e, how in tally.answered.items() if how == "consented-detractor"}

    async def settled() -> bool:
        invitations = await invitations_by_recipient(database_url, demo.workspace_id)
        all_sent = all(row["status"] == "sent" for rows in invitations.values() for row in rows)
        cases = await cases_by_email(stack, demo)
        return all_sent and set(cases) >= consented

    await wait_until(
        settled, timeout_s=SETTLE_S, interval_s=1, message="every invitation sent and every case open"
    )
    # Give stragglers (a duplicate in flight) a moment to show up before counting.
    await asyncio.sleep(3)

    invitations = await invitations_by_recipient(database_url, demo.workspace_id)
    cases = await cases_by_email(stack, demo)
    mails: dict[str, list] = collections.defaultdict(list)
    for message in smtp.messages:
        if recipient(message) in index:
            mails[recipient(message)].append(message)
    resent = sum(len(m) - 1 for m in mails.values())

    print(
        f"\nchaos ({len(processes_of(stack, 'trigger'))} processes per service, seed {SEED}): {sum(tally.kills.values())} SIGKILLs in {chaos_s:.0f}s "
        f"({', '.join(f'{s} {n}' for s, n in sorted(tally.kills.items()))}); "
        f"{len(acknowledged)} webhooks acknowledged ({tally.webhook_retries} retries); "
        f"{sum(len(r) for r in invitations.values())} invitations; "
        f"{sum(len(m) for m in mails.values())} emails ({resent} resends of the same Message-ID); "
        f"{len(tally.answered)} answers ({tally.answer_retries} retries), {len(consented)} consented detractors; "
        f"{sum(cases.values())} cases"
    )

    assert set(invitations) == acknowledged
    doubled = {e: len(rows) for e, rows in invitations.items() if len(rows) != 1}
    assert not doubled, f"more than one invitation: {doubled}"
    assert set(mails) == acknowledged
    for email, messages in mails.items():
        ids = {str(m["Message-ID"]).strip() for m in messages}
        assert ids == {invitations[email][0]["message_id"]}, f"{email} got different messages: {ids}"
    assert set(tally.answered) == acknowledged
    assert cases == dict.fromkeys(consented, 1), "one case per consented detractor, none for anyone else"
