"""The five services as real processes against the session's PostgreSQL, broker and SMTP server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from closeloop.demo import DemoWorkspace, seed_workspace
from closeloop.infra import free_port
from closeloop.stack import SERVICE_PORTS, ServiceStack
from shared.events import SurveyPublished, SurveyQuestion
from shared.security import issue_api_key, verify_api_key
from shared.vocabulary import QUESTION_TYPES
from tests.conftest import SECRET_KEY
from tests.support.docs import doc_generator
from tests.support.stack import publish

ROOT = Path(__file__).resolve().parents[2]


# Package scope: the service processes run only while the e2e tests do, and never compete for
# consumer groups with the in-process services of the integration tests.
@pytest.fixture(scope="package")
def stack(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceStack]:
    # A claim older than 3 s counts as abandoned, so a send interrupted by a kill is retried quickly.
    # Key use is published every half second, so that the console shows it while a test waits.
    env = {
        **stack_env,
        "CLOSELOOP_DISPATCH_SEND_CLAIM_TIMEOUT_S": "3",
        "CLOSELOOP_KEY_USAGE_FLUSH_INTERVAL_S": "0.5",
        "CLOSELOOP_CONSOLE_KEY_USAGE_FLUSH_S": "0.5",
    }
    services = ServiceStack(
        env=env,
        log_dir=tmp_path_factory.mktemp("service-logs"),
        ports={name: free_port() for name in SERVICE_PORTS},
    )
    services.start_all()
    try:
        services.wait_ready()
        yield services
    finally:
        services.stop_all()


@pytest.fixture
def urls(stack: ServiceStack) -> dict[str, str]:
    return {name: stack.url(name) for name in stack.ports}


def _responses_publishes_surveys() -> bool:
    """Whether responses publishes its surveys' lifecycle (docs/gen_asyncapi.py says who publishes what)."""
    return "responses" in doc_generator("gen_asyncapi").PUBLISHERS[SurveyPublished]


async def _publish_surveys_as_responses_would(
    responses_url: str, auth: dict[str, str], producer: AIOKafkaProducer, stop: asyncio.Event
) -> None:
    """Until ``stop``: publish ``SurveyPublished`` for each survey the workspace has in responses, once."""
    published: set[str] = set()
    async with httpx.AsyncClient(headers=auth, timeout=10) as http:
        while not stop.is_set():
            for survey in (await http.get(f"{responses_url}/v1/surveys")).json():
                if survey["id"] in published:
                    continue
                questions = tuple(
                    SurveyQuestion(id=q["id"], type=q["type"], required=bool(q.get("required")))
                    for q in survey["questions"]
                    if q["type"] in QUESTION_TYPES
                )
                await publish(
                    producer,
                    SurveyPublished(
                        workspace_id=verify_api_key(
                            SECRET_KEY, auth["Authorization"].removeprefix("Bearer ")
                        ),
                        survey_id=survey["id"],
                        survey_version=survey["version"],
                        name=survey["name"],
                        open=not survey["closed"],
                        questions=questions,
                        published_at=datetime.now(UTC),
                    ),
                )
                published.add(survey["id"])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)


@pytest.fixture
async def demo(urls: dict[str, str], workspace: str, producer: AIOKafkaProducer) -> DemoWorkspace:
    """A workspace seeded the way ``make run`` seeds the demo: through the public REST APIs.

    Trigger takes rules only for surveys it knows from responses' ``SurveyPublished``. Until responses
    publishes it (issue 11: its half of the work, declared in docs/gen_asyncapi.py), the test publishes
    it for each survey the demo creates, as responses will; once responses does, this stands aside and
    the loop runs on responses' own events."""
    seeding = asyncio.create_task(
        asyncio.to_thread(seed_workspace, urls, secret_key=SECRET_KEY, workspace_id=workspace)
    )
    if _responses_publishes_surveys():
        return await seeding
    stop = asyncio.Event()
    auth = {"Authorization": f"Bearer {issue_api_key(SECRET_KEY, workspace)}"}
    stand_in = asyncio.create_task(
        _publish_surveys_as_responses_would(urls["responses"], auth, producer, stop)
    )
    try:
        return await seeding
    finally:
        stop.set()
        await stand_in
