"""The migration that started the survey lifecycle and branding events publishes what existed before it:
each survey's current version (closed ones as closed) and each workspace's branding, once, through the
outbox."""

from __future__ import annotations

import asyncio
import json
import secrets

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from closeloop.infra import drop_database, ensure_database, with_database
from shared.events import BrandingChanged, CloudEvent, SurveyPublished
from shared.migrations import upgrade

pytestmark = pytest.mark.integration

BEFORE = "75b9b18d1311"  # the last revision before the events existed
DEFINITION = {
    "name": "Old survey",
    "default_locale": "en",
    "questions": [
        {"id": "csat", "type": "csat", "required": True, "text": {"en": "Satisfied?", "nl": "Tevreden?"}},
        {"id": "why", "type": "open", "text": "Why?"},
    ],
}


async def test_surveys_and_branding_stored_before_the_events_are_published_once(database_url):
    url = with_database(database_url, f"closeloop_backfill_{secrets.token_hex(3)}")
    await ensure_database(url, drop_first=True)
    engine = create_async_engine(url)
    try:
        await asyncio.to_thread(upgrade, "responses", url, BEFORE)
        async with engine.begin() as c:
            for survey_id, closed in (
                ("11111111-1111-4111-8111-111111111111", False),
                ("22222222-2222-4222-8222-222222222222", True),
            ):
                await c.execute(
                    text(
                        "INSERT INTO responses.surveys (id, workspace_id, name, version, closed_at) "
                        "VALUES (:id, 'ws-old', 'Old survey', 2, CASE WHEN :closed THEN now() END)"
                    ),
                    {"id": survey_id, "closed": closed},
                )
                for version in (1, 2):
                    definition = {**DEFINITION, "questions": DEFINITION["questions"][:version]}
                    await c.execute(
                        text(
                            "INSERT INTO responses.survey_versions (survey_id, version, workspace_id, definition) "
                            "VALUES (:id, :v, 'ws-old', CAST(:d AS jsonb))"
                        ),
                        {"id": survey_id, "v": version, "d": json.dumps(definition)},
                    )
            await c.execute(
                text(
                    "INSERT INTO responses.workspace_settings (workspace_id, branding) VALUES "
                    "('ws-old', CAST(:b AS jsonb)), ('ws-plain', '{}'::jsonb)"
                ),
                {"b": json.dumps({"primary_color": "#0b6e4f", "name": "Acme"})},
            )
        await asyncio.to_thread(upgrade, "responses", url)
        await asyncio.to_thread(upgrade, "responses", url)  # at head already: nothing runs twice
        async with engine.connect() as c:
            rows = (
                await c.execute(text("SELECT topic, key, payload FROM responses.outbox ORDER BY seq"))
            ).all()
    finally:
        await engine.dispose()
        await drop_database(url)

    events = [CloudEvent.model_validate(payload).parse_data() for _, _, payload in rows]
    assert [type(e) for e in events] == [SurveyPublished, SurveyPublished, BrandingChanged]
    opened, closed, branding = events
    assert [(e.survey_version, e.open, [q.id for q in e.questions]) for e in (opened, closed)] == [
        (2, True, ["csat", "why"]),
        (2, False, ["csat", "why"]),
    ]
    assert opened.questions[0].labels["nl"][0] == "Zeer ontevreden" and opened.languages == ("en", "nl")
    assert (branding.workspace_id, branding.name, branding.primary_color, branding.tone) == (
        "ws-old",
        "Acme",
        "#0b6e4f",
        "friendly",
    )
    assert [(topic, key) for topic, key, _ in rows] == [
        ("surveys", "ws-old:11111111-1111-4111-8111-111111111111"),
        ("surveys", "ws-old:22222222-2222-4222-8222-222222222222"),
        ("workspaces", "ws-old"),
    ]
