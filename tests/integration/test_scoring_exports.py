"""Segments out and exports against real PostgreSQL and the real broker: each segment's contacts (by their
latest answer in the scope) page by page and as a download, the responses streamed as CSV and NDJSON,
each compared with a reference the test computes from what it published; roles and erasure."""

from __future__ import annotations

import csv
import io
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from services.scoring.app import create_app
from services.scoring.settings import ScoringSettings
from shared.access import Role
from shared.clock import Clock
from shared.events import Answer, ContactErased, ResponseCompleted, new_id, utcnow
from tests.support.access import key_auth
from tests.support.stack import publish, running, settings_from, wait_until

pytestmark = pytest.mark.integration

BATCH = 3  # exports read 3 rows a batch here, so every export below spans several batches


@pytest.fixture(scope="module")
async def client(stack_env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_from(ScoringSettings, stack_env, target_interval_s=3600, export_batch_size=BATCH)
    async with running(create_app(settings, clock=Clock())) as c:
        yield c


@dataclass(frozen=True)
class Sent:
    contact: str
    nps: int
    nls: int | None
    country: str
    at: datetime
    comment: str | None = None
    response_id: str = ""

    def event(self, workspace: str, survey: str) -> ResponseCompleted:
        answers = [Answer(question_id="nps", type="nps", value=self.nps)]
        if self.nls is not None:
            answers.append(Answer(question_id="nls", type="nls", value=self.nls))
        if self.comment is not None:
            answers.append(Answer(question_id="why", type="open", value=self.comment))
        return ResponseCompleted(
            workspace_id=workspace,
            response_id=self.response_id,
            invitation_id=None,
            request_id=new_id(),
            contact_id=self.contact,
            survey_id=survey,
            survey_version=1,
            kind="transactional",
            channel="email",
            locale="en",
            hidden_fields={"attr.country": self.country, "team": "support", "attr.tier": "gold"},
            answers=tuple(answers),
            consent_to_contact=self.nps <= 6,
            completed_at=self.at,
        )


def klass(score: int, *, european: bool = False) -> str:
    """The NPS class, written out here rather than imported (the reference must not share the code)."""
    if score >= (8 if european else 9):
        return "promoter"
    return "detractor" if score <= 6 else "passive"


def cell(nps: int, nls: int) -> str:
    a, b = klass(nps), klass(nls)
    if "passive" in (a, b):
        return "undecided"
    return {
        ("promoter", "promoter"): "pure",
        ("promoter", "detractor"): "false",
        ("detractor", "promoter"): "trapped",
    }.get((a, b), "disloyal")


def reference(
    sent: list[Sent], segment: str, *, keep: Any = lambda s: True, **how: Any
) -> list[tuple[str, str]]:
    """(contact, response) of each contact whose latest kept answer is in ``segment``, by contact id."""
    cells = segment in ("pure", "false", "trapped", "disloyal", "undecided")
    latest: dict[str, Sent] = {}
    for s in sorted((s for s in sent if keep(s) and (s.nls is not None or not cells)), key=lambda s: s.at):
        latest[s.contact] = s
    out = []
    for contact, s in sorted(latest.items()):
        score = s.nls if how.get("metric") == "nls" else s.nps
        found = cell(s.nps, s.nls) if cells else klass(score, european=how.get("european", False))  # type: ignore[arg-type]
        if found == segment:
            out.append((contact, s.response_id))
    return out


async def walk(
    client: httpx.AsyncClient, auth: dict[str, str], path: str, **params: Any
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        r = await client.get(path, params={**params, **({"cursor": cursor} if cursor else {})}, headers=auth)
        assert r.status_code == 200, r.text
        body = r.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        assert (cursor is None) == ("link" not in r.headers)
        if cursor is None:
            return items


async def scored(client: httpx.AsyncClient, auth: dict[str, str], survey: str, n: int) -> None:
    async def check() -> bool:
        r = await client.get("/v1/metrics", params={"survey_id": survey, "metric": "nps"}, headers=auth)
        return r.status_code == 200 and r.json()["metrics"][0]["n"] >= n

    await wait_until(check, message=f"{n} answers scored on {survey}")


def survey_data(start: datetime) -> list[Sent]:
    rows = [
        ("c01", 10, 9, "NL"),
        ("c02", 9, 2, "NL"),
        ("c03", 3, 10, "BE"),
        ("c04", 1, 0, "NL"),
        ("c05", 8, 9, "NL"),  # passive; a promoter on the european scale
        ("c06", 7, None, "BE"),
        ("c07", 0, None, "NL"),
        ("c08", 10, None, "BE"),
        ("c09", 9, 10, "NL"),
        ("c10", 6, 8, "NL"),
    ]
    sent = [
        Sent(c, nps, nls, k, start + timedelta(hours=i), response_id=new_id())
        for i, (c, nps, nls, k) in enumerate(rows)
    ]
    # c01 was a promoter; a day later a detractor: the latest answer decides
    sent.append(Sent("c01", 2, None, "NL", start + timedelta(days=1), response_id=new_id()))
    # c09 answered NPS and NLS earlier and only NPS later: its cell is from the earlier one
    sent.append(Sent("c09", 4, None, "NL", start + timedelta(days=1, hours=1), response_id=new_id()))
    return sent


async def test_each_segment_lists_its_contacts_by_their_latest_answer_page_by_page_and_as_a_download(
    client, producer, auth, workspace
):
    survey = "svy-" + secrets.token_hex(4)
    start = (utcnow() - timedelta(days=3)).replace(hour=1, minute=0, second=0, microsecond=0)
    sent = survey_data(start)
    for s in sent:
        await publish(producer, s.event(workspace, survey))
    await scored(client, auth, survey, len(sent))

    for segment in ("promoter", "passive", "detractor", "pure", "false", "trapped", "disloyal", "undecided"):
        items = await walk(client, auth, f"/v1/segments/{segment}/contacts", survey_id=survey, limit=2)
        assert [(i["contact_id"], i["response_id"]) for i in items] == reference(sent, segment), segment
    assert {s for s, _ in reference(sent, "detractor")} >= {"c01", "c09"}, "the latest answer decides"

    first_day = start.date().isoformat()
    earlier = await walk(
        client, auth, "/v1/segments/promoter/contacts", survey_id=survey, limit=2, to=first_day
    )
    assert [(i["contact_id"], i["response_id"]) for i in earlier] == reference(
        sent, "promoter", keep=lambda s: s.at.date() <= start.date()
    )
    dutch = await walk(client, auth, "/v1/segments/detractor/contacts", survey_id=survey, filter="country=NL")
    assert [(i["contact_id"], i["response_id"]) for i in dutch] == reference(
        sent, "detractor", keep=lambda s: s.country == "NL"
    )
    european = await walk(client, auth, "/v1/segments/promoter/contacts", survey_id=survey, scale="european")
    assert [(i["contact_id"], i["response_id"]) for i in european] == reference(
        sent, "promoter", european=True
    )
    by_nls = await walk(client, auth, "/v1/segments/promoter/contacts", survey_id=survey, metric="nls")
    assert [(i["contact_id"], i["response_id"]) for i in by_nls] == reference(
        sent, "promoter", keep=lambda s: s.nls is not None, metric="nls"
    )
    [c03] = [i for i in await walk(client, auth, "/v1/segments/trapped/contacts", survey_id=survey)]
    assert (c03["score"], c03["nls"], c03["dimensions"]["country"], c03["question_id"]) == (
        3,
        10,
        "BE",
        "nps",
    )

    download = await client.get(
        "/v1/segments/detractor/contacts/export", params={"survey_id": survey}, headers=auth
    )
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    assert 'filename="detractor-contacts.csv"' in download.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(download.text, newline="")))
    assert [(r["contact_id"], r["response_id"]) for r in rows] == reference(sent, "detractor")
    assert all(json.loads(r["dimensions"])["team"] == "support" for r in rows)
    lines = (
        await client.get(
            "/v1/segments/pure/contacts/export",
            params={"survey_id": survey, "format": "ndjson"},
            headers=auth,
        )
    ).text.splitlines()
    assert [(o["contact_id"], o["response_id"]) for o in map(json.loads, lines)] == reference(sent, "pure")

    await publish(producer, ContactErased(workspace_id=workspace, contact_id="c04", erased_at=utcnow()))

    async def gone() -> bool:
        found = await walk(client, auth, "/v1/segments/disloyal/contacts", survey_id=survey)
        return "c04" not in [i["contact_id"] for i in found]

    await wait_until(gone, message="the erased contact leaves its segment")
    after = (
        await client.get("/v1/segments/disloyal/contacts/export", params={"survey_id": survey}, headers=auth)
    ).text
    assert "c04" not in after


async def test_segments_respect_roles_and_refuse_what_they_cannot_read(client, workspace):
    path, export = "/v1/segments/promoter/contacts", "/v1/segments/promoter/contacts/export"
    for role, listed, exported in (
        (Role.VIEWER, 403, 403),
        (Role.AGENT, 403, 403),
        (Role.INTEGRATION, 200, 403),
        (Role.ANALYST, 200, 200),
    ):
        auth = key_auth(workspace, role)
        assert (await client.get(path, headers=auth)).status_code == listed, role
        assert (await client.get(export, headers=auth)).status_code == exported, role
        assert (await client.get("/v1/exports/responses", headers=auth)).status_code == exported, role
    admin = key_auth(workspace)
    for params, field in (
        ({"cursor": "bm9wZQ"}, "cursor"),
        ({"from": "2026-11-02", "to": "2026-11-01"}, "from"),
        ({"survey_id": "svy-nobody-knows"}, "survey_id"),
    ):
        refused = await client.get(path, params=params, headers=admin)
        assert refused.status_code in (404, 422) and refused.json()["errors"][0]["field"] == field, params
    assert (await client.get("/v1/segments/fans/contacts", headers=admin)).status_code == 422
    assert (await client.get(export, params={"format": "xlsx"}, headers=admin)).status_code == 422
