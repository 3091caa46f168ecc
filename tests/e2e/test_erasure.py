"""Erasure reaches every copy: a contact is erased mid-loop — invited, answered as a detractor with a
comment that gives their address, a case opened and resolved, a retention survey sent with a reminder
pending, a webhook delivered about their answer — and afterwards no table of any service holds their
email address, name, phone number or address, and none of their links works.

The search reads every text, varchar and JSON column of every table of every service's schema
(``information_schema``), through a connection of its own: what a database administrator, a backup or
an attacker with the database would see. Ids are not personal data here and may stay.
"""

from __future__ import annotations

import secrets
from typing import Any

import asyncpg
import httpx
import pytest

from closeloop.demo import AGENT, DemoWorkspace, send_signed
from closeloop.mailcatcher import MailCatcher, body_of, recipient
from shared.events import CUSTOMER_EVENTS
from shared.vocabulary import STACK_SERVICES
from tests.e2e.test_closed_loop import SHORT_LINK, json_of, survey_link
from tests.support.dispatch import FakeProvider
from tests.support.stack import TopicReader, wait_until

pytestmark = pytest.mark.e2e

TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb", "ARRAY")
CONSUMERS_OF_ERASURE = ("dispatch", "responses", "scoring", "followup")


async def copies_of(database_url: str, needles: dict[str, str]) -> list[str]:
    """Return ``schema.table.column: what`` for every column of every service's tables that holds one of
    ``needles`` (what → text), searched case-insensitively in the column as text."""
    connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        columns = await connection.fetch(
            """
            SELECT c.table_schema, c.table_name, c.column_name
            FROM information_schema.columns c
            JOIN information_schema.tables t
              ON t.table_schema = c.table_schema AND t.table_name = c.table_name
            WHERE c.table_schema = ANY($1::text[]) AND t.table_type = 'BASE TABLE'
              AND c.data_type = ANY($2::text[])
            ORDER BY 1, 2, 3
            """,
            list(STACK_SERVICES),
            list(TEXT_TYPES),
        )
        assert len(columns) > 100, "the search sees every service's tables"
        found = []
        for schema, table, column in columns:
            for what, needle in needles.items():
                hits = await connection.fetchval(
                    f'SELECT count(*) FROM "{schema}"."{table}" WHERE "{column}"::text ILIKE $1',
                    f"%{needle}%",
                )
                if hits:
                    found.append(f"{schema}.{table}.{column}: {what} ({hits} rows)")
        return found
    finally:
        await connection.close()


async def handled_by_every_consumer(database_url: str, event_id: str) -> bool:
    """Whether every service that erases has the ``ContactErased`` event in its inbox (it committed)."""
    connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        for service in CONSUMERS_OF_ERASURE:
            if not await connection.fetchval(
                f'SELECT count(*) FROM "{service}".inbox WHERE event_id = $1', event_id
            ):
                return False
        return True
    finally:
        await connection.close()


async def test_an_erased_contact_leaves_no_copy_in_any_service_and_no_working_link(
    demo: DemoWorkspace, urls: dict[str, str], smtp: MailCatcher, database_url: str, broker: Any
):
    tag = secrets.token_hex(4)
    person = {
        "email": f"erin.{tag}@example.com",
        "name": f"Erin Vondracek-{tag}",
        "phone": f"+3161{int(tag, 16) % 10_000_000:07d}",
        "address": f"Keizersgracht {int(tag[:4], 16)}, Amsterdam",
    }
    external_id = f"cus_erin_{tag}"
    auth = demo.auth
    async with FakeProvider() as receiver, httpx.AsyncClient(timeout=10) as http:
        # The workspace reminds once after three days, and tells an integrator about every low score.
        reminders = await http.put(
            f"{urls['dispatch']}/v1/settings",
            json={"reminders": {"count": 1, "interval_days": 3}},
            headers=auth,
        )
        assert reminders.status_code == 200, reminders.text
        hook = await http.post(
            f"{urls['dispatch']}/v1/webhooks",
            json={"url": receiver.hook_url("crm"), "event_types": ["scoring.low_score"]},
            headers=auth,
        )
        assert hook.status_code == 201, hook.text
        rule = await http.post(
            f"{urls['scoring']}/v1/notification-rules",
            json={"name": "Every detractor", "metric": "nps", "channel": "webhook", "to": "crm"},
            headers=auth,
        )
        assert rule.status_code == 201, rule.text

        # 1. Invited: a helpdesk event names the contact with their email, name and phone.
        event = {
            "type": "ticket.solved",
            "data": {
                "contact": {
                    "external_id": external_id,
                    "email": person["email"],
                    "name": person["name"],
                    "phone": person["phone"],
                },
                "ticket_id": f"T-{tag}",
                "agent": "Grace",
                "shipping_address": person["address"],
            },
        }
        with httpx.Client(timeout=10) as sync_http:
            accepted = send_signed(sync_http, demo, event)
        assert accepted.status_code == 202, accepted.text
        invitation = await smtp.wait_for(lambda m: recipient(m) == person["email"])
        link = await survey_link(http, invitation)
        short_link = SHORT_LINK.findall(body_of(invitation, "plain"))[0]

        # 2. Answered: a detractor, who may be contacted, and whose comment gives their address.
        answered = await http.post(
            link,
            data={"nps": "2", "why": f"Nobody came to {person['address']} all week.", "consent": "yes"},
            follow_redirects=True,
        )
        assert answered.status_code == 200, answered.text

        # 3. A case opens; the integrator's webhook about the low score is delivered and logged.
        cases = await wait_until(
            lambda: _when(
                json_of(http, f"{urls['followup']}/v1/cases?limit=100", auth),
                lambda page: [c for c in page["items"] if person["address"] in (c["comment"] or "")],
            ),
            timeout_s=30,
            message="a case opens",
        )
        case = cases[0]
        await wait_until(lambda: receiver.hooks_for("crm"), timeout_s=30, message="the webhook is delivered")
        assert person["address"] in receiver.hooks_for("crm")[0].body.decode()

        # 4. The agent resolves it; the retention survey goes out, and its reminder waits three days.
        resolved = await http.post(
            f"{urls['followup']}/v1/cases/{case['id']}/resolve",
            json={
                "root_cause": {"category": "Service", "cause": "Slow"},
                "action_taken": f"Drove to {person['address']} with the parcel.",
            },
            headers={**auth, "X-Actor": AGENT["id"]},
        )
        assert resolved.status_code == 200, resolved.text
        retention = await smtp.wait_for(
            lambda m: recipient(m) == person["email"] and m["Message-ID"] != invitation["Message-ID"]
        )
        retention_link = await survey_link(http, retention)
        retention_short = SHORT_LINK.findall(body_of(retention, "plain"))[0]
        invitations = await json_of(http, f"{urls['dispatch']}/v1/invitations?limit=100", auth)
        pending = [
            i for i in invitations if i["kind"] == "retention" and i["contact_id"] == case["contact_id"]
        ]
        assert len(pending) == 1
        reminder_list = await json_of(
            http, f"{urls['dispatch']}/v1/invitations/{pending[0]['id']}/reminders", auth
        )
        assert [r["status"] for r in reminder_list] == ["scheduled"], reminder_list

        # Before the erasure, the search finds them: it would see a copy that was left.
        assert await copies_of(database_url, person), "the search finds the contact before the erasure"

        # 5. Erased, in trigger; every service handles ContactErased.
        contact = await json_of(http, f"{urls['trigger']}/v1/contacts/{external_id}", auth)
        async with TopicReader(broker.bootstrap_servers, CUSTOMER_EVENTS) as topic:
            erased = await http.delete(f"{urls['trigger']}/v1/contacts/{external_id}", headers=auth)
            assert erased.status_code in (200, 202, 204), erased.text
            (published,) = await topic.wait_for(
                lambda e: (
                    e.get("type") == "closeloop.ContactErased.v1" and e["data"]["contact_id"] == contact["id"]
                ),
                timeout_s=30,
            )
        await wait_until(
            lambda: handled_by_every_consumer(database_url, published["id"]),
            timeout_s=30,
            message="every service handled ContactErased",
        )

        # 6. No copy anywhere: no email address, name, phone number or address in any table.
        left = await copies_of(database_url, person)
        assert not left, "personal data left after the erasure:\n" + "\n".join(left)

        # 7. No working link: the short links are gone, the survey links open nothing and take no answer.
        for short in (short_link, retention_short):
            gone = await http.get(short, follow_redirects=False)
            assert gone.status_code == 410, (short, gone.status_code)
        for survey in (link, retention_link):
            assert (await http.get(survey)).status_code == 404
        again = await http.post(retention_link, data={"solved": "5", "why": person["address"]})
        assert again.status_code == 404
        assert not await copies_of(database_url, {"address": person["address"]})


async def _when(pending, accept):
    value = await pending
    return accept(value) or None
