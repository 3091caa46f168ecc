"""Surveys as responses announces them (``SurveyPublished``), for the services that only take a survey
they know: trigger's rules, followup's retention survey."""

from __future__ import annotations

from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from shared.events import SurveyPublished, SurveyQuestion, utcnow
from tests.support.stack import publish, wait_until


async def publish_survey(
    producer: AIOKafkaProducer, *, workspace: str, survey_id: str, open: bool = True, name: str = "Retention"
) -> None:
    """Publish ``SurveyPublished`` for the workspace's survey, as responses does when it is created."""
    await publish(
        producer,
        SurveyPublished(
            workspace_id=workspace,
            survey_id=survey_id,
            survey_version=1,
            name=name,
            open=open,
            questions=(SurveyQuestion(id="csat", type="csat", required=True),),
            published_at=utcnow(),
        ),
    )


async def set_retention_survey(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    producer: AIOKafkaProducer,
    *,
    workspace: str,
    survey_id: str = "svy-retention",
    **settings: Any,
) -> httpx.Response:
    """Publish the survey, then set it as followup's retention survey once followup knows it (a 422 naming
    ``retention_survey_id`` until then); return the answer to the ``PUT /v1/settings`` that took it."""
    await publish_survey(producer, workspace=workspace, survey_id=survey_id)

    async def taken() -> httpx.Response | None:
        response = await client.put(
            "/v1/settings", json={"retention_survey_id": survey_id, **settings}, headers=auth
        )
        return None if response.status_code == 422 else response

    return await wait_until(taken, message=f"followup knows survey {survey_id}")
